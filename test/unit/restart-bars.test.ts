import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BarTick, Tick, TickerTick } from '../../src/core/schema.js';
import { MemoryBarStore } from '../../src/history/bar-store.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';

/**
 * The first bars and ticker after a feed process restarts: with a last-value store that outlives
 * the process (Redis in scale-out; here one memory store shared by the two publishers), the day's
 * open, high, low and volume and the open bars go on from where the old process left them.
 */
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const T0 = Date.UTC(2026, 10, 30, 15, 0, 0); // 10:00 New York, AAPL's day started at 05:00 UTC

function process(lastValues: MemoryLastValueStore, bars = new MemoryBarStore({ windowBars: 100 })) {
  const bus = new MemoryBus();
  const seen: Tick[] = [];
  bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
  const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, lastValues, bars });
  const trade = (id: string, ms: number, p: number, s: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id, p, s, ts: ns(ms) });
  const ticker = (): TickerTick => seen.filter((t): t is TickerTick => t.k === 'ticker').at(-1)!;
  const bar = (iv: string): BarTick => seen.filter((t): t is BarTick => t.k === 'bar' && t.iv === iv).at(-1)!;
  return { pub, seen, trade, ticker, bar, bars };
}

describe('after a restart of the feed process', () => {
  it("the ticker's day and the open bars go on from the last values", async () => {
    const lastValues = new MemoryLastValueStore();
    const a = process(lastValues);
    a.trade('1', T0 + 1_000, 100, 10);
    a.trade('2', T0 + 2_000, 120, 5);
    a.trade('3', T0 + 3_000, 90, 5);
    a.trade('4', T0 + 61_000, 110, 1); // minute 1 opens
    a.pub.close(); // the process ends (the open 5m/1h/1d states the throttle held go out)

    const b = process(lastValues, a.bars);
    expect(await b.pub.restore()).toBeGreaterThan(0);
    b.trade('5', T0 + 62_000, 111, 2);
    expect(b.ticker()).toMatchObject({ o: 100, h: 120, l: 90, p: 111, v: 23 });
    expect(b.bar('1m')).toMatchObject({ t: T0 + 60_000, o: 110, c: 111, v: 3, n: 2, closed: false });
    b.pub.sweepBars(Date.now());
    expect(b.bar('1d')).toMatchObject({ o: 100, h: 120, l: 90, c: 111, v: 23, n: 5, closed: false });
    b.trade('6', T0 + 121_000, 112, 1); // minute 1 closes with every trade of it
    const stored = await b.bars.range('bar.1m:AAPL', { limit: 10 });
    expect(stored.map((x) => [x.t, x.v, x.n])).toEqual([
      [T0, 20, 3],
      [T0 + 60_000, 3, 2],
    ]);
    b.pub.close();
  });

  it('a late trade for a bar closed before the restart corrects that bar, not a partial copy', async () => {
    const lastValues = new MemoryLastValueStore();
    const a = process(lastValues);
    a.trade('1', T0 + 1_000, 100, 10);
    a.pub.sweepBars(Date.now() + 2_000); // the quiet 1s bar closes
    a.pub.close();
    const b = process(lastValues, a.bars);
    await b.pub.restore();
    b.trade('late', T0 + 1_500, 101, 1);
    const stored = await b.bars.range('bar.1s:AAPL', { limit: 10 });
    expect(stored).toEqual([{ t: T0 + 1_000, iv: 1000, o: 100, h: 101, l: 100, c: 101, v: 11, n: 2, closed: true, corrected: true }]);
    b.pub.close();
  });

  it('a ticker of an earlier day is not carried into the new day', async () => {
    const lastValues = new MemoryLastValueStore();
    const a = process(lastValues);
    a.trade('1', T0 - 86_400_000, 100, 10);
    a.pub.close();
    const b = process(lastValues);
    await b.pub.restore();
    b.trade('2', T0, 105, 1);
    expect(b.ticker()).toMatchObject({ o: 105, h: 105, l: 105, v: 1 });
    expect(b.bar('1d')).toMatchObject({ o: 105, v: 1, closed: false });
    b.pub.close();
  });
});
