/**
 * Minimum and maximum of the values pushed in the last `windowMs` (the window is (t - windowMs, t]
 * for the latest time t), with two monotonic deques: the min deque holds increasing values, the
 * max deque decreasing ones, each with its time. A push pops dominated entries from the back and
 * expired ones from the front: every value enters and leaves each deque once, so a push is O(1)
 * amortized. Memory is the number of entries that can still become the min or max (for a random
 * walk far fewer than the ticks in the window; for a monotone run, all of them).
 *
 * Deques are ring-free arrays with a moving head, compacted when the head passes half.
 */
/**
 * A window as an older version stored it, whole (docs/alerts.md, State and restarts): the deque
 * entries, times and values interleaved (`[t0, v0, t1, v1, ...]`), oldest first, and the latest
 * time pushed. Read back (exact up to 1024 entries per side, merged beyond); never written.
 */
export interface WindowState {
  min: number[];
  max: number[];
  lastT: number;
}

/**
 * A window as stored now, in segments: each deque entry has a position (counted since the window
 * began, so it does not change while the entry is held) and segment `n` of a side holds the
 * entries at positions `[n * SEG, (n + 1) * SEG)` that were held when it was written. `head`
 * names the segments that make up each side (`[first, last]`, inclusive), `segments` holds them
 * by field name (`min:<n>`, `max:<n>`), each `[position of its first entry, t, v, t, v, ...]`.
 */
export interface WindowHead {
  v: 2;
  lastT: number;
  min: [number, number];
  max: [number, number];
}

/** What a store writes for one window at a commit. */
export interface WindowDelta {
  head: WindowHead;
  /** the stored segments are not this window's (a new window under this key): delete them all first */
  reset: boolean;
  /** segments written whole, by field name */
  put: [field: string, entries: number[]][];
  /** segments no longer held, by field name */
  drop: string[];
}

/** A window as a store gives it back: its head (or the whole state an older version wrote) and its segments. */
export interface StoredWindow {
  window: string;
  head: WindowHead | WindowState;
  segments: Record<string, number[]>;
}

/** entries per stored segment: a commit writes the segments a tick touched (the newest, mostly) */
export const WINDOW_SEGMENT_ENTRIES = 64;
const SEG = WINDOW_SEGMENT_ENTRIES;

/** per side, what changed since the last handover: entries from `from` on, and the segments the store may hold */
interface SideSince {
  from: number;
  lo: number;
  hi: number;
}

/** What changed in a window between the last commit that succeeded and now (see RollingMinMax.take). */
export interface WindowSince {
  reset: boolean;
  min: SideSince;
  max: SideSince;
}

/** Two handovers of one window, the older not committed: one that covers both. */
export function mergeSince(a: WindowSince, b: WindowSince): WindowSince {
  const side = (x: SideSince, y: SideSince): SideSince => ({ from: Math.min(x.from, y.from), lo: Math.min(x.lo, y.lo), hi: Math.max(x.hi, y.hi) });
  return { reset: a.reset || b.reset, min: side(a.min, b.min), max: side(a.max, b.max) };
}

/** one side's deque: values, times, head index, and the position of array index 0 */
interface Deque {
  v: number[];
  t: number[];
  head: number;
  base: number;
  /** lowest position written since the last handover */
  from: number;
  /** segments the store may hold (as of the last handover) */
  lo: number;
  hi: number;
}

const newDeque = (): Deque => ({ v: [], t: [], head: 0, base: 0, from: Infinity, lo: 0, hi: -1 });

/**
 * One side's push: the entries `v` makes useless leave from the tail (for the min side those not
 * below it, for the max side those not above it), `v` is appended at `t`, and the entries at or
 * before `cutoff` leave from the head. The lowest position written since the last handover is
 * kept (`from`), and a deque whose dead head outgrew its live part is compacted.
 */
function pushSide(d: Deque, t: number, v: number, cutoff: number, min: boolean): void {
  const vs = d.v;
  while (vs.length > d.head && (min ? vs[vs.length - 1]! >= v : vs[vs.length - 1]! <= v)) {
    vs.pop();
    d.t.pop();
  }
  const at = d.base + vs.length;
  if (at < d.from) d.from = at;
  vs.push(v);
  d.t.push(t);
  while (d.t[d.head]! <= cutoff) d.head++;
  if (d.head > 1024 && d.head * 2 > vs.length) compact(d);
}

export class RollingMinMax {
  readonly windowMs: number;
  #min: Deque = newDeque();
  #max: Deque = newDeque();
  #lastT = -Infinity;
  /** the store holds nothing of this window yet (new), or something that is not it */
  #reset = true;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** Add a value at time t (ms). Times going backwards are clamped to the latest seen. */
  push(t: number, v: number): void {
    if (t < this.#lastT) t = this.#lastT;
    this.#lastT = t;
    const cutoff = t - this.windowMs;
    pushSide(this.#min, t, v, cutoff, true);
    pushSide(this.#max, t, v, cutoff, false);
  }

  /** smallest value in the window (undefined before the first push) */
  get min(): number | undefined {
    return this.#min.v[this.#min.head];
  }

  get max(): number | undefined {
    return this.#max.v[this.#max.head];
  }

  /**
   * Hand over what changed since the last handover, for a commit: what `delta` then writes. The
   * next handover counts from here, so a commit that fails must be merged with the next one
   * (`mergeSince`): together they cover every change since the last commit that succeeded.
   */
  take(): WindowSince {
    const side = (d: Deque): SideSince => {
      const out = { from: d.from, lo: d.lo, hi: d.hi };
      d.from = Infinity;
      [d.lo, d.hi] = span(d);
      return out;
    };
    const out = { reset: this.#reset, min: side(this.#min), max: side(this.#max) };
    this.#reset = false;
    return out;
  }

  /**
   * What a store writes to hold this window exactly (segments, docs/alerts.md "State and
   * restarts"): the segments holding an entry written since `since` (an entry is written once
   * where it is pushed: a push after pops rewrites from its own position on) and the segments
   * that left (expired at the front, popped at the back). Read at commit time, before another push.
   */
  delta(since: WindowSince): WindowDelta {
    const put: [string, number[]][] = [];
    const drop: string[] = [];
    const side = (name: 'min' | 'max', d: Deque, s: SideSince): [number, number] => {
      const [lo, hi] = span(d);
      const from = since.reset ? lo : Math.max(lo, Math.floor(s.from / SEG));
      for (let n = from; n <= hi; n++) put.push([`${name}:${n}`, segment(d, n)]);
      if (!since.reset) {
        for (let n = s.lo; n <= s.hi; n++) if (n < lo || n > hi) drop.push(`${name}:${n}`);
      }
      return [lo, hi];
    };
    const min = side('min', this.#min, since.min);
    const max = side('max', this.#max, since.max);
    return { head: { v: 2, lastT: this.#lastT, min, max }, reset: since.reset, put, drop };
  }

  /**
   * A window from the store. Segments hold every entry that was in the window at the last commit
   * (and perhaps some that had left it by then: they drop out at the next push, whose time is not
   * earlier), so the restored window answers min and max as the live one did. A window stored
   * whole by an older version is read as it was (merged past 1024 entries a side) and written in
   * segments at the next commit. Anything malformed restores an empty window (rewritten whole).
   */
  static fromStored(windowMs: number, stored: Pick<StoredWindow, 'head' | 'segments'>): RollingMinMax {
    const w = new RollingMinMax(windowMs);
    const head = stored.head as Partial<WindowHead> & Partial<WindowState>;
    if (head.v !== 2) return RollingMinMax.#fromWhole(w, head);
    const min = readSide(head.min, 'min', stored.segments);
    const max = readSide(head.max, 'max', stored.segments);
    if (!min || !max || typeof head.lastT !== 'number' || min.v.length === 0 || max.v.length === 0) return w;
    w.#min = min;
    w.#max = max;
    w.#lastT = head.lastT;
    w.#reset = false;
    return w;
  }

  static #fromWhole(w: RollingMinMax, st: Partial<WindowState>): RollingMinMax {
    const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length % 2 === 0 && a.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (!ok(st.min) || !ok(st.max) || typeof st.lastT !== 'number') return w;
    for (let i = 0; i < st.min.length; i += 2) {
      w.#min.t.push(st.min[i]!);
      w.#min.v.push(st.min[i + 1]!);
    }
    for (let i = 0; i < st.max.length; i += 2) {
      w.#max.t.push(st.max[i]!);
      w.#max.v.push(st.max[i + 1]!);
    }
    if (Number.isFinite(st.lastT)) w.#lastT = st.lastT;
    return w;
  }

  /** entries held in both deques (memory figure) */
  get held(): number {
    return this.#min.v.length - this.#min.head + this.#max.v.length - this.#max.head;
  }
}

function compact(d: Deque): void {
  d.v = d.v.slice(d.head);
  d.t = d.t.slice(d.head);
  d.base += d.head;
  d.head = 0;
}

/** the segments holding the entries in the window: [first, last] (last < first when empty) */
function span(d: Deque): [number, number] {
  const end = d.base + d.v.length; // one past the last position
  if (end === d.base + d.head) return [0, -1];
  return [Math.floor((d.base + d.head) / SEG), Math.floor((end - 1) / SEG)];
}

/** segment n as stored: [position of its first entry, t, v, ...], from the first entry still held */
function segment(d: Deque, n: number): number[] {
  const from = Math.max(n * SEG, d.base + d.head);
  const to = Math.min((n + 1) * SEG, d.base + d.v.length);
  const out = [from];
  for (let p = from; p < to; p++) out.push(d.t[p - d.base]!, d.v[p - d.base]!);
  return out;
}

/** a side from its segments [lo, hi]: contiguous positions, finite numbers, each segment within its bounds */
function readSide(range: unknown, name: string, segments: Record<string, number[]>): Deque | undefined {
  if (!Array.isArray(range) || range.length !== 2 || !Number.isSafeInteger(range[0]) || !Number.isSafeInteger(range[1])) return undefined;
  const [lo, hi] = range as [number, number];
  const d = newDeque();
  if (hi < lo || lo < 0) return undefined;
  let next = -1;
  for (let n = lo; n <= hi; n++) {
    const seg = segments[`${name}:${n}`];
    if (!Array.isArray(seg) || seg.length % 2 !== 1 || !seg.every((x) => typeof x === 'number' && Number.isFinite(x))) return undefined;
    const start = seg[0]!;
    const count = (seg.length - 1) / 2;
    if (n === lo ? start < n * SEG : start !== next) return undefined;
    if (start + count > (n + 1) * SEG) return undefined;
    if (n === lo) d.base = start;
    for (let i = 1; i < seg.length; i += 2) {
      d.t.push(seg[i]!);
      d.v.push(seg[i + 1]!);
    }
    next = start + count;
    if (n < hi && next !== (n + 1) * SEG) return undefined;
  }
  d.lo = lo;
  d.hi = hi;
  return d;
}
