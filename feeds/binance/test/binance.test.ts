import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { loadConfig } from '../../../src/core/config.js';
import { InstrumentRegistry } from '../../../src/core/instruments.js';
import { parseFeedsFile } from '../../config.js';
import { createFeed } from '../../registry.js';
import { BINANCE_MAX_HISTORICAL_PAGES, BinanceFeed, BinanceOptionsSchema, binanceTradeRestBase } from '../binance-feed.js';
import { startBinanceFake } from '../fake-server.js';
import type { BinanceFakeServer } from '../fake-server.js';

const DOC_FRAMES = (JSON.parse(readFileSync(new URL('../fixtures/doc-examples.json', import.meta.url), 'utf8')) as { frames: Record<string, any>[] }).frames;
const options = (url: string, extra: Record<string, unknown> = {}) =>
  BinanceOptionsSchema.parse({
    url,
    symbols: ['BTC-USD', 'ETH-USD'],
    symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT' },
    backoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  });

runAdapterConformance({
  name: 'binance',
  startProvider: () => startBinanceFake(),
  createAdapter: (p) => new BinanceFeed('binance', options(p.url)),
  symbols: ['BTC-USD', 'ETH-USD'],
  kinds: ['trade', 'quote'],
});

describe('binance adapter', () => {
  let h: AdapterHarness<BinanceFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('normalizes the recorded trade and bookTicker frames exactly', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 60_000 }),
      (p) => new BinanceFeed('binance', options(p.url)),
    );
    await h.waitFor('5 fixture ticks', () => h!.ticks.length >= 5);
    const [t1, t2, q1, t3, q2] = h.ticks;
    expect(t1).toEqual({ k: 'trade', sym: 'BTC-USD', id: '3601234567', p: 67250.12, s: 0.015, side: 'buy', ts: 1718000000120n * 1_000_000n });
    // "m": true = the buyer was the maker, so the aggressor sold
    expect(t2).toMatchObject({ k: 'trade', sym: 'BTC-USD', id: '3601234568', p: 67249.99, s: 0.2, side: 'sell' });
    expect(q1).toMatchObject({ k: 'quote', sym: 'BTC-USD', bp: 67249.99, bs: 1.253, ap: 67250, as: 0.481 });
    expect(typeof q1!.ts).toBe('bigint'); // bookTicker has no time: receive time
    expect(t3).toMatchObject({ k: 'trade', sym: 'ETH-USD', p: 3550.41, s: 1, side: 'buy' });
    expect(q2).toMatchObject({ k: 'quote', sym: 'ETH-USD', bp: 3550.4, ap: 3550.41 });
  });

  it('asks for lower-case combined streams in the URL and subscribes live to added symbols', async () => {
    h = await startHarness(
      () => startBinanceFake(),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BTC-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT', 'SOL-USD': 'SOLUSDT' } })),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = [...h.provider.conns][0]!;
    expect(conn.url.pathname).toBe('/stream');
    expect(conn.url.searchParams.get('streams')).toBe('btcusdt@trade/btcusdt@bookTicker');
    await h.adapter.subscribe(['SOL-USD']);
    await h.waitFor('SOL-USD ticks', () => h!.ticks.some((t) => t.sym === 'SOL-USD'));
    expect(h.provider.receivedJson()).toContainEqual({ method: 'SUBSCRIBE', params: ['solusdt@trade', 'solusdt@bookTicker'], id: 1 });
    await h.adapter.unsubscribe(['SOL-USD']);
    await h.waitFor('unsubscribe sent', () => h!.provider.receivedJson().some((m: any) => m.method === 'UNSUBSCRIBE'));
  });

  // The URL carries the subscription (WebSocket Streams > General WSS information, combined
  // streams): a symbol added while a connection is being made is not in that connection's URL,
  // and no SUBSCRIBE was sent for it (the runner sends live changes only on a ready connection).
  // It got no trades, quotes or book until the next reconnect (Binance ends connections at 24 h).
  it('subscribes a symbol added while the connection was being made, and unsubscribes one removed meanwhile', async () => {
    h = await startHarness(
      () => startBinanceFake({ replayFixtures: false }),
      (p) =>
        new BinanceFeed(
          'binance',
          options(p.url, { symbols: ['BTC-USD', 'ETH-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT', 'SOL-USD': 'SOLUSDT' } }),
        ),
    );
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected' && hh.provider.conns.size === 1);
    hh.provider.upgradeDelayMs = 300;
    hh.provider.dropAll();
    await hh.waitFor('the next connection is being made', () => hh.provider.upgradesHeld === 1);
    await hh.adapter.subscribe(['SOL-USD']);
    await hh.adapter.unsubscribe(['ETH-USD']);
    await hh.waitFor('connected again', () => hh.provider.conns.size === 1);
    const conn = [...hh.provider.conns][0]!;
    expect(conn.url.searchParams.get('streams')).toBe('btcusdt@trade/btcusdt@bookTicker/ethusdt@trade/ethusdt@bookTicker');
    const n = hh.ticks.length;
    await hh.waitFor('SOL-USD ticks', () => hh.ticks.slice(n).some((t) => t.sym === 'SOL-USD'), 5000);
    await hh.waitFor('ETH-USD streams stopped', () => ![...conn.state.streams].some((s) => s.startsWith('ethusdt@')), 5000);
  });

  // The same opening window, for a symbol removed: unsubscribe() while the connection is being
  // made (its URL named the symbol). Binance streams it from the start and stops only once it has
  // read the UNSUBSCRIBE (WebSocket Streams > Live Subscribing/Unsubscribing to streams): what it
  // sent before is not the feed's any more and must not be published.
  it('publishes nothing of a symbol unsubscribed while the connection was being made', async () => {
    h = await startHarness(
      () => startBinanceFake({ replayFixtures: false, pumpMs: 10, unsubscribeDelayMs: 300 }),
      (p) => new BinanceFeed('binance', options(p.url)),
    );
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected' && hh.provider.conns.size === 1);
    hh.provider.upgradeDelayMs = 300;
    hh.provider.dropAll();
    await hh.waitFor('the next connection is being made', () => hh.provider.upgradesHeld === 1);
    await hh.adapter.unsubscribe(['ETH-USD']);
    const after = hh.ticks.length;
    await hh.waitFor('connected again', () => hh.provider.conns.size === 1);
    const conn = [...hh.provider.conns][0]!;
    expect(conn.url.searchParams.get('streams')).toBe('btcusdt@trade/btcusdt@bookTicker/ethusdt@trade/ethusdt@bookTicker');
    await hh.waitFor('Binance applied the UNSUBSCRIBE', () => ![...conn.state.streams].some((s) => s.startsWith('ethusdt@')), 5000);
    await hh.waitFor('BTC-USD ticks on the new connection', () => hh.ticks.slice(after).filter((t) => t.sym === 'BTC-USD').length >= 5, 5000);
    expect(hh.ticks.slice(after).filter((t) => t.sym === 'ETH-USD')).toEqual([]);
  });

  it('asks for microsecond times (timeUnit=MICROSECOND) and keeps their sub-millisecond digits', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BTC-USD'] })),
    );
    await h.waitFor('connected', () => h!.state === 'connected' && h!.provider.conns.size === 1);
    const conn = [...h.provider.conns][0]!;
    // General WSS information: "add the parameter timeUnit=MICROSECOND ... in the URL"
    expect(conn.url.searchParams.get('timeUnit')).toBe('MICROSECOND');
    expect(conn.url.searchParams.get('streams')).toBe('btcusdt@trade/btcusdt@bookTicker');
    // the Trade Streams example, with its times in microseconds as such a connection gets them
    conn.send({
      stream: 'btcusdt@trade',
      data: { e: 'trade', E: 1672515782136123, s: 'BTCUSDT', t: 12345, p: '0.001', q: '100', T: 1672515782136045, m: true, M: true },
    });
    conn.send({
      stream: 'btcusdt@trade',
      data: { e: 'trade', E: 1672515782137001, s: 'BTCUSDT', t: 12346, p: '0.001', q: '1', T: 1672515782136999, m: false, M: true },
    });
    await h.waitFor('2 trades', () => h!.ticks.length >= 2);
    expect(h.ticks[0]).toEqual({ k: 'trade', sym: 'BTC-USD', id: '12345', p: 0.001, s: 100, side: 'sell', ts: 1672515782136045000n });
    expect(h.ticks[1]).toMatchObject({ id: '12346', side: 'buy', ts: 1672515782136999000n });
    // two trades inside one millisecond stay in order and apart
    expect(h.ticks[1]!.ts - h.ticks[0]!.ts).toBe(954_000n);
  });

  it('with timeUnit MILLISECOND asks for nothing and reads milliseconds; a time in the other unit is still read right', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BTC-USD'], timeUnit: 'MILLISECOND' })),
    );
    await h.waitFor('connected', () => h!.state === 'connected' && h!.provider.conns.size === 1);
    const conn = [...h.provider.conns][0]!;
    expect(conn.url.searchParams.has('timeUnit')).toBe(false);
    conn.send({ stream: 'btcusdt@trade', data: { e: 'trade', E: 1672515782136, s: 'BTCUSDT', t: 1, p: '1', q: '1', T: 1672515782136, m: true, M: true } });
    conn.send({
      stream: 'btcusdt@trade',
      data: { e: 'trade', E: 1672515782137001, s: 'BTCUSDT', t: 2, p: '1', q: '1', T: 1672515782136999, m: true, M: true },
    });
    conn.send({ stream: 'btcusdt@trade', data: { e: 'trade', E: 1, s: 'BTCUSDT', t: 3, p: '1', q: '1', T: 'soon', m: true, M: true } });
    await h.waitFor('2 trades and an error', () => h!.ticks.length >= 2 && h!.counters.errors.length >= 1);
    expect(h.ticks.map((t) => t.ts)).toEqual([1672515782136000000n, 1672515782136999000n]);
    expect(h.counters.errors[0]).toMatch(/trade\.T: "soon" is not a time in ms or µs/);
  });

  it('refuses a feed over 1024 streams (the limit of one connection) with a message naming the key', () => {
    const coins = Array.from({ length: 342 }, (_, i) => `C${i}-USD`);
    const registry = new InstrumentRegistry(
      coins.map((symbol) => ({ symbol, assetClass: 'crypto' as const, currency: 'USD', pricePrecision: 2, providers: ['binance'] })),
    );
    const make = (entry: Record<string, unknown>) =>
      createFeed('binance', { config: loadConfig({ env: {} }), registry, env: {}, feedsFile: parseFeedsFile({ feeds: { binance: entry } }, 'feeds.yaml') });
    // 341 x 3 = 1023 streams fit; 342 x 3 = 1026 do not (symbols from the feeds file or from the instruments)
    expect(make({ symbols: coins.slice(0, 341), streams: ['trade', 'bookTicker', 'depth'] })).toBeInstanceOf(BinanceFeed);
    expect(() => make({ streams: ['trade', 'bookTicker', 'depth'] })).toThrow(
      /^feeds\.binance\.symbols: 342 symbols x 3 streams \(trade, bookTicker, depth\) = 1026 streams, but one Binance connection carries at most 1024: split the symbols/,
    );
    expect(make({ streams: ['trade'] })).toBeInstanceOf(BinanceFeed);
  });

  /** every trade the fake made for a symbol up to the newest one published is published once, in id order */
  const expectEveryTradeOnce = (h: AdapterHarness<BinanceFakeServer>, sym: string, provider: string): void => {
    const ids = h.ticks.filter((t) => t.k === 'trade' && t.sym === sym && Number(t.id) > 4_000_000_000).map((t) => Number(t.k === 'trade' ? t.id : 0));
    expect(ids.length).toBeGreaterThan(0);
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBe(ids[i - 1]! + 1);
    const made = h.provider.trades(provider).map((t) => t.id);
    expect(ids).toEqual(made.slice(made.indexOf(ids[0]!), made.indexOf(ids.at(-1)!) + 1));
    expect(ids[0]).toBe(made[0]);
  };

  it('after a reconnect, publishes the trades made while it was disconnected (REST Recent trades list), each once and in order', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 20, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { restUrl: p.restUrl })),
    );
    const trades = () => h!.ticks.filter((t) => t.k === 'trade');
    await h.waitFor('live trades', () => h!.state === 'connected' && trades().length > 6);
    h.provider.dropAll();
    // trades happen on Binance while the adapter is away
    const at = h.provider.trades('BTCUSDT').length;
    h.provider.recordTrades('BTCUSDT', 5);
    const rec = h.provider.trades('BTCUSDT')[at]!;
    h.provider.recordTrades('ETHUSDT', 3);
    await h.waitFor('reconnected', () => h!.provider.totalConnections >= 2 && h!.state === 'connected');
    const n = trades().length;
    await h.waitFor('live trades after the reconnect', () => trades().length > n + 16);
    expectEveryTradeOnce(h, 'BTC-USD', 'BTCUSDT');
    expectEveryTradeOnce(h, 'ETH-USD', 'ETHUSDT');
    expect((h.adapter as BinanceFeed).recoveredTrades).toBe(8);
    expect(h.provider.tradeRequests()).toBe(2);
    expect(h.counters.gaps).toBe(0);
    // a recovered trade from the REST fields (id, price, qty, time in µs as asked by X-MBX-TIME-UNIT, isBuyerMaker)
    expect(h.ticks.find((t) => t.k === 'trade' && t.id === String(rec.id))).toEqual({
      k: 'trade',
      sym: 'BTC-USD',
      id: String(rec.id),
      p: Number(rec.price),
      s: 0.5,
      side: rec.isBuyerMaker ? 'sell' : 'buy',
      ts: BigInt(rec.time) * 1_000_000n,
    });
  });

  it('asks trade recovery of Binance REST only for Binance stream URLs, else of restUrl', () => {
    expect(binanceTradeRestBase({})).toBe('https://api.binance.com');
    expect(binanceTradeRestBase({ url: 'wss://stream.binance.com:9443' })).toBe('https://api.binance.com');
    expect(binanceTradeRestBase({ url: 'wss://stream.binance.com:443/stream' })).toBe('https://api.binance.com');
    expect(binanceTradeRestBase({ url: 'wss://stream.testnet.binance.vision' })).toBeUndefined();
    expect(binanceTradeRestBase({ url: 'ws://127.0.0.1:1234', restUrl: 'http://127.0.0.1:5678/' })).toBe('http://127.0.0.1:5678');
  });

  /** A Binance feed on BTC-USD with REST on the fake server, once live trades flow. */
  async function tradingOnBtc(): Promise<AdapterHarness<BinanceFakeServer>> {
    const harness = await startHarness(
      () => startBinanceFake({ pumpMs: 20, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { restUrl: p.restUrl, symbols: ['BTC-USD'] })),
    );
    await harness.waitFor('live trades', () => harness.state === 'connected' && harness.ticks.filter((t) => t.k === 'trade').length > 3);
    return harness;
  }

  it('recovers the missed trades older than the 1000 most recent from REST Old trade lookup (historicalTrades, fromId), each once and in order', async () => {
    h = await tradingOnBtc();
    const trades = () => h!.ticks.filter((t) => t.k === 'trade');
    h.provider.dropAll();
    const at = h.provider.trades('BTCUSDT').length;
    h.provider.recordTrades('BTCUSDT', 1200);
    const firstMissed = h.provider.trades('BTCUSDT')[at]!.id;
    await h.waitFor('reconnected, the missed trades recovered', () => h!.provider.totalConnections >= 2 && (h!.adapter as BinanceFeed).recoveredTrades >= 1200);
    await h.waitFor('live trades after them', () => Number((trades().at(-1) as { id: string }).id) > firstMissed + 1210);
    // before, the 1000 most recent came back and the ~200 older ones were counted as a gap
    expect((h.adapter as BinanceFeed).recoveredTrades).toBeGreaterThanOrEqual(1200);
    expect(h.counters.gaps).toBe(0);
    expectEveryTradeOnce(h, 'BTC-USD', 'BTCUSDT');
    expect(h.provider.tradeRequests()).toBe(1);
    // one page of the lookup, from the first missed trade (one still in flight at the drop is missed too)
    const asked = h.provider.historicalTradeRequests();
    expect(asked).toHaveLength(1);
    expect(asked[0]!.limit).toBe(1000);
    expect(asked[0]!.fromId).toBeLessThanOrEqual(firstMissed);
    expect(asked[0]!.fromId).toBeGreaterThan(firstMissed - 20);
  });

  it(`recovers at most ${BINANCE_MAX_HISTORICAL_PAGES} pages of older trades, the newest ones, and counts the rest as a gap`, async () => {
    h = await tradingOnBtc();
    const trades = () => h!.ticks.filter((t) => t.k === 'trade');
    h.provider.dropAll();
    const extra = 300;
    h.provider.recordTrades('BTCUSDT', 1000 + BINANCE_MAX_HISTORICAL_PAGES * 1000 + extra);
    await h.waitFor('reconnected, a gap counted', () => h!.provider.totalConnections >= 2 && h!.counters.gaps >= 1, 10_000);
    expect(h.provider.historicalTradeRequests()).toHaveLength(BINANCE_MAX_HISTORICAL_PAGES);
    const recovered = (h.adapter as BinanceFeed).recoveredTrades;
    const lost = 1000 + BINANCE_MAX_HISTORICAL_PAGES * 1000 + extra - recovered;
    // the 1000 most recent include the few live trades made since the reconnect: about `extra` are lost
    expect(lost).toBeGreaterThanOrEqual(extra);
    expect(lost).toBeLessThan(extra + 200);
    expect(
      h.logs.some((l) =>
        l.msg.includes(
          `${lost} trades of BTC-USD made while disconnected were not recovered (more than ${BINANCE_MAX_HISTORICAL_PAGES * 1000} older than the 1000 most recent)`,
        ),
      ),
    ).toBe(true);
    // what was published after the gap is one unbroken run up to the live trades
    const ids = trades().map((t) => Number(t.k === 'trade' ? t.id : 0));
    const after = ids.slice(ids.findIndex((id, i) => i > 0 && id !== ids[i - 1]! + 1));
    for (let i = 1; i < after.length; i++) expect(after[i]).toBe(after[i - 1]! + 1);
    expect(after.length).toBeGreaterThanOrEqual(recovered);
  });

  it('asks nothing from REST without a restUrl for a custom url, and counts the missed trades as a gap', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 20, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BTC-USD'] })),
    );
    await h.waitFor('live trades', () => h!.state === 'connected' && h!.ticks.filter((t) => t.k === 'trade').length > 3);
    h.provider.dropAll();
    h.provider.recordTrades('BTCUSDT', 4);
    await h.waitFor('a gap counted', () => h!.counters.gaps >= 1);
    expect(h.provider.tradeRequests()).toBe(0);
    expect(h.logs.some((l) => /4 trades of BTC-USD made while disconnected were not recovered \(no restUrl for the custom url\)/.test(l.msg))).toBe(true);
  });

  it('sends SUBSCRIBE/UNSUBSCRIBE at most 3 a second (Binance closes a connection over 5 messages a second, pings and pongs included)', async () => {
    const extra = ['SOL-USD', 'ADA-USD', 'XRP-USD', 'DOT-USD', 'LTC-USD', 'BNB-USD'];
    h = await startHarness(
      () => startBinanceFake({ replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BTC-USD'] })),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    // symbols added and removed one by one, in one burst
    for (const s of extra) await h.adapter.subscribe([s]);
    await h.adapter.unsubscribe(['SOL-USD']);
    await h.waitFor('all 7 requests', () => h!.provider.requestTimes().length >= 7, 10_000);
    const times = h.provider.requestTimes();
    const busiest = Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1000).length));
    expect(busiest).toBeLessThanOrEqual(3);
    // in order, none lost: every added symbol but SOL-USD streams, SOL-USD was added then removed
    const reqs = h.provider.receivedJson() as { method: string; params: string[] }[];
    expect(reqs.map((r) => `${r.method} ${r.params[0]}`)).toEqual([
      ...extra.map((s) => `SUBSCRIBE ${s.replace('-USD', 'usd').toLowerCase()}@trade`),
      'UNSUBSCRIBE solusd@trade',
    ]);
    const conn = [...h.provider.conns][0]!;
    expect(conn.state.streams.has('dotusd@trade')).toBe(true);
    expect(conn.state.streams.has('solusd@trade')).toBe(false);
    expect(h.provider.totalConnections).toBe(1);
  });

  it('answers server pings and sends its own pings (heartbeats)', async () => {
    h = await startHarness(
      () => startBinanceFake({ pingMs: 50 }),
      (p) => new BinanceFeed('binance', options(p.url, { pingIntervalMs: 50 })),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    await h.waitFor('pongs to server pings', () => h!.provider.pongs() >= 3);
  });

  it('reconnects on its own before the connection age limit (24 h on Binance; short here)', async () => {
    h = await startHarness(
      () => startBinanceFake(),
      (p) => new BinanceFeed('binance', options(p.url, { maxConnectionAgeMs: 300 })),
    );
    await h.waitFor('three connections', () => h!.provider.totalConnections >= 3);
    expect(h.states.some((s) => s.state === 'reconnecting' && /maximum age/.test(s.detail ?? ''))).toBe(true);
  });

  it('detects a silent connection as stale and reconnects', async () => {
    h = await startHarness(
      () => startBinanceFake(),
      (p) => new BinanceFeed('binance', options(p.url, { staleAfterMs: 200, pingIntervalMs: 0 })),
    );
    await h.waitFor('connected with data', () => h!.state === 'connected' && h!.ticks.length > 0);
    h.provider.pause();
    await h.waitFor('stale', () => h!.states.some((s) => s.state === 'stale'));
    await h.waitFor('a new connection', () => h!.provider.totalConnections >= 2);
    h.provider.resume();
  });

  it('keeps retrying with backoff while the provider is down, then connects', async () => {
    const fake = await startBinanceFake();
    const port = fake.port;
    await fake.close();
    h = await startHarness(
      async () => fake,
      () => new BinanceFeed('binance', options(`ws://127.0.0.1:${port}`)),
    );
    await h.waitFor('two failed attempts', () => h!.states.filter((s) => s.state === 'reconnecting').length >= 2);
    expect(h.states.some((s) => s.state === 'connected')).toBe(false);
  });

  it('refuses a bookTicker with a negative quantity, naming the field (quantities are never negative; other quotes go on)', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BTC-USD'] })),
    );
    await h.waitFor('connected', () => h!.state === 'connected' && h!.provider.conns.size === 1);
    const conn = [...h.provider.conns][0]!;
    conn.send({ stream: 'btcusdt@bookTicker', data: { u: 1, s: 'BTCUSDT', b: '100.0', B: '-1.5', a: '100.1', A: '2' } });
    conn.send({ stream: 'btcusdt@bookTicker', data: { u: 2, s: 'BTCUSDT', b: '100.0', B: '1.5', a: '100.1', A: '-2' } });
    conn.send({ stream: 'btcusdt@bookTicker', data: { u: 3, s: 'BTCUSDT', b: '100.0', B: '1.5', a: '100.1', A: '2' } });
    await h.waitFor('a quote and two errors', () => h!.ticks.length >= 1 && h!.counters.errors.length >= 2);
    expect(h.ticks).toHaveLength(1);
    expect(h.ticks[0]).toMatchObject({ k: 'quote', sym: 'BTC-USD', bp: 100, bs: 1.5, ap: 100.1, as: 2 });
    expect(h.counters.errors.join('\n')).toMatch(/size: "-1\.5" is negative/);
    expect(h.counters.errors.join('\n')).toMatch(/size: "-2" is negative/);
  });

  it('counts a malformed frame as an error and keeps going', async () => {
    h = await startHarness(
      () => startBinanceFake(),
      (p) => new BinanceFeed('binance', options(p.url)),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = [...h.provider.conns][0]!;
    conn.send({ stream: 'btcusdt@trade', data: { e: 'trade', s: 'BTCUSDT', t: 1, p: 'not-a-price', q: '1', T: Date.now(), m: false } });
    await h.waitFor('an error counted', () => h!.counters.errors.some((e) => /not a decimal/.test(e)));
    const n = h.ticks.length;
    await h.waitFor('more ticks', () => h!.ticks.length > n);
  });

  it('normalizes the docs payload examples and edge cases (m = buyer is maker, sizes in the base asset)', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BNB-BTC', 'BNB-USD'], symbolMap: { 'BNB-BTC': 'BNBBTC', 'BNB-USD': 'BNBUSDT' } })),
    );
    await h.waitFor('connected', () => h!.state === 'connected' && h!.provider.conns.size === 1);
    const conn = [...h.provider.conns][0]!;
    for (const f of DOC_FRAMES) conn.send(f);
    await h.waitFor('4 ticks', () => h!.ticks.length >= 4);
    const [t1, q1, t2, t3] = h.ticks;
    // "m": true, the buyer was the maker: the aggressor sold
    expect(t1).toEqual({ k: 'trade', sym: 'BNB-BTC', id: '12345', p: 0.001, s: 100, side: 'sell', ts: 1672515782136000000n });
    expect(q1).toMatchObject({ k: 'quote', sym: 'BNB-USD', bp: 25.3519, bs: 31.21, ap: 25.3652, as: 40.66 });
    expect(t2).toEqual({ k: 'trade', sym: 'BNB-BTC', id: '12346', p: 0.00123456, s: 1e-8, side: 'buy', ts: 1672515782137000000n });
    expect(t3).toMatchObject({ id: '12347', p: 0.00123457, s: 92233720.36854775, side: 'sell' });
  });
});

describe('binance bookTicker with an empty side', () => {
  let h: AdapterHarness<BinanceFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('publishes a bookTicker whose b or a is "0.00000000" without that side, and none when both are; no error', async () => {
    h = await startHarness(
      () => startBinanceFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new BinanceFeed('binance', options(p.url, { symbols: ['BTC-USD'] })),
    );
    await h.waitFor('connected', () => h!.state === 'connected' && h!.provider.conns.size === 1);
    const conn = [...h.provider.conns][0]!;
    // Individual Symbol Book Ticker Streams: u, s, b/B best bid price/qty, a/A best ask price/qty
    const bookTicker = (u: number, b: string, B: string, a: string, A: string) =>
      conn.send({ stream: 'btcusdt@bookTicker', data: { u, s: 'BTCUSDT', b, B, a, A } });
    bookTicker(1, '0.00000000', '0.00000000', '25.36520000', '40.66000000');
    bookTicker(2, '25.35190000', '31.21000000', '0.00000000', '0.00000000');
    bookTicker(3, '0.00000000', '0.00000000', '0.00000000', '0.00000000');
    bookTicker(4, '25.35190000', '1.00000000', '25.36520000', '2.00000000'); // a sentinel
    await h.waitFor('the sentinel quote', () => h!.ticks.some((t) => t.k === 'quote' && t.bs === 1));
    expect(h.ticks.map(({ ts: _ts, ...q }) => q)).toEqual([
      { k: 'quote', sym: 'BTC-USD', ap: 25.3652, as: 40.66 },
      { k: 'quote', sym: 'BTC-USD', bp: 25.3519, bs: 31.21 },
      { k: 'quote', sym: 'BTC-USD', bp: 25.3519, bs: 1, ap: 25.3652, as: 2 },
    ]);
    expect(h.counters.errors).toEqual([]);
  });
});
