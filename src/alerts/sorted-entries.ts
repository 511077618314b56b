/**
 * A sorted multiset of (key, id) pairs, ordered by key then id (ids are unique, so ties on the
 * key are ordered and any entry can be found by binary search). Stored as a list of sorted chunks
 * of at most 2*B entries (the layout of Python's sortedcontainers): finding a position is a binary
 * search over chunk maxima then inside one chunk, O(log n); an insert or a delete moves at most
 * 2*B entries of one chunk and, when a chunk splits or empties, one slot of the chunk list
 * (n/B entries, a few KB for a million entries). `takeRange` removes and returns a contiguous
 * range in O(log n + k).
 *
 * Keys and ids live in parallel number arrays (no per-entry object).
 */
const B = 256;

export class SortedEntries {
  #keys: number[][] = [];
  #ids: number[][] = [];
  #size = 0;
  /** smallest and largest key, cached on the object so the common "nothing in range" answer touches no chunk */
  #min = Infinity;
  #max = -Infinity;

  get size(): number {
    return this.#size;
  }

  /** index of the first chunk whose last entry is >= (key, id); chunks.length when none */
  #chunkFor(key: number, id: number): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const ks = this.#keys[mid]!;
      const last = ks.length - 1;
      const mk = ks[last]!;
      if (mk < key || (mk === key && this.#ids[mid]![last]! < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** first position in chunk c with (k, i) >= (key, id) */
  static #pos(ks: number[], is: number[], key: number, id: number): number {
    let lo = 0;
    let hi = ks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const k = ks[mid]!;
      if (k < key || (k === key && is[mid]! < id)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(key: number, id: number): void {
    this.#size++;
    if (key < this.#min) this.#min = key;
    if (key > this.#max) this.#max = key;
    if (this.#keys.length === 0) {
      this.#keys.push([key]);
      this.#ids.push([id]);
      return;
    }
    let c = this.#chunkFor(key, id);
    if (c === this.#keys.length) c--;
    const ks = this.#keys[c]!;
    const is = this.#ids[c]!;
    const p = SortedEntries.#pos(ks, is, key, id);
    ks.splice(p, 0, key);
    is.splice(p, 0, id);
    if (ks.length > 2 * B) {
      this.#keys.splice(c + 1, 0, ks.splice(B));
      this.#ids.splice(c + 1, 0, is.splice(B));
    }
  }

  /** remove one entry; false when it is not there */
  delete(key: number, id: number): boolean {
    const c = this.#chunkFor(key, id);
    if (c === this.#keys.length) return false;
    const ks = this.#keys[c]!;
    const is = this.#ids[c]!;
    const p = SortedEntries.#pos(ks, is, key, id);
    if (p === ks.length || ks[p] !== key || is[p] !== id) return false;
    ks.splice(p, 1);
    is.splice(p, 1);
    this.#size--;
    this.#afterShrink(c);
    this.#refreshEnds();
    return true;
  }

  /** drop an empty chunk; merge a small one into its right neighbour so chunks stay near B */
  #afterShrink(c: number): void {
    const ks = this.#keys[c]!;
    if (ks.length === 0) {
      this.#keys.splice(c, 1);
      this.#ids.splice(c, 1);
      return;
    }
    if (ks.length < B / 4 && c + 1 < this.#keys.length && ks.length + this.#keys[c + 1]!.length <= 2 * B) {
      this.#keys[c] = ks.concat(this.#keys[c + 1]!);
      this.#ids[c] = this.#ids[c]!.concat(this.#ids[c + 1]!);
      this.#keys.splice(c + 1, 1);
      this.#ids.splice(c + 1, 1);
    }
  }

  /**
   * Remove every entry whose key lies between lo and hi (each bound inclusive or not) and push
   * their ids to `out`, in ascending order. Cost O(log n + removed).
   */
  takeRange(lo: number, loInclusive: boolean, hi: number, hiInclusive: boolean, out: number[]): void {
    if (this.#size === 0 || lo > hi) return;
    // most ticks cross nothing: answer "all keys beyond the range" from the two ends in O(1)
    if (hiInclusive ? this.#min > hi : this.#min >= hi) return;
    if (loInclusive ? this.#max < lo : this.#max <= lo) return;
    // entries with key > lo are those >= (lo, +Inf); with key >= lo, those >= (lo, -Inf)
    const startId = loInclusive ? -Infinity : Infinity;
    let c = this.#chunkFor(lo, startId);
    if (c === this.#keys.length) return;
    let p = SortedEntries.#pos(this.#keys[c]!, this.#ids[c]!, lo, startId);
    while (c < this.#keys.length) {
      const ks = this.#keys[c]!;
      const is = this.#ids[c]!;
      let e = p;
      while (e < ks.length && (hiInclusive ? ks[e]! <= hi : ks[e]! < hi)) out.push(is[e++]!);
      const n = e - p;
      const reachedEnd = e === ks.length;
      if (n > 0) {
        ks.splice(p, n);
        is.splice(p, n);
        this.#size -= n;
      }
      if (!reachedEnd) {
        if (n > 0) this.#afterShrink(c);
        this.#refreshEnds();
        return;
      }
      if (ks.length === 0) {
        this.#keys.splice(c, 1);
        this.#ids.splice(c, 1);
      } else c++;
      p = 0;
    }
    this.#refreshEnds();
  }

  #refreshEnds(): void {
    if (this.#size === 0) {
      this.#min = Infinity;
      this.#max = -Infinity;
      return;
    }
    this.#min = this.#keys[0]![0]!;
    const lastChunk = this.#keys[this.#keys.length - 1]!;
    this.#max = lastChunk[lastChunk.length - 1]!;
  }

  /** all entries in order (tests, snapshots) */
  *entries(): IterableIterator<[key: number, id: number]> {
    for (let c = 0; c < this.#keys.length; c++) {
      const ks = this.#keys[c]!;
      const is = this.#ids[c]!;
      for (let i = 0; i < ks.length; i++) yield [ks[i]!, is[i]!];
    }
  }
}
