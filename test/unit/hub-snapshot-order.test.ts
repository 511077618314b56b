import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import type { ChannelSpec } from '../../src/fanout/channels.js';
import type { Coalescer, Emission, Update } from '../../src/fanout/coalescer.js';
import { Hub } from '../../src/fanout/hub.js';
import type { Payload } from '../../src/fanout/payloads.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { FakeSub, FakeUws } from '../helpers/fake-uws.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * A snapshot subscriber is never followed by an item older than its snapshot, its seq runs on
 * from the snapshot's, and a subscriber the hub makes wait for a flush is always served
 * (docs/protocol.md#channels, "Ordering guarantee"). Unit cases on a virtual clock; the property test
 * (test/property/hub.property.test.ts) checks the same for any interleaving.
 */
const registry = defaultRegistry();
const resolver = new MarketChannelResolver(registry);
const spec = (name: string): ChannelSpec => {
  const r = resolver.resolve(name);
  if (!r?.ok) throw new Error(`bad channel ${name}`);
  return r.spec;
};

let clock: VirtualClock;
let bus: MemoryBus;
let uws: FakeUws;
let hub: Hub;
let seq = 0;

function quoteBytes(sym: string, bp: number): Uint8Array {
  const ns = BigInt(clock.now) * 1_000_000n;
  return encodeTick({ k: 'quote', sym, src: 't', seq: ++seq, ep: 1, ts: ns, rt: ns, bp, ap: bp + 1 });
}
function quote(sym: string, bp: number): void {
  bus.publish(marketSubject(registry.get(sym)!.assetClass, 'quote', sym), quoteBytes(sym, bp));
}
function trade(sym: string, id: string, p: number): void {
  const ns = BigInt(clock.now) * 1_000_000n;
  bus.publish(
    marketSubject(registry.get(sym)!.assetClass, 'trade', sym),
    encodeTick({ k: 'trade', sym, src: 't', seq: ++seq, ep: 1, ts: ns, rt: ns, id, p, s: 1 }),
  );
}

/** Let the store's read (a resolved promise) complete, without running the hub's deferred turn. */
const storeReads = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/**
 * A coalescer that holds back an update equal to the last one it emitted (by `bp`, or `p`): it
 * is pending, yet its drain may give nothing. The Coalescer contract allows it ("what is due this
 * window"); the hub must not leave a subscriber waiting on such a flush.
 */
class UnchangedHeldBack implements Coalescer<Payload> {
  readonly conflated = 0;
  #queue: Update<Payload>[] = [];
  #lastOut: unknown;
  constructor(readonly mode: 'latest' | 'ordered') {}
  push(u: Update<Payload>): void {
    this.#queue.push(u);
  }
  get pending(): boolean {
    return this.#queue.length > 0;
  }
  drain(): Emission<Payload>[] {
    const out: Emission<Payload>[] = [];
    for (const u of this.#queue) {
      const v = u.d.bp ?? u.d.p;
      if (v === this.#lastOut) continue;
      this.#lastOut = v;
      out.push({ d: u.d, coalesced: 1 });
    }
    this.#queue = [];
    return out;
  }
}

beforeEach(() => {
  clock = new VirtualClock();
  bus = new MemoryBus();
  uws = new FakeUws(() => clock.now);
  hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000 });
});

describe('hub: a snapshot is never followed by an older item', () => {
  it("tier 0: a subscriber joining while the turn's quotes are pending gets the newest as its snapshot, then only newer ones, seq contiguous", () => {
    // the property test's counterexample from CI (seed 143530075)
    const a = new FakeSub(uws);
    hub.subscribe(a, spec('quote:AAPL'), 0, { snapshot: false });
    quote('AAPL', 1);
    quote('AAPL', 2);
    const b = new FakeSub(uws);
    hub.subscribe(b, spec('quote:AAPL'), 0, { snapshot: true });
    clock.turn();
    quote('AAPL', 3);
    clock.turn();
    expect(b.data('quote:AAPL').map((f) => [f.d.bp, f.seq, f.snapshot ?? false])).toEqual([
      [2, 2, true],
      [3, 3, false],
    ]);
    // the subscriber already there misses nothing and sees the same seq
    expect(a.data('quote:AAPL').map((f) => [f.d.bp, f.seq])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it('tier 0 trades: the last trade is the snapshot, every later trade follows once, in order', () => {
    const a = new FakeSub(uws);
    hub.subscribe(a, spec('trade:AAPL'), 0, { snapshot: false });
    trade('AAPL', 'x', 1);
    trade('AAPL', 'y', 2);
    const b = new FakeSub(uws);
    hub.subscribe(b, spec('trade:AAPL'), 0, { snapshot: true });
    trade('AAPL', 'z', 3);
    clock.turn();
    expect(b.data('trade:AAPL').map((f) => [f.d.id, f.seq, f.snapshot ?? false])).toEqual([
      ['y', 2, true],
      ['z', 3, false],
    ]);
    expect(a.data('trade:AAPL').map((f) => [f.d.id, f.seq])).toEqual([
      ['x', 1],
      ['y', 2],
      ['z', 3],
    ]);
  });

  it('tier 0, snapshot from the store: quotes that arrive during the read come whole, the first as the snapshot, none after it older', async () => {
    const store = new MemoryLastValueStore();
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, store });
    store.put('quote:MSFT', quoteBytes('MSFT', 100));
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:MSFT'), 0, { snapshot: true });
    // live quotes arrive while the store read is in flight; the read completes before the turn's flush
    quote('MSFT', 101);
    quote('MSFT', 102);
    await storeReads();
    clock.turn();
    quote('MSFT', 103);
    clock.turn();
    expect(s.data('quote:MSFT').map((f) => [f.d.bp, f.seq, f.snapshot ?? false])).toEqual([
      [101, 1, true],
      [102, 2, false],
      [103, 3, false],
    ]);
  });

  it('a throttled trade subscriber served from the store while trades are pending takes the window, first item flagged', async () => {
    const store = new MemoryLastValueStore();
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, store });
    const ns = BigInt(clock.now) * 1_000_000n;
    store.put('trade:MSFT', encodeTick({ k: 'trade', sym: 'MSFT', src: 't', seq: 1, ep: 1, ts: ns, rt: ns, id: 'old', p: 1, s: 1 }));
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('trade:MSFT'), 250, { snapshot: true });
    // trades arrive while the store read is in flight: the leading edge's emission, due this turn
    trade('MSFT', 'b', 2);
    trade('MSFT', 'c', 3);
    await storeReads();
    expect(s.frames).toHaveLength(0); // 'c' now would be followed by the window's 'b'
    clock.turn();
    trade('MSFT', 'd', 4);
    clock.advance(250);
    expect(s.data('trade:MSFT').map((f) => [f.d.id, f.seq, f.snapshot ?? false])).toEqual([
      ['b', 1, true],
      ['c', 2, false],
      ['d', 3, false],
    ]);
  });
});

describe('hub: a subscriber waiting for a flush is always served', () => {
  it('tier 0: a flush that emits nothing still serves a subscriber that joined while updates were pending', () => {
    // With a subscriber put in `waiting` whenever tier 0 has updates pending (the reverted
    // 3bbd7e9), this one waited for an emission that never came: #flush returned early when the
    // coalescer's drain gave nothing, and the waiting subscriber was never served nor joined.
    const held: ChannelSpec = { ...spec('quote:AAPL'), coalescer: () => new UnchangedHeldBack('latest') };
    const a = new FakeSub(uws);
    hub.subscribe(a, held, 0, { snapshot: false });
    quote('AAPL', 7);
    clock.turn();
    quote('AAPL', 7); // unchanged: pending, then held back
    const b = new FakeSub(uws);
    hub.subscribe(b, held, 0, { snapshot: true });
    clock.turn();
    expect(b.data('quote:AAPL').map((f) => [f.d.bp, f.seq, f.snapshot ?? false])).toEqual([[7, 1, true]]);
    quote('AAPL', 8);
    clock.turn();
    expect(b.data('quote:AAPL').map((f) => [f.d.bp, f.seq])).toEqual([
      [7, 1],
      [8, 2],
    ]);
  });

  it("throttled: a subscriber waiting for the window's flush gets the channel's value when that flush emits nothing", () => {
    const held: ChannelSpec = { ...spec('trade:AAPL'), coalescer: () => new UnchangedHeldBack('ordered') };
    const a = new FakeSub(uws);
    hub.subscribe(a, held, 250, { snapshot: false });
    trade('AAPL', 'x', 5);
    clock.turn(); // leading edge
    trade('AAPL', 'x2', 5); // same price: pending, held back at the flush
    const b = new FakeSub(uws);
    hub.subscribe(b, held, 250, { snapshot: true });
    expect(b.frames).toHaveLength(0); // waits for the window
    clock.advance(250);
    expect(b.data('trade:AAPL').map((f) => [f.d.id, f.seq, f.snapshot ?? false])).toEqual([['x2', 1, true]]);
    trade('AAPL', 'y', 6);
    clock.advance(250);
    expect(b.data('trade:AAPL').map((f) => [f.d.id, f.seq])).toEqual([
      ['x2', 1],
      ['y', 2],
    ]);
  });
});
