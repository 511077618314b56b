import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AlpacaFeed, AlpacaOptionsSchema } from '../../feeds/alpaca/alpaca-feed.js';
import { startAlpacaFake } from '../../feeds/alpaca/fake-server.js';
import { BinanceFeed, BinanceOptionsSchema } from '../../feeds/binance/binance-feed.js';
import { startBinanceFake } from '../../feeds/binance/fake-server.js';
import { CoinbaseFeed, CoinbaseOptionsSchema } from '../../feeds/coinbase/coinbase-feed.js';
import { startCoinbaseFake } from '../../feeds/coinbase/fake-server.js';
import { KrakenFeed, KrakenOptionsSchema } from '../../feeds/kraken/kraken-feed.js';
import { startKrakenFake } from '../../feeds/kraken/fake-server.js';
import { OandaFeed, OandaOptionsSchema } from '../../feeds/oanda/oanda-feed.js';
import { startOandaFake } from '../../feeds/oanda/fake-server.js';
import type { OandaFakeServer } from '../../feeds/oanda/fake-server.js';
import { PolygonFeed, PolygonOptionsSchema } from '../../feeds/polygon/polygon-feed.js';
import { startPolygonFake } from '../../feeds/polygon/fake-server.js';
import type { FeedAdapter, FeedLogger } from '../../feeds/sdk/adapter.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { StatusTick } from '../../src/core/schema.js';
import { FeedHost } from '../../src/ingest/feed-host.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { RedisLastValueStore } from '../../src/store/redis-last-value-store.js';
import { redisForFile } from '../helpers/redis-file.js';
import { quietFor, waitFor } from '../helpers/wait.js';

/**
 * docs/feeds.md, "Trading status after a restart": a feed process that restarts takes up the
 * statuses it published from the last-value store (Redis here, as in scale-out), so an adapter
 * whose provider sends no status on subscribe (Alpaca, Polygon) marks a halt from before the
 * restart `stale`, and one that publishes only changes (Binance, Coinbase, Kraken, OANDA)
 * publishes the provider's first answer when it differs from the status taken up. Each "process"
 * below is what buildFeeds (src/app/feeds.ts) builds: a publisher on the store, restored, and a
 * feed host; the second one shares only Redis with the first.
 */
const redis = redisForFile();
const silent: FeedLogger = { info() {}, warn() {}, error() {}, debug() {} };

/** What buildFeeds starts a feed process with: a publisher on the Redis store, the statuses it publishes. */
async function openPublisher(keyPrefix: string) {
  const store = new RedisLastValueStore({ url: redis.server.url, keyPrefix, flushMs: 20 });
  expect(await store.waitReady(5000)).toBe(true); // as src/app/infra.ts does before the feeds start
  const bus = new MemoryBus();
  const statuses: StatusTick[] = [];
  bus.subscribe('md.>', (_s, p) => {
    const t = decodeTick(p);
    if (t.k === 'status') statuses.push(t);
  });
  const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, lastValues: store });
  const close = async (): Promise<void> => {
    publisher.close();
    await store.flush();
    await store.close();
  };
  return { publisher, statuses, close };
}

async function feedProcess(keyPrefix: string, adapter: FeedAdapter) {
  const { publisher, statuses, close } = await openPublisher(keyPrefix);
  await publisher.restore({ statusFeeds: [adapter.id] });
  const host = new FeedHost(publisher, silent);
  await host.start(adapter);
  const stop = async (): Promise<void> => {
    await host.stopAll();
    await close();
  };
  redis.cleanup.push(stop);
  return { statuses, stop, last: (sym: string) => statuses.filter((s) => s.sym === sym).at(-1) };
}

const prefix = (): string => `restart:${randomBytes(4).toString('hex')}:`;
const backoff = { initialMs: 20, maxMs: 200 };

/**
 * A first feed process on a fake provider until `sym` is halted (after `halt`), stopped with its
 * fake; then a second one on a new fake (`start(true)`), sharing only Redis with the first.
 */
async function restartAfterHalt<F extends { close(): Promise<void> }>(
  sym: string,
  start: (second: boolean) => Promise<F>,
  feed: (fake: F) => FeedAdapter,
  halt: (fake: F) => Promise<void> | void = () => undefined,
) {
  const key = prefix();
  const fakeA = await start(false);
  const a = await feedProcess(key, feed(fakeA));
  await halt(fakeA);
  await waitFor(() => a.last(sym)?.status === 'halted', 'the halt');
  await a.stop();
  await fakeA.close();
  const fakeB = await start(true);
  const b = await feedProcess(key, feed(fakeB));
  return { b, fakeB };
}

const binance = (p: { url: string; restUrl: string }): BinanceFeed =>
  new BinanceFeed(
    'binance',
    BinanceOptionsSchema.parse({ url: p.url, restUrl: p.restUrl, symbols: ['ETH-USD'], symbolMap: { 'ETH-USD': 'ETHUSDT' }, backoff }),
  );
const halted = { symbolStatus: { ETHUSDT: 'HALT' } } as const;

describe('trading status after a restart of the feed process', () => {
  it('alpaca: a halt published before the restart is published again stale, until the next status message', async () => {
    const creds = { key: 'PK1', secret: 's1' };
    const options = (url: string) => AlpacaOptionsSchema.parse({ url, symbols: ['AAPL', 'MSFT'], channels: ['trades', 'statuses'], backoff });
    const halt = { T: 's', S: 'AAPL', sc: 'H', sm: 'Trading Halt', rc: 'T1', rm: 'Halt News Pending', t: '2026-12-01T15:00:00Z', z: 'C' };
    const resume = { T: 's', S: 'AAPL', sc: 'T', sm: 'Trading Resumption', rc: 'T3', rm: 'News Released', t: '2026-12-01T16:00:00Z', z: 'C' };

    const { b, fakeB } = await restartAfterHalt(
      'AAPL',
      () => startAlpacaFake({ ...creds, pumpMs: 60_000, replayFixtures: false }),
      (fake) => new AlpacaFeed('alpaca', options(fake.url), creds),
      async (fake) => {
        await waitFor(() => fake.requests().some((r) => r.action === 'subscribe'), 'subscribed');
        fake.push([halt]);
      },
    );
    const marked = await waitFor(() => b.last('AAPL'), 'the halt marked stale');
    expect(marked).toMatchObject({ status: 'halted', code: 'H', reason: 'Trading Halt: Halt News Pending', stale: true, src: 'alpaca' });
    // MSFT had no status report: nothing to mark
    expect(b.last('MSFT')).toBeUndefined();
    fakeB.push([resume]);
    await waitFor(() => b.last('AAPL')?.status === 'trading', 'the resumption');
    expect(b.last('AAPL')).not.toHaveProperty('stale');
    await b.stop();
    await fakeB.close();
  });

  it('polygon: a LULD halt published before the restart is published again stale', async () => {
    const options = (url: string) => PolygonOptionsSchema.parse({ url, symbols: ['AAPL'], channels: ['T', 'LULD'], backoff });
    const { b, fakeB } = await restartAfterHalt(
      'AAPL',
      () => startPolygonFake({ apiKey: 'pk', pumpMs: 60_000, replayFixtures: false }),
      (fake) => new PolygonFeed('polygon', options(fake.url), { key: 'pk' }),
      async (fake) => {
        await waitFor(() => [...fake.conns].some((c) => c.state.subs.size > 0), 'subscribed');
        for (const c of fake.conns) c.send([{ ev: 'LULD', T: 'AAPL', h: 201.5, l: 182.3, i: [17], z: 3, t: 1718026202000, q: 1 }]);
      },
    );
    const marked = await waitFor(() => b.last('AAPL'), 'the halt marked stale');
    expect(marked).toMatchObject({ status: 'halted', code: 'LULD 17', luld: { up: 201.5, down: 182.3 }, stale: true });
    await b.stop();
    await fakeB.close();
  });

  it('binance: a halt published before the restart is published trading when exchangeInfo says TRADING', async () => {
    const { b, fakeB } = await restartAfterHalt(
      'ETH-USD',
      (second: boolean) => startBinanceFake({ replayFixtures: false, pumpMs: 60_000, ...(second ? {} : halted) }),
      binance,
    );
    const now = await waitFor(() => b.last('ETH-USD'), 'the status after the restart');
    expect(now).toMatchObject({ status: 'trading', code: 'TRADING' });
    expect(now).not.toHaveProperty('stale');
    await b.stop();
    await fakeB.close();
  });

  it('binance: a halt that still holds after the restart is not published again, nor marked', async () => {
    const { b, fakeB } = await restartAfterHalt('ETH-USD', () => startBinanceFake({ replayFixtures: false, pumpMs: 60_000, ...halted }), binance);
    await waitFor(() => fakeB.exchangeInfoRequests().length >= 1, 'the status read');
    await quietFor(200, 'the same status: nothing to publish');
    expect(b.statuses).toEqual([]);
    await b.stop();
    await fakeB.close();
  });

  it('coinbase: an offline product before the restart is published trading when the status channel says online', async () => {
    const { b, fakeB } = await restartAfterHalt(
      'BTC-USD',
      () => startCoinbaseFake({ replayFixtures: false, pumpMs: 60_000 }),
      (fake) => new CoinbaseFeed('coinbase', CoinbaseOptionsSchema.parse({ url: fake.url, symbols: ['BTC-USD'], backoff })),
      async (fake) => {
        await waitFor(() => fake.conns.size > 0, 'connected');
        fake.setProductStatus('BTC-USD', 'offline', 'Trading is temporarily disabled');
      },
    );
    const now = await waitFor(() => b.last('BTC-USD'), 'the status after the restart');
    expect(now).toMatchObject({ status: 'trading', code: 'online' });
    await b.stop();
    await fakeB.close();
  });

  it('kraken: a pair in cancel_only before the restart is published trading when the instrument snapshot says online', async () => {
    const { b, fakeB } = await restartAfterHalt(
      'BTC-USD',
      () => startKrakenFake({ replayFixtures: false, pumpMs: 60_000 }),
      (fake) => new KrakenFeed('kraken', KrakenOptionsSchema.parse({ url: fake.url, symbols: ['BTC-USD'], backoff })),
      async (fake) => {
        await waitFor(() => fake.conns.size > 0, 'connected');
        fake.setPairStatus('BTC/USD', 'cancel_only');
      },
    );
    const now = await waitFor(() => b.last('BTC-USD'), 'the status after the restart');
    expect(now).toMatchObject({ status: 'trading', code: 'online' });
    await b.stop();
    await fakeB.close();
  });

  it('oanda: an instrument not tradeable before the restart is published trading on the first tradeable price', async () => {
    const creds = { token: 'tok-1', accountId: '101-004-1234567-001' };
    const options = (url: string) => OandaOptionsSchema.parse({ url, symbols: ['EUR-USD'], backoff });
    const price = (time: string, tradeable: boolean) => ({
      type: 'PRICE',
      time,
      instrument: 'EUR_USD',
      tradeable,
      bids: [{ price: '1.07612', liquidity: 1_000_000 }],
      asks: [{ price: '1.07626', liquidity: 1_000_000 }],
    });
    const line = (fake: OandaFakeServer, v: unknown) => {
      for (const s of fake.streams) s.line(v);
    };
    const { b, fakeB } = await restartAfterHalt(
      'EUR-USD',
      () => startOandaFake({ token: creds.token, accountId: creds.accountId, pumpMs: 60_000, heartbeatMs: 60_000, replayFixtures: false }),
      (fake) => new OandaFeed('oanda', options(fake.url), creds),
      async (fake) => {
        await waitFor(() => fake.streams.size > 0, 'stream open');
        line(fake, price('2026-12-01T13:30:01Z', false));
      },
    );
    await waitFor(() => fakeB.streams.size > 0, 'stream open');
    line(fakeB, price('2026-12-01T13:30:05Z', true));
    const now = await waitFor(() => b.last('EUR-USD'), 'the status after the restart');
    expect(now).toMatchObject({ status: 'trading' });
    await b.stop();
    await fakeB.close();
  });

  it('a status from a feed that does not run in the new process is not taken up', async () => {
    const keyPrefix = prefix();
    const open = () => openPublisher(keyPrefix);
    const a = await open();
    a.publisher.publish('alpaca', { k: 'status', sym: 'AAPL', status: 'halted', code: 'H', ts: 1_000_000_000n });
    await a.close();

    // alpaca runs here: its halt is taken up, for alpaca only
    const c = await open();
    await c.publisher.restore({ statusFeeds: ['alpaca', 'polygon'] });
    expect(c.publisher.lastStatus('alpaca', 'AAPL')).toEqual({ status: 'halted', code: 'H' });
    expect(c.publisher.lastStatus('polygon', 'AAPL')).toBeUndefined();
    await c.close();

    // the symbol moved to polygon: alpaca's halt is not polygon's to carry on
    const b = await open();
    await b.publisher.restore({ statusFeeds: ['polygon'] });
    expect(b.publisher.lastStatus('alpaca', 'AAPL')).toBeUndefined();
    b.publisher.publish('polygon', { k: 'status', sym: 'AAPL', luld: { up: 110, down: 90 }, ts: 2_000_000_000n });
    expect(b.statuses.at(-1)).toMatchObject({ status: 'trading', luld: { up: 110, down: 90 } });
    expect(b.statuses.at(-1)).not.toHaveProperty('code');
    await b.close();
  });
});
