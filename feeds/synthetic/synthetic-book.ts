import type { BookLevel } from '../../src/protocol/book.js';
import { diffView, OrderBook } from '../../src/book/order-book.js';
import type { BookView } from '../../src/book/order-book.js';
import type { TickInput } from '../sdk/adapter.js';
import { Prng } from './prng.js';

export interface SyntheticBookOptions {
  /** levels per side */
  levels: number;
  seed: number;
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/**
 * A plausible order book around the synthetic quotes: the quote's bid and ask are the best levels
 * (with the quote's sizes), and below the bid and above the ask levels sit on a fixed price grid
 * (a few price increments, about 1 bp of the mid) with sizes that grow away from the touch and
 * change now and then. The first tick of a symbol is a `reset` with the whole book; each later
 * quote gives one tick with only the levels that changed. Its own random stream, so the market
 * model's sequence is the same with books on or off.
 */
export class SyntheticBooks {
  readonly #prng: Prng;
  readonly #levels: number;
  readonly #books = new Map<string, { book: OrderBook; step: number }>();

  constructor(opts: SyntheticBookOptions) {
    this.#prng = new Prng(opts.seed ^ 0x5bd1e995);
    this.#levels = opts.levels;
  }

  /** The book tick that goes with quote `q` (price precision `dec`), or undefined without a change. */
  onQuote(q: { sym: string; bp?: number; ap?: number; bs?: number; as?: number; ts: bigint }, dec: number): TickInput | undefined {
    if (q.bp === undefined || q.ap === undefined) return undefined;
    let e = this.#books.get(q.sym);
    const fresh = !e;
    if (!e) {
      const tick = 10 ** -dec;
      const mid = (q.bp + q.ap) / 2;
      const step = round(Math.max(tick, Math.ceil((mid * 0.0001) / tick) * tick), dec);
      e = { book: new OrderBook(this.#levels * 4), step };
      this.#books.set(q.sym, e);
    }
    const { book, step } = e;
    const want: BookView = {
      bids: this.#side(book, q.bp, q.bs, -step, dec, true),
      asks: this.#side(book, q.ap, q.as, step, dec, false),
    };
    const delta = diffView(book.view(this.#levels * 4), want);
    book.reset(want.bids, want.asks);
    if (fresh) return { k: 'book', sym: q.sym, reset: true, bids: want.bids, asks: want.asks, ts: q.ts };
    if (delta.bids.length + delta.asks.length === 0) return undefined;
    return { k: 'book', sym: q.sym, bids: delta.bids, asks: delta.asks, ts: q.ts };
  }

  #side(book: OrderBook, best: number, bestSize: number | undefined, dir: number, dec: number, bids: boolean): BookLevel[] {
    const p = this.#prng;
    const side = bids ? book.bids : book.asks;
    const out: BookLevel[] = [[best, bestSize && bestSize > 0 ? bestSize : round(0.1 + p.next(), 4)]];
    // the grid: multiples of |dir| strictly behind the best price
    const stepAbs = Math.abs(dir);
    let price = bids ? Math.floor(best / stepAbs - 1e-9) * stepAbs : Math.ceil(best / stepAbs + 1e-9) * stepAbs;
    for (let k = 1; k < this.#levels; k++) {
      const px = round(price, dec);
      if (bids ? px < best : px > best) {
        const had = side.get(px);
        const size = had !== undefined && p.next() > 0.05 ? had : round((0.2 + p.next() * 2) * (1 + k / 5), 4);
        out.push([px, size]);
      }
      price += dir;
    }
    return out;
  }
}
