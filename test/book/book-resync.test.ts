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
import { LocalBook } from '../../src/protocol/book.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * A book subscriber that was paused (slow consumer) is resynced with a new snapshot: Hub.current
 * serves the tier's last emitted view flagged as a snapshot with the tier's seq (the connection
 * sends it as such), and the updates after it continue that view.
 */
describe('book resync after a slow-consumer pause', () => {
  it('Hub.current gives a snapshot the next updates continue', () => {
    const registry = defaultRegistry();
    const clock = new VirtualClock();
    const bus = new MemoryBus();
    const topics = new Map<string, (b: Uint8Array) => void>();
    const hub = new Hub({ bus, publisher: { publish: (t, b) => topics.get(t)?.(b) }, clock, upstreamReleaseMs: 0 });
    const books = new BookChannels({ registry, depths: [5], maxLevels: 100, syncRetryMs: 10 });
    books.bind(hub);
    let seq = 0;
    const tick = (t: Partial<BookTick>): void => {
      const full: BookTick = { k: 'book', sym: 'BTC-USD', src: 't', seq: ++seq, ep: 1, ts: 1n, rt: 1n, bids: [], asks: [], ...t };
      bus.publish(marketSubject('crypto', 'book', 'BTC-USD'), encodeTick(full));
    };
    const items: Record<string, any>[] = [];
    let joined = true;
    const sub: HubSubscriber = {
      codec: CODECS.msgpack,
      closed: false,
      join: (t) => topics.set(t, (b) => joined && items.push(...flat(unpack(b)))),
      leave: (t) => topics.delete(t),
      send: (b) => items.push(...flat(unpack(b))),
    };
    const flat = (f: Record<string, any>): Record<string, any>[] => (f.op === 'batch' ? f.items : [f]);
    const r = books.resolve('book:BTC-USD', {}, { depth: 5 });
    if (!r?.ok) throw new Error('resolve');
    hub.subscribe(sub, r.spec, 100, { snapshot: true });
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
    joined = false;
    tick({
      bids: [
        [10, 0],
        [8, 3],
      ],
    });
    clock.advance(150);
    tick({ asks: [[11, 2]] });
    clock.advance(150);
    const cur = hub.current(r.spec.key, 100)!;
    expect(cur.snapshot).toBe(true);
    expect(cur.d).toMatchObject({
      bids: [
        [9, 1],
        [8, 3],
      ],
      asks: [[11, 2]],
    });
    // resync: the catch-up snapshot, then live again
    joined = true;
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
