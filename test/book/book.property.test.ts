import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { unpack } from 'msgpackr';
import type { Bus, BusHandler } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { CODECS } from '../../src/codec/frames.js';
import type { FrameCodec } from '../../src/codec/frames.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { diffView, OrderBook } from '../../src/book/order-book.js';
import type { BookView } from '../../src/book/order-book.js';
import { BookChannels } from '../../src/fanout/book-channels.js';
import { Hub } from '../../src/fanout/hub.js';
import type { HubSubscriber, TopicPublisher } from '../../src/fanout/hub.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { bookChecksum, LocalBook } from '../../src/protocol/book.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * Order books under any sequence of book updates, provider resets, lost bus messages,
 * subscribes at any depth and throttle, and clock advances (virtual clock, real hub, real
 * publisher and store):
 * - every item a client gets carries the checksum of the server's view at that moment, and the
 *   client's rebuilt book matches it (so client book == server book at every emission);
 * - seq is contiguous from the snapshot on;
 * - once the windows have gone out, every client's book is exactly the top `depth` levels of the
 *   publisher's book (which the gateway's shared book follows, through the store after a gap).
 */
type Frame = Record<string, any>;
const SYM = 'BTC-USD';

class Topics implements TopicPublisher {
  readonly topics = new Map<string, Set<Sub>>();
  publish(topic: string, bytes: Uint8Array): void {
    for (const s of this.topics.get(topic) ?? []) s.send(bytes);
  }
}

class Sub implements HubSubscriber {
  readonly book = new LocalBook();
  readonly failures: string[] = [];
  items = 0;
  closed = false;
  constructor(
    readonly topics: Topics,
    readonly codec: FrameCodec,
  ) {}
  join(topic: string): void {
    let set = this.topics.topics.get(topic);
    if (!set) this.topics.topics.set(topic, (set = new Set()));
    set.add(this);
  }
  leave(topic: string): void {
    this.topics.topics.get(topic)?.delete(this);
  }
  send(bytes: Uint8Array): void {
    const f = (this.codec.encoding === 'json' ? JSON.parse(Buffer.from(bytes).toString()) : unpack(bytes)) as Frame;
    for (const item of f.op === 'batch' ? (f.items as Frame[]) : [f]) {
      this.items++;
      if (!this.book.apply(item as { seq: number; d: unknown; snapshot?: boolean }))
        this.failures.push(`seq ${item.seq}: cs ${this.book.checksum()} != ${item.d.cs}`);
    }
  }
}

/** A bus that can lose the next message (as NATS core may). */
class LossyBus implements Bus {
  drop = 0;
  constructor(readonly inner: MemoryBus) {}
  get connected(): boolean {
    return true;
  }
  publish(subject: string, payload: Uint8Array): void {
    if (this.drop > 0) {
      this.drop--;
      return;
    }
    this.inner.publish(subject, payload);
  }
  subscribe(pattern: string, h: BusHandler) {
    return this.inner.subscribe(pattern, h);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

type Op =
  | { op: 'update'; bids: [number, number][]; asks: [number, number][] }
  | { op: 'reset'; bids: [number, number][]; asks: [number, number][] }
  | { op: 'lose' }
  | { op: 'sub'; who: number; depth: number; tier: number }
  | { op: 'unsub'; who: number }
  | { op: 'advance'; ms: number }
  | { op: 'turn' };

// prices on a small grid so updates hit the same levels; size 0 removes
const level = (lo: number, hi: number) =>
  fc.tuple(
    fc.integer({ min: lo, max: hi }).map((p) => p / 2),
    fc.oneof(
      fc.constant(0),
      fc.integer({ min: 1, max: 50 }).map((s) => s / 10),
    ),
  );
const bidLevels = fc.array(level(80, 100), { maxLength: 6 });
const askLevels = fc.array(level(101, 121), { maxLength: 6 });
const DEPTHS = [1, 3, 10];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('update' as const), bids: bidLevels, asks: askLevels }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reset' as const), bids: bidLevels, asks: askLevels }) },
  { weight: 1, arbitrary: fc.constant({ op: 'lose' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('sub' as const),
      who: fc.integer({ min: 0, max: 3 }),
      depth: fc.constantFrom(...DEPTHS),
      tier: fc.constantFrom(0, 100, 250),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unsub' as const), who: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 300 }) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'turn' as const }) },
);

const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

async function run(ops: Op[], tiers: readonly number[], maxLevels = 30): Promise<void> {
  const registry = defaultRegistry();
  const clock = new VirtualClock();
  const mem = new MemoryBus();
  const bus = new LossyBus(mem);
  const store = new MemoryLastValueStore();
  const publisher = new TickPublisher({ bus, registry, lastValues: store, barSweepMs: 0, books: { maxLevels, snapshotMs: 0 } });
  const topics = new Topics();
  const hub = new Hub({ bus: mem, publisher: topics, clock, upstreamReleaseMs: 0 });
  const books = new BookChannels({ registry, store, depths: DEPTHS, maxLevels, syncRetryMs: 5 });
  // the provider's whole book (no level limit): the publisher's book must always be an exact top of it
  const whole = new OrderBook(1_000_000);
  books.bind(hub);
  const subs = new Map<number, { sub: Sub; key: string; tier: number; depth: number }>();
  let t = 1_700_000_000_000n * 1_000_000n;
  const publish = (reset: boolean, bids: [number, number][], asks: [number, number][]): void => {
    t += 1_000_000n;
    if (reset)
      whole.reset(
        bids.filter(([, s]) => s > 0),
        asks.filter(([, s]) => s > 0),
      );
    else whole.apply(bids, asks);
    publisher.publish('test', {
      k: 'book',
      sym: SYM,
      ...(reset ? { reset: true } : {}),
      bids: reset ? bids.filter(([, s]) => s > 0) : bids,
      asks: reset ? asks.filter(([, s]) => s > 0) : asks,
      ts: t,
    });
    publisher.books.flush(); // the store always has the latest whole book (a real publisher: every snapshotMs)
  };
  publish(
    true,
    [
      [49, 1],
      [48, 2],
    ],
    [[51, 1]],
  );
  try {
    for (const o of ops) {
      switch (o.op) {
        case 'update':
        case 'reset':
          publish(o.op === 'reset', o.bids, o.asks);
          break;
        case 'lose':
          bus.drop = 1;
          break;
        case 'sub': {
          const prev = subs.get(o.who);
          if (prev) hub.unsubscribe(prev.sub, prev.key, prev.tier);
          const r = books.resolve(`book:${SYM}`, {}, { depth: o.depth });
          if (!r?.ok) throw new Error('resolve failed');
          const tier = tiers.includes(o.tier) ? o.tier : tiers[0]!;
          const sub = new Sub(topics, o.who % 2 ? CODECS.json : CODECS.msgpack);
          subs.set(o.who, { sub, key: r.spec.key, tier, depth: o.depth });
          hub.subscribe(sub, r.spec, tier, { snapshot: true });
          break;
        }
        case 'unsub': {
          const s = subs.get(o.who);
          if (s) hub.unsubscribe(s.sub, s.key, s.tier);
          subs.delete(o.who);
          break;
        }
        case 'advance':
          clock.advance(o.ms);
          break;
        case 'turn':
          clock.turn();
          break;
      }
      await settle(); // store reads (a shared book starting or resyncing)
    }
    // a last update after any lost message lets the gateway see the gap and resync (this one is
    // delivered: a loss of the very last message is invisible until the next one); then every window goes out
    bus.drop = 0;
    publish(false, [], []);
    for (let i = 0; i < 5; i++) {
      await settle();
      await new Promise((r) => setTimeout(r, 6)); // sync retries run on real timers
      clock.advance(300);
    }
    const truth = publisher.books.get(SYM)!;
    // fewer levels than the provider's book when levels were dropped past maxLevels, but never a hole
    for (const side of ['bids', 'asks'] as const) {
      const mine = truth[side].all();
      expect(mine, side).toEqual(whole[side].all().slice(0, mine.length));
    }
    for (const [who, { sub, depth }] of subs) {
      expect(sub.failures, `subscriber ${who}`).toEqual([]);
      if (sub.items === 0) continue; // still waiting for a first value
      expect({ bids: sub.book.bids(), asks: sub.book.asks() }, `subscriber ${who} depth ${depth}`).toEqual(truth.view(depth));
      expect(sub.book.checksum()).toBe(bookChecksum(truth.view(depth).bids, truth.view(depth).asks));
    }
  } finally {
    hub.close();
    publisher.close();
  }
}

describe('order book property: a client rebuilds exactly the server book', () => {
  it('throttled (tiers 0, 100, 250 ms, updates merged per level)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 80 }), (ops) => run(ops, [0, 100, 250])),
      { numRuns: 150 },
    );
  });

  it('unthrottled (tier 0: every update, batched per turn)', async () => {
    // found by this property: a subscriber waiting for a syncing book, then a second one that
    // got the synced view as its snapshot; the first was sent the next delta as its "snapshot"
    const waitingThenSnapshot: Op[] = [
      { op: 'sub', who: 1, depth: 1, tier: 0 },
      { op: 'sub', who: 0, depth: 1, tier: 0 },
      { op: 'update', bids: [], asks: [] },
      { op: 'update', bids: [[49, 0.1]], asks: [] },
      { op: 'update', bids: [], asks: [] },
      { op: 'turn' },
      { op: 'sub', who: 0, depth: 1, tier: 0 },
    ];
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 80 }), (ops) => run(ops, [0])),
      { numRuns: 100, examples: [[waitingThenSnapshot]] },
    );
  });

  it('books kept to fewer levels than the provider sends (maxLevels 4, depths up to 10)', async () => {
    // levels dropped past maxLevels are unknown from then on: no client may see a level beyond them
    // (next to holes), and a gateway that restarts its book from the store must stay equal to the publisher's
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 80 }), (ops) => run(ops, [0, 100], 4)),
      { numRuns: 100 },
    );
  });

  it('diffView turns any view into any other', () => {
    const side = (desc: boolean) =>
      fc
        .uniqueArray(fc.tuple(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 9 })), { selector: (l) => l[0], maxLength: 12 })
        .map((ls) => ls.sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0])) as [number, number][]);
    const view = fc.record({ bids: side(true), asks: side(false) });
    fc.assert(
      fc.property(view, view, (a: BookView, b: BookView) => {
        const book = new OrderBook(100);
        book.reset(a.bids, a.asks);
        const d = diffView(a, b);
        book.apply(d.bids, d.asks);
        expect(book.view(100)).toEqual(b);
        // nothing unchanged is sent
        for (const [p, s] of d.bids) expect(a.bids.some(([q, z]) => q === p && z === s)).toBe(false);
      }),
      { numRuns: 500 },
    );
  });
});
