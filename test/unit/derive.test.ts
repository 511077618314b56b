import { describe, expect, it } from 'vitest';
import { BarBuilder } from '../../src/derive/bar-builder.js';
import { TickerBuilder } from '../../src/derive/ticker-builder.js';
import type { QuoteTick, TradeTick } from '../../src/core/schema.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry, InstrumentRegistry } from '../../src/core/instruments.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import type { Tick } from '../../src/core/schema.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';

const T0 = Date.UTC(2026, 10, 20, 14, 30, 0); // ms, aligned to the minute
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const trade = (ms: number, p: number, s = 1, id = `${ms}`): TradeTick => ({
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
  side: 'buy',
});
const quote = (ms: number, bp: number, ap: number): QuoteTick => ({ k: 'quote', sym: 'AAPL', src: 'x', seq: 0, ep: 0, ts: ns(ms), rt: ns(ms), bp, ap });

describe('BarBuilder', () => {
  it('builds OHLCV per interval and closes a bar when a later one starts', () => {
    const b = new BarBuilder('1s');
    expect(b.onTrade(trade(T0 + 100, 10, 2), T0 + 100)).toEqual([{ iv: '1s', t: T0, o: 10, h: 10, l: 10, c: 10, v: 2, n: 1, closed: false }]);
    b.onTrade(trade(T0 + 300, 12, 1), T0 + 300);
    const open = b.onTrade(trade(T0 + 900, 9, 0.1), T0 + 900);
    expect(open).toEqual([{ iv: '1s', t: T0, o: 10, h: 12, l: 9, c: 9, v: 3.1, n: 3, closed: false }]);
    const next = b.onTrade(trade(T0 + 1200, 11, 5), T0 + 1200);
    expect(next).toEqual([
      { iv: '1s', t: T0, o: 10, h: 12, l: 9, c: 9, v: 3.1, n: 3, closed: true },
      { iv: '1s', t: T0 + 1000, o: 11, h: 11, l: 11, c: 11, v: 5, n: 1, closed: false },
    ]);
  });

  it('closes a quiet bar on the sweep once its interval has passed', () => {
    const b = new BarBuilder('1m');
    b.onTrade(trade(T0 + 5_000, 100), T0 + 5_000);
    expect(b.closeIfDue(T0 + 59_000)).toBeUndefined();
    const closed = b.closeIfDue(T0 + 60_300, 250);
    expect(closed).toMatchObject({ t: T0, closed: true, n: 1, o: 100, c: 100 });
    expect(b.closeIfDue(T0 + 120_000)).toBeUndefined();
  });

  it('follows the source clock, not the wall clock, for replayed data', () => {
    const b = new BarBuilder('1s');
    const wall = T0 + 10_000_000; // replay of old data: wall clock far ahead of event time
    b.onTrade(trade(T0 + 100, 1), wall);
    expect(b.closeIfDue(wall + 500)).toBeUndefined();
    expect(b.closeIfDue(wall + 1200)).toMatchObject({ closed: true, t: T0 });
  });
});

describe('TickerBuilder', () => {
  it('tracks last, bid/ask, day open/high/low, volume and change', () => {
    const tb = new TickerBuilder();
    expect(tb.onQuote(quote(T0, 99, 101))).toBeUndefined(); // no trade yet: no day
    tb.onTrade(trade(T0 + 1, 100, 10));
    tb.onTrade(trade(T0 + 2, 104, 5));
    tb.onTrade(trade(T0 + 3, 98, 1));
    const s = tb.onQuote(quote(T0 + 4, 97.9, 98.1))!;
    expect(s).toEqual({ p: 98, bp: 97.9, ap: 98.1, o: 100, h: 104, l: 98, v: 16, chg: -2, chgp: -2 });
  });

  it('the change is as quoted, not the double of the subtraction (100.3 against 100 is 0.3, not 0.29999999999999716)', () => {
    const tb = new TickerBuilder();
    tb.onTrade(trade(T0 + 1, 100, 10));
    expect(tb.onTrade(trade(T0 + 2, 100.3, 5))).toMatchObject({ chg: 0.3, chgp: 0.3 });
    expect(tb.onTrade(trade(T0 + 3, 99.9, 5))).toMatchObject({ chg: -0.1, chgp: -0.1 });
  });

  it('does not carry the day before into a new day that has had no trade yet', () => {
    const tb = new TickerBuilder();
    const day2 = Date.UTC(2026, 10, 21, 0, 0, 1);
    tb.onTrade(trade(day2 - 5000, 50, 100));
    expect(tb.onQuote(quote(day2 - 4000, 49, 51))).toMatchObject({ o: 50, v: 100 });
    // quotes of the new day before its first trade: yesterday's open, high, low, volume and
    // change are not today's, so no ticker is made of them
    expect(tb.onQuote(quote(day2, 54, 56))).toBeUndefined();
    expect(tb.onStatus('halted', day2 + 500)).toBeUndefined();
    // the day's first trade starts it, with the latest quote
    expect(tb.onTrade(trade(day2 + 1000, 55, 1))).toMatchObject({ p: 55, bp: 54, ap: 56, o: 55, h: 55, l: 55, v: 1, chg: 0, status: 'halted' });
    // a late trade of the day before changes nothing of today's figures
    expect(tb.onTrade(trade(day2 - 3000, 40, 7))).toBeUndefined();
    expect(tb.onTrade(trade(day2 + 2000, 56, 2))).toMatchObject({ p: 56, o: 55, h: 56, l: 55, v: 3, chg: 1 });
  });

  it('starts a new day at UTC midnight', () => {
    const tb = new TickerBuilder();
    const day2 = Date.UTC(2026, 10, 21, 0, 0, 1);
    tb.onTrade(trade(day2 - 5000, 50, 100));
    const s = tb.onTrade(trade(day2, 55, 1));
    expect(s).toMatchObject({ o: 55, h: 55, l: 55, v: 1, chg: 0 });
  });
});

describe('volume sums have no float noise, whatever their size', () => {
  // 3 x 100000.1 is 300000.30000000005 in floats; rounding to 10 decimals by scaling by 1e10
  // left 300000.3000000001 (and 3000000.9000000004, 75000000.30000001) on the wire
  const cases: [number, number, number][] = [
    [100000.1, 3, 300000.3],
    [1000000.3, 3, 3000000.9],
    [25000000.1, 3, 75000000.3],
    [99999.07, 9, 899991.63],
    [0.1, 3, 0.3],
  ];
  it('the ticker day volume', () => {
    for (const [size, n, want] of cases) {
      const tb = new TickerBuilder();
      let last: ReturnType<TickerBuilder['onTrade']>;
      for (let i = 0; i < n; i++) last = tb.onTrade(trade(T0 + i, 10, size));
      expect(last!.v, `${n} x ${size}`).toBe(want);
    }
  });
  it('the bar volume', () => {
    for (const [size, n, want] of cases) {
      const b = new BarBuilder('1m');
      let out: ReturnType<BarBuilder['onTrade']> = [];
      for (let i = 0; i < n; i++) out = b.onTrade(trade(T0 + i, 10, size), T0 + i);
      expect(out.at(-1)!.v, `${n} x ${size}`).toBe(want);
    }
  });
});

describe('TickPublisher', () => {
  it("starts the ticker's day where the instrument's day starts, as bar.1d does (dayStartUtcMinutes)", () => {
    const bus = new MemoryBus();
    const seen: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
    const registry = new InstrumentRegistry([
      { symbol: 'EUR-USD', assetClass: 'forex', currency: 'USD', pricePrecision: 5, providers: ['x'], dayStartUtcMinutes: 1320 },
    ]);
    const pub = new TickPublisher({ bus, registry, barSweepMs: 0, lastValues: new MemoryLastValueStore() });
    const rollover = Date.UTC(2026, 10, 20, 22, 0, 0); // the instrument's day starts at 22:00 UTC
    pub.publish('x', { k: 'trade', sym: 'EUR-USD', id: 'a', p: 1.1, s: 1000, ts: ns(rollover - 60_000) });
    pub.publish('x', { k: 'trade', sym: 'EUR-USD', id: 'b', p: 1.2, s: 10, ts: ns(rollover + 60_000) });
    const ticker = seen.filter((t) => t.k === 'ticker').at(-1)!;
    const day = seen.filter((t): t is Extract<Tick, { k: 'bar' }> => t.k === 'bar' && t.iv === '1d').at(-1)!;
    expect(day).toMatchObject({ t: rollover, o: 1.2 });
    expect(ticker).toMatchObject({ p: 1.2, o: 1.2, h: 1.2, l: 1.2, v: 10, chg: 0 });
    // and UTC midnight is not a day boundary for it
    pub.publish('x', { k: 'trade', sym: 'EUR-USD', id: 'c', p: 1.3, s: 1, ts: ns(Date.UTC(2026, 10, 21, 0, 0, 1)) });
    expect(seen.filter((t) => t.k === 'ticker').at(-1)).toMatchObject({ p: 1.3, o: 1.2, v: 11 });
    pub.close();
  });

  it('stamps seq/ep/rt, publishes each tick and its derived ticker and bars', () => {
    const bus = new MemoryBus();
    const store = new MemoryLastValueStore();
    const seen: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
    const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, lastValues: store });
    expect(pub.publish('synthetic', { k: 'quote', sym: 'AAPL', bp: 1, ap: 2, ts: ns(T0) })).toBe(true);
    expect(pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id: 't1', p: 1.5, s: 3, ts: ns(T0 + 1) })).toBe(true);
    expect(pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id: 't2', p: 1.6, s: 1, ts: ns(T0 + 2) })).toBe(true);
    expect(pub.publish('synthetic', { k: 'trade', sym: 'NOPE', id: 'x', p: 1, s: 1, ts: ns(T0) })).toBe(false);
    expect(pub.stats.rejectedUnknownSymbol).toBe(1);
    const kinds = seen.map((t) => (t.k === 'bar' ? `bar.${t.iv}` : t.k));
    const bars = ['bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d'];
    // the open 5m, 1h and 1d bars go out at most every 250 ms: the second trade's states wait for the sweep
    expect(kinds).toEqual(['quote', 'trade', 'ticker', ...bars, 'trade', 'ticker', 'bar.1s', 'bar.1m']);
    const trades = seen.filter((t) => t.k === 'trade');
    expect(trades.map((t) => t.seq)).toEqual([1, 2]);
    expect(trades.every((t) => t.src === 'synthetic' && typeof t.rt === 'bigint' && t.ep > 0)).toBe(true);
    const lastTicker = seen.filter((t) => t.k === 'ticker').at(-1)!;
    expect(lastTicker).toMatchObject({ p: 1.6, bp: 1, ap: 2, o: 1.5, h: 1.6, v: 4, seq: 2 });
    pub.sweepBars(Date.now() + 61_000);
    const closed = seen.filter((t) => t.k === 'bar' && t.closed);
    expect(closed.map((b) => (b as { iv: string }).iv).sort()).toEqual(['1m', '1s']);
    pub.close();
  });

  it('writes the last value of every channel for snapshots', async () => {
    const bus = new MemoryBus();
    const store = new MemoryLastValueStore();
    const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, lastValues: store });
    pub.publish('synthetic', { k: 'trade', sym: 'BRK.B', id: 'a', p: 450, s: 1, ts: ns(T0) });
    const [trade1, ticker, quote1] = await store.getMany(['trade:BRK.B', 'ticker:BRK.B', 'quote:BRK.B']);
    expect(decodeTick(trade1!)).toMatchObject({ k: 'trade', id: 'a' });
    expect(decodeTick(ticker!)).toMatchObject({ k: 'ticker', p: 450 });
    expect(quote1).toBeUndefined();
    pub.close();
  });
});
