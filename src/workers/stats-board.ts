/**
 * Each gateway worker's /v1/stats figures, republished every STATS_EVERY_MS into its own region
 * of a SharedArrayBuffer (JSON, under a sequence lock), so that whichever worker answers
 * GET /v1/stats sums them at once, without a round trip through the main thread (which runs the
 * feeds and may be busy). Another worker's figures are at most STATS_EVERY_MS old.
 */
export const STATS_EVERY_MS = 50;
const REGION_BYTES = 256 * 1024;
const HEADER = 8; // Int32 sequence (odd while writing), Int32 length (-1: did not fit)

export function allocateBoard(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(workers * REGION_BYTES);
}

export class StatsBoard {
  readonly #buf: SharedArrayBuffer;
  readonly #encoder = new TextEncoder();
  readonly #decoder = new TextDecoder();

  constructor(buffer: SharedArrayBuffer) {
    this.#buf = buffer;
  }

  write(worker: number, value: unknown): void {
    const head = new Int32Array(this.#buf, worker * REGION_BYTES, 2);
    const bytes = this.#encoder.encode(JSON.stringify(value));
    Atomics.add(head, 0, 1); // odd: being written
    if (bytes.length > REGION_BYTES - HEADER) Atomics.store(head, 1, -1);
    else {
      new Uint8Array(this.#buf, worker * REGION_BYTES + HEADER, bytes.length).set(bytes);
      Atomics.store(head, 1, bytes.length);
    }
    Atomics.add(head, 0, 1);
  }

  /** The worker's last figures; undefined when none yet, 'too-big' when they did not fit. */
  read(worker: number): unknown {
    const head = new Int32Array(this.#buf, worker * REGION_BYTES, 2);
    // a write takes microseconds: spin through it rather than give up on the worker's figures
    for (let attempt = 0; attempt < 100_000; attempt++) {
      const seq = Atomics.load(head, 0);
      if (seq % 2 === 1) continue;
      if (seq === 0) return undefined;
      const len = Atomics.load(head, 1);
      const copy = len > 0 ? new Uint8Array(this.#buf, worker * REGION_BYTES + HEADER, len).slice() : undefined;
      if (Atomics.load(head, 0) !== seq) continue;
      if (len < 0) return 'too-big';
      return copy ? JSON.parse(this.#decoder.decode(copy)) : undefined;
    }
    return undefined;
  }

  /** A worker ended: its figures go with it. */
  clear(worker: number): void {
    const head = new Int32Array(this.#buf, worker * REGION_BYTES, 2);
    Atomics.store(head, 1, 0);
    Atomics.store(head, 0, 0);
  }
}
