import { encodeTick } from '../codec/tick-codec.js';
import type { BookTick } from '../core/schema.js';
import { nsToMs } from '../core/time.js';
import { isLevel, OrderBook } from './order-book.js';

export interface PublisherBooksOptions {
  /** price levels kept per side */
  maxLevels: number;
  /** how often changed books are written whole to the last-value store, ms */
  snapshotMs: number;
}

/** Store key of a symbol's whole book (a `reset` BookTick, MessagePack like every bus payload). */
export function bookStoreKey(sym: string): string {
  return `book:${sym}`;
}

/** A book tick as an adapter hands it in: every level [price > 0, size >= 0], finite. */
export function validBookInput(t: { bids?: unknown; asks?: unknown }): boolean {
  return Array.isArray(t.bids) && Array.isArray(t.asks) && t.bids.every(isLevel) && t.asks.every(isLevel);
}

interface Entry {
  readonly book: OrderBook;
  last: BookTick;
  dirty: boolean;
}

/**
 * The ingest stage's copy of every symbol's order book. Each book tick the publisher sends on the
 * bus is applied here too, and every `snapshotMs` each changed book is written whole to the
 * last-value store as a `reset` tick carrying the (ep, seq) of the last tick it includes. A
 * gateway that starts a book takes that snapshot and the bus updates after its seq, the same
 * snapshot-and-buffer procedure providers document for their own depth streams.
 */
export class PublisherBooks {
  readonly #books = new Map<string, Entry>();
  readonly #opts: PublisherBooksOptions;
  readonly #put: ((key: string, payload: Uint8Array) => void) | undefined;
  readonly #timer: NodeJS.Timeout | undefined;

  constructor(opts: Partial<PublisherBooksOptions>, put: ((key: string, payload: Uint8Array) => void) | undefined) {
    this.#opts = { maxLevels: opts.maxLevels ?? 1000, snapshotMs: opts.snapshotMs ?? 500 };
    this.#put = put;
    if (put && this.#opts.snapshotMs > 0) {
      this.#timer = setInterval(() => this.flush(), this.#opts.snapshotMs);
      this.#timer.unref();
    }
  }

  /**
   * Apply a sequenced book tick (validated by validBookInput), before it goes on the bus. An
   * update's levels beyond what the book knows (a side that dropped levels past `maxLevels`, see
   * BookSide) are taken out of `tick.bids` / `tick.asks`: gateways apply exactly the levels this
   * book took, so a gateway that started from a stored copy of it stays equal to it.
   */
  apply(tick: BookTick): void {
    let e = this.#books.get(tick.sym);
    if (!e) {
      e = { book: new OrderBook(this.#opts.maxLevels), last: tick, dirty: false };
      this.#books.set(tick.sym, e);
    }
    if (tick.reset) e.book.reset(tick.bids, tick.asks);
    else {
      const kept = e.book.applyKnown(tick.bids, tick.asks);
      if (kept.bids.length !== tick.bids.length) tick.bids = kept.bids;
      if (kept.asks.length !== tick.asks.length) tick.asks = kept.asks;
    }
    e.book.t = nsToMs(tick.ts);
    e.last = tick;
    e.dirty = true;
  }

  get(sym: string): OrderBook | undefined {
    return this.#books.get(sym)?.book;
  }

  /** The whole book of `sym` as a reset tick with the (ep, seq) of the last tick applied. */
  snapshot(sym: string): BookTick | undefined {
    const e = this.#books.get(sym);
    if (!e) return undefined;
    const { last, book } = e;
    return { k: 'book', sym, src: last.src, seq: last.seq, ep: last.ep, ts: last.ts, rt: last.rt, reset: true, bids: book.bids.all(), asks: book.asks.all() };
  }

  /** Write every changed book to the store now (also runs every snapshotMs). */
  flush(): void {
    if (!this.#put) return;
    for (const [sym, e] of this.#books) {
      if (!e.dirty) continue;
      e.dirty = false;
      this.#put(bookStoreKey(sym), encodeTick(this.snapshot(sym)!));
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
