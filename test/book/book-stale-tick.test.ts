import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { DELAYED_PREFIX } from '../../src/bus/private-subjects.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { CODECS } from '../../src/codec/frames.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BookTick } from '../../src/core/schema.js';
import { BookChannels } from '../../src/fanout/book-channels.js';
import { Hub } from '../../src/fanout/hub.js';
import type { HubSubscriber } from '../../src/fanout/hub.js';
import { bookStoreKey } from '../../src/book/publisher-books.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A shared book started from the stored book (ep, seq S) can still be handed bus ticks of seq <= S
 * afterwards: ticks in flight while the store was read, and, for a delayed book, delayed ticks that
 * arrive a little after the stored book's hold ended. They are already in the book: they must be
 * skipped, not taken for a gap. A gap restarts the sync, which for a delayed book waits a whole
 * `auth.delayMs` again with the book frozen.
 */
describe('book channels: ticks the base book already holds', () => {
  const setup = (delayed: boolean, delayMs: number) => {
    const bus = new MemoryBus();
    const store = new MemoryLastValueStore();
    const hub = new Hub({ bus, publisher: { publish: () => undefined }, upstreamReleaseMs: 0 });
    const books = new BookChannels({
      registry: defaultRegistry(),
      store,
      depths: [10],
      maxLevels: 100,
      syncRetryMs: 10,
      access: () => (delayed ? 'delayed' : 'realtime'),
      delayMs,
    });
    books.bind(hub);
    const subject = (delayed ? DELAYED_PREFIX : '') + marketSubject('crypto', 'book', 'BTC-USD');
    const tick = (t: Partial<BookTick>): BookTick => ({ k: 'book', sym: 'BTC-USD', src: 't', seq: 1, ep: 1, ts: 1n, rt: 1n, bids: [], asks: [], ...t });
    const sub: HubSubscriber = { codec: CODECS.json, closed: false, join: () => undefined, leave: () => undefined, send: () => undefined };
    const subscribe = (): void => {
      const r = books.resolve('book:BTC-USD', {}, { depth: 10 });
      if (!r?.ok) throw new Error('resolve');
      hub.subscribe(sub, r.spec, 0, { snapshot: true });
    };
    return { bus, store, hub, books, subject, tick, subscribe };
  };

  for (const delayed of [false, true]) {
    it(`${delayed ? 'delayed' : 'real time'}: a late tick of seq <= the stored book's is skipped, and the next one applies at once`, async () => {
      const { bus, store, hub, books, subject, tick, subscribe } = setup(delayed, delayed ? 50 : 0);
      // the stored book: every tick up to seq 5 of epoch 1
      store.put(
        bookStoreKey('BTC-USD'),
        encodeTick(
          tick({
            seq: 5,
            reset: true,
            bids: [
              [100, 1],
              [99, 2],
            ],
            asks: [[101, 1]],
          }),
        ),
      );
      subscribe();
      const book = await waitFor(() => {
        const b = books.bookOf(subject);
        return b && b.bids.length === 2 ? b : undefined;
      }, 'the shared book started from the stored book');
      expect(books.stats.resyncs).toBe(0);
      // seq 4 and 5 arrive late: the stored book holds them already (100 was removed by 4, then re-added)
      bus.publish(subject, encodeTick(tick({ seq: 4, bids: [[100, 0]] })));
      bus.publish(subject, encodeTick(tick({ seq: 5, bids: [[100, 1]] })));
      // seq 6 follows the stored book: it applies now (the bus delivers synchronously)
      bus.publish(subject, encodeTick(tick({ seq: 6, asks: [[101.5, 3]] })));
      expect(book.asks.all()).toEqual([
        [101, 1],
        [101.5, 3],
      ]);
      expect(book.bids.all()).toEqual([
        [100, 1],
        [99, 2],
      ]);
      expect(books.stats.resyncs).toBe(0);
      hub.close();
    });
  }
  it('a gap among the updates buffered behind the stored book starts the sync again by itself, with no further update', async () => {
    const { bus, store, hub, books, subject, tick, subscribe } = setup(false, 0);
    const stored = (seq: number, asks: BookTick['asks']): void =>
      store.put(bookStoreKey('BTC-USD'), encodeTick(tick({ seq, reset: true, bids: [[100, 1]], asks })));
    stored(5, [[101, 1]]);
    subscribe();
    // before the stored book is read: 6 comes, 7 is lost on the bus, 8 comes; then the symbol is quiet
    bus.publish(subject, encodeTick(tick({ seq: 6, asks: [[102, 2]] })));
    bus.publish(subject, encodeTick(tick({ seq: 8, asks: [[104, 4]] })));
    await waitFor(() => (books.stats.resyncs === 1 ? true : undefined), 'the gap between 6 and 8 found');
    // the ingest stage stores its book, which includes 7 and 8
    stored(8, [
      [101, 1],
      [102, 2],
      [103, 3],
      [104, 4],
    ]);
    const book = books.bookOf(subject)!;
    await waitFor(() => (book.asks.length === 4 ? true : undefined), 'the book synced again from the stored book');
    // and it is live: the next update applies at once
    bus.publish(subject, encodeTick(tick({ seq: 9, asks: [[101, 0]] })));
    expect(book.asks.all()).toEqual([
      [102, 2],
      [103, 3],
      [104, 4],
    ]);
    hub.close();
  });
});
