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

  /** entries held in both deques (memory figure) */
  get held(): number {
    return this.#minV.length - this.#minHead + this.#maxV.length - this.#maxHead;
  }
}
