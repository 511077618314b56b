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
  book: OrderBook;
  last: BookTick;
  dirty: boolean;
}

/** The book one feed is sending for a symbol while another feed's is the one published (failover). */
interface Standby {
  readonly book: OrderBook;
  /** a whole book (a reset) has been applied: the book is the feed's */
  synced: boolean;
}

/** A book tick as a feed hands it in (before sequencing). */
type BookInput = Pick<BookTick, 'sym' | 'reset' | 'bids' | 'asks' | 'ts'>;

/**
 * The ingest stage's copy of every symbol's order book. Each book tick the publisher sends on the
 * bus is applied here too, and every `snapshotMs` each changed book is written whole to the
 * last-value store as a `reset` tick carrying the (ep, seq) of the last tick it includes. A
 * gateway that starts a book takes that snapshot and the bus updates after its seq, the same
 * snapshot-and-buffer procedure providers document for their own depth streams.
 */
export class PublisherBooks {
  readonly #books = new Map<string, Entry>();
  /** per symbol, per feed: the books of feeds that send one but are not the symbol's source now */
  readonly #standby = new Map<string, Map<string, Standby>>();
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

  /**
   * A book tick of a feed that does not serve the symbol now (a failover standby): it is not
   * published, but followed, so that the feed's whole book is known when it takes the symbol over
   * (`switchTo`). The feed that was published until now starts from the book as published.
   */
  follow(src: string, t: BookInput): void {
    let m = this.#standby.get(t.sym);
    if (!m) this.#standby.set(t.sym, (m = new Map()));
    let s = m.get(src);
    if (!s) {
      const e = this.#books.get(t.sym);
      s = e && e.last.src === src ? { book: copyOf(e.book), synced: true } : { book: new OrderBook(this.#opts.maxLevels), synced: false };
      m.set(src, s);
    }
    if (t.reset) {
      s.book.reset(t.bids, t.asks);
      s.synced = true;
    } else s.book.apply(t.bids, t.asks);
  }

  /**
   * Before a book tick of `src` is sequenced: whether it starts a new source for its symbol (the
   * failover selector switched it, in a new epoch `ep`). Book ticks are changes to the book of the
   * feed that sends them, so the first one of the new source is published as that feed's whole
   * book (a reset, from what `follow` kept), never as changes to the book of the feed it replaces.
   * Returns the tick to publish instead (a reset), `false` when the new source's whole book is not
   * known yet (nothing is published until its next reset), or undefined for no switch.
   */
  switchTo(src: string, t: BookInput, ep: number): BookInput | false | undefined {
    const e = this.#books.get(t.sym);
    if (!e || e.last.src === src || e.last.ep === ep) return undefined;
    // the new source's book as followed, with this tick in it (a source first seen here starts empty)
    this.follow(src, t);
    const m = this.#standby.get(t.sym)!;
    const s = m.get(src)!;
    if (!s.synced) return false;
    // the feed replaced goes on standby with the book it had (its later ticks go there)
    const old = e.last.src;
    if (old !== undefined && !m.has(old)) m.set(old, { book: e.book, synced: true });
    m.delete(src);
    e.book = s.book;
    return { sym: t.sym, reset: true, bids: s.book.bids.all(), asks: s.book.asks.all(), ts: t.ts };
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

/** A copy of a book, with what each side knows (its bound). */
function copyOf(b: OrderBook): OrderBook {
  const c = new OrderBook(b.maxLevels);
  c.reset(b.bids.all(), b.asks.all());
  c.bids.bound = b.bids.bound;
  c.asks.bound = b.asks.bound;
  c.t = b.t;
  return c;
}
