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

/** Int32 words per slot before the value columns: used flag and a 128-bit key. */
const KEY_WORDS = 5;
/** word 0 of the header: the lock (0 free, else the holder's worker index + 1) */
const LOCK = 0;
/** word 1: slots in use */
const USED = 1;
const HEADER_WORDS = 4;

/**
 * A table keyed by strings in a SharedArrayBuffer, shared by the gateway worker threads of one
 * process: open addressing (linear probing, backward-shift deletion, never more than 3/4 full),
 * keyed by the first 128 bits of SHA-256 of the key, with `columns` Int32 values per slot. All
 * access goes through `locked` (a spin lock; upgrades and closes only, never the data path).
 */
export class SharedKeyTable {
  readonly words: Int32Array;
  readonly slots: number;
  readonly columns: number;
  readonly #stride: number;
  readonly #lockId: number;

  /** A buffer for at least `slots` keys (rounded up to a power of two, at least 1024). */
  static allocate(slots: number, columns: number): SharedArrayBuffer {
    let n = 1024;
    while (n < slots) n *= 2;
    return new SharedArrayBuffer((HEADER_WORDS + n * (KEY_WORDS + columns)) * 4);
  }

  /** `lockId`: this thread's worker index, or -1 for the main thread. */
  constructor(buffer: SharedArrayBuffer, columns: number, lockId: number) {
    this.words = new Int32Array(buffer);
    this.columns = columns;
    this.#stride = KEY_WORDS + columns;
    this.slots = (this.words.length - HEADER_WORDS) / this.#stride;
    this.#lockId = lockId + 1 || 1_000_000;
    if (!Number.isInteger(this.slots) || (this.slots & (this.slots - 1)) !== 0) throw new RangeError('SharedKeyTable: buffer does not match the column count');
  }

  get used(): number {
    return Atomics.load(this.words, USED);
  }

  /** Free the lock if the thread `lockId` died holding it (main thread, after a worker ended). */
  breakLock(lockId: number): void {
    Atomics.compareExchange(this.words, LOCK, lockId + 1, 0);
  }

  locked<T>(fn: () => T): T {
    while (Atomics.compareExchange(this.words, LOCK, 0, this.#lockId) !== 0) {
      // the holder runs a handful of instructions; spin
    }
    try {
      return fn();
    } finally {
      Atomics.store(this.words, LOCK, 0);
    }
  }

  /** Index of the first value column of `slot` in `words`. */
  values(slot: number): number {
    return HEADER_WORDS + slot * this.#stride + KEY_WORDS;
  }

  inUse(slot: number): boolean {
    return this.words[HEADER_WORDS + slot * this.#stride] !== 0;
  }

  /** Under the lock: the slot of `key`, or -1. */
  find(key: Int32Array): number {
    const w = this.words;
    for (let slot = key[0]! & (this.slots - 1), probes = 0; probes < this.slots; slot = (slot + 1) & (this.slots - 1), probes++) {
      const b = HEADER_WORDS + slot * this.#stride;
      if (w[b] === 0) return -1;
      if (w[b + 1] === key[0] && w[b + 2] === key[1] && w[b + 3] === key[2] && w[b + 4] === key[3]) return slot;
    }
    return -1;
  }

  /** Under the lock: a new slot for `key` (absent), values zero; -1 when the table is 3/4 full. */
  insert(key: Int32Array): number {
    const w = this.words;
    if (w[USED]! >= (this.slots * 3) / 4) return -1;
    let slot = key[0]! & (this.slots - 1);
    while (w[HEADER_WORDS + slot * this.#stride] !== 0) slot = (slot + 1) & (this.slots - 1);
    const b = HEADER_WORDS + slot * this.#stride;
    w[b] = 1;
    w.set(key, b + 1);
    w.fill(0, b + KEY_WORDS, b + this.#stride);
    w[USED]! += 1;
    return slot;
  }

  /**
   * Under the lock: delete `slot` by backward shift (later entries of its probe run move up, so
   * no tombstones). The entry now at `slot`, if any, has not been looked at by a caller walking
   * the table: look at it again.
   */
  delete(slot: number): void {
    const w = this.words;
    const mask = this.slots - 1;
    const base = (s: number): number => HEADER_WORDS + s * this.#stride;
    let hole = slot;
    for (let next = (hole + 1) & mask; ; next = (next + 1) & mask) {
      const nb = base(next);
      if (w[nb] === 0) break;
      const home = w[nb + 1]! & mask;
      // the entry at `next` may fill the hole when its home is not within (hole, next]
      const between = hole <= next ? home > hole && home <= next : home > hole || home <= next;
      if (!between) {
        w.copyWithin(base(hole), nb, nb + this.#stride);
        hole = next;
      }
    }
    w.fill(0, base(hole), base(hole) + this.#stride);
    w[USED]! -= 1;
  }

  /** Under the lock: visit every entry; `visit` returns true to delete it. */
  sweep(visit: (valuesAt: number) => boolean): void {
    for (let slot = 0; slot < this.slots;) {
      if (this.inUse(slot) && visit(this.values(slot))) {
        this.delete(slot);
        continue; // a later entry may have moved into this slot
      }
      slot++;
    }
  }
}

/**
 * Per-user connection counts shared by the gateway worker threads of one process, with one count
 * per worker in each slot, so that the counts of a worker that crashed can be taken out again
 * (`clearWorker`).
 */
export class SharedConnectionCounts implements ConnectionCounts {
  readonly #table: SharedKeyTable;
  readonly #workers: number;
  /** this thread's worker index (its count column), or -1 on the main thread */
  readonly #self: number;

  /** A buffer for `slots` users (rounded up to a power of two) and `workers` workers. */
  static allocate(slots: number, workers: number): SharedArrayBuffer {
    return SharedKeyTable.allocate(slots, workers);
  }

  constructor(buffer: SharedArrayBuffer, workers: number, self: number) {
    this.#table = new SharedKeyTable(buffer, workers, self);
    this.#workers = workers;
    this.#self = self;
  }

  /** Users with at least one open connection. */
  get users(): number {
    return this.#table.used;
  }

  tryAdd(user: string, max: number): boolean {
    const key = tableKey(user);
    const t = this.#table;
    return t.locked(() => {
      let slot = t.find(key);
      // a full table refuses (it is sized for the connection ceiling, so it is not reached)
      if (slot < 0) slot = t.insert(key);
      if (slot < 0) return false;
      const at = t.values(slot);
      if (max > 0 && this.#total(at) >= max) return false;
      t.words[at + this.#self]! += 1;
      return true;
    });
  }

  remove(user: string): void {
    const key = tableKey(user);
    const t = this.#table;
    t.locked(() => {
      const slot = t.find(key);
      if (slot < 0) return;
      const at = t.values(slot);
      if (t.words[at + this.#self]! > 0) t.words[at + this.#self]! -= 1;
      if (this.#total(at) === 0) t.delete(slot);
    });
  }

  get(user: string): number {
    const key = tableKey(user);
    const t = this.#table;
    return t.locked(() => {
      const slot = t.find(key);
      return slot < 0 ? 0 : this.#total(t.values(slot));
    });
  }

  /**
   * A worker ended: drop every count it held (its connections are gone with it). Also frees the
   * lock if that worker died holding it. Main thread only.
   */
  clearWorker(worker: number): void {
    const t = this.#table;
    t.breakLock(worker);
    t.locked(() =>
      t.sweep((at) => {
        t.words[at + worker] = 0;
        return this.#total(at) === 0;
      }),
    );
  }

  #total(at: number): number {
    let n = 0;
    for (let w = 0; w < this.#workers; w++) n += this.#table.words[at + w]!;
    return n;
  }
}

/**
 * Per-IP token buckets shared by the gateway worker threads of one process, so that an address
 * gets one budget whichever worker the kernel hands its connections to: one table for new
 * connections (`limits.connectionsPerIpPerSec`, `limits.connectionBurstPerIp`), one for costly
 * HTTP requests (`limits.httpRequestsPerIpPerSec`, `limits.httpBurstPerIp`); a table holds
 * buckets of one rate, which its sweep needs. Tokens are kept in thousandths, the refill time in
 * ms since the table was created (two words).
 */
export class SharedIpBuckets {
  readonly #table: SharedKeyTable;
  readonly #epoch: number;

  static allocate(slots: number): SharedArrayBuffer {
    return SharedKeyTable.allocate(slots, 3);
  }

  /** `epoch`: the same time origin (ms) in every thread, e.g. the supervisor's start. */
  constructor(buffer: SharedArrayBuffer, self: number, epoch: number) {
    this.#table = new SharedKeyTable(buffer, 3, self);
    this.#epoch = epoch;
  }

  get size(): number {
    return this.#table.used;
  }

  /**
   * Take one token (`n` tokens) for `ip`: 0 when taken, else the ms until they are there (none
   * is taken). A full table lets the request through.
   */
  take(ip: string, rate: number, burst: number, now = Date.now(), n = 1): number {
    const key = tableKey(`ip:${ip}`);
    const need = n * 1000;
    const t = this.#table;
    return t.locked(() => {
      let slot = t.find(key);
      if (slot < 0) {
        slot = t.insert(key);
        if (slot < 0) return 0;
        this.#store(t.values(slot), burst * 1000, now);
      }
      const at = t.values(slot);
      const tokens = this.#refilled(at, rate, burst, now);
      if (tokens < need) {
        this.#store(at, tokens, now);
        return Math.max(1, Math.ceil((need - tokens) / rate));
      }
      this.#store(at, tokens - need, now);
      return 0;
    });
  }

  /** Drop the buckets that are full again (nothing to remember about those addresses). */
  sweep(rate: number, burst: number, now = Date.now()): void {
    const t = this.#table;
    t.locked(() => t.sweep((at) => this.#refilled(at, rate, burst, now) >= burst * 1000));
  }

  /** A worker ended: free the lock if it died holding it (main thread). */
  breakLock(worker: number): void {
    this.#table.breakLock(worker);
  }

  #refilled(at: number, rate: number, burst: number, now: number): number {
    const w = this.#table.words;
    const at0 = w[at + 1]! * 2 ** 30 + w[at + 2]!;
    const elapsed = Math.max(0, now - this.#epoch - at0);
    return Math.min(burst * 1000, w[at]! + Math.floor(elapsed * rate));
  }

  #store(at: number, milliTokens: number, now: number): void {
    const w = this.#table.words;
    const t = Math.max(0, Math.round(now - this.#epoch));
    w[at] = milliTokens;
    w[at + 1] = Math.floor(t / 2 ** 30);
    w[at + 2] = t % 2 ** 30;
  }
}

/** The key of `key` in a SharedKeyTable: the first 128 bits of its SHA-256. */
export function tableKey(key: string): Int32Array {
  const digest = createHash('sha256').update(key).digest();
  return new Int32Array(digest.buffer.slice(digest.byteOffset, digest.byteOffset + 16));
}
