import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { CODECS } from '../../src/codec/frames.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import { Hub } from '../../src/fanout/hub.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { FakeSub as Sub, FakeUws as Uws } from '../helpers/fake-uws.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * The hub and the trade channel's extra item kinds: `correction` and `cancel` items keep their op
 * at every tier, share the channel's seq, and never become the channel's snapshot.
 */

const registry = defaultRegistry();
const spec = (name: string) => {
  const r = new MarketChannelResolver(registry).resolve(name);
  if (!r?.ok) throw new Error(name);
  return r.spec;
};
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;

describe('hub: correction and cancel items on trade channels', () => {
  it('keep their op at tier 0 and under throttling, count in seq, and are never the snapshot', () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus();
    const uws = new Uws();
    const hub = new Hub({ bus, publisher: uws, clock, upstreamReleaseMs: 1000 });
    const subject = marketSubject('stock', 'trade', 'AAPL');
    let seq = 0;
    const pub = (t: Record<string, unknown>): void =>
      bus.publish(subject, encodeTick({ sym: 'AAPL', src: 'alpaca', seq: ++seq, ep: 1, ts: ns(clock.now), rt: ns(clock.now), ...t } as unknown as Tick));
    const fast = new Sub(uws);
    const slow = new Sub(uws, CODECS.json);
    hub.subscribe(fast, spec('trade:AAPL'), 0, { snapshot: false });
    hub.subscribe(slow, spec('trade:AAPL'), 250, { snapshot: false });
    pub({ k: 'trade', id: '1', p: 10, s: 1 });
    pub({ k: 'trade', id: '2', p: 11, s: 1 });
    pub({ k: 'correction', ref: '2', id: '3', p: 12, s: 2, applied: true });
    pub({ k: 'cancel', ref: '1', applied: true });
    clock.advance(250);
    for (const s of [fast, slow]) {
      expect(s.frames.map((f) => [f.op, f.seq, f.d.ref ?? f.d.id])).toEqual([
        ['data', 1, '1'],
        ['data', 2, '2'],
        ['correction', 3, '2'],
        ['cancel', 4, '1'],
      ]);
    }
    expect(slow.frames[2]!.d).toMatchObject({ ref: '2', id: '3', p: 12, s: 2, applied: true });
    // a late subscriber's snapshot is the last trade, not the cancel
    const late = new Sub(uws);
    hub.subscribe(late, spec('trade:AAPL'), 0, { snapshot: true });
    expect(late.frames).toEqual([expect.objectContaining({ op: 'data', snapshot: true, d: expect.objectContaining({ id: '2' }) })]);
  });
});
