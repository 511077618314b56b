import { describe, expect, it } from 'vitest';
import { LocalBook } from '../../src/protocol/book.js';
import { bookHub } from '../helpers/book-hub.js';

/**
 * A book subscriber that was paused (slow consumer) is resynced with a new snapshot: Hub.current
 * serves the tier's last emitted view flagged as a snapshot with the tier's seq (the connection
 * sends it as such), and the updates after it continue that view.
 */
describe('book resync after a slow-consumer pause', () => {
  it('Hub.current gives a snapshot the next updates continue', () => {
    const { clock, hub, tick, items, feed, subscribe } = bookHub([5]);
    const spec = subscribe(5, 100);
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
        depth: 5,
      },
    });
    // paused: updates go out but this subscriber misses them
    feed.joined = false;
    tick({
      bids: [
        [10, 0],
        [8, 3],
      ],
    });
    clock.advance(150);
    tick({ asks: [[11, 2]] });
    clock.advance(150);
    const cur = hub.current(spec.key, 100)!;
    expect(cur.snapshot).toBe(true);
    expect(cur.d).toMatchObject({
      bids: [
        [9, 1],
        [8, 3],
      ],
      asks: [[11, 2]],
    });
    // resync: the catch-up snapshot, then live again
    feed.joined = true;
    const client = new LocalBook();
    expect(client.apply({ seq: cur.seq, d: cur.d, snapshot: true })).toBe(true);
    tick({ bids: [[9.5, 4]] });
    clock.advance(150);
    const next = items.at(-1)!;
    expect(next.seq).toBe(cur.seq + 1);
    expect(client.apply(next as never)).toBe(true);
    expect(client.bids()).toEqual([
      [9.5, 4],
      [9, 1],
      [8, 3],
    ]);
    hub.close();
  });
});
