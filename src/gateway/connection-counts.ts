import { createHash } from 'node:crypto';

/**
 * Open connections per user, as the per-user limit (`limits.connectionsPerUser`) counts them.
 * `tryAdd` checks and counts in one step, so two upgrades of the same user racing (on one event
 * loop, or on several worker threads) can never both take the last slot.
 */
export interface ConnectionCounts {
  /** Count one more connection of `user` unless it already has `max` (0 = no maximum). */
  tryAdd(user: string, max: number): boolean;
  /** One connection of `user` closed (or its reservation was not used). */
  remove(user: string): void;
  /** Open connections of `user`. */
  get(user: string): number;
}

/** The counts of one gateway on one event loop. */
export class LocalConnectionCounts implements ConnectionCounts {
  readonly #map = new Map<string, number>();

  tryAdd(user: string, max: number): boolean {
    const n = this.#map.get(user) ?? 0;
    if (max > 0 && n >= max) return false;
    this.#map.set(user, n + 1);
    return true;
  }

  remove(user: string): void {
    const n = (this.#map.get(user) ?? 1) - 1;
    if (n <= 0) this.#map.delete(user);
    else this.#map.set(user, n);
  }

  get(user: string): number {
    return this.#map.get(user) ?? 0;
  }
}

/** Int32 words per slot before the per-worker counts: used flag and a 128-bit key. */
const KEY_WORDS = 5;
/** word 0 of the header: the lock (0 free, else the holder's worker index + 1) */
const LOCK = 0;
/** word 1: slots in use */
const USED = 1;
const HEADER_WORDS = 4;

/**
 * Per-user connection counts shared by the gateway worker threads of one process, in a
 * SharedArrayBuffer: an open-addressing table (linear probing, backward-shift deletion) keyed by
 * the first 128 bits of SHA-256 of the user, with one count per worker in each slot, so that the
 * counts of a worker that crashed can be taken out again (`clearWorker`). Every operation holds a
 * spin lock (a few hundred nanoseconds; upgrades and closes only, never the data path).
 */
export class SharedConnectionCounts implements ConnectionCounts {
  readonly #words: Int32Array;
  readonly #slots: number;
  readonly #workers: number;
  readonly #stride: number;
  /** this thread's worker index (its count column), or -1 on the main thread */
  readonly #self: number;

  /** A buffer for `slots` users (rounded up to a power of two) and `workers` workers. */
  static allocate(slots: number, workers: number): SharedArrayBuffer {
    let n = 1024;
    while (n < slots) n *= 2;
    return new SharedArrayBuffer((HEADER_WORDS + n * (KEY_WORDS + workers)) * 4);
  }

  constructor(buffer: SharedArrayBuffer, workers: number, self: number) {
    this.#words = new Int32Array(buffer);
    this.#workers = workers;
    this.#stride = KEY_WORDS + workers;
    this.#slots = (this.#words.length - HEADER_WORDS) / this.#stride;
    this.#self = self;
    if (!Number.isInteger(this.#slots) || (this.#slots & (this.#slots - 1)) !== 0) throw new RangeError('SharedConnectionCounts: buffer does not match the worker count');
  }

  /** Users with at least one open connection. */
  get users(): number {
    return Atomics.load(this.#words, USED);
  }

  tryAdd(user: string, max: number): boolean {
    const key = keyOf(user);
    return this.#locked(() => {
      let slot = this.#find(key);
      if (slot < 0) {
        // never more than 3/4 full, so probes stay short; a full table refuses (the caller says so)
        if (Atomics.load(this.#words, USED) >= (this.#slots * 3) / 4) return false;
        slot = this.#insert(key);
      }
      if (max > 0 && this.#total(slot) >= max) return false;
      this.#words[this.#base(slot) + KEY_WORDS + this.#self]! += 1;
      return true;
    });
  }

  remove(user: string): void {
    const key = keyOf(user);
    this.#locked(() => {
      const slot = this.#find(key);
      if (slot < 0) return;
      const at = this.#base(slot) + KEY_WORDS + this.#self;
      if (this.#words[at]! > 0) this.#words[at]! -= 1;
      if (this.#total(slot) === 0) this.#delete(slot);
    });
  }

  get(user: string): number {
    const key = keyOf(user);
    return this.#locked(() => {
      const slot = this.#find(key);
      return slot < 0 ? 0 : this.#total(slot);
    });
  }

  /**
   * A worker ended: drop every count it held (its connections are gone with it). Also frees the
   * lock if that worker died holding it. Main thread only.
   */
  clearWorker(worker: number): void {
    Atomics.compareExchange(this.#words, LOCK, worker + 1, 0);
    this.#locked(() => {
      for (let slot = 0; slot < this.#slots; ) {
        const base = this.#base(slot);
        if (this.#words[base] !== 0) {
          this.#words[base + KEY_WORDS + worker] = 0;
          // a deletion shifts a later entry into this slot: look at it again
          if (this.#total(slot) === 0) {
            this.#delete(slot);
            continue;
          }
        }
        slot++;
      }
    });
  }

  #locked<T>(fn: () => T): T {
    const me = this.#self + 1 || 1_000_000;
    while (Atomics.compareExchange(this.#words, LOCK, 0, me) !== 0) {
      // the holder runs a handful of instructions; spin
    }
    try {
      return fn();
    } finally {
      Atomics.store(this.#words, LOCK, 0);
    }
  }

  #base(slot: number): number {
    return HEADER_WORDS + slot * this.#stride;
  }

  #total(slot: number): number {
    const base = this.#base(slot) + KEY_WORDS;
    let n = 0;
    for (let w = 0; w < this.#workers; w++) n += this.#words[base + w]!;
    return n;
  }

  #home(key: Int32Array): number {
    return key[0]! & (this.#slots - 1);
  }

  #find(key: Int32Array): number {
    const w = this.#words;
    for (let slot = this.#home(key), probes = 0; probes < this.#slots; slot = (slot + 1) & (this.#slots - 1), probes++) {
      const b = this.#base(slot);
      if (w[b] === 0) return -1;
      if (w[b + 1] === key[0] && w[b + 2] === key[1] && w[b + 3] === key[2] && w[b + 4] === key[3]) return slot;
    }
    return -1;
  }

  #insert(key: Int32Array): number {
    const w = this.#words;
    let slot = this.#home(key);
    while (w[this.#base(slot)] !== 0) slot = (slot + 1) & (this.#slots - 1);
    const b = this.#base(slot);
    w[b] = 1;
    w.set(key, b + 1);
    w.fill(0, b + KEY_WORDS, b + this.#stride);
    w[USED]! += 1;
    return slot;
  }

  /** Backward-shift deletion: later entries of the probe run move up, so no tombstones. */
  #delete(slot: number): void {
    const w = this.#words;
    const mask = this.#slots - 1;
    let hole = slot;
    for (let next = (hole + 1) & mask; ; next = (next + 1) & mask) {
      const nb = this.#base(next);
      if (w[nb] === 0) break;
      const home = w[nb + 1]! & mask;
      // the entry at `next` may fill the hole when its home is not within (hole, next]
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!between) {
        w.copyWithin(this.#base(hole), nb, nb + this.#stride);
        hole = next;
      }
    }
    w.fill(0, this.#base(hole), this.#base(hole) + this.#stride);
    w[USED]! -= 1;
  }
}

function keyOf(user: string): Int32Array {
  const digest = createHash('sha256').update(user).digest();
  return new Int32Array(digest.buffer.slice(digest.byteOffset, digest.byteOffset + 16));
}
