import { afterEach, describe, expect, it } from 'vitest';
import { CODECS } from '../../src/codec/frames.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import type { Engine } from '../../src/app/engine.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { StoredEvent } from '../../src/executions/event-log.js';
import { ExecutionRouter } from '../../src/executions/execution-router.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import type { ChannelSpec, ReplayControl } from '../../src/fanout/channels.js';
import { Hub } from '../../src/fanout/hub.js';
import type { HubSubscriber } from '../../src/fanout/hub.js';
import type { Update } from '../../src/fanout/coalescer.js';
import type { Payload } from '../../src/fanout/payloads.js';
import { clientFrame, RawWs } from '../helpers/raw-ws.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';
import { VirtualClock } from '../helpers/virtual-clock.js';
import { ManualBudgetClock, turnsUntil } from '../helpers/budget-clock.js';

/**
 * Durable replays (issue #11 item 1) have a bounded, fair cost: one replay per (connection,
 * channel), a new subscribe supersedes the running one; pages that yield to the event loop;
 * per-user and per-gateway budgets of replayed events per second; a client that does not read
 * during a replay is a slow consumer (paused, then 4009). Assertions are on counts and order,
 * never on elapsed time.
 */

const ex = (i: number): ExecutionPayload => ({ id: `e-${i}`, order: `o-${i}`, sym: 'AAPL', side: 'buy', qty: 1, p: 100 + (i % 50), t: 1_700_000_000_000 + i });
const isExec = (f: Frame): boolean => f.op === 'data' && f.ch === 'executions';

describe('replay budget (router, injected clock)', () => {
  it('caps replayed events per user and per gateway, and still delivers every event in order', async () => {
    const log = new MemoryEventLog({ maxPerUser: 10_000, retentionMs: 3_600_000 });
    for (let i = 1; i <= 300; i++) {
      await log.append('u', ex(i));
      await log.append('v', ex(i));
    }
    const clock = new ManualBudgetClock();
    const router = new ExecutionRouter({
      log,
      snapshotEvents: 0,
      reconcileMs: 0,
      pageSize: 50,
      budget: { perUserPerSec: 100, perGatewayPerSec: 150 },
      budgetClock: clock,
    });
    // two replays of u (two connections) share u's budget; v has its own, and all share the gateway's
    const got = { u: [] as number[], u2: [] as number[], v: [] as number[] };
    let done = 0;
    for (const [user, into] of [
      ['u', got.u],
      ['v', got.v],
      ['u', got.u2],
    ] as const) {
      void router.replay(user, 0, (evs: StoredEvent[]) => void into.push(...evs.map((e) => e.seq))).then(() => done++);
    }
    const total = (): number => got.u.length + got.v.length + got.u2.length;
    const ofU = (): number => got.u.length + got.u2.length;
    // run until every unfinished replay sleeps on the budget
    const settle = (): Promise<void> => turnsUntil(() => done === 3 || clock.sleepers.size === 3 - done);
    await settle();
    for (let second = 0; done < 3 && second < 20; second++) {
      expect(total(), `after ${second} s`).toBeLessThanOrEqual(150 * (second + 1));
      expect(ofU(), `user u after ${second} s`).toBeLessThanOrEqual(100 * (second + 1));
      expect(got.v.length, `user v after ${second} s`).toBeLessThanOrEqual(100 * (second + 1));
      clock.advance(1000);
      await settle();
    }
    expect(done).toBe(3);
    const all = Array.from({ length: 300 }, (_, i) => i + 1);
    expect(got.u).toEqual(all);
    expect(got.u2).toEqual(all);
    expect(got.v).toEqual(all);
    expect(router.budget.stats.userWaits + router.budget.stats.gatewayWaits).toBeGreaterThan(0);
    expect(router.stats).toMatchObject({ replays: 3, replayed: 900, active: 0, aborted: 0 });
    router.close();
  });
});

describe('replay pages and event-loop turns (router)', () => {
  it('however many replays run, one event-loop turn carries at most one page of replay', async () => {
    const log = new MemoryEventLog({ maxPerUser: 10_000, retentionMs: 3_600_000 });
    for (const user of ['a', 'b', 'c']) for (let i = 1; i <= 1000; i++) await log.append(user, ex(i));
    const router = new ExecutionRouter({ log, snapshotEvents: 0, reconcileMs: 0, pageSize: 100 });
    // count event-loop turns with a self-rescheduling immediate
    let turn = 0;
    let ticking = true;
    const tick = (): void => {
      turn++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const perTurn = new Map<number, number>();
    const got: Record<string, number[]> = { a: [], b: [], c: [] };
    await Promise.all(
      ['a', 'b', 'c', 'a'].map((user, k) =>
        router.replay(user, 0, (evs) => {
          perTurn.set(turn, (perTurn.get(turn) ?? 0) + evs.length);
          if (k < 3) got[user]!.push(...evs.map((e) => e.seq));
        }),
      ),
    );
    ticking = false;
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(100);
    expect(perTurn.size).toBeGreaterThanOrEqual(40); // 4000 events, 100 per turn
    for (const user of ['a', 'b', 'c']) expect(got[user]).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    router.close();
  });
});

describe('one replay per (subscriber, channel) (hub)', () => {
  it('a re-subscribe aborts the running replay; its late pages are dropped and only the newest replay joins', async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus();
    const frames: Frame[] = [];
    const topics = new Set<string>();
    const sub: HubSubscriber = {
      codec: CODECS.json,
      closed: false,
      join: (t) => void topics.add(t),
      leave: (t) => void topics.delete(t),
      send: (bytes) => {
        const f = JSON.parse(Buffer.from(bytes).toString()) as Frame;
        frames.push(...(f.op === 'batch' ? (f.items as Frame[]) : [f]));
      },
    };
    const hub = new Hub({
      bus,
      clock,
      upstreamReleaseMs: 0,
      publisher: {
        publish: (topic, bytes) => {
          if (topics.has(topic)) sub.send(bytes);
        },
      },
    });
    const runs: { ctl: ReplayControl | undefined; deliver: (u: Update<Payload>[]) => void; finish: () => void }[] = [];
    const durable: ChannelSpec = {
      key: 'executions@u',
      name: 'executions',
      subject: 'exec.live.u',
      mode: 'ordered',
      decode: (p) => JSON.parse(Buffer.from(p).toString()) as Update<Payload>,
      replay: (_since, deliver, ctl) => new Promise<void>((finish) => void runs.push({ ctl, deliver, finish })),
    };
    const ev = (seq: number): Update<Payload> => ({ seq, d: { id: `e${seq}` } });
    hub.subscribe(sub, durable, 0, { snapshot: true, since: 0 });
    // the connection re-subscribes the same channel: previous subscription out, new one in
    hub.unsubscribe(sub, durable.key, 0);
    hub.subscribe(sub, durable, 0, { snapshot: true, since: 0 });
    expect(runs).toHaveLength(2);
    expect(runs[0]!.ctl?.signal.aborted).toBe(true);
    expect(runs[1]!.ctl?.signal.aborted).toBe(false);
    runs[0]!.deliver([ev(1), ev(2)]); // a page of the superseded replay that was already in flight
    runs[0]!.finish();
    await new Promise((r) => setImmediate(r));
    expect(topics.size).toBe(0); // the superseded replay does not join for the running one
    runs[1]!.deliver([ev(1), ev(2)]);
    runs[1]!.finish();
    await new Promise((r) => setImmediate(r));
    expect(topics.size).toBe(1);
    bus.publish('exec.live.u', Buffer.from(JSON.stringify(ev(3))));
    clock.turn();
    expect(frames.map((f) => f.seq)).toEqual([1, 2, 3]);
    hub.close();
  });
});

const NO_BUDGET = { replayPerUserPerSec: 0, replayPerGatewayPerSec: 0 };

describe('replays on a real gateway', () => {
  let engine: Engine | undefined;
  const open: { close(): void }[] = [];
  afterEach(async () => {
    for (const c of open.splice(0)) c.close();
    await engine?.close();
    engine = undefined;
  });

  async function start(extra: Record<string, unknown> = {}, executions: Record<string, unknown> = {}): Promise<Engine> {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      ...extra,
      executions: { ...NO_BUDGET, ...executions, ...(extra.executions as object | undefined) },
    });
    return engine;
  }
  async function fill(e: Engine, user: string, n: number, pad = false): Promise<void> {
    for (let i = 1; i <= n; i++) {
      const x = ex(i);
      // ids and orders of 128 characters (the most allowed): about 400 bytes per event
      await e.private!.executions.record(user, pad ? { ...x, id: x.id.padEnd(128, '-'), order: x.order.padEnd(128, '-') } : x);
    }
  }
  async function client(e: Engine, user: string, encoding: 'json' | 'msgpack' = 'json'): Promise<TestClient> {
    const c = await TestClient.connect(wsUrl(e), { headers: { authorization: `Bearer ${await token({ sub: user })}` }, encoding });
    open.push(c);
    return c;
  }
  /**
   * The JSON items `ws` has read so far, each frame parsed once: waits poll this every 50 ms, and
   * parsing the whole of a 30 000-event replay (12 MB) on every poll kept this process, which also
   * runs the gateway, busy for most of the replay. Read-only for the callers.
   */
  const parsed = new WeakMap<RawWs, { frames: number; items: Frame[] }>();
  function rawJson(ws: RawWs): readonly Frame[] {
    let p = parsed.get(ws);
    if (!p) parsed.set(ws, (p = { frames: 0, items: [] }));
    for (; p.frames < ws.frames.length; p.frames++) {
      const f = ws.frames[p.frames]!;
      if (f.opcode !== 1) continue;
      const o = JSON.parse(f.payload.toString()) as Frame;
      if (o.op === 'batch') for (const item of o.items as Frame[]) p.items.push(item);
      else p.items.push(o);
    }
    return p.items;
  }

  it('a re-subscribe in the same read supersedes the running replay: each event once, then live', async () => {
    const e = await start();
    await fill(e, 'sam', 3000);
    const ws = await RawWs.connect(e.port, { protocol: 'tickwire.v1.json', headers: { authorization: `Bearer ${await token({ sub: 'sam' })}` } });
    open.push({ close: () => ws.destroy() });
    await ws.waitFor(() => rawJson(ws).some((f) => f.op === 'welcome'));
    const sub = (id: number): Buffer => clientFrame(1, Buffer.from(JSON.stringify({ op: 'subscribe', id, channels: ['executions'], since: 0 })));
    ws.socket.write(Buffer.concat([sub(1), sub(2)])); // both frames in one TCP write
    await ws.waitFor(() => rawJson(ws).filter(isExec).at(-1)?.seq === 3000, 20_000);
    await e.private!.executions.record('sam', ex(3001));
    await ws.waitFor(() => rawJson(ws).filter(isExec).at(-1)?.seq === 3001, 10_000);
    const seqs = rawJson(ws)
      .filter(isExec)
      .map((f) => f.seq as number);
    // whatever the first replay sent before it was superseded (at most a page) is a prefix of
    // the stream; then the second replay, complete, then live
    const restart = seqs.indexOf(1, 1);
    const head = restart < 0 ? [] : seqs.slice(0, restart);
    const tail = restart < 0 ? seqs : seqs.slice(restart);
    expect(head).toEqual(Array.from({ length: head.length }, (_, i) => i + 1));
    expect(head.length).toBeLessThanOrEqual(200);
    expect(tail).toEqual(Array.from({ length: 3001 }, (_, i) => i + 1));
    expect(e.private!.router!.stats.aborted).toBe(1);
  });

  it('a large replay yields between pages: another client gets its pong and /health while it runs', async () => {
    const e = await start({}, { replayPageSize: 50 });
    await fill(e, 'big', 10_000);
    const bystander = await client(e, 'other');
    const replayer = await client(e, 'big');
    const router = e.private!.router!;
    const ack = await replayer.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 });
    expect(ack.subscribed).toEqual(['executions']);
    const [pong, health] = await Promise.all([
      bystander.request({ op: 'ping', id: 7 }).then((f) => ({ f, replayed: router.stats.replayed, active: router.stats.active })),
      fetch(`http://127.0.0.1:${e.port}/health`).then(async (r) => ({ status: r.status, replayed: router.stats.replayed, active: router.stats.active })),
    ]);
    // answered while the replay was still running, not after it
    expect(pong.f.op).toBe('pong');
    expect(pong.active).toBe(1);
    expect(pong.replayed).toBeLessThan(10_000);
    expect(health.status).toBe(200);
    expect(health.active).toBe(1);
    expect(health.replayed).toBeLessThan(10_000);
    const got = await replayer.waitForCount(isExec, 10_000, 30_000);
    expect(got.map((f) => f.seq)).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
  });

  it('the per-user budget holds for all connections of a user: counted, and /metrics shows the waits', async () => {
    const e = await start({}, { replayPerUserPerSec: 1000, replayPageSize: 100 });
    await fill(e, 'ursula', 1500);
    const router = e.private!.router!;
    const a = await client(e, 'ursula');
    const b = await client(e, 'ursula', 'msgpack');
    const t0 = Date.now();
    await Promise.all([a, b].map((c) => c.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 })));
    // the bucket holds one second of the rate (1000 events), then the replays wait for it: by any
    // time t, at most 1000 + 1000 × t events, plus the two held tails (a page each) charged as debt
    await waitFor(() => router.budget.stats.userWaits > 0, { what: 'a replay waiting for the user budget', timeout: 10_000 });
    const sent = router.stats.replayed;
    expect(sent).toBeLessThanOrEqual(1000 + (Date.now() - t0) + 2 * 100);
    expect(sent).toBeLessThan(3000);
    for (const c of [a, b]) {
      const got = await c.waitForCount(isExec, 1500, 20_000);
      expect(got.map((f) => f.seq)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
    }
    const metrics = await (await fetch(`http://127.0.0.1:${e.port}/metrics`)).text();
    expect(metrics).toMatch(/^tickwire_replay_waits_total\{reason="user_budget"\} [1-9]/m);
    expect(metrics).toMatch(/^tickwire_replayed_events_total 3000$/m);
    expect(metrics).toMatch(/^tickwire_replays_total 2$/m);
    expect(metrics).toMatch(/^tickwire_replays_active 0$/m);
  });

  // loopback socket buffers take a few MB before the server sees backpressure: replay more than that
  const BIG = 30_000;
  const SLOW = { highWaterBytes: 16 * 1024, lowWaterBytes: 4 * 1024, hardLimitBytes: 256 * 1024, stuckMs: 1500, checkMs: 20 };

  it('a client that does not read during a replay is paused as a slow consumer, then closed 4009; buffers stay bounded', { timeout: 30_000 }, async () => {
    const e = await start({ slow: SLOW, executions: { ...NO_BUDGET, maxPerUser: BIG } });
    await fill(e, 'stuck', BIG, true);
    const router = e.private!.router!;
    const ws = await RawWs.connect(e.port, { protocol: 'tickwire.v1.json', headers: { authorization: `Bearer ${await token({ sub: 'stuck' })}` } });
    open.push({ close: () => ws.destroy() });
    await ws.waitFor(() => rawJson(ws).some((f) => f.op === 'welcome'));
    ws.pause();
    ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 }));
    await waitFor(() => e.gateway!.counters.slowDisconnects >= 1, { what: 'the 4009 close', timeout: 20_000 });
    await waitFor(() => router.stats.active === 0, { what: 'the replay to stop', timeout: 5000 });
    expect(router.stats.paused).toBeGreaterThanOrEqual(1);
    expect(router.stats.aborted).toBe(1);
    expect(router.stats.replayed).toBeLessThan(BIG); // it stopped sending instead of piling up
    expect(e.gateway!.counters.maxBufferedBytes).toBeLessThanOrEqual(2 * SLOW.hardLimitBytes + 64 * 1024);
    ws.resume();
    await ws.waitFor(() => ws.closeFrame() !== undefined, 10_000);
    expect(ws.closeFrame()!.code).toBe(4009);
    const seqs = rawJson(ws)
      .filter(isExec)
      .map((f) => f.seq as number);
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1)); // what it got is in order, no hole
    const metrics = await (await fetch(`http://127.0.0.1:${e.port}/metrics`)).text();
    expect(metrics).toMatch(/^tickwire_replay_waits_total\{reason="slow_consumer"\} [1-9]/m);
    expect(metrics).toMatch(/^tickwire_replays_aborted_total 1$/m);
  });

  it('a client that stops reading and comes back in time gets the whole replay once, in order', { timeout: 30_000 }, async () => {
    const e = await start({ slow: { ...SLOW, stuckMs: 20_000 }, executions: { ...NO_BUDGET, maxPerUser: BIG + 1 } });
    await fill(e, 'nap', BIG, true);
    const router = e.private!.router!;
    const ws = await RawWs.connect(e.port, { protocol: 'tickwire.v1.json', headers: { authorization: `Bearer ${await token({ sub: 'nap' })}` } });
    open.push({ close: () => ws.destroy() });
    await ws.waitFor(() => rawJson(ws).some((f) => f.op === 'welcome'));
    ws.pause();
    ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 }));
    await waitFor(() => router.stats.paused >= 1, { what: 'the replay to pause', timeout: 20_000 });
    expect(router.stats.replayed).toBeLessThan(BIG);
    ws.resume();
    await ws.waitFor(() => rawJson(ws).filter(isExec).length >= BIG, 20_000);
    await e.private!.executions.record('nap', ex(BIG + 1));
    await ws.waitFor(() => rawJson(ws).filter(isExec).at(-1)?.seq === BIG + 1, 10_000);
    expect(
      rawJson(ws)
        .filter(isExec)
        .map((f) => f.seq),
    ).toEqual(Array.from({ length: BIG + 1 }, (_, i) => i + 1));
    expect(e.gateway!.counters.slowDisconnects).toBe(0);
  });
});
