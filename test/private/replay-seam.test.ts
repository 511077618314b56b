import { afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { ExecutionRouter } from '../../src/executions/execution-router.js';
import { PrivateChannelResolver } from '../../src/executions/private-channels.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { GatewayBus } from '../../src/fanout/gateway-bus.js';
import { Hub } from '../../src/fanout/hub.js';
import type { ChannelSpec } from '../../src/fanout/channels.js';
import { FakeSub, FakeUws } from '../helpers/fake-uws.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

const ex = (i: number): ExecutionPayload => ({ id: `e${i}`, order: 'o', sym: 'AAPL', side: 'buy', qty: 1, p: 100 + i, t: i });
const USER = 'seam';

/**
 * The executions replay meets the live stream through hub operations (flush the channel, join),
 * not through timers: the hub runs on a virtual clock that the test never advances, so a throttle
 * window of a second never ends by itself. Every subscriber still gets each event exactly once.
 */
describe('durable replay seam', () => {
  let stop: (() => void) | undefined;
  afterEach(() => stop?.());

  function setup(tiers: number[]) {
    const log = new MemoryEventLog({ maxPerUser: 100_000, retentionMs: 3_600_000 });
    const router = new ExecutionRouter({ log, snapshotEvents: 0, reconcileMs: 0, pageSize: 7 });
    const clock = new VirtualClock();
    const uws = new FakeUws();
    const hub = new Hub({ bus: new GatewayBus(new MemoryBus(), { executions: router }), publisher: uws, clock, upstreamReleaseMs: 1000 });
    const res = new PrivateChannelResolver(router, undefined).resolve('executions', { user: USER } as never);
    if (!res?.ok) throw new Error('executions channel did not resolve');
    const spec: ChannelSpec = res.spec;
    stop = () => {
      hub.close();
      router.close();
    };
    return { log, router, clock, hub, uws, spec, tiers };
  }

  /** until `cond` holds, letting promises and I/O run (the virtual clock only runs deferred work) */
  async function settle(clock: VirtualClock, cond: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 5000 && !cond(); i++) {
      clock.turn();
      await new Promise((r) => setImmediate(r));
    }
    if (!cond()) throw new Error(`timed out waiting for ${what}`);
  }

  it.each([[0], [1000]])('is exact while events are published during many replays (throttle %i ms, clock stopped)', async (tier) => {
    const { log, router, clock, hub, uws, spec } = setup([tier]);
    // a subscriber on the live stream from the start keeps the channel (and its coalescer) busy
    const watcher = new FakeSub(uws);
    hub.subscribe(watcher, spec, tier, { snapshot: false });
    let appended = 0;
    const append = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) await log.append(USER, ex(++appended));
    };
    await append(50);
    const subs: { sub: FakeSub; since: number }[] = [];
    // replays start at random points while publishing goes on
    for (let round = 0; round < 20; round++) {
      const since = Math.floor(Math.random() * appended);
      const sub = new FakeSub(uws);
      hub.subscribe(sub, spec, tier, { snapshot: true, since });
      subs.push({ sub, since });
      await append(1 + Math.floor(Math.random() * 10));
      clock.turn();
    }
    const head = appended;
    await settle(clock, () => router.stats.active === 0 && router.stats.handedOff >= head, 'every replay to end and the feed to reach the head');
    // the last events may still be in a throttle window the stopped clock never ends: a flush puts them out
    hub.flushChannel(spec.key);
    for (const { sub, since } of subs) {
      const seqs = sub.data('executions').map((f) => f.seq as number);
      expect(seqs, `since ${since}`).toEqual(Array.from({ length: head - since }, (_, i) => since + 1 + i));
    }
    expect(clock.now).toBe(0);
  });

  it('a subscriber whose replay ends while its channel holds a throttled window gets that window once, on the topic', async () => {
    const { log, clock, hub, uws, spec } = setup([1000]);
    const watcher = new FakeSub(uws);
    hub.subscribe(watcher, spec, 1000, { snapshot: false });
    for (let i = 1; i <= 3; i++) await log.append(USER, ex(i));
    await settle(clock, () => watcher.data().length >= 1, 'the first (leading-edge) emission');
    // 2 and 3 wait in the window that started at the leading emission of 1
    const late = new FakeSub(uws);
    hub.subscribe(late, spec, 1000, { snapshot: true, since: 0 });
    await settle(clock, () => late.data().length >= 3, 'the replay');
    expect(late.data().map((f) => f.seq)).toEqual([1, 2, 3]);
    expect(watcher.data().map((f) => f.seq)).toEqual([1, 2, 3]);
    await log.append(USER, ex(4));
    clock.advance(1000); // event 4 waits for the window that started at the seam's flush
    await settle(clock, () => late.data().length >= 4, 'event 4 on the topic');
    expect(late.data().map((f) => f.seq)).toEqual([1, 2, 3, 4]);
    expect(watcher.data().map((f) => f.seq)).toEqual([1, 2, 3, 4]);
  });
});
