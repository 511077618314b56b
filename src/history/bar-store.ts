import type { BarRange, BarHistorySource } from '../fanout/channels.js';
import type { Payload } from '../fanout/payloads.js';
import type { ClosedBarSink } from '../ingest/tick-publisher.js';

/**
 * A closed bar as stored and served: the protocol's bar payload (`t` start, `iv` interval ms,
 * `o h l c v n`, `closed: true`, `corrected`? when it replaced an earlier version).
 */
export type StoredBar = Payload & { t: number; iv: number; closed: true };

/**
 * The bar store: a bounded window of closed bars per bar channel (`bar.1m:AAPL`), so a chart can
 * open with history (`history` on subscribe, `GET /v1/bars`). Written by the ingest stage for
 * every closed bar it publishes (built from trades, or the provider's), read by gateways.
 *
 * Contract (test/history/bar-store.contract.test.ts runs it against both implementations):
 * - `put` never waits. A bar replaces the stored bar of the same channel and `t` (a corrected
 *   bar), so a channel holds at most one bar per start time.
 * - A channel keeps the newest `windowBars` bars by `t`; older ones go first.
 * - `range` answers the bars with `from <= t < to`, oldest first, and of those only the newest
 *   `limit`. Bars put by this process are visible to its own reads at once.
 */
export interface BarStore extends ClosedBarSink, BarHistorySource {
  put(channel: string, bar: StoredBar): void;
  range(channel: string, q: BarRange): Promise<StoredBar[]>;
  /** whether the store is reachable (for /ready) */
  readonly ready: boolean;
  close(): Promise<void>;
}

/** Index of the first bar with `t >= at` in bars sorted by `t`. */
export function lowerBound(bars: readonly { t: number }[], at: number): number {
  let lo = 0;
  let hi = bars.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (bars[mid]!.t < at) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The newest `limit` bars of sorted `bars` with `from <= t < to`. */
export function sliceRange<T extends { t: number }>(bars: readonly T[], q: BarRange): T[] {
  const start = q.from === undefined ? 0 : lowerBound(bars, q.from);
  const end = q.to === undefined ? bars.length : lowerBound(bars, q.to);
  if (end <= start || q.limit <= 0) return [];
  return bars.slice(Math.max(start, end - q.limit), end);
}

/** Insert or replace (same `t`) into bars sorted by `t`; returns the new length. */
export function upsertSorted<T extends { t: number }>(bars: T[], bar: T): number {
  const n = bars.length;
  if (n === 0 || bars[n - 1]!.t < bar.t) return bars.push(bar); // the usual case: a newer bar
  const i = lowerBound(bars, bar.t);
  if (bars[i]?.t === bar.t) bars[i] = bar;
  else bars.splice(i, 0, bar);
  return bars.length;
}

/** The embedded bar store: arrays sorted by `t` per channel, in this process's memory. */
export class MemoryBarStore implements BarStore {
  readonly ready = true;
  readonly #window: number;
  readonly #bars = new Map<string, StoredBar[]>();

  constructor(opts: { windowBars: number }) {
    this.#window = Math.max(1, opts.windowBars);
  }

  put(channel: string, bar: StoredBar): void {
    let bars = this.#bars.get(channel);
    if (!bars) this.#bars.set(channel, (bars = []));
    if (upsertSorted(bars, bar) > this.#window) bars.splice(0, bars.length - this.#window);
  }

  async range(channel: string, q: BarRange): Promise<StoredBar[]> {
    const bars = this.#bars.get(channel);
    return bars ? sliceRange(bars, q) : [];
  }

  /** Channels held and bars across them (for stats and tests). */
  size(): { channels: number; bars: number } {
    let bars = 0;
    for (const b of this.#bars.values()) bars += b.length;
    return { channels: this.#bars.size, bars };
  }

  async close(): Promise<void> {
    this.#bars.clear();
  }
}
