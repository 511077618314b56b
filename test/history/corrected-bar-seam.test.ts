import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { CODECS } from '../../src/codec/frames.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import { Hub } from '../../src/fanout/hub.js';
import type { HubSubscriber } from '../../src/fanout/hub.js';
import { MemoryBarStore } from '../../src/history/bar-store.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * A closed bar sent again (`corrected`: a trade of it corrected or cancelled, a late provider
 * bar) is not the channel's current bar: the snapshot stays the newest bar, so a chart that
 * subscribes after it gets every bar, with the corrected one in its history.
 */
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
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));
const T0 = Date.UTC(2026, 10, 30, 15, 0, 0);

function setup(): { pub: TickPublisher; hub: Hub; clock: VirtualClock; lastValues: MemoryLastValueStore; spec: ReturnType<typeof specOf> } {
  const bus = new MemoryBus();
  const store = new MemoryBarStore({ windowBars: 100 });
  const lastValues = new MemoryLastValueStore();
  const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, bars: store, lastValues });
  const clock = new VirtualClock();
  const hub = new Hub({ bus, publisher: { publish: () => undefined }, clock, upstreamReleaseMs: 0, store: lastValues });
  return { pub, hub, clock, lastValues, spec: specOf(store) };
}
function specOf(store: MemoryBarStore) {
  const r = new MarketChannelResolver(defaultRegistry(), store).resolve('bar.1s:AAPL');
  if (!r?.ok) throw new Error('channel');
  return r.spec;
}

describe('a corrected closed bar and the snapshot of its channel', () => {
  it('a subscriber after a correction of an older bar gets the open bar as snapshot and every closed bar in history', async () => {
    const { pub, hub, clock, spec } = setup();
    const keeper = new Sub();
    hub.subscribe(keeper, spec, 0, { snapshot: false }); // the channel is followed by this gateway
    const trade = (id: string, ms: number, p: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id, p, s: 1, ts: ns(ms) });
    trade('a', T0 + 100, 10);
    trade('b', T0 + 1100, 11);
    trade('c', T0 + 2100, 12); // bars T0 and T0+1s closed, T0+2s open
    pub.publish('synthetic', { k: 'correction', sym: 'AAPL', ref: 'a', id: 'a2', p: 9, s: 2, ts: ns(T0 + 2200) });
    clock.turn();
    const sub = new Sub();
    hub.subscribe(sub, spec, 0, { snapshot: true, history: 10 });
    await settle();
    clock.turn();
    const snap = sub.items[0]!;
    expect(snap).toMatchObject({ snapshot: true, d: { t: T0 + 2000, closed: false, c: 12 } });
    expect(snap.history.map((b: Frame) => [b.t, b.o, b.v])).toEqual([
      [T0, 9, 2],
      [T0 + 1000, 11, 1],
    ]);
    pub.close();
  });

  it("the last-value store keeps the newest bar as the channel's value, so a gateway that starts later does too", async () => {
    const { pub, lastValues } = setup();
    const trade = (id: string, ms: number, p: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id, p, s: 1, ts: ns(ms) });
    trade('a', T0 + 100, 10);
    trade('b', T0 + 1100, 11);
    pub.publish('synthetic', { k: 'cancel', sym: 'AAPL', ref: 'a', ts: ns(T0 + 1200) });
    const [bytes] = await lastValues.getMany(['bar.1s:AAPL']);
    expect(decodeTick(bytes!)).toMatchObject({ k: 'bar', t: T0 + 1000, closed: false });
    pub.close();
  });
});
