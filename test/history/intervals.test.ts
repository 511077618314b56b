import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { InstrumentRegistry, defaultRegistry } from '../../src/core/instruments.js';
import type { TradeTick } from '../../src/core/schema.js';
import { BAR_INTERVAL_MS, MARKET_CHANNEL_KINDS, barIntervalOf } from '../../src/core/schema.js';
import { BarBuilder } from '../../src/derive/bar-builder.js';
import { tickToPayload } from '../../src/fanout/payloads.js';
import { MemoryBarStore } from '../../src/history/bar-store.js';
import type { StoredBar } from '../../src/history/bar-store.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';

/** bar.5m, bar.1h and bar.1d: alignment on UTC, the instrument's day start, and the bar store feed. */
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const trade = (ms: number, p: number, id = `${ms}`): TradeTick => ({ k: 'trade', sym: 'AAPL', src: 'x', seq: 0, ep: 0, ts: ns(ms), rt: ns(ms), id, p, s: 1 });
const at = (iso: string): number => Date.parse(iso);

describe('bar intervals', () => {
  it('are channel kinds with their interval in ms', () => {
    expect(MARKET_CHANNEL_KINDS).toEqual(expect.arrayContaining(['bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d']));
    expect(BAR_INTERVAL_MS).toMatchObject({ '5m': 300_000, '1h': 3_600_000, '1d': 86_400_000 });
    expect(barIntervalOf('bar.1h')).toBe('1h');
    expect(barIntervalOf('bar.2m')).toBeUndefined();
    expect(barIntervalOf('quote')).toBeUndefined();
  });

  it('align 5m and 1h bars on the UTC clock and close them when a later one starts', () => {
    const five = new BarBuilder('5m');
    expect(five.onTrade(trade(at('2026-03-10T14:03:27.500Z'), 10))[0]).toMatchObject({ t: at('2026-03-10T14:00:00Z'), iv: '5m', closed: false });
    const next = five.onTrade(trade(at('2026-03-10T14:05:00.000Z'), 11));
    expect(next.map((b) => [b.t, b.closed])).toEqual([
      [at('2026-03-10T14:00:00Z'), true],
      [at('2026-03-10T14:05:00Z'), false],
    ]);
    const hour = new BarBuilder('1h');
    expect(hour.onTrade(trade(at('2026-03-10T14:59:59.999Z'), 10))[0]!.t).toBe(at('2026-03-10T14:00:00Z'));
  });

  it('start day bars at UTC midnight, or at the instrument day start', () => {
    const utc = new BarBuilder('1d');
    expect(utc.onTrade(trade(at('2026-03-10T23:30:00Z'), 10))[0]!.t).toBe(at('2026-03-10T00:00:00Z'));
    // a trading day from 22:00 UTC (dayStartUtcMinutes 1320)
    const fx = new BarBuilder('1d', undefined, 1320 * 60_000);
    expect(fx.onTrade(trade(at('2026-03-10T21:59:00Z'), 10))[0]!.t).toBe(at('2026-03-09T22:00:00Z'));
    const rolled = fx.onTrade(trade(at('2026-03-10T22:00:00Z'), 11));
    expect(rolled.map((b) => [b.t, b.closed])).toEqual([
      [at('2026-03-09T22:00:00Z'), true],
      [at('2026-03-10T22:00:00Z'), false],
    ]);
  });

  it('the publisher builds day bars on the instrument day start and stores every closed bar as its wire payload', () => {
    const base = defaultRegistry().get('EUR-USD')!;
    const registry = new InstrumentRegistry([{ ...base, dayStartUtcMinutes: 1320 }]);
    const store = new MemoryBarStore({ windowBars: 100 });
    const wire: Record<string, unknown>[] = [];
    const pub = new TickPublisher({
      bus: new MemoryBus(),
      registry,
      barSweepMs: 0,
      bars: store,
      onPublished: (t) => {
        if (t.k === 'bar' && t.closed) wire.push(tickToPayload(t));
      },
    });
    const fxTrade = (iso: string, p: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'EUR-USD', id: iso, p, s: 1000, ts: ns(at(iso)) });
    fxTrade('2026-03-10T21:00:00Z', 1.1);
    fxTrade('2026-03-10T21:59:59Z', 1.2);
    fxTrade('2026-03-10T22:00:01Z', 1.3); // a new trading day, hour, 5 minutes, minute and second
    pub.close();
    return Promise.all(['1s', '1m', '5m', '1h', '1d'].map((iv) => store.range(`bar.${iv}:EUR-USD`, { limit: 10 }))).then((stored) => {
      const [s1, m1, m5, h1, d1] = stored as StoredBar[][];
      expect(d1!.map((b) => b.t)).toEqual([at('2026-03-09T22:00:00Z')]);
      expect(d1![0]).toMatchObject({ o: 1.1, h: 1.2, l: 1.1, c: 1.2, v: 2000, n: 2, closed: true, iv: 86_400_000 });
      expect(h1!.map((b) => b.t)).toEqual([at('2026-03-10T21:00:00Z')]);
      expect(m5!.map((b) => b.t)).toEqual([at('2026-03-10T21:00:00Z'), at('2026-03-10T21:55:00Z')]);
      expect(m1).toHaveLength(2);
      expect(s1).toHaveLength(2);
      // the stored bar is exactly the payload clients get on the wire
      expect([...stored.flat()].sort((a, b) => a.t - b.t || a.iv - b.iv)).toEqual([...wire].sort((a: any, b: any) => a.t - b.t || a.iv - b.iv));
    });
  });
});

describe('open 5m, 1h and 1d bars', () => {
  it('go out at most every 250 ms per symbol, the newest state on the sweep, closes at once', () => {
    const seen: { iv: string; t: number; c: number; closed: boolean }[] = [];
    const pub = new TickPublisher({
      bus: new MemoryBus(),
      registry: defaultRegistry(),
      barSweepMs: 0,
      onPublished: (t) => {
        if (t.k === 'bar' && t.iv === '5m') seen.push({ iv: t.iv, t: t.t, c: t.c, closed: t.closed });
      },
    });
    const t0 = at('2026-03-10T14:00:00Z');
    const tr = (ms: number, p: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id: `${ms}`, p, s: 1, ts: ns(ms) });
    tr(t0 + 1000, 10); // first state of the bar: at once
    tr(t0 + 2000, 11); // within 250 ms of wall time: held
    tr(t0 + 3000, 12); // held, replaces the previous
    expect(seen).toEqual([{ iv: '5m', t: t0, c: 10, closed: false }]);
    pub.sweepBars(Date.now());
    expect(seen.at(-1)).toEqual({ iv: '5m', t: t0, c: 12, closed: false });
    tr(t0 + 4000, 13); // held again
    tr(t0 + 300_000, 14); // the next bar: the close (with the held state) and the new bar's first state at once
    expect(seen.slice(-2)).toEqual([
      { iv: '5m', t: t0, c: 13, closed: true },
      { iv: '5m', t: t0 + 300_000, c: 14, closed: false },
    ]);
    pub.sweepBars(Date.now());
    expect(seen.at(-1)).toEqual({ iv: '5m', t: t0 + 300_000, c: 14, closed: false }); // nothing stale re-sent
    expect(seen).toHaveLength(4);
    pub.close();
  });
});
