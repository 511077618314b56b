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
 * - Revisions (delayed access, docs/protocol.md#bar-history): the store remembers when each bar
 *   was put, and keeps a replaced version for `keepRevisionsMs` after it was replaced. `range`
 *   with `asOf` answers each bar in the version current at `asOf` (put at or before it, replaced
 *   after it) and leaves out a bar first put after `asOf`. An `asOf` older than `keepRevisionsMs`
 *   may miss a bar (its version of then is gone), never shows a later version.
 */
export interface BarStore extends ClosedBarSink, BarHistorySource {
  put(channel: string, bar: StoredBar): void;
  range(channel: string, q: BarRange): Promise<StoredBar[]>;
  /** whether the store is reachable (for /ready) */
  readonly ready: boolean;
  close(): Promise<void>;
}

/** How long replaced bar versions are kept by default: the default `auth.delayMs` (15 minutes). */
export const DEFAULT_KEEP_REVISIONS_MS = 900_000;

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

/**
 * A channel's bars sorted by `t`, and when each was put (ms, this process's clock) at the same
 * index: a number array of its own (8 bytes a bar) rather than an object around each bar (about
 * 80 bytes a bar, measured by bench/bar-revisions.ts).
 */
interface Held {
  bars: StoredBar[];
  at: number[];
}

/** A replaced version of a bar: current from `at` until `until`. */
interface Revision {
  bar: StoredBar;
  at: number;
  until: number;
}

export interface MemoryBarStoreOptions {
  windowBars: number;
  /** how long a replaced bar version is kept for delayed reads, ms (the longest `auth.delayMs`; 0: none) */
  keepRevisionsMs?: number;
  /** replaced versions kept across all channels; beyond it the oldest go first (default 100 000) */
  maxRevisions?: number;
  now?: () => number;
}

/** The embedded bar store: arrays sorted by `t` per channel, in this process's memory. */
export class MemoryBarStore implements BarStore {
  readonly ready = true;
  readonly #window: number;
  readonly #keepMs: number;
  readonly #maxRevisions: number;
  readonly #now: () => number;
  readonly #bars = new Map<string, Held>();
  /** channel -> t -> replaced versions, oldest first */
  readonly #revisions = new Map<string, Map<number, Revision[]>>();
  /** every replaced version in the order it was replaced (so by `until`), for pruning */
  #replaced: { channel: string; t: number; until: number }[] = [];
  #replacedHead = 0;

  constructor(opts: MemoryBarStoreOptions) {
    this.#window = Math.max(1, opts.windowBars);
    this.#keepMs = Math.max(0, opts.keepRevisionsMs ?? DEFAULT_KEEP_REVISIONS_MS);
    this.#maxRevisions = Math.max(0, opts.maxRevisions ?? 100_000);
    this.#now = opts.now ?? ((): number => Date.now());
  }

  put(channel: string, bar: StoredBar): void {
    const at = this.#now();
    let held = this.#bars.get(channel);
    if (!held) this.#bars.set(channel, (held = { bars: [], at: [] }));
    const { bars } = held;
    const n = bars.length;
    const i = n === 0 || bars[n - 1]!.t < bar.t ? n : lowerBound(bars, bar.t); // the usual case: a newer bar
    if (bars[i]?.t === bar.t) {
      if (this.#keepMs > 0 && this.#maxRevisions > 0) this.#keep(channel, bar.t, { bar: bars[i]!, at: held.at[i]!, until: at });
      bars[i] = bar;
      held.at[i] = at;
    } else {
      bars.splice(i, 0, bar);
      held.at.splice(i, 0, at);
      if (bars.length > this.#window) {
        bars.splice(0, bars.length - this.#window);
        held.at.splice(0, held.at.length - this.#window);
      }
    }
    this.#prune(at);
  }

  async range(channel: string, q: BarRange): Promise<StoredBar[]> {
    const held = this.#bars.get(channel);
    if (!held) return [];
    if (q.asOf === undefined) return sliceRange(held.bars, q);
    return this.#rangeAsOf(channel, held, q, q.asOf);
  }

  /** The newest `limit` bars of the range as they were at `asOf`, oldest first. */
  #rangeAsOf(channel: string, held: Held, q: BarRange, asOf: number): StoredBar[] {
    this.#prune(this.#now());
    const { bars } = held;
    const start = q.from === undefined ? 0 : lowerBound(bars, q.from);
    const revisions = this.#revisions.get(channel);
    const out: StoredBar[] = [];
    for (let i = (q.to === undefined ? bars.length : lowerBound(bars, q.to)) - 1; i >= start && out.length < q.limit; i--) {
      const b = bars[i]!;
      const bar = held.at[i]! <= asOf ? b : revisions?.get(b.t)?.find((r) => r.at <= asOf && asOf < r.until)?.bar;
      if (bar) out.push(bar);
    }
    return out.reverse();
  }

  #keep(channel: string, t: number, rev: Revision): void {
    let byT = this.#revisions.get(channel);
    if (!byT) this.#revisions.set(channel, (byT = new Map()));
    let list = byT.get(t);
    if (!list) byT.set(t, (list = []));
    list.push(rev);
    this.#replaced.push({ channel, t, until: rev.until });
  }

  /** Drop the versions replaced `keepRevisionsMs` ago (no delayed read needs them), and the oldest beyond the bound. */
  #prune(now: number): void {
    const horizon = now - this.#keepMs;
    const q = this.#replaced;
    while (this.#replacedHead < q.length && (q[this.#replacedHead]!.until <= horizon || q.length - this.#replacedHead > this.#maxRevisions)) {
      const { channel, t } = q[this.#replacedHead++]!;
      const byT = this.#revisions.get(channel);
      const list = byT?.get(t);
      list?.shift(); // the oldest version of that bar is the one replaced first
      if (byT && list?.length === 0) {
        byT.delete(t);
        if (byT.size === 0) this.#revisions.delete(channel);
      }
    }
    if (this.#replacedHead > 1024 && this.#replacedHead * 2 > q.length) {
      this.#replaced = q.slice(this.#replacedHead);
      this.#replacedHead = 0;
    }
  }

  /** Channels held, bars across them, and replaced versions kept (for stats and tests). */
  size(): { channels: number; bars: number; revisions: number } {
    let bars = 0;
    for (const b of this.#bars.values()) bars += b.bars.length;
    return { channels: this.#bars.size, bars, revisions: this.#replaced.length - this.#replacedHead };
  }

  async close(): Promise<void> {
    this.#bars.clear();
    this.#revisions.clear();
    this.#replaced = [];
    this.#replacedHead = 0;
  }
}
