import { describe, expect, it } from 'vitest';
import { bookHub } from '../helpers/book-hub.js';

/**
 * A subscriber that comes while the gateway's book is still syncing waits for the tier's first
 * emission as its snapshot. Updates that arrive before the book is live (buffered, nothing to
 * show yet) must not use up that first emission: the snapshot is a whole view with its depth.
 */
describe('book snapshot for a subscriber that came while the book was syncing', () => {
  it('is the whole view with depth, even when updates came before the book went live', () => {
    const { clock, tick, items, subscribe } = bookHub([5, 10]);
    subscribe(7, 100);
    // an update before any base: buffered, the book is not live and shows nothing
    tick({ bids: [[9, 2]] });
    clock.advance(150);
    expect(items).toEqual([]);
    // the provider's snapshot makes the book live
    tick({
      reset: true,
      bids: [
        [10, 1],
        [9, 1],
      ],
      asks: [[11, 1]],
    });
    clock.advance(150);
    expect(items[0]).toMatchObject({
      snapshot: true,
      d: {
        bids: [
          [10, 1],
          [9, 1],
        ],
        asks: [[11, 1]],
        depth: 10,
      },
    });
  });
});
