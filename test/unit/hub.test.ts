import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { CODECS } from '../../src/codec/frames.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import type { ChannelSpec } from '../../src/fanout/channels.js';
import { gridStep, Hub } from '../../src/fanout/hub.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { FakeSub, FakeUws } from '../helpers/fake-uws.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

const registry = defaultRegistry();
const resolver = new MarketChannelResolver(registry);
const spec = (name: string): ChannelSpec => {
  const r = resolver.resolve(name);
  if (!r?.ok) throw new Error(`bad channel ${name}`);
  return r.spec;
};

const ALL_SYMS = registry.all().map((i) => i.symbol);

let clock: VirtualClock;
let bus: MemoryBus;
let uws: FakeUws;
let hub: Hub;
let seq = 0;
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;

function quote(sym: string, bp: number): void {
  const cls = registry.get(sym)!.assetClass;
  bus.publish(
    marketSubject(cls, 'quote', sym),
    encodeTick({ k: 'quote', sym, src: 't', seq: ++seq, ep: 1, ts: ns(clock.now), rt: ns(clock.now), bp, ap: bp + 1 }),
  );
}
function trade(sym: string, id: string, p = 1): void {
  const cls = registry.get(sym)!.assetClass;
  bus.publish(
    marketSubject(cls, 'trade', sym),
    encodeTick({ k: 'trade', sym, src: 't', seq: ++seq, ep: 1, ts: ns(clock.now), rt: ns(clock.now), id, p, s: 1 }),
  );
}
function bar(sym: string, t: number, c: number, closed: boolean): void {
  const cls = registry.get(sym)!.assetClass;
  bus.publish(
    marketSubject(cls, 'bar.1s', sym),
    encodeTick({ k: 'bar', sym, src: 't', seq: ++seq, ep: 1, ts: ns(clock.now), rt: ns(clock.now), iv: '1s', t, o: c, h: c, l: c, c, v: 1, n: 1, closed }),
  );
}

/**
 * With a grid (batchMs > 0), a quiet channel's update leaves the grid when the hub has emitted
 * nothing throttled for a whole step. The grid tests make the hub busy first: one throttled
 * emission on another channel (MSFT, quiet, so at once) at the current time.
 */
function pace(tier: number): void {
  hub.subscribe(new FakeSub(uws), spec('quote:MSFT'), tier, { snapshot: false });
  quote('MSFT', 1);
  clock.turn();
}

beforeEach(() => {
  clock = new VirtualClock();
  bus = new MemoryBus();
  uws = new FakeUws(() => clock.now);
  hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000 });
});

describe('hub: throttling and coalescing per (channel, tier)', () => {
  it('quotes at 100 ms: one emission per window with the latest value, contiguous seq, coalesced count', () => {
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 100, { snapshot: false });
    for (let w = 0; w < 5; w++) {
      for (let i = 0; i < 10; i++) quote('AAPL', w * 100 + i);
      clock.advance(100);
    }
    clock.advance(300); // quiet windows send nothing
    const data = s.data('quote:AAPL');
    expect(data.map((f) => f.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(data.map((f) => f.d.bp)).toEqual([9, 109, 209, 309, 409]);
    expect(data.every((f) => f.coalesced === 10)).toBe(true);
  });

  it('trades are never dropped or reordered under throttling; throttled and unthrottled clients see the same ids', () => {
    const fast = new FakeSub(uws);
    const slow = new FakeSub(uws, CODECS.json);
    hub.subscribe(fast, spec('trade:BTC-USD'), 0, { snapshot: false });
    hub.subscribe(slow, spec('trade:BTC-USD'), 1000, { snapshot: false });
    const ids: string[] = [];
    for (let i = 0; i < 250; i++) {
      const id = `t${i}`;
      ids.push(id);
      trade('BTC-USD', id);
      if (i % 7 === 0) clock.advance(37);
    }
    clock.advance(1000);
    expect(fast.data().map((f) => f.d.id)).toEqual(ids);
    expect(slow.data().map((f) => f.d.id)).toEqual(ids);
    for (const sub of [fast, slow]) {
      const seqs = sub.data().map((f) => f.seq);
      expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    }
    // the throttled client got its trades in a few batch frames
    expect(slow.messages).toBeLessThanOrEqual(3);
    expect(fast.messages).toBeGreaterThan(slow.messages);
  });

  it('bars: closed bars exactly once, open bar latest state', () => {
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('bar.1s:ETH-USD'), 500, { snapshot: false });
    bar('ETH-USD', 0, 1, false);
    bar('ETH-USD', 0, 2, false);
    bar('ETH-USD', 0, 3, true);
    bar('ETH-USD', 1000, 4, false);
    clock.advance(500);
    bar('ETH-USD', 1000, 5, false);
    bar('ETH-USD', 1000, 6, false);
    clock.advance(500);
    bar('ETH-USD', 1000, 7, true);
    clock.advance(500);
    const d = s.data().map((f) => [f.d.t, f.d.c, f.d.closed, f.seq]);
    expect(d).toEqual([
      [0, 3, true, 1],
      [1000, 4, false, 2],
      [1000, 6, false, 3],
      [1000, 7, true, 4],
    ]);
    expect(s.data().filter((f) => f.d.closed).length).toBe(2);
  });

  it('encodes once per emission and encoding, whatever the number of subscribers', () => {
    const subs = Array.from({ length: 200 }, (_, i) => new FakeSub(uws, i % 2 ? CODECS.json : CODECS.msgpack));
    for (const s of subs) hub.subscribe(s, spec('quote:EUR-USD'), 250, { snapshot: false });
    quote('EUR-USD', 1);
    quote('EUR-USD', 2);
    clock.advance(250);
    expect(uws.publishes).toBe(2); // one msgpack frame, one JSON frame
    for (const s of subs) expect(s.data().map((f) => f.d.bp)).toEqual([2]);
    expect(hub.stats.framesOut).toBe(200);
  });

  it('leading edge: a quiet channel emits at once; faster updates wait for the window that starts at the last emission', () => {
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 100, { snapshot: false });
    const seen = (): [number, number, number][] => s.data().map((f, i) => [s.at[i]!, f.d.bp as number, (f.coalesced as number | undefined) ?? 1]);
    quote('AAPL', 1); // never emitted before: goes in this turn
    clock.turn();
    expect(seen()).toEqual([[0, 1, 1]]);
    clock.advance(30);
    quote('AAPL', 2); // 30 ms after the last emission: waits for 100
    clock.advance(40);
    quote('AAPL', 3);
    clock.advance(29);
    expect(seen()).toHaveLength(1); // t = 99: still inside the window
    clock.advance(1);
    expect(seen()).toEqual([
      [0, 1, 1],
      [100, 3, 2],
    ]);
    clock.advance(50);
    quote('AAPL', 4); // the window now runs from 100 to 200
    clock.advance(100);
    expect(seen().at(-1)).toEqual([200, 4, 1]);
    clock.advance(1000); // quiet for a second: the next update goes at once again
    quote('AAPL', 5);
    clock.turn();
    expect(seen().at(-1)).toEqual([1250, 5, 1]);
    expect(s.data().map((f) => f.seq)).toEqual([1, 2, 3, 4]);
  });

  it('leading edge for trades: the first goes at once, the rest of the window in one batch, none dropped', () => {
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('trade:BTC-USD'), 250, { snapshot: false });
    trade('BTC-USD', 'a');
    clock.turn();
    clock.advance(10);
    trade('BTC-USD', 'b');
    trade('BTC-USD', 'c');
    clock.advance(100);
    trade('BTC-USD', 'd');
    clock.advance(140); // t = 250
    expect(s.data().map((f, i) => [s.at[i], f.d.id, f.seq])).toEqual([
      [0, 'a', 1],
      [250, 'b', 2],
      [250, 'c', 3],
      [250, 'd', 4],
    ]);
    expect(s.messages).toBe(2); // a alone, then b-d in one batch frame
  });

  it('trailing flushes fall due on a slot grid, never early; an overdue pending update goes at once', () => {
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:MSFT'), 100, { snapshot: false });
    clock.advance(3);
    quote('MSFT', 1); // emitted at 3: the window ends at 103, whose slot is 105
    clock.advance(7);
    quote('MSFT', 2);
    clock.advance(92); // t = 102
    expect(s.data()).toHaveLength(1);
    clock.advance(3); // t = 105
    expect(s.at).toEqual([3, 105]);
    clock.advance(196);
    quote('MSFT', 3); // t = 301, quiet since 105: at once
    clock.advance(1);
    quote('MSFT', 4); // t = 302: the window ends at 401, its slot is 405
    clock.advance(100); // t = 402: the window has passed, the slot has not
    expect(s.at).toEqual([3, 105, 301]);
    quote('MSFT', 5); // overdue: the pending value goes in this turn, with this update
    clock.turn();
    expect(s.at).toEqual([3, 105, 301, 402]);
    expect(s.data().at(-1)).toMatchObject({ seq: 4, coalesced: 2, d: { bp: 5 } });
    clock.advance(10); // the slot of 405 has nothing left to send
    expect(s.at).toHaveLength(4);
    expect(clock.pendingTimers).toBe(0);
  });

  it('a slot timer that fires late does not push the next windows back', () => {
    clock.lateMs = 1;
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 100, { snapshot: false });
    quote('AAPL', 0); // at once
    for (const t of [10, 110, 210, 310]) {
      clock.advance(t - clock.now);
      quote('AAPL', t); // waits for the window's slot, whose timer fires 1 ms late
    }
    clock.advance(100);
    // the next window counts from the slot, not from the late timer (else 0, 101, 206, 311)
    expect(s.at).toEqual([0, 101, 201, 301, 401]);
  });

  it('one timer per slot, not per channel: pending channels due in the same slot share a timer', () => {
    const subs = ALL_SYMS.map((sym) => {
      const s = new FakeSub(uws);
      hub.subscribe(s, spec(`quote:${sym}`), 250, { snapshot: false });
      return s;
    });
    for (const sym of ALL_SYMS) quote(sym, 1); // leading edge for all: one turn
    clock.turn();
    expect(clock.pendingTimers).toBe(0);
    clock.advance(1);
    for (const sym of ALL_SYMS) quote(sym, 2); // all due at 250
    expect(clock.pendingTimers).toBe(1);
    const before = uws.publishes;
    clock.advance(249);
    expect(uws.publishes - before).toBe(ALL_SYMS.length);
    for (const s of subs) expect(s.data().map((f) => f.d.bp)).toEqual([1, 2]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('throttle.batchMs: every throttled emission, leading or trailing, goes out on the batch grid; tier 0 is untouched', () => {
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, batchMs: 20 });
    const s = new FakeSub(uws);
    const fast = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 100, { snapshot: false });
    hub.subscribe(fast, spec('quote:AAPL'), 0, { snapshot: false });
    pace(100); // a throttled emission at 0: the hub is busy until 20
    clock.advance(3);
    quote('AAPL', 1); // quiet, but off the grid: waits for 20
    clock.turn();
    expect(fast.at).toEqual([3]);
    expect(s.at).toEqual([]);
    clock.advance(17);
    expect(s.at).toEqual([20]);
    clock.advance(10);
    quote('AAPL', 2); // t = 30: inside the window that ends at 120 (on the grid)
    clock.advance(90);
    expect(s.at).toEqual([20, 120]);
    clock.advance(180);
    quote('AAPL', 3); // t = 300: quiet and on the grid: at once
    clock.turn();
    expect(s.at).toEqual([20, 120, 300]);
    expect(s.data().map((f) => f.d.bp)).toEqual([1, 2, 3]);
    expect(fast.data().map((f) => f.d.bp)).toEqual([1, 2, 3]);
  });

  it('throttle.batchMs: a hub with no throttled emission for a whole step sends a quiet channel at once, off the grid; busy, it keeps to the grid', () => {
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, batchMs: 50 });
    const s = new FakeSub(uws);
    const slow = new FakeSub(uws);
    const other = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 100, { snapshot: false });
    hub.subscribe(slow, spec('quote:AAPL'), 1000, { snapshot: false });
    hub.subscribe(other, spec('quote:MSFT'), 100, { snapshot: false });
    clock.advance(7);
    quote('AAPL', 1); // quiet, and nothing else to share a turn with: at once on both tiers
    clock.turn();
    expect(s.at).toEqual([7]);
    expect(slow.at).toEqual([7]);
    clock.advance(23);
    quote('AAPL', 2); // t = 30: the window ends at 107, off the grid; the hub is still idle then
    clock.advance(76);
    expect(s.at).toEqual([7]);
    clock.advance(1);
    expect(s.at).toEqual([7, 107]);
    clock.advance(13);
    quote('AAPL', 3); // t = 120: waits for the window, which ends at 207
    clock.advance(80);
    quote('MSFT', 1); // t = 200: MSFT is quiet and the hub idle since 107: at once
    clock.turn();
    expect(other.at).toEqual([200]);
    clock.advance(7);
    expect(s.at).toEqual([7, 107]); // 207: the hub emitted at 200, so the window's end moves to the grid
    clock.advance(43);
    expect(s.at).toEqual([7, 107, 250]);
    clock.advance(105);
    quote('MSFT', 2); // t = 355: the hub is idle again: at once
    clock.turn();
    clock.advance(5);
    quote('AAPL', 4); // t = 360: AAPL quiet since 250, but the hub emitted at 355: the next grid point
    clock.turn();
    expect(s.at).toEqual([7, 107, 250]);
    clock.advance(40);
    expect(s.at).toEqual([7, 107, 250, 400]);
    expect(other.at).toEqual([200, 355]);
    expect(s.data().map((f) => [f.seq, f.d.bp])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
    // the 1000 ms tier: one emission at 7, then the window's newest at 1007 (idle again)
    clock.advance(607);
    expect(slow.at).toEqual([7, 1007]);
    expect(slow.data().map((f) => f.d.bp)).toEqual([1, 4]);
    // off the grid: 7 (both tiers), 107, 355 (MSFT) and 1007; 200 (MSFT, idle) happens to be a grid point
    expect(hub.stats.offGrid).toBe(5);
    expect(clock.pendingTimers).toBe(0);
  });

  it('throttle.batchMs: a grid point whose timer is late (a long turn) still counts as output: the hub is not idle then', () => {
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, batchMs: 50 });
    const s = new FakeSub(uws);
    const other = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 100, { snapshot: false });
    hub.subscribe(other, spec('quote:MSFT'), 100, { snapshot: false });
    quote('MSFT', 1); // t = 0: at once
    clock.turn();
    clock.advance(10);
    clock.lateMs = 30; // timers fire 30 ms late from now on
    quote('MSFT', 2); // waits for the window's end at 100, whose timer fires at 130
    clock.advance(100);
    expect(other.at).toEqual([0]);
    quote('AAPL', 1); // t = 110: nothing went out since 0, but the slot at 100 is overdue: not idle
    clock.turn();
    expect(s.at).toEqual([]);
    clock.advance(20);
    expect(other.at).toEqual([0, 130]);
    clock.advance(50); // AAPL's grid point, 150, fires at 180
    expect(s.at).toEqual([180]);
    expect(hub.stats.offGrid).toBe(0);
  });

  it('throttle.lanes: subscribers are dealt into lanes on shifted grids; each lane keeps the window, seq and every trade', () => {
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, batchMs: 20, lanes: 2 });
    const quotesAt = (s: FakeSub): number[] => s.at.filter((_, k) => s.frames[k]!.ch === 'quote:AAPL');
    const [a, b, c] = [new FakeSub(uws), new FakeSub(uws), new FakeSub(uws)];
    const fast = new FakeSub(uws);
    hub.subscribe(fast, spec('quote:AAPL'), 0, { snapshot: false }); // tier 0: no lane taken
    for (const s of [a, b, c]) {
      hub.subscribe(s, spec('quote:AAPL'), 100, { snapshot: false });
      hub.subscribe(s, spec('trade:AAPL'), 100, { snapshot: false });
    }
    // a and c in lane 0 (grid 0, 20, 40, ...), b in lane 1 (grid 10, 30, 50, ...)
    expect(hub.channelStats().find((x) => x.channel === 'quote:AAPL')!.tiers).toEqual({ '0': 1, '100': 3 });
    pace(100); // (the pacer's subscriber takes lane 1; a throttled emission at 0: busy until 20)
    clock.advance(3);
    quote('AAPL', 1); // quiet: the next point of each lane's grid
    trade('AAPL', 't1');
    clock.turn();
    expect(fast.at).toEqual([3]);
    clock.advance(7);
    expect(quotesAt(b)).toEqual([10]);
    expect(quotesAt(a)).toEqual([]);
    clock.advance(10);
    expect(quotesAt(a)).toEqual([20]);
    clock.advance(10);
    quote('AAPL', 2); // t = 30: inside both windows (lane 1 until 110, lane 0 until 120)
    trade('AAPL', 't2');
    trade('AAPL', 't3');
    clock.advance(80);
    expect(quotesAt(b)).toEqual([10, 110]);
    expect(quotesAt(a)).toEqual([20]);
    clock.advance(10);
    expect(quotesAt(a)).toEqual([20, 120]);
    clock.advance(170);
    quote('MSFT', 2); // t = 290: the pacer emits, so the hub is busy at 300
    clock.advance(10);
    quote('AAPL', 3); // t = 300: quiet and on lane 0's grid: at once there, lane 1 at 310
    clock.turn();
    expect(quotesAt(a)).toEqual([20, 120, 300]);
    clock.advance(10);
    expect(quotesAt(b)).toEqual([10, 110, 310]);
    for (const s of [a, b, c]) {
      expect(s.data('quote:AAPL').map((f) => [f.seq, f.d.bp])).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      expect(s.data('trade:AAPL').map((f) => f.d.id)).toEqual(['t1', 't2', 't3']);
    }
    expect(c.at).toEqual(a.at);
    // a socket is written only at its own lane's grid points
    expect(a.at.every((t) => t % 20 === 0)).toBe(true);
    expect(b.at.every((t) => t % 20 === 10)).toBe(true);
    // seq is per lane: the resync after a slow spell reads the subscriber's own lane
    quote('AAPL', 4); // t = 310
    clock.advance(5); // lane 0 emitted at 300, so bp 4 waits for 400; lane 1 for 410
    expect(hub.current('quote:AAPL', 100, b)).toEqual({ d: expect.objectContaining({ bp: 4 }), seq: 3 });
    clock.advance(100);
    expect(hub.current('quote:AAPL', 100, a)?.seq).toBe(4);
    expect(hub.current('quote:AAPL', 100, b)?.seq).toBe(4);
    // the last subscriber of a lane leaving drops that lane's coalescer and timer
    quote('AAPL', 5);
    hub.unsubscribe(b, 'quote:AAPL', 100);
    hub.unsubscribe(b, 'trade:AAPL', 100);
    clock.advance(200);
    expect(b.data('quote:AAPL')).toHaveLength(4);
    expect(a.data('quote:AAPL').map((f) => f.d.bp)).toEqual([1, 2, 3, 4, 5]);
    expect(hub.channelStats().find((x) => x.channel === 'quote:AAPL')!.tiers).toEqual({ '0': 1, '100': 2 });
    expect(clock.pendingTimers).toBe(0);
    // without a subscriber, current() reads the first lane in use (here lane 1 after lane 0 empties)
    hub.subscribe(b, spec('quote:AAPL'), 100, { snapshot: false });
    hub.unsubscribe(a, 'quote:AAPL', 100);
    hub.unsubscribe(c, 'quote:AAPL', 100);
    expect(hub.current('quote:AAPL', 100)).toEqual({ d: expect.objectContaining({ bp: 5 }), seq: 0 });
  });

  it("throttle.batchMs: a tier's grid step is its largest divisor not above batchMs, so window ends are never pushed later", () => {
    expect([50, 100, 250, 500, 1000, 5000].map((t) => gridStep(t, 100))).toEqual([50, 100, 50, 100, 100, 100]);
    expect([50, 100, 250].map((t) => gridStep(t, 50))).toEqual([50, 50, 50]);
    expect([100, 250, 97].map((t) => gridStep(t, 30))).toEqual([25, 25, 1]);
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, batchMs: 100, lanes: 1 });
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 250, { snapshot: false });
    pace(250); // busy until 50
    clock.advance(10);
    quote('AAPL', 1); // quiet: the next point of the 50 ms grid
    clock.advance(40);
    expect(s.at).toEqual([50]);
    quote('AAPL', 2); // the window ends at 300, a grid point: not rounded up to 400
    clock.advance(250);
    expect(s.at).toEqual([50, 300]);
  });

  it('throttle.lanes without a batch grid: one lane (nothing to shift)', () => {
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, batchMs: 0, lanes: 4 });
    const [a, b] = [new FakeSub(uws), new FakeSub(uws)];
    hub.subscribe(a, spec('quote:AAPL'), 100, { snapshot: false });
    hub.subscribe(b, spec('quote:AAPL'), 100, { snapshot: false });
    clock.advance(3);
    quote('AAPL', 1);
    clock.turn();
    expect(a.at).toEqual([3]);
    expect(b.at).toEqual([3]);
    expect(uws.publishes).toBe(1);
    expect(() => new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000, batchMs: 20, lanes: 0 })).toThrow(/lanes must be an integer from 1 to 16/);
  });

  it('msgpack and JSON subscribers receive the same objects', () => {
    const m = new FakeSub(uws, CODECS.msgpack);
    const j = new FakeSub(uws, CODECS.json);
    hub.subscribe(m, spec('trade:AAPL'), 0, { snapshot: false });
    hub.subscribe(j, spec('trade:AAPL'), 0, { snapshot: false });
    trade('AAPL', 'x1', 228.51);
    clock.turn();
    expect(m.frames).toEqual(j.frames);
    expect(m.frames).toHaveLength(1);
  });
});

describe('hub: snapshots', () => {
  it('sends the current value first, flagged, with the tier seq', () => {
    const a = new FakeSub(uws);
    hub.subscribe(a, spec('quote:AAPL'), 100, { snapshot: false });
    quote('AAPL', 5);
    clock.advance(100);
    quote('AAPL', 6);
    const b = new FakeSub(uws);
    hub.subscribe(b, spec('quote:AAPL'), 100, { snapshot: true });
    expect(b.frames[0]).toMatchObject({ op: 'data', ch: 'quote:AAPL', seq: 1, snapshot: true, d: { bp: 6 } });
    clock.advance(100);
    expect(b.frames[1]).toMatchObject({ seq: 2, d: { bp: 6 } });
    expect(b.frames[1]!.snapshot).toBeUndefined();
  });

  it('a subscriber joining while trades or bars are pending gets the window in order, no repeats', () => {
    const early = new FakeSub(uws);
    hub.subscribe(early, spec('bar.1s:SOL-USD'), 250, { snapshot: false });
    hub.subscribe(early, spec('trade:SOL-USD'), 250, { snapshot: false });
    bar('SOL-USD', 0, 1, true);
    bar('SOL-USD', 1000, 2, false);
    trade('SOL-USD', 'a');
    trade('SOL-USD', 'b');
    const late = new FakeSub(uws);
    hub.subscribe(late, spec('bar.1s:SOL-USD'), 250, { snapshot: true });
    hub.subscribe(late, spec('trade:SOL-USD'), 250, { snapshot: true });
    expect(late.frames).toHaveLength(0); // nothing out of order before the window's flush
    clock.advance(250);
    trade('SOL-USD', 'c');
    clock.advance(250);
    const bars = late.data('bar.1s:SOL-USD');
    expect(bars.map((f) => [f.d.t, f.d.closed, f.seq, f.snapshot ?? false])).toEqual([
      [0, true, 1, true],
      [1000, false, 2, false],
    ]);
    const trades = late.data('trade:SOL-USD');
    expect(trades.map((f) => [f.d.id, f.seq])).toEqual([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ]);
    expect(trades[0]!.snapshot).toBe(true);
    expect(early.data('trade:SOL-USD').map((f) => f.d.id)).toEqual(['a', 'b', 'c']);
  });

  it('serves a snapshot from the last-value store for a channel this hub has not seen', async () => {
    const store = new MemoryLastValueStore();
    hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 0, store });
    store.put('quote:MSFT', encodeTick({ k: 'quote', sym: 'MSFT', src: 't', seq: 9, ep: 1, ts: 1n, rt: 1n, bp: 400, ap: 401 }));
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:MSFT'), 0, { snapshot: true });
    await new Promise((r) => setTimeout(r, 0));
    expect(s.frames[0]).toMatchObject({ snapshot: true, seq: 0, d: { bp: 400 } });
    quote('MSFT', 402);
    clock.turn();
    expect(s.frames[1]).toMatchObject({ seq: 1, d: { bp: 402 } });
  });

  it('without any value yet, the first live value becomes the snapshot', () => {
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:TSLA'), 100, { snapshot: true });
    expect(s.frames).toHaveLength(0);
    quote('TSLA', 1);
    quote('TSLA', 2);
    clock.advance(100);
    expect(s.frames).toHaveLength(1);
    expect(s.frames[0]).toMatchObject({ snapshot: true, seq: 1, d: { bp: 2 } });
    quote('TSLA', 3);
    clock.advance(100);
    expect(s.frames[1]).toMatchObject({ seq: 2, d: { bp: 3 } });
  });
});

describe('hub: durable replays', () => {
  it('a subscriber that leaves while its replay runs gets neither the replay nor live events', async () => {
    let finish: () => void = () => undefined;
    const durable: ChannelSpec = {
      key: 'executions|u1',
      name: 'executions',
      subject: 'exec.live.u1',
      mode: 'ordered',
      decode: (p) => ({ d: JSON.parse(Buffer.from(p).toString()) as Record<string, unknown> }),
      replay: (_since, deliver) =>
        new Promise<void>((resolve) => {
          finish = () => {
            deliver([{ d: { id: 'old' }, seq: 1 }]);
            resolve();
          };
        }),
    };
    const stays = new FakeSub(uws);
    const leaves = new FakeSub(uws);
    hub.subscribe(stays, durable, 0, { snapshot: true, since: 0 });
    const stayFinish = finish;
    hub.subscribe(leaves, durable, 0, { snapshot: true, since: 0 });
    const leaveFinish = finish;
    hub.unsubscribe(leaves, 'executions|u1', 0);
    stayFinish();
    leaveFinish();
    await new Promise((r) => setTimeout(r, 0));
    bus.publish('exec.live.u1', Buffer.from(JSON.stringify({ id: 'new' })));
    clock.turn();
    expect(stays.data().map((f) => f.d.id)).toEqual(['old', 'new']);
    expect(leaves.frames).toEqual([]);
  });
});

describe('hub: upstream interest', () => {
  it('subscribes upstream on the first subscriber and releases a while after the last leaves', () => {
    const s1 = new FakeSub(uws);
    const s2 = new FakeSub(uws);
    expect(hub.upstreamCount).toBe(0);
    hub.subscribe(s1, spec('quote:NVDA'), 0, { snapshot: false });
    hub.subscribe(s2, spec('quote:NVDA'), 250, { snapshot: false });
    expect(hub.upstreamCount).toBe(1);
    hub.unsubscribe(s1, 'quote:NVDA', 0);
    hub.unsubscribe(s2, 'quote:NVDA', 250);
    expect(hub.upstreamCount).toBe(1); // kept for the release delay
    clock.advance(500);
    hub.subscribe(s1, spec('quote:NVDA'), 0, { snapshot: false }); // back before release: kept
    clock.advance(2000);
    expect(hub.upstreamCount).toBe(1);
    hub.unsubscribe(s1, 'quote:NVDA', 0);
    clock.advance(1001);
    expect(hub.upstreamCount).toBe(0);
    expect(hub.stats.upstreamSubscribes).toBe(1);
    expect(hub.stats.upstreamReleases).toBe(1);
    expect(clock.pendingTimers).toBe(0); // tier timers go with their last channel
  });

  it('an unsubscribed client gets nothing more', () => {
    const s = new FakeSub(uws);
    hub.subscribe(s, spec('quote:AAPL'), 0, { snapshot: false });
    quote('AAPL', 1);
    clock.turn();
    hub.unsubscribe(s, 'quote:AAPL', 0);
    quote('AAPL', 2);
    clock.turn();
    expect(s.data().map((f) => f.d.bp)).toEqual([1]);
  });
});
