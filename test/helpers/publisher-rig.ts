import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BarInterval, Tick } from '../../src/core/schema.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import type { TickPublisherOptions } from '../../src/ingest/tick-publisher.js';
import type { TickInput } from '../../feeds/sdk/adapter.js';

/**
 * A TickPublisher on an in-process bus with every tick it sends decoded, for the tests of what it
 * derives (tickers, bars, corrections). Call `closePublishers` in an `afterEach`.
 */

/** 09:30 New York on a trading day: AAPL's day started at 05:00 UTC */
export const T0 = Date.UTC(2026, 10, 20, 14, 30, 0);
export const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;

/** An AAPL trade at `ms` as an adapter emits it. */
export const trade = (ms: number, p: number, s: number, id: string, extra: Partial<Extract<TickInput, { k: 'trade' }>> = {}): TickInput => ({
  k: 'trade',
  sym: 'AAPL',
  id,
  p,
  s,
  ts: ns(ms),
  ...extra,
});

const open: TickPublisher[] = [];

export function closePublishers(): void {
  for (const pub of open.splice(0)) pub.close();
}

/**
 * `sweep`: `bars`/`lastBar` of bar.1h and bar.1d send the publisher's held open state first (it
 * goes out at most every 250 ms), so the newest one is what they return.
 */
export function publisherRig(opts: Partial<Omit<TickPublisherOptions, 'bus' | 'registry'>> & { sweep?: boolean } = {}) {
  const { sweep = false, ...rest } = opts;
  const bus = new MemoryBus();
  const ticks: Tick[] = [];
  bus.subscribe('md.>', (_s, payload) => ticks.push(decodeTick(payload)));
  const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, ...rest });
  open.push(pub);
  const of = <K extends Tick['k']>(k: K) => ticks.filter((t): t is Extract<Tick, { k: K }> => t.k === k);
  const bars = (iv: BarInterval) => {
    if (sweep && (iv === '1h' || iv === '1d')) pub.sweepBars();
    return of('bar').filter((b) => b.iv === iv);
  };
  return { bus, ticks, pub, of, bars, lastBar: (iv: BarInterval) => bars(iv).at(-1), lastTicker: () => of('ticker').at(-1) };
}
