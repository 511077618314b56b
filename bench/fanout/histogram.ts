/**
 * A fixed-bucket latency histogram, cheap to record into and to merge across workers:
 * 10 µs buckets up to 100 ms, then 1 ms buckets up to 60 s (anything above lands in the last).
 * Percentiles report the upper edge of their bucket, so they never flatter.
 */
const FINE_LIMIT_MS = 100;
const FINE_PER_MS = 100; // 10 µs
const FINE_BUCKETS = FINE_LIMIT_MS * FINE_PER_MS;
const COARSE_LIMIT_MS = 60_000;
const BUCKETS = FINE_BUCKETS + (COARSE_LIMIT_MS - FINE_LIMIT_MS);

export class LatencyHistogram {
  readonly counts = new Uint32Array(BUCKETS);
  total = 0;
  max = 0;
  sum = 0;

  record(ms: number): void {
    const i = ms < FINE_LIMIT_MS ? Math.floor(ms * FINE_PER_MS) : Math.min(BUCKETS - 1, FINE_BUCKETS + Math.floor(ms - FINE_LIMIT_MS));
    this.counts[i]!++;
    this.total++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** Non-empty buckets as a flat [bucket, count, ...] list (small to send over IPC). */
  toSparse(): number[] {
    const out: number[] = [];
    const c = this.counts;
    for (let i = 0; i < c.length; i++) if (c[i] !== 0) out.push(i, c[i]!);
    return out;
  }

  addSparse(sparse: readonly number[], max: number, sum: number): void {
    for (let i = 0; i + 1 < sparse.length; i += 2) {
      this.counts[sparse[i]!]! += sparse[i + 1]!;
      this.total += sparse[i + 1]!;
    }
    if (max > this.max) this.max = max;
    this.sum += sum;
  }

  /** Upper edge in ms of the bucket holding the q-quantile (0 < q <= 1); NaN when empty. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    const c = this.counts;
    for (let i = 0; i < c.length; i++) {
      seen += c[i]!;
      if (seen >= rank) return Math.min(this.max, upperEdge(i));
    }
    return this.max;
  }

  get mean(): number {
    return this.total === 0 ? NaN : this.sum / this.total;
  }
}

function upperEdge(i: number): number {
  return i < FINE_BUCKETS ? (i + 1) / FINE_PER_MS : FINE_LIMIT_MS + (i - FINE_BUCKETS) + 1;
}
