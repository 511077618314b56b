import { decimal, price } from '../sdk/decimal.js';

/**
 * One pair's level 2 order book as Kraken's Spot WebSocket v2 `book` channel describes it, and
 * the CRC32 checksum that proves it matches the exchange's. Pure (no I/O): the adapter feeds it
 * the parsed messages and emits what it returns.
 *
 * Doc sections (Kraken API reference, "Spot Websockets v2"):
 * [book] websocket-v2/book (subscribe, snapshot, update),
 * [checksum] guides "Spot Websockets (v2) Book Checksum" (maintaining the book, checksum calculation),
 * [instrument] websocket-v2/instrument (price_precision, qty_precision of each pair).
 */

/** Decimal places Kraken formats a pair's prices and quantities with [instrument: price_precision, qty_precision]. */
export interface BookPrecision {
  price: number;
  qty: number;
}

/** The subscription depths Kraken accepts [book: Subscribe Request, `depth`: 10, 25, 100, 500, 1000]. */
export const KRAKEN_BOOK_DEPTHS = [10, 25, 100, 500, 1000] as const;
export type KrakenBookDepth = (typeof KRAKEN_BOOK_DEPTHS)[number];

/** [price, qty] levels as the canonical book tick carries them (qty 0 removes the level). */
export type Level = [number, number];

/** One `data` item of a `book` message, parsed [book: Snapshot / Update]. */
export interface BookData {
  symbol: string;
  bids: Level[];
  asks: Level[];
  /** CRC32 of the top 10 levels after the message is applied [book: checksum] */
  checksum: number;
  /** RFC 3339 update time; the snapshot has none [book: Update, timestamp] */
  timestamp?: string;
  /** the decimal text each price and qty had in the message, by parsed value (see `rawBookNumbers`) */
  text: Map<number, string>;
}

const RAW_NUMBER = /("(?:price|qty)"\s*:\s*)(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/g;

/**
 * A book message's text with every `price` and `qty` number turned into a string of its exact
 * digits, to parse before `parseBookData`: the checksum is computed from the numbers as Kraken
 * wrote them, as the checksum guide advises ("parse price and qty fields using a decimal or string
 * decoder to preserve full precision"), not from the nearest double.
 */
export function rawBookNumbers(text: string): string {
  return text.replace(RAW_NUMBER, '$1"$2"');
}

/** Parse and check one `data` item of a book message; a malformed one throws naming the field. */
export function parseBookData(item: Record<string, unknown>): BookData {
  if (typeof item.symbol !== 'string') throw new RangeError(`book.symbol: ${JSON.stringify(item.symbol)} is not a pair`);
  const checksum = item.checksum;
  // [book: checksum] "CRC32 checksum of the top 10 bids and asks", an unsigned 32-bit integer
  if (typeof checksum !== 'number' || !Number.isInteger(checksum) || checksum < 0 || checksum > 0xffffffff)
    throw new RangeError(`book.checksum: ${JSON.stringify(checksum)} is not an unsigned 32-bit integer`);
  const text = new Map<number, string>();
  return {
    symbol: item.symbol,
    bids: levels(item.bids, 'book.bids', text),
    asks: levels(item.asks, 'book.asks', text),
    checksum,
    ...(typeof item.timestamp === 'string' ? { timestamp: item.timestamp } : {}),
    text,
  };
}

function levels(v: unknown, field: string, text: Map<number, string>): Level[] {
  // an update may carry only one side: the other is an empty array or absent [book: Update example]
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new RangeError(`${field}: not an array of {price, qty}`);
  return v.map((l: unknown, i) => {
    const o = (l ?? {}) as Record<string, unknown>;
    const qty = decimal(o.qty, `${field}[${i}].qty`);
    if (qty < 0) throw new RangeError(`${field}[${i}].qty: ${JSON.stringify(o.qty)} is negative`);
    const p = price(o.price, `${field}[${i}].price`);
    if (typeof o.price === 'string') text.set(p, o.price.trim());
    if (typeof o.qty === 'string') text.set(qty, o.qty.trim());
    return [p, qty];
  });
}

/** One side of a book: sizes by price, and the prices kept sorted best first (no sort per message). */
class BookSide {
  readonly #qty = new Map<number, number>();
  /** the price and qty text of a level as Kraken wrote them, when known */
  readonly #text = new Map<number, [string | undefined, string | undefined]>();
  /** best first: descending for bids, ascending for asks */
  readonly #prices: number[] = [];
  readonly #desc: boolean;

  constructor(desc: boolean) {
    this.#desc = desc;
  }

  get size(): number {
    return this.#prices.length;
  }

  get(p: number): number | undefined {
    return this.#qty.get(p);
  }

  /** where `p` is or would go in #prices */
  #index(p: number): number {
    let lo = 0;
    let hi = this.#prices.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const x = this.#prices[mid]!;
      if (this.#desc ? x > p : x < p) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** qty 0 removes the level */
  set(p: number, q: number, text?: ReadonlyMap<number, string>): void {
    if (q === 0) {
      if (!this.#qty.delete(p)) return;
      this.#text.delete(p);
      this.#prices.splice(this.#index(p), 1);
      return;
    }
    if (!this.#qty.has(p)) this.#prices.splice(this.#index(p), 0, p);
    this.#qty.set(p, q);
    if (text) this.#text.set(p, [text.get(p), text.get(q)]);
    else this.#text.delete(p);
  }

  clear(): void {
    this.#qty.clear();
    this.#text.clear();
    this.#prices.length = 0;
  }

  /** The checksum text of the top `n` levels [checksum: Algorithm, step 1]. */
  checksumText(n: number, precision: BookPrecision): string {
    let s = '';
    for (const p of this.#prices.slice(0, n)) {
      const [pt, qt] = this.#text.get(p) ?? [];
      s += checksumField(p, precision.price, pt) + checksumField(this.#qty.get(p)!, precision.qty, qt);
    }
    return s;
  }

  /** Drop the levels beyond `depth` (the worst ones); returns them as they were. */
  truncate(depth: number): Level[] {
    if (this.#prices.length <= depth) return [];
    const dropped = this.#prices.splice(depth).map((p): Level => [p, this.#qty.get(p)!]);
    for (const [p] of dropped) {
      this.#qty.delete(p);
      this.#text.delete(p);
    }
    return dropped;
  }

  levels(limit = Infinity): Level[] {
    return this.#prices.slice(0, limit).map((p) => [p, this.#qty.get(p)!]);
  }
}

export class KrakenBook {
  readonly depth: number;
  readonly #bids = new BookSide(true);
  readonly #asks = new BookSide(false);

  constructor(depth: number) {
    this.depth = depth;
  }

  /**
   * A snapshot replaces the book [book: Snapshot "contains the specified number of bids and
   * asks"]. Returns the whole book (best first), for a reset tick.
   */
  snapshot(bids: readonly Level[], asks: readonly Level[], text?: ReadonlyMap<number, string>): { bids: Level[]; asks: Level[] } {
    this.#bids.clear();
    this.#asks.clear();
    for (const [p, q] of bids) this.#bids.set(p, q, text);
    for (const [p, q] of asks) this.#asks.set(p, q, text);
    this.#bids.truncate(this.depth);
    this.#asks.truncate(this.depth);
    return { bids: this.levels('bids'), asks: this.levels('asks') };
  }

  /**
   * Apply an update's levels in order (the same price may appear several times: the last wins
   * [book: Update "updates should always be processed in sequence"]); qty 0 removes a level
   * [checksum: Maintaining the book]. Then truncate to the subscribed depth, because Kraken sends
   * no qty 0 for levels that fall out of scope [checksum: Maintaining the book]. Returns the
   * changed levels as new totals (0 = removed), including those truncated away, so that a book
   * built from the returned levels equals this one.
   */
  update(bids: readonly Level[], asks: readonly Level[], text?: ReadonlyMap<number, string>): { bids: Level[]; asks: Level[] } {
    return { bids: this.#apply(this.#bids, bids, text), asks: this.#apply(this.#asks, asks, text) };
  }

  /** Apply one side's levels, truncate it; the changed levels with their final size (0 = gone). */
  #apply(side: BookSide, levels: readonly Level[], text?: ReadonlyMap<number, string>): Level[] {
    const before = new Map<number, number>(); // the size before the message of every price it changes
    for (const [p, q] of levels) {
      if (!before.has(p)) before.set(p, side.get(p) ?? 0);
      side.set(p, q, text);
    }
    for (const [p, q] of side.truncate(this.depth)) if (!before.has(p)) before.set(p, q);
    const out: Level[] = [];
    for (const [p, was] of before) {
      const now = side.get(p) ?? 0;
      if (now !== was) out.push([p, now]);
    }
    return out;
  }

  /** Levels of one side, best first (bids high to low, asks low to high). */
  levels(side: 'bids' | 'asks', limit = Infinity): Level[] {
    return (side === 'bids' ? this.#bids : this.#asks).levels(limit);
  }

  /** [checksum: Checksum calculation] over the top 10 levels of each side: asks, then bids. */
  checksum(precision: BookPrecision): number {
    return crc32(this.#asks.checksumText(10, precision) + this.#bids.checksumText(10, precision));
  }
}

/**
 * [checksum: Checksum calculation] For the top 10 asks (price low to high) and then the top 10
 * bids (price high to low), each price and qty is written with the pair's precision, its
 * decimal point removed and its leading zeros stripped, price then qty; the concatenation of
 * asks then bids goes through CRC32, read as an unsigned 32-bit integer.
 */
export function bookChecksum(bids: readonly Level[], asks: readonly Level[], precision: BookPrecision): number {
  let s = '';
  for (const [p, q] of asks.slice(0, 10)) s += checksumField(p, precision.price) + checksumField(q, precision.qty);
  for (const [p, q] of bids.slice(0, 10)) s += checksumField(p, precision.price) + checksumField(q, precision.qty);
  return crc32(s);
}

/**
 * "45285.2" → "452852"; "0.00100000" → "100000" [checksum: Algorithm, step 1]: the value written
 * with `decimals` places, point removed, leading zeros stripped. With the `text` Kraken sent
 * (plain digits, at most `decimals` places) the digits are used as they are, padded with zeros,
 * so no digit is lost to a double; otherwise the number is formatted.
 */
export function checksumField(value: number, decimals: number, text?: string): string {
  let s: string | undefined;
  if (text !== undefined && /^\d+(\.\d*)?$/.test(text)) {
    const [int, frac = ''] = text.split('.') as [string, string?];
    if (frac.length <= decimals) s = int + frac.padEnd(decimals, '0');
  }
  return (s ?? value.toFixed(decimals).replace('.', '')).replace(/^0+/, '');
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE 802.3, the zlib one) of an ASCII string, unsigned. */
export function crc32(s: string): number {
  let c = 0xffffffff;
  for (let i = 0; i < s.length; i++) c = CRC_TABLE[(c ^ s.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
