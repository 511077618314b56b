import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { CODECS } from '../../src/codec/frames.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BarTick } from '../../src/core/schema.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import type { BarHistorySource, ChannelSpec } from '../../src/fanout/channels.js';
import { HISTORY_RING, Hub } from '../../src/fanout/hub.js';
import type { HubSubscriber } from '../../src/fanout/hub.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/** Hub cases of `history` the property test does not force: an unreadable store, the ring bound. */
type Frame = Record<string, any>;
class Sub implements HubSubscriber {
  readonly codec = CODECS.json;
  readonly items: Frame[] = [];
  closed = false;
  join(): void {}
  leave(): void {}
  send(bytes: Uint8Array): void {
    const f = JSON.parse(Buffer.from(bytes).toString()) as Frame;
    this.items.push(...(f.op === 'batch' ? f.items : [f]));
  }
}

const bar = (t: number, closed: boolean): BarTick => ({
  k: 'bar',
  sym: 'AAPL',
  src: 't',
  seq: 0,
  ep: 1,
  ts: 0n,
  rt: 0n,
  iv: '1s',
  t,
  o: 1,
  h: 1,
  l: 1,
  c: 1,
  v: 1,
  n: 1,
  closed,
});

function setup(source: BarHistorySource): { hub: Hub; bus: MemoryBus; spec: ChannelSpec; clock: VirtualClock } {
  const bus = new MemoryBus();
  const clock = new VirtualClock();
  const hub = new Hub({ bus, publisher: { publish: () => undefined }, clock, upstreamReleaseMs: 0 });
  const r = new MarketChannelResolver(defaultRegistry(), source).resolve('bar.1s:AAPL');
  if (!r?.ok) throw new Error('channel');
  return { hub, bus, spec: r.spec, clock };
}
const publish = (bus: MemoryBus, b: BarTick): void => bus.publish(marketSubject('stock', 'bar.1s', 'AAPL'), encodeTick(b));
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('hub: history', () => {
  it('serves the bars it has seen when the store cannot be read, at most HISTORY_RING of them', async () => {
    const { hub, bus, spec, clock } = setup({ range: () => Promise.reject(new Error('redis down')) });
    const keeper = new Sub();
    hub.subscribe(keeper, spec, 0, { snapshot: false }); // keeps the channel (and its ring) alive
    for (let i = 0; i < HISTORY_RING + 10; i++) publish(bus, bar(i * 1000, true));
    publish(bus, bar((HISTORY_RING + 10) * 1000, false));
    clock.turn();
    const sub = new Sub();
    hub.subscribe(sub, spec, 0, { snapshot: true, history: 1000 });
    await settle();
    const snap = sub.items[0]!;
    expect(snap).toMatchObject({ snapshot: true, d: { t: (HISTORY_RING + 10) * 1000, closed: false } });
    expect(snap.history.map((b: Frame) => b.t)).toEqual(Array.from({ length: HISTORY_RING }, (_, i) => (i + 10) * 1000));
  });

  it('cuts history before a closed snapshot bar, and sends none without a history request', async () => {
    const stored = [bar(0, true), bar(1000, true), bar(2000, true)].map((b) => ({ t: b.t, iv: 1000, o: 1, h: 1, l: 1, c: 1, v: 1, n: 1, closed: true }));
    const { hub, bus, spec, clock } = setup({ range: async (_c, q) => stored.slice(-q.limit) });
    const keeper = new Sub();
    hub.subscribe(keeper, spec, 0, { snapshot: false });
    publish(bus, bar(2000, true)); // the channel's last value is a closed bar (a quiet symbol's sweep)
    clock.turn();
    const sub = new Sub();
    hub.subscribe(sub, spec, 0, { snapshot: true, history: 5 });
    await settle();
    expect(sub.items[0]!.d).toMatchObject({ t: 2000, closed: true });
    expect(sub.items[0]!.history.map((b: Frame) => b.t)).toEqual([0, 1000]);
    const plain = new Sub();
    hub.subscribe(plain, spec, 0, { snapshot: true });
    expect(plain.items[0]!.history).toBeUndefined();
  });
});
