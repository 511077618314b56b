import { unpack } from 'msgpackr';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { CODECS } from '../../src/codec/frames.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BookTick } from '../../src/core/schema.js';
import { BookChannels } from '../../src/fanout/book-channels.js';
import type { ChannelSpec } from '../../src/fanout/channels.js';
import { Hub } from '../../src/fanout/hub.js';
import type { HubSubscriber } from '../../src/fanout/hub.js';
import { VirtualClock } from './virtual-clock.js';

/**
 * A hub with book channels on a virtual clock, for unit tests of `book:BTC-USD`: `tick` publishes
 * a book tick on the bus; `subscribe` puts one MessagePack subscriber on the channel (snapshot
 * asked), whose items (batches flattened) collect in `items`. While `feed.joined` is false the
 * subscriber misses what its topic carries, as a paused slow consumer does.
 */
export function bookHub(depths: number[]) {
  const clock = new VirtualClock();
  const bus = new MemoryBus();
  const topics = new Map<string, (b: Uint8Array) => void>();
  const hub = new Hub({ bus, publisher: { publish: (t, b) => topics.get(t)?.(b) }, clock, upstreamReleaseMs: 0 });
  const books = new BookChannels({ registry: defaultRegistry(), depths, maxLevels: 100, syncRetryMs: 10 });
  books.bind(hub);
  let seq = 0;
  const tick = (t: Partial<BookTick>): void => {
    const full: BookTick = { k: 'book', sym: 'BTC-USD', src: 't', seq: ++seq, ep: 1, ts: 1n, rt: 1n, bids: [], asks: [], ...t };
    bus.publish(marketSubject('crypto', 'book', 'BTC-USD'), encodeTick(full));
  };
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- frames are read loosely in assertions
  const items: Record<string, any>[] = [];
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
  const flat = (f: Record<string, any>): Record<string, any>[] => (f.op === 'batch' ? f.items : [f]);
  const feed = { joined: true };
  const sub: HubSubscriber = {
    codec: CODECS.msgpack,
    closed: false,
    join: (t) => topics.set(t, (b) => feed.joined && items.push(...flat(unpack(b)))),
    leave: (t) => topics.delete(t),
    send: (b) => items.push(...flat(unpack(b))),
  };
  const subscribe = (depth: number, tier: number): ChannelSpec => {
    const r = books.resolve('book:BTC-USD', {}, { depth });
    if (!r?.ok) throw new Error('resolve book:BTC-USD');
    hub.subscribe(sub, r.spec, tier, { snapshot: true });
    return r.spec;
  };
  return { clock, hub, tick, items, feed, subscribe };
}
