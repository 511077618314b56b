import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { OrderBook } from '../../src/book/order-book.js';
import type { BookLevel } from '../../src/protocol/book.js';

/**
 * A book keeps at most `maxLevels` levels a side, and sources send a level only when it changes:
 * a level it dropped is gone for good. Whatever the updates, each side must stay an exact top of
 * the true book (the same levels, in the same places), shorter if need be, never with a hole.
 */
const level = fc.tuple(fc.integer({ min: 1, max: 40 }), fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 9 }))) as fc.Arbitrary<BookLevel>;
const op = fc.record({
  reset: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  bids: fc.array(level, { maxLength: 6 }),
  asks: fc.array(level, { maxLength: 6 }),
});

function sorted(m: Map<number, number>, desc: boolean): BookLevel[] {
  return [...m].sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0]));
}

describe('OrderBook: a side that dropped levels never shows one beyond them', () => {
  it('each side is always a prefix of the true book (random updates and resets, 3-6 levels kept)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 6 }), fc.array(op, { minLength: 1, maxLength: 120 }), (max, ops) => {
        const book = new OrderBook(max);
        const truth = { bids: new Map<number, number>(), asks: new Map<number, number>() };
        for (const o of ops) {
          // a reset carries the whole book (no size 0)
          const bidsIn = o.reset ? o.bids.filter(([, s]) => s > 0) : o.bids;
          const asksIn = o.reset ? o.asks.filter(([, s]) => s > 0) : o.asks;
          if (o.reset) {
            truth.bids.clear();
            truth.asks.clear();
            book.reset(bidsIn, asksIn);
          } else book.apply(bidsIn, asksIn);
          for (const [p, s] of bidsIn)
            if (s === 0) truth.bids.delete(p);
            else truth.bids.set(p, s);
          for (const [p, s] of asksIn)
            if (s === 0) truth.asks.delete(p);
            else truth.asks.set(p, s);
          const bids = book.bids.all();
          const asks = book.asks.all();
          expect(bids).toEqual(sorted(truth.bids, true).slice(0, bids.length));
          expect(asks).toEqual(sorted(truth.asks, false).slice(0, asks.length));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('the example: a bid dropped at the bottom, better bids removed, then a change beyond it', () => {
    const book = new OrderBook(3);
    book.reset(
      [
        [10, 1],
        [9, 1],
        [8, 1],
      ],
      [],
    );
    book.apply([[11, 1]], []); // 8 is dropped (a fourth level)
    book.apply(
      [
        [11, 0],
        [10, 0],
      ],
      [],
    ); // the true book: 9, 8
    book.apply([[7, 2]], []); // true: 9, 8, 7; the book does not know 8 any more
    expect(book.bids.all()).toEqual([[9, 1]]);
    expect(book.bids.bound).toBe(9);
    book.reset([[5, 1]], []); // a reset knows the whole side again
    expect(book.bids.bound).toBeUndefined();
    book.apply([[4, 1]], []);
    expect(book.bids.all()).toEqual([
      [5, 1],
      [4, 1],
    ]);
  });

  it('applyKnown returns the levels it took: a copy that applies only those stays equal', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 120 }), fc.integer({ min: 0, max: 119 }), (ops, at) => {
        const source = new OrderBook(4);
        let copy: OrderBook | undefined;
        ops.forEach((o, i) => {
          if (i === at) {
            // a copy that starts from the source's levels (as a gateway from the stored book)
            copy = new OrderBook(4);
            copy.reset(source.bids.all(), source.asks.all());
          }
          if (o.reset) {
            const b = o.bids.filter(([, s]) => s > 0);
            const a = o.asks.filter(([, s]) => s > 0);
            source.reset(b, a);
            copy?.reset(b, a);
          } else {
            const kept = source.applyKnown(o.bids, o.asks);
            copy?.apply(kept.bids, kept.asks);
          }
          if (copy) expect(copy.view(4)).toEqual(source.view(4));
        });
      }),
      { numRuns: 300 },
    );
  });
});
