import type { TickInput } from '../../feeds/sdk/adapter.js';

export type Book = { bids: Map<number, number>; asks: Map<number, number> };

/** The book a client rebuilds from the emitted book ticks of `sym` (reset replaces, size 0 removes). */
export function rebuild(ticks: readonly TickInput[], sym: string): Book {
  const book: Book = { bids: new Map(), asks: new Map() };
  for (const t of ticks) {
    if (t.k !== 'book' || t.sym !== sym) continue;
    if (t.reset) {
      book.bids.clear();
      book.asks.clear();
    }
    for (const [side, levels] of [
      ['bids', t.bids],
      ['asks', t.asks],
    ] as const) {
      for (const [p, q] of levels) {
        if (q === 0) book[side].delete(p);
        else book[side].set(p, q);
      }
    }
  }
  return book;
}

/** A side's levels best first. */
export const best = (m: Map<number, number>, side: 'bids' | 'asks') => [...m].sort(([a], [b]) => (side === 'bids' ? b - a : a - b));
