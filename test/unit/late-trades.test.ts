import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BarTick, Tick, TradeTick } from '../../src/core/schema.js';
import { BarBuilder } from '../../src/derive/bar-builder.js';
import { MemoryBarStore } from '../../src/history/bar-store.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';

/**
 * Late and out-of-order trades: a trade belongs to the bar of its own event time. One that
 * arrives after its bar closed corrects that bar (sent again, `corrected`); it never lands in
 * the open bar of a later interval, and it is never dropped while its bar is known.
 */
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const T0 = Date.UTC(2026, 10, 30, 15, 0, 0);
const trade = (ms: number, p: number, s = 1, id = `${ms}-${p}`): TradeTick => ({
  k: 'trade',
  sym: 'AAPL',
  src: 'x',
  seq: 0,
  ep: 0,
  ts: ns(ms),
  rt: ns(ms),
  id,
  p,
  s,
});

describe('BarBuilder: late and out-of-order trades', () => {
  it('a late trade of a closed interval corrects that bar and leaves the open bar alone', () => {
    const b = new BarBuilder('1s');
    b.onTrade(trade(T0 + 100, 10));
    b.onTrade(trade(T0 + 900, 11));
    b.onTrade(trade(T0 + 1100, 20)); // closes T0, opens T0+1s
    const out = b.onTrade(trade(T0 + 500, 5, 3)); // late: belongs to T0
    expect(out).toEqual([{ iv: '1s', t: T0, o: 10, h: 11, l: 5, c: 11, v: 5, n: 3, closed: true, corrected: true }]);
    // the open bar is unchanged
    expect(b.onTrade(trade(T0 + 1200, 21))).toEqual([{ iv: '1s', t: T0 + 1000, o: 20, h: 21, l: 20, c: 21, v: 2, n: 2, closed: false }]);
  });

  it('a late trade after the close with no bar open is counted in its bar, not dropped', () => {
    const b = new BarBuilder('1s');
    b.onTrade(trade(T0 + 100, 10));
    expect(b.closeIfDue(Date.now() + 2000)).toMatchObject({ t: T0, closed: true, v: 1 });
    expect(b.onTrade(trade(T0 + 700, 12, 2))).toEqual([{ iv: '1s', t: T0, o: 10, h: 12, l: 10, c: 12, v: 3, n: 2, closed: true, corrected: true }]);
  });

  it('a late trade of an interval that had no bar is that interval’s closed bar, once', () => {
    const b = new BarBuilder('1s');
    b.onTrade(trade(T0 + 100, 10));
    b.onTrade(trade(T0 + 2100, 12)); // T0 closes; T0+1s had no trade; T0+2s open
    expect(b.onTrade(trade(T0 + 1500, 11))).toEqual([{ iv: '1s', t: T0 + 1000, o: 11, h: 11, l: 11, c: 11, v: 1, n: 1, closed: true }]);
    expect(b.onTrade(trade(T0 + 1600, 13))).toEqual([{ iv: '1s', t: T0 + 1000, o: 11, h: 13, l: 11, c: 13, v: 2, n: 2, closed: true, corrected: true }]);
  });

  it('open and close follow event time within a bar, whatever the arrival order', () => {
    const b = new BarBuilder('1m');
    b.onTrade(trade(T0 + 30_000, 10));
    b.onTrade(trade(T0 + 10_000, 9)); // earlier: the new open, not the close
    const [bar] = b.onTrade(trade(T0 + 20_000, 11)); // between: neither open nor close
    expect(bar).toMatchObject({ o: 9, c: 10, h: 11, l: 9, n: 3 });
  });

  it('a trade older than anything the builder knows (e.g. from before a restart) does not replace a stored bar', () => {
    const b = new BarBuilder('1s');
    b.onTrade(trade(T0 + 5100, 10));
    expect(b.onTrade(trade(T0 + 100, 9))).toEqual([]);
  });
});

describe('TickPublisher: late trades keep bars, ticker and history in agreement', () => {
  it('bar.1m volumes add up to the bar.1d and ticker volume, and the store holds the corrected bar', async () => {
    const bus = new MemoryBus();
    const seen: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
    const store = new MemoryBarStore({ windowBars: 100 });
    const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, bars: store });
    const tr = (ms: number, p: number, s: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id: `${ms}`, p, s, ts: ns(ms) });
    tr(T0 + 1_000, 100, 1);
    tr(T0 + 61_000, 101, 2); // minute 1 opens, minute 0 closes
    tr(T0 + 30_000, 99, 4); // late: minute 0
    tr(T0 + 121_000, 102, 8); // minute 2 opens, minute 1 closes
    const ticker = seen.filter((t): t is Extract<Tick, { k: 'ticker' }> => t.k === 'ticker').at(-1)!;
    const day = seen.filter((t): t is BarTick => t.k === 'bar' && t.iv === '1d').at(-1)!;
    const minutes = await store.range('bar.1m:AAPL', { limit: 10 });
    expect(minutes.map((m) => [m.t, m.v, m.l])).toEqual([
      [T0, 5, 99],
      [T0 + 60_000, 2, 101],
    ]);
    expect(minutes[0]!.corrected).toBe(true);
    const open = seen.filter((t): t is BarTick => t.k === 'bar' && t.iv === '1m').at(-1)!;
    expect(open).toMatchObject({ t: T0 + 120_000, v: 8, closed: false });
    expect(ticker.v).toBe(15);
    pub.sweepBars(Date.now());
    expect(seen.filter((t): t is BarTick => t.k === 'bar' && t.iv === '1d').at(-1)!.v).toBe(15);
    expect(day.t).toBeLessThanOrEqual(T0);
    pub.close();
  });
});

describe('corrections and cancels of a long bar the trade log no longer holds whole', () => {
  function rig() {
    const bus = new MemoryBus();
    const seen: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
    const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, tradeLog: { retainMs: 60_000 } });
    const tr = (id: string, ms: number, p: number, s: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id, p, s, ts: ns(ms) });
    const last = <K extends Tick['k']>(k: K, iv?: string): Extract<Tick, { k: K }> =>
      seen.filter((t) => t.k === k && (iv === undefined || (t as BarTick).iv === iv)).at(-1) as Extract<Tick, { k: K }>;
    return { pub, tr, last };
  }

  it('bar.1d and bar.1h follow the ticker: volume, count, high and low', () => {
    const r = rig();
    r.tr('a', T0 + 1_000, 100, 10); // pruned from the log (kept: 1 minute)
    r.tr('b', T0 + 600_000, 130, 5); // the day's high
    r.tr('c', T0 + 610_000, 110, 1);
    r.pub.publish('synthetic', { k: 'cancel', sym: 'AAPL', ref: 'b', ts: ns(T0 + 620_000) });
    r.pub.sweepBars(Date.now());
    const ticker = r.last('ticker');
    expect(ticker).toMatchObject({ v: 11, h: 110, l: 100, p: 110 });
    for (const iv of ['1h', '1d']) expect(r.last('bar', iv)).toMatchObject({ v: 11, n: 2, h: 110, l: 100, o: 100, c: 110, closed: false });
    r.pub.publish('synthetic', { k: 'correction', sym: 'AAPL', ref: 'c', id: 'c2', p: 90, s: 3, ts: ns(T0 + 630_000) });
    r.pub.sweepBars(Date.now());
    expect(r.last('ticker')).toMatchObject({ v: 13, h: 100, l: 90, p: 90 });
    for (const iv of ['1h', '1d']) expect(r.last('bar', iv)).toMatchObject({ v: 13, n: 2, h: 100, l: 90, o: 100, c: 90 });
    r.pub.close();
  });
});

describe('the ticker follows event time as the bars do (docs/protocol.md#ticker)', () => {
  it('a late trade sets neither the last price nor, unless earliest, the open: p and o equal bar.1d c and o', () => {
    const bus = new MemoryBus();
    const seen: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
    const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    const tr = (id: string, ms: number, p: number, s: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id, p, s, ts: ns(ms) });
    const last = <K extends Tick['k']>(k: K, iv?: string): Extract<Tick, { k: K }> =>
      seen.filter((t) => t.k === k && (iv === undefined || (t as BarTick).iv === iv)).at(-1) as Extract<Tick, { k: K }>;
    tr('a', T0 + 1_000, 100, 1);
    tr('b', T0 + 61_000, 101, 2);
    tr('c', T0 + 30_000, 99, 4); // reported late: older than the last price
    expect(last('ticker')).toMatchObject({ p: 101, o: 100, h: 101, l: 99, v: 7 });
    pub.sweepBars(Date.now());
    expect(last('bar', '1d')).toMatchObject({ c: 101, o: 100 });
    tr('d', T0 + 500, 98, 1); // late, and the day's earliest trade
    expect(last('ticker')).toMatchObject({ p: 101, o: 98, l: 98, v: 8, chg: 3 });
    pub.sweepBars(Date.now());
    expect(last('bar', '1d')).toMatchObject({ c: 101, o: 98 });
    // the last price is cancelled: the newest remaining trade in event time, not the last to arrive
    pub.publish('synthetic', { k: 'cancel', sym: 'AAPL', ref: 'b', ts: ns(T0 + 62_000) });
    expect(last('ticker')).toMatchObject({ p: 99, v: 6 });
    pub.sweepBars(Date.now());
    expect(last('bar', '1d')).toMatchObject({ c: 99 });
    // same millisecond as the last price: ties go in arrival order, as in a bar
    tr('e', T0 + 30_000, 97, 1);
    expect(last('ticker')).toMatchObject({ p: 97 });
    pub.sweepBars(Date.now());
    expect(last('bar', '1d')).toMatchObject({ c: 97 });
    pub.close();
  });
});
