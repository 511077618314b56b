import { describe, expect, it } from 'vitest';
import { unpack } from 'msgpackr';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { CODECS } from '../../src/codec/frames.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BookTick } from '../../src/core/schema.js';
import { BookChannels } from '../../src/fanout/book-channels.js';
import { Hub } from '../../src/fanout/hub.js';
import type { HubSubscriber } from '../../src/fanout/hub.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * A subscriber that comes while the gateway's book is still syncing waits for the tier's first
 * emission as its snapshot. Updates that arrive before the book is live (buffered, nothing to
 * show yet) must not use up that first emission: the snapshot is a whole view with its depth.
 */
describe('book snapshot for a subscriber that came while the book was syncing', () => {
  it('is the whole view with depth, even when updates came before the book went live', () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus();
    const topics = new Map<string, (b: Uint8Array) => void>();
    const hub = new Hub({ bus, publisher: { publish: (t, b) => topics.get(t)?.(b) }, clock, upstreamReleaseMs: 0 });
    const books = new BookChannels({ registry: defaultRegistry(), depths: [5, 10], maxLevels: 100, syncRetryMs: 10 });
    books.bind(hub);
    let seq = 0;
    const tick = (t: Partial<BookTick>): void => {
      const full: BookTick = { k: 'book', sym: 'BTC-USD', src: 't', seq: ++seq, ep: 1, ts: 1n, rt: 1n, bids: [], asks: [], ...t };
      bus.publish(marketSubject('crypto', 'book', 'BTC-USD'), encodeTick(full));
    };
    const flat = (f: Record<string, any>): Record<string, any>[] => (f.op === 'batch' ? f.items : [f]);
    const items: Record<string, any>[] = [];
    const sub: HubSubscriber = {
      codec: CODECS.msgpack,
      closed: false,
      join: (t) => topics.set(t, (b) => items.push(...flat(unpack(b)))),
      leave: (t) => topics.delete(t),
      send: (b) => items.push(...flat(unpack(b))),
    };
    const r = books.resolve('book:BTC-USD', {}, { depth: 7 });
    if (!r?.ok) throw new Error('resolve');
    hub.subscribe(sub, r.spec, 100, { snapshot: true });
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
