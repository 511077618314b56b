import type { BookLevel } from '../protocol/book.js';

/**
 * One side of an order book: price levels kept sorted best first in two parallel arrays (bids
 * highest first, asks lowest first), so the top N is a prefix and a change is a binary search
 * plus, for a new or removed level, one array move. At most `maxLevels` levels are kept: the
 * worst go first (they are far outside any view a client can ask for).
 *
 * A level dropped that way is forgotten, and so is every level beyond it that does not change
 * again: sources send a level only when it changes. From then on the side is known only down to
 * its worst kept price (`bound`), and levels beyond it are ignored; otherwise, once better levels
 * go away, a level beyond that happened to change would show up next to holes (levels that exist
 * but were forgotten). The side shows fewer levels instead, never a wrong one, until a reset.
 */
export class BookSide {
  readonly prices: number[] = [];
  readonly sizes: number[] = [];
  /** the worst price this side still knows once it has dropped levels (beyond it: unknown), else undefined */
  bound: number | undefined;
  constructor(
    readonly descending: boolean,
    readonly maxLevels: number,
  ) {}

  get length(): number {
    return this.prices.length;
  }

  /** index of `price`, or of where it would go */
  #search(price: number): number {
    const a = this.prices;
    let lo = 0;
    let hi = a.length;
    const desc = this.descending;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid]!;
      if (desc ? v > price : v < price) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Set a level's size; 0 removes it (removing a level that is not there is fine). Returns false
   * when the level is beyond what the side knows (`bound`, or a new level past a full side): it
   * is not kept, and a copy of this book must not take it either.
   */
  set(price: number, size: number): boolean {
    const b = this.bound;
    if (b !== undefined && (this.descending ? price < b : price > b)) return false;
    const i = this.#search(price);
    const found = i < this.prices.length && this.prices[i] === price;
    if (size === 0) {
      if (found) {
        this.prices.splice(i, 1);
        this.sizes.splice(i, 1);
      }
      return true;
    }
    if (found) {
      this.sizes[i] = size;
      return true;
    }
    if (i >= this.maxLevels) {
      // beyond the kept depth of a full side: from here on the side is known down to its worst level
      this.bound = this.prices[this.prices.length - 1];
      return false;
    }
    this.prices.splice(i, 0, price);
    this.sizes.splice(i, 0, size);
    if (this.prices.length > this.maxLevels) {
      this.prices.length = this.maxLevels;
      this.sizes.length = this.maxLevels;
      this.bound = this.prices[this.maxLevels - 1];
    }
    return true;
  }

  get(price: number): number | undefined {
    const i = this.#search(price);
    return i < this.prices.length && this.prices[i] === price ? this.sizes[i] : undefined;
  }

  clear(): void {
    this.prices.length = 0;
    this.sizes.length = 0;
    this.bound = undefined;
  }

  /** The best `n` levels. */
  top(n: number): BookLevel[] {
    const k = Math.min(n, this.prices.length);
    const out: BookLevel[] = new Array(k);
    for (let i = 0; i < k; i++) out[i] = [this.prices[i]!, this.sizes[i]!];
    return out;
  }

  all(): BookLevel[] {
    return this.top(this.prices.length);
  }
}

/** The best levels of both sides: what one subscription depth shows. */
export interface BookView {
  bids: BookLevel[];
  asks: BookLevel[];
}

/** Valid level: finite positive price, finite size >= 0. */
export function isLevel(x: unknown): x is BookLevel {
  return (
    Array.isArray(x) &&
    x.length >= 2 &&
    typeof x[0] === 'number' &&
    typeof x[1] === 'number' &&
    Number.isFinite(x[0]) &&
    x[0] > 0 &&
    Number.isFinite(x[1]) &&
    x[1] >= 0
  );
}

/** A full order book (both sides), kept to `maxLevels` per side. */
export class OrderBook {
  readonly bids: BookSide;
  readonly asks: BookSide;
  /** source time (ms) of the last change */
  t = 0;

  constructor(readonly maxLevels: number) {
    this.bids = new BookSide(true, maxLevels);
    this.asks = new BookSide(false, maxLevels);
  }

  /** Set each listed level (size 0 removes). */
  apply(bids: readonly BookLevel[], asks: readonly BookLevel[]): void {
    for (const [p, s] of bids) this.bids.set(p, s);
    for (const [p, s] of asks) this.asks.set(p, s);
  }

  /**
   * Like `apply`, and returns the levels the book took: those beyond what a side knows (see
   * BookSide) are left out, so a copy of this book that applies only the returned levels stays
   * equal to it, whatever it knows itself.
   */
  applyKnown(bids: readonly BookLevel[], asks: readonly BookLevel[]): BookView {
    return { bids: bids.filter(([p, s]) => this.bids.set(p, s)), asks: asks.filter(([p, s]) => this.asks.set(p, s)) };
  }

  /** Replace the whole book. */
  reset(bids: readonly BookLevel[], asks: readonly BookLevel[]): void {
    this.bids.clear();
    this.asks.clear();
    this.apply(bids, asks);
  }

  view(depth: number): BookView {
    return { bids: this.bids.top(depth), asks: this.asks.top(depth) };
  }

  get levels(): number {
    return this.bids.length + this.asks.length;
  }
}

/**
 * The levels that turn view `prev` into view `next` (both best first on each side): every level
 * of `next` that is new or has another size, and every level of `prev` that is gone, with size 0.
 * Applying the result to `prev` gives exactly `next`. Bids compare highest first, asks lowest.
 */
export function diffSide(prev: readonly BookLevel[], next: readonly BookLevel[], descending: boolean): BookLevel[] {
  const out: BookLevel[] = [];
  let i = 0;
  let j = 0;
  while (i < prev.length || j < next.length) {
    const a = prev[i];
    const b = next[j];
    if (a && b && a[0] === b[0]) {
      if (a[1] !== b[1]) out.push([b[0], b[1]]);
      i++;
      j++;
    } else if (b && (!a || (descending ? b[0] > a[0] : b[0] < a[0]))) {
      out.push([b[0], b[1]]);
      j++;
    } else {
      out.push([a![0], 0]);
      i++;
    }
  }
  return out;
}

export function diffView(prev: BookView, next: BookView): BookView {
  return { bids: diffSide(prev.bids, next.bids, true), asks: diffSide(prev.asks, next.asks, false) };
}
