import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BarTick, Tick, TickerTick } from '../../src/core/schema.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import type { TickInput } from '../../feeds/sdk/adapter.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { tickToPayload, itemOpOf } from '../../src/fanout/payloads.js';

/**
 * Issue #12 items 4, 5 and 7 on the engine side: provider bars against the engine's own bars,
 * trade corrections and cancels applied to what was derived from the trade, trading status.
 */
const T0 = Date.UTC(2026, 10, 20, 14, 30, 0);
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const trade = (ms: number, p: number, s: number, id: string): TickInput => ({ k: 'trade', sym: 'AAPL', id, p, s, ts: ns(ms) });

// each rig's publisher holds an (unref'd) book interval: closed after each test
const publishers: TickPublisher[] = [];
afterEach(() => {
  for (const pub of publishers.splice(0)) pub.close();
});

function rig(opts: ConstructorParameters<typeof TickPublisher>[0] extends infer O ? Partial<O> : never = {}) {
  const bus = new MemoryBus();
  const ticks: Tick[] = [];
  bus.subscribe('md.>', (_s, payload) => ticks.push(decodeTick(payload)));
  const lastValues = new MemoryLastValueStore();
  const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, lastValues, ...opts });
  publishers.push(pub);
  const of = <K extends Tick['k']>(k: K) => ticks.filter((t): t is Extract<Tick, { k: K }> => t.k === k);
  const bars = (iv: '1s' | '1m') => of('bar').filter((b) => b.iv === iv);
  const closed = (iv: '1s' | '1m') => bars(iv).filter((b) => b.closed);
  return { bus, ticks, pub, lastValues, of, bars, closed };
}

describe('provider bars and engine bars (item 4)', () => {
  it('a symbol whose feed sends minute bars and trades gets exactly one closed bar.1m per interval, the provider one', () => {
    const r = rig();
    r.pub.declareProviderBars('alpaca', ['1m']);
    let id = 0;
    for (let m = 0; m < 3; m++) {
      for (let i = 0; i < 5; i++) r.pub.publish('alpaca', trade(T0 + m * 60_000 + i * 10_000, 100 + m + i / 10, 10, String(++id)));
      // the provider's bar for the previous minute arrives shortly after it ended
      if (m > 0) {
        const t = T0 + (m - 1) * 60_000;
        r.pub.publish('alpaca', { k: 'bar', sym: 'AAPL', iv: '1m', t, o: 1, h: 2, l: 0.5, c: 1.5, v: 999, n: 7, closed: true, ts: ns(t + 60_000) });
      }
    }
    const closed = r.closed('1m');
    expect(closed.map((b) => b.t)).toEqual([T0, T0 + 60_000]);
    expect(closed.every((b) => b.v === 999 && !b.corrected)).toBe(true);
    // open bars keep coming from trades, so a chart moves within the minute
    expect(r.bars('1m').filter((b) => !b.closed).length).toBe(15);
    // 1s bars are not provided by this feed: still built by the engine
    expect(r.closed('1s').length).toBeGreaterThan(0);
  });

  it('a bar closed by the provider before the engine saw the next minute is not closed again by the sweep or a late trade', () => {
    const r = rig();
    r.pub.declareProviderBars('alpaca', ['1m']);
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 1, 'a'));
    r.pub.publish('alpaca', { k: 'bar', sym: 'AAPL', iv: '1m', t: T0, o: 100, h: 100, l: 100, c: 100, v: 1, n: 1, closed: true, ts: ns(T0 + 60_000) });
    r.pub.publish('alpaca', trade(T0 + 2_000, 101, 1, 'late'));
    r.pub.sweepBars(Date.now() + 10 * 60_000);
    expect(r.closed('1m').map((b) => b.t)).toEqual([T0]);
  });

  it('when the provider bar does not come, the engine bar closes the interval after the wait; a later provider bar is flagged corrected', () => {
    const r = rig({ providerBarWaitMs: { '1m': 5_000 } });
    r.pub.declareProviderBars('alpaca', ['1m']);
    const wall = Date.now();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 1, 'a'));
    r.pub.publish('alpaca', trade(T0 + 61_000, 101, 1, 'b')); // the engine's minute T0 ends: held
    expect(r.closed('1m')).toEqual([]);
    r.pub.sweepBars(wall + 1_000); // source clock T0+62 s: still waiting for the provider
    expect(r.closed('1m')).toEqual([]);
    r.pub.sweepBars(wall + 5_000); // T0+66 s > end + 5 s
    expect(r.closed('1m').map((b) => [b.t, b.v, b.corrected ?? false])).toEqual([[T0, 1, false]]);
    r.pub.publish('alpaca', { k: 'bar', sym: 'AAPL', iv: '1m', t: T0, o: 100, h: 100, l: 100, c: 100, v: 3, n: 2, closed: true, ts: ns(T0 + 60_000) });
    expect(r.closed('1m').map((b) => [b.t, b.v, b.corrected ?? false])).toEqual([
      [T0, 1, false],
      [T0, 3, true],
    ]);
    expect(tickToPayload(r.closed('1m')[1]!)).toMatchObject({ closed: true, corrected: true });
  });

  it('a provider bar sent again for the same minute (Alpaca updatedBars) is flagged corrected', () => {
    const r = rig();
    r.pub.declareProviderBars('alpaca', ['1m']);
    const bar = (v: number): TickInput => ({ k: 'bar', sym: 'AAPL', iv: '1m', t: T0, o: 1, h: 2, l: 0.5, c: 1.5, v, n: 7, closed: true, ts: ns(T0 + 60_000) });
    r.pub.publish('alpaca', bar(100));
    r.pub.publish('alpaca', bar(110));
    expect(r.closed('1m').map((b) => [b.v, b.corrected ?? false])).toEqual([
      [100, false],
      [110, true],
    ]);
  });

  it('an open bar state from a source (a replayed bar recording) passes through as open', () => {
    const r = rig();
    r.pub.publish('replay', { k: 'bar', sym: 'AAPL', iv: '1m', t: T0, o: 1, h: 2, l: 0.5, c: 1.5, v: 5, n: 2, closed: false, ts: ns(T0 + 30_000) });
    expect(r.bars('1m').map((b) => b.closed)).toEqual([false]);
  });

  it('a late trade after the sweep closed a bar does not open a second bar for that interval', () => {
    const r = rig();
    r.pub.publish('polygon', trade(T0 + 1_000, 100, 1, 'a'));
    r.pub.sweepBars(Date.now() + 2_000);
    r.pub.publish('polygon', trade(T0 + 1_500, 100, 1, 'late'));
    r.pub.sweepBars(Date.now() + 4_000);
    const t0 = r.closed('1s').filter((b) => b.t === T0 + 1_000);
    // one closed bar for the interval; the late trade comes as that bar sent again, flagged corrected (test/unit/late-trades.test.ts)
    expect(t0.filter((b) => !b.corrected).length).toBe(1);
    expect(t0.filter((b) => b.corrected).map((b) => [b.v, b.n])).toEqual([[2, 2]]);
  });
});

describe('trade corrections and cancels (item 5)', () => {
  function trading() {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 10, 1, 'D-1'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 15, 2, 'D-2'));
    r.pub.publish('alpaca', trade(T0 + 3_000, 12, 1, 'D-3'));
    return r;
  }
  const lastTicker = (r: ReturnType<typeof rig>): TickerTick => r.of('ticker').at(-1)!;
  const lastBar = (r: ReturnType<typeof rig>, iv: '1s' | '1m'): BarTick => r.bars(iv).at(-1)!;

  it('a cancel is published on the trade channel as its own item kind and recomputes the open bar and the day high/volume', async () => {
    const r = trading();
    expect(lastTicker(r)).toMatchObject({ h: 15, l: 10, v: 4, p: 12 });
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'D-2', ts: ns(T0 + 5_000) });
    const cancel = r.of('cancel').at(-1)!;
    expect(cancel).toMatchObject({ ref: 'D-2', applied: true, src: 'alpaca' });
    expect(itemOpOf(cancel)).toBe('cancel');
    expect(tickToPayload(cancel)).toMatchObject({ ref: 'D-2', applied: true, src: 'alpaca', t: T0 + 5_000 });
    // the trade subject carries it, in order, with the next trade sequence number
    const onTrade = r.ticks.filter((t) => t.k === 'trade' || t.k === 'cancel');
    expect(onTrade.map((t) => t.seq)).toEqual([1, 2, 3, 4]);
    expect(lastTicker(r)).toMatchObject({ h: 12, l: 10, v: 2, p: 12 });
    expect(lastBar(r, '1m')).toMatchObject({ t: T0, o: 10, h: 12, l: 10, c: 12, v: 2, n: 2, closed: false });
    // snapshots of trade:AAPL stay the last trade, never the cancel
    const [lv] = await r.lastValues.getMany(['trade:AAPL']);
    expect(decodeTick(lv!)).toMatchObject({ k: 'trade', id: 'D-3' });
  });

  it('a correction replaces price and size: last price, volume, bar close', () => {
    const r = trading();
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'D-3', id: 'D-9', p: 11, s: 5, ts: ns(T0 + 6_000) });
    expect(r.of('correction').at(-1)).toMatchObject({ ref: 'D-3', id: 'D-9', p: 11, s: 5, applied: true });
    expect(lastTicker(r)).toMatchObject({ p: 11, v: 8, h: 15, l: 10 });
    expect(lastBar(r, '1m')).toMatchObject({ o: 10, h: 15, l: 10, c: 11, v: 8, n: 3, closed: false });
    // the corrected trade can itself be cancelled by its new id
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'D-9', ts: ns(T0 + 7_000) });
    expect(lastTicker(r)).toMatchObject({ p: 15, v: 3 });
  });

  it('a cancel of a trade in an already closed bar publishes that bar again, flagged as a correction', () => {
    const r = trading();
    r.pub.publish('alpaca', trade(T0 + 61_000, 13, 1, 'D-4')); // closes minute T0
    const closedBefore = r.closed('1m');
    expect(closedBefore).toHaveLength(1);
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'D-2', ts: ns(T0 + 62_000) });
    const closed = r.closed('1m');
    expect(closed).toHaveLength(2);
    expect(closed[1]).toMatchObject({ t: T0, h: 12, v: 2, n: 2, closed: true, corrected: true });
    expect(tickToPayload(closed[1]!)).toMatchObject({ t: T0, corrected: true, closed: true });
    // the 1s bar of that trade was closed too: corrected, now empty
    expect(r.closed('1s').filter((b) => b.corrected)).toEqual([expect.objectContaining({ t: T0 + 2_000, n: 0, v: 0 })]);
  });

  it('a correction for a trade older than the retained window is published but flagged, and changes nothing derived', () => {
    const r = rig({ tradeLog: { retainMs: 60_000, maxTrades: 100 } });
    r.pub.publish('alpaca', trade(T0, 10, 1, 'old'));
    r.pub.publish('alpaca', trade(T0 + 120_000, 11, 1, 'new'));
    const before = lastTicker(r);
    const n = r.ticks.length;
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'old', ts: ns(T0 + 121_000) });
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'never-seen', ts: ns(T0 + 121_000) });
    expect(r.ticks.slice(n).map((t) => [t.k, (t as { applied?: boolean }).applied])).toEqual([
      ['cancel', false],
      ['cancel', false],
    ]);
    expect(lastTicker(r)).toEqual(before);
  });

  // docs/protocol.md "Trade corrections and cancels": applied, the cancel recomputes the ticker's
  // last price and the close of a longer bar. When the trade before it had already left the trade
  // log (an illiquid symbol: minutes between trades), nothing was left to take the last price from,
  // so the cancelled trade's price stayed the last price and the close of bar.5m/1h/1d.
  it('a cancel of the newest trade falls back to the trade before it, also when that one has left the log', () => {
    const r = rig({ tradeLog: { retainMs: 60_000, maxTrades: 100 } });
    r.pub.publish('alpaca', trade(T0, 10, 1, 'old'));
    r.pub.publish('alpaca', trade(T0 + 120_000, 11, 1, 'new')); // 'old' leaves the 60 s log
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'new', ts: ns(T0 + 121_000) });
    expect(r.of('cancel').at(-1)).toMatchObject({ ref: 'new', applied: true });
    expect(lastTicker(r)).toMatchObject({ p: 10, h: 10, l: 10, v: 1 });
    for (const iv of ['5m', '1h', '1d'] as const) {
      expect(
        r
          .of('bar')
          .filter((b) => b.iv === iv)
          .at(-1),
      ).toMatchObject({ c: 10, v: 1, n: 1 });
    }
    // a correction of the newest trade to volume only falls back the same way
    const q = rig({ tradeLog: { retainMs: 60_000, maxTrades: 100 } });
    q.pub.publish('alpaca', trade(T0, 10, 1, 'old'));
    q.pub.publish('alpaca', trade(T0 + 120_000, 11, 1, 'new'));
    q.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'new', id: 'new2', p: 11, s: 1, volumeOnly: true, ts: ns(T0 + 121_000) });
    expect(lastTicker(q)).toMatchObject({ p: 10 });
  });

  // docs/protocol.md#trade: an `excluded` print counts in nothing. A correction that makes a trade
  // one (Alpaca: corrected conditions M, Q or 9) takes it out of the volume, the trade count, the
  // high/low and the last price, as a cancel does; the correction item itself is still published.
  it('a correction to a print that counts in nothing takes the trade out of everything derived', () => {
    const r = trading();
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'D-3', id: 'D-9', p: 12, s: 1, volumeOnly: true, excluded: true, ts: ns(T0 + 6_000) });
    expect(r.of('correction').at(-1)).toMatchObject({ ref: 'D-3', id: 'D-9', volumeOnly: true, excluded: true, applied: true });
    expect(tickToPayload(r.of('correction').at(-1)!)).toMatchObject({ ref: 'D-3', id: 'D-9', volumeOnly: true, excluded: true, applied: true });
    expect(lastTicker(r)).toMatchObject({ p: 15, v: 3, h: 15, l: 10 });
    expect(lastBar(r, '1m')).toMatchObject({ t: T0, o: 10, h: 15, l: 10, c: 15, v: 3, n: 2, closed: false });
  });

  it('the trade log is bounded by count as well as by time', () => {
    const r = rig({ tradeLog: { retainMs: 3_600_000, maxTrades: 3 } });
    for (let i = 0; i < 5; i++) r.pub.publish('alpaca', trade(T0 + i, 10 + i, 1, `t${i}`));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 't0', ts: ns(T0 + 10) });
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 't4', ts: ns(T0 + 10) });
    expect(r.of('cancel').map((c) => c.applied)).toEqual([false, true]);
  });
});

describe('trading status (item 7)', () => {
  it('status reports are merged per symbol, published on status:SYM and shown on the ticker', async () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0, 10, 1, 'a'));
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', status: 'halted', code: 'H', reason: 'Trading Halt', ts: ns(T0 + 1_000) });
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', luld: { up: 11, down: 9 }, ts: ns(T0 + 2_000) });
    const st = r.of('status');
    expect(st.map((s) => tickToPayload(s))).toEqual([
      { status: 'halted', code: 'H', reason: 'Trading Halt', t: T0 + 1_000, src: 'alpaca' },
      { status: 'halted', code: 'H', reason: 'Trading Halt', luld: { up: 11, down: 9 }, t: T0 + 2_000, src: 'alpaca' },
    ]);
    expect(tickToPayload(r.of('ticker').at(-1)!)).toMatchObject({ status: 'halted' });
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', status: 'trading', code: 'T', reason: 'Trading Resumption', ts: ns(T0 + 3_000) });
    expect(tickToPayload(r.of('ticker').at(-1)!)).toMatchObject({ status: 'trading' });
    const [lv] = await r.lastValues.getMany(['status:AAPL']);
    expect(tickToPayload(decodeTick(lv!))).toMatchObject({ status: 'trading', code: 'T', luld: { up: 11, down: 9 } });
  });

  it('a stale mark (a feed resubscribed to a provider with no status snapshot) keeps the status, flagged, until the next report', async () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0, 10, 1, 'a'));
    // nothing reported yet: the symbol is trading by the protocol's rule, there is nothing to mark
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', stale: true, ts: ns(T0 + 500) });
    expect(r.of('status')).toEqual([]);
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', status: 'halted', code: 'H', reason: 'Trading Halt', ts: ns(T0 + 1_000) });
    const tickers = r.of('ticker').length;
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', stale: true, ts: ns(T0 + 2_000) });
    expect(tickToPayload(r.of('status').at(-1)!)).toEqual({ status: 'halted', code: 'H', reason: 'Trading Halt', stale: true, t: T0 + 2_000, src: 'alpaca' });
    const [lv] = await r.lastValues.getMany(['status:AAPL']);
    expect(tickToPayload(decodeTick(lv!))).toMatchObject({ status: 'halted', stale: true });
    // the status did not change: the ticker is not sent again; a second mark publishes nothing
    expect(r.of('ticker').length).toBe(tickers);
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', stale: true, ts: ns(T0 + 2_500) });
    expect(r.of('status').length).toBe(2);
    // a band alone says nothing of the halt: still stale
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', luld: { up: 11, down: 9 }, ts: ns(T0 + 3_000) });
    expect(tickToPayload(r.of('status').at(-1)!)).toMatchObject({ status: 'halted', stale: true, luld: { up: 11, down: 9 } });
    // the provider's next status report is current again
    r.pub.publish('alpaca', { k: 'status', sym: 'AAPL', status: 'trading', code: 'T', ts: ns(T0 + 4_000) });
    expect(tickToPayload(r.of('status').at(-1)!)).toEqual({ status: 'trading', code: 'T', luld: { up: 11, down: 9 }, t: T0 + 4_000, src: 'alpaca' });
    expect(tickToPayload(r.of('ticker').at(-1)!)).toMatchObject({ status: 'trading' });
  });

  it('a quote with an empty side is published without that side; the ticker drops that side too', () => {
    const r = rig();
    r.pub.publish('oanda', { k: 'quote', sym: 'EUR-USD', bp: 1.1, bs: 5, ap: 1.2, as: 5, ts: ns(T0) });
    r.pub.publish('oanda', { k: 'quote', sym: 'EUR-USD', ap: 1.3, as: 2, ts: ns(T0 + 1) });
    expect(tickToPayload(r.of('quote').at(-1)!)).toEqual({ ap: 1.3, as: 2, t: T0 + 1, src: 'oanda', ep: expect.any(Number) });
    // a whole book empty (a synced Coinbase level2 book): neither side, and the ticker shows none
    r.pub.publish('coinbase', trade(T0 + 2, 100, 1, 'c1'));
    r.pub.publish('coinbase', { k: 'quote', sym: 'AAPL', bp: 99, ap: 101, ts: ns(T0 + 3) });
    expect(r.of('ticker').at(-1)).toMatchObject({ bp: 99, ap: 101 });
    r.pub.publish('coinbase', { k: 'quote', sym: 'AAPL', ts: ns(T0 + 4) });
    expect(tickToPayload(r.of('quote').at(-1)!)).toEqual({ t: T0 + 4, src: 'coinbase', ep: expect.any(Number) });
    expect(r.of('ticker').at(-1)).not.toHaveProperty('bp');
    expect(r.of('ticker').at(-1)).not.toHaveProperty('ap');
  });
});
