/**
 * Order books on the wire (`book:SYMBOL`, docs/protocol.md#order-books-booksymbol): the payload
 * shape, the checksum, and a client-side book that rebuilds the server's view from a snapshot and
 * its updates. Server and clients use this one definition, so they compute the same checksum.
 */

/** One price level: [price, size]. In an update, size 0 removes the level. */
export type BookLevel = [price: number, size: number];

/** `d` of a `book:SYM` item: a snapshot (the frame says `snapshot: true`) or an update. */
export interface BookPayload {
  /** best first (highest bid first) */
  bids: BookLevel[];
  /** best first (lowest ask first) */
  asks: BookLevel[];
  /** CRC-32 of the book after this item, see bookChecksum */
  cs: number;
  /** levels per side of this subscription's view (snapshots only) */
  depth?: number;
  /** source time of the latest book change, ms since the epoch */
  t?: number;
  src?: string;
  /** delayed data: the delay in ms (delayed entitlements) */
  delayed?: number;
}

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE 802.3, the zlib/PNG one) of an ASCII string, as an unsigned 32-bit integer. */
export function crc32(text: string): number {
  const t = (crcTable ??= new Uint32Array(256).map((_, n) => {
    for (let k = 0; k < 8; k++) n = n & 1 ? 0xedb88320 ^ (n >>> 1) : n >>> 1;
    return n;
  }));
  let c = -1;
  for (let i = 0; i < text.length; i++) c = t[(c ^ text.charCodeAt(i)) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * The book checksum: CRC-32 of the text `BIDS;ASKS`, where each side lists its levels best first
 * as `price,size` joined by `,`, numbers written as JavaScript's `String(number)` writes them
 * (shortest round-trip form, e.g. `67250.5,0.015`): what `Array.prototype.join` gives. Example:
 * bids [[10,1],[9.5,2]], asks [[10.5,3]] give the text `10,1,9.5,2;10.5,3`.
 */
export function bookChecksum(bids: readonly (readonly [number, number])[], asks: readonly (readonly [number, number])[]): number {
  return crc32(bids.join() + ';' + asks.join());
}

/**
 * A client's copy of one `book:SYM` subscription. Feed it every item of the channel in order:
 * a snapshot replaces the book, an update sets each listed level (size 0 removes it). `apply`
 * returns false when the item does not follow on (a `seq` gap) or the checksum does not match:
 * then resubscribe, and the next snapshot starts a fresh book.
 */
export class LocalBook {
  readonly #bids = new Map<number, number>();
  readonly #asks = new Map<number, number>();
  /** seq of the last applied item; -1 before the snapshot */
  seq = -1;
  depth = 0;

  /** Apply one item (`seq`, `d`, and whether it is a snapshot). */
  apply(item: { seq: number | undefined; d: unknown; snapshot?: boolean }): boolean {
    const d = item.d as BookPayload;
    if (item.seq === undefined) return false;
    if (item.snapshot) {
      this.#bids.clear();
      this.#asks.clear();
      if (d.depth !== undefined) this.depth = d.depth;
    } else if (this.seq < 0 || item.seq !== this.seq + 1) {
      return false;
    }
    setLevels(this.#bids, d.bids);
    setLevels(this.#asks, d.asks);
    this.seq = item.seq;
    return this.checksum() === d.cs;
  }

  /** Bids best (highest) first. */
  bids(): BookLevel[] {
    return [...this.#bids].sort((a, b) => b[0] - a[0]);
  }

  /** Asks best (lowest) first. */
  asks(): BookLevel[] {
    return [...this.#asks].sort((a, b) => a[0] - b[0]);
  }

  checksum(): number {
    return bookChecksum(this.bids(), this.asks());
  }

  /** Forget the book (before resubscribing). */
  reset(): void {
    this.#bids.clear();
    this.#asks.clear();
    this.seq = -1;
  }
}

function setLevels(side: Map<number, number>, levels: readonly BookLevel[]): void {
  for (const [p, s] of levels) {
    if (s === 0) side.delete(p);
    else side.set(p, s);
  }
}
