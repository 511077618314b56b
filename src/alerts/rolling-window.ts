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
 * A window as stored (docs/alerts.md, State and restarts): the deque entries, times and values
 * interleaved (`[t0, v0, t1, v1, ...]`), oldest first, and the latest time pushed.
 */
export interface WindowState {
  min: number[];
  max: number[];
  lastT: number;
}

/** entries per deque a stored window keeps exactly; longer deques are merged down to this many */
export const WINDOW_STATE_MAX_ENTRIES = 1024;

export class RollingMinMax {
  readonly windowMs: number;
  #minV: number[] = [];
  #minT: number[] = [];
  #minHead = 0;
  #maxV: number[] = [];
  #maxT: number[] = [];
  #maxHead = 0;
  #lastT = -Infinity;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** Add a value at time t (ms). Times going backwards are clamped to the latest seen. */
  push(t: number, v: number): void {
    if (t < this.#lastT) t = this.#lastT;
    this.#lastT = t;
    const minV = this.#minV;
    while (minV.length > this.#minHead && minV[minV.length - 1]! >= v) {
      minV.pop();
      this.#minT.pop();
    }
    minV.push(v);
    this.#minT.push(t);
    const maxV = this.#maxV;
    while (maxV.length > this.#maxHead && maxV[maxV.length - 1]! <= v) {
      maxV.pop();
      this.#maxT.pop();
    }
    maxV.push(v);
    this.#maxT.push(t);
    const cutoff = t - this.windowMs;
    while (this.#minT[this.#minHead]! <= cutoff) this.#minHead++;
    while (this.#maxT[this.#maxHead]! <= cutoff) this.#maxHead++;
    if (this.#minHead > 1024 && this.#minHead * 2 > minV.length) {
      this.#minV = minV.slice(this.#minHead);
      this.#minT = this.#minT.slice(this.#minHead);
      this.#minHead = 0;
    }
    if (this.#maxHead > 1024 && this.#maxHead * 2 > maxV.length) {
      this.#maxV = maxV.slice(this.#maxHead);
      this.#maxT = this.#maxT.slice(this.#maxHead);
      this.#maxHead = 0;
    }
  }

  /** smallest value in the window (undefined before the first push) */
  get min(): number | undefined {
    return this.#minV[this.#minHead];
  }

  get max(): number | undefined {
    return this.#maxV[this.#maxHead];
  }

  /**
   * The window as stored. A deque of more than WINDOW_STATE_MAX_ENTRIES entries (a monotone run)
   * is merged in groups of consecutive entries, each kept as its group's newest time with its
   * oldest value (the group's lowest in the min deque, highest in the max deque): restored, the
   * window holds each of those values until the group's last time, at most one group's time span
   * longer than the live window would have, never shorter: for that span a rise or a fall is
   * measured from an extreme the live window no longer holds, so a `change` rule can fire where an
   * uninterrupted run would not (docs/alerts.md, "State and restarts").
   */
  state(): WindowState {
    return { min: pack(this.#minT, this.#minV, this.#minHead), max: pack(this.#maxT, this.#maxV, this.#maxHead), lastT: this.#lastT };
  }

  /** A window from its stored state (entries already past the window drop out at the next push). */
  static fromState(windowMs: number, st: WindowState): RollingMinMax {
    const w = new RollingMinMax(windowMs);
    const ok = (a: unknown): a is number[] => Array.isArray(a) && a.length % 2 === 0 && a.every((x) => typeof x === 'number' && Number.isFinite(x));
    if (!ok(st.min) || !ok(st.max) || typeof st.lastT !== 'number') return w;
    for (let i = 0; i < st.min.length; i += 2) {
      w.#minT.push(st.min[i]!);
      w.#minV.push(st.min[i + 1]!);
    }
    for (let i = 0; i < st.max.length; i += 2) {
      w.#maxT.push(st.max[i]!);
      w.#maxV.push(st.max[i + 1]!);
    }
    if (Number.isFinite(st.lastT)) w.#lastT = st.lastT;
    return w;
  }

  /** entries held in both deques (memory figure) */
  get held(): number {
    return this.#minV.length - this.#minHead + this.#maxV.length - this.#maxHead;
  }
}

function pack(ts: readonly number[], vs: readonly number[], head: number): number[] {
  const n = ts.length - head;
  const group = Math.max(1, Math.ceil(n / WINDOW_STATE_MAX_ENTRIES));
  const out: number[] = [];
  for (let i = head; i < ts.length; i += group) {
    const last = Math.min(i + group, ts.length) - 1;
    out.push(ts[last]!, vs[i]!);
  }
  return out;
}
