import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../../src/bus/memory-bus.js';
import { decodeTick } from '../../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../../src/core/instruments.js';
import type { BarTick, Tick, TickerTick } from '../../../src/core/schema.js';
import { tickToPayload } from '../../../src/fanout/payloads.js';
import { MemoryBarStore } from '../../../src/history/bar-store.js';
import { FeedHost } from '../../../src/ingest/feed-host.js';
import { TickPublisher } from '../../../src/ingest/tick-publisher.js';
import { FakeHttpStreamServer } from '../../sdk/testing/fake-http-stream-server.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { OandaFeed, OandaOptionsSchema } from '../oanda-feed.js';

/**
 * OANDA sends prices, no trades (v20 Pricing Endpoints > Price Stream). The engine builds the
 * forex symbol's ticker and bars from the mid price of each two-sided price, as OANDA builds its
 * own midpoint candles (v20 Instrument Endpoints > Get Candlesticks, `price` M; Instrument
 * Definitions > Candlestick `mid`, `volume` "the number of prices created"): `v` 0, `n` the
 * number of prices, `"basis":"mid"` on each. Before, a symbol served by OANDA had no ticker and
 * no bars at all.
 */
const TOKEN = 'oanda-test-token';
const ACCOUNT = '101-004-1234567-001';
// Tuesday 2024-06-11 14:00:00 UTC (10:00 New York, EDT): the forex day began 2024-06-10 21:00 UTC
const T0 = Date.UTC(2024, 5, 11, 14, 0, 0);
const DAY_START = Date.UTC(2024, 5, 10, 21, 0, 0);
const iso = (ms: number): string => new Date(ms).toISOString();
const price = (ms: number, bid: string | undefined, ask: string | undefined): Record<string, unknown> => ({
  type: 'PRICE',
  instrument: 'EUR_USD',
  time: iso(ms),
  tradeable: true,
  bids: bid === undefined ? [] : [{ price: bid, liquidity: 1_000_000 }],
  asks: ask === undefined ? [] : [{ price: ask, liquidity: 1_000_000 }],
});

/** mids 1.07619, 1.07640 (high), 1.07600 (low), then a one-sided price (no mid), then 1.07630 in the next minute */
const LINES = [
  price(T0 + 1_000, '1.07612', '1.07626'),
  price(T0 + 20_000, '1.07633', '1.07647'),
  price(T0 + 40_000, '1.07593', '1.07607'),
  price(T0 + 50_000, '1.07500', undefined),
  price(T0 + 61_000, '1.07623', '1.07637'),
];

describe('oanda: ticker and bars from mid prices', () => {
  let fake: FakeHttpStreamServer | undefined;
  let host: FeedHost | undefined;
  let publisher: TickPublisher | undefined;
  afterEach(async () => {
    await host?.stopAll();
    publisher?.close();
    await fake?.close();
  });

  it('publishes the ticker and bars of an OANDA symbol from mids, n = the number of prices, marked basis mid', async () => {
    fake = await FakeHttpStreamServer.start({
      initialState: () => ({}),
      onStream: (s) => {
        for (const l of LINES) s.line(l);
      },
    });
    const bus = new MemoryBus();
    const ticks: Tick[] = [];
    bus.subscribe('md.forex.>', (_s, p) => ticks.push(decodeTick(p)));
    const store = new MemoryBarStore({ windowBars: 100 });
    publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, bars: store });
    host = new FeedHost(publisher, { info() {}, warn() {}, error() {}, debug() {} });
    const feed = new OandaFeed('oanda', OandaOptionsSchema.parse({ url: fake.url, symbols: ['EUR-USD'] }), { token: TOKEN, accountId: ACCOUNT });
    await host.start(feed);
    await waitFor(() => ticks.filter((t) => t.k === 'quote').length >= LINES.length, { what: 'every price as a quote', timeout: 10_000 });

    const tickers = ticks.filter((t): t is TickerTick => t.k === 'ticker');
    expect(tickers.length).toBeGreaterThan(0);
    const last = tickers.at(-1)!;
    // the one-sided price set no price (its bid is shown, its ask absent); the last mid is p
    expect(last).toMatchObject({ p: 1.0763, o: 1.07619, h: 1.0764, l: 1.076, v: 0, basis: 'mid', src: 'oanda' });
    expect(last.chg).toBeCloseTo(1.0763 - 1.07619, 12);
    expect(tickToPayload(last)).toMatchObject({ p: 1.0763, basis: 'mid' });
    // the one-sided price: a ticker with its bid and no ask, the price still the mid before it
    const oneSided = tickers.find((t) => t.ap === undefined);
    expect(oneSided).toMatchObject({ p: 1.076, bp: 1.075, basis: 'mid' });

    // the first minute closes with the next minute's price: o h l c of its mids, 3 prices, no volume
    const m1 = ticks.filter((t): t is BarTick => t.k === 'bar' && t.iv === '1m');
    const closed = m1.find((b) => b.closed && b.t === T0);
    expect(closed).toMatchObject({ o: 1.07619, h: 1.0764, l: 1.076, c: 1.076, v: 0, n: 3, basis: 'mid' });
    expect(tickToPayload(closed!)).toMatchObject({ n: 3, v: 0, basis: 'mid' });
    // the day bar: the forex day (17:00 New York), four prices so far (its open state is sent at
    // most every 250 ms: the sweep sends the newest one held back)
    publisher.sweepBars();
    const day = ticks.filter((t): t is BarTick => t.k === 'bar' && t.iv === '1d').at(-1);
    expect(day).toMatchObject({ t: DAY_START, o: 1.07619, h: 1.0764, l: 1.076, c: 1.0763, v: 0, n: 4, closed: false, basis: 'mid' });

    // the same bar store as trade bars: GET /v1/bars and history serve it
    publisher.sweepBars(Date.now() + 2 * 86_400_000);
    const stored = await store.range('bar.1m:EUR-USD', { limit: 10 });
    expect(stored.map((b) => [b.t, b.o, b.h, b.l, b.c, b.v, b.n, b.basis])).toEqual([
      [T0, 1.07619, 1.0764, 1.076, 1.076, 0, 3, 'mid'],
      [T0 + 60_000, 1.0763, 1.0763, 1.0763, 1.0763, 0, 1, 'mid'],
    ]);
    // the adapter declares it (feeds/sdk/adapter.ts, FeedAdapter.quotesOnly): nothing is guessed from missing trades
    expect(feed.quotesOnly).toBe(true);
  });
});
