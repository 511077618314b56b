import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/bus/nats-bus.js';
import { TickwireClient } from '../../src/client/index.js';
import type { Execution, GapEvent, Update } from '../../src/client/index.js';
import { startEngine } from '../../src/app/engine.js';
import type { Engine, EngineRoles } from '../../src/app/engine.js';
import { NatsCluster } from '../helpers/ha-servers.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { JWT_SECRET, postExecution, SERVICE_TOKEN, userToken } from './cluster.js';
import type { ExecutionBody } from './cluster.js';

/**
 * Clustered NATS that survives a node (docs/operations.md, "Clustered NATS"): three nats-server
 * nodes (routes, JetStream, executions streams with 3 replicas); a feed, two gateways and the
 * portfolio service, each given all three URLs. While ticks flow and an order system keeps
 * recording executions (half over the service API, half on exec.in.<user>), one node is
 * SIGKILLed: first the node gateway 0 is connected to, then (after the first one is back and
 * caught up) the leader of the executions stream. Market data must resume on every gateway (the
 * longest quote gap is printed), and every execution must reach each client exactly once, in
 * log order, with contiguous seq.
 */
const USER = 'alice';
let cluster: NatsCluster;
const engines: Engine[] = [];
let gateways: Engine[] = [];
let order: NatsConnection;
const raws: TestClient[] = [];
/** arrival times of quote frames, per raw client */
const quoteTimes: number[][] = [];
let sdk: TickwireClient;
const sdkExecutions: Update<Execution>[] = [];
const sdkGaps: GapEvent[] = [];
let sdkQuotes = 0;
const posted: ExecutionBody[] = [];
let n = 0;

function engine(roles: Partial<EngineRoles>, extra: Record<string, unknown> = {}): Promise<Engine> {
  return startEngine(
    {
      host: '127.0.0.1',
      port: 0,
      log: { level: (process.env.TW_TEST_LOG ?? 'silent') as 'silent' },
      natsUrl: cluster.urls,
      auth: { mode: 'required', jwtSecret: JWT_SECRET, serviceToken: SERVICE_TOKEN },
      executions: { replicas: 3 },
      ops: { statsLogSec: 0 },
      portfolio: { publishMs: 100 },
      ...extra,
    },
    { roles, env: {} },
  ).then((e) => {
    engines.push(e);
    return e;
  });
}

const isExec = (f: Frame): boolean => f.op === 'data' && f.ch === 'executions';
const isQuote = (f: Frame): boolean => f.op === 'data' && f.ch === 'quote:AAPL';

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  // the gateways create the executions streams (replicas 3), the portfolio service follows them
  gateways = [await engine({ feeds: [] }), await engine({ feeds: [] })];
  await engine({ gateway: false, feeds: [], portfolio: true });
  await engine({ gateway: false, feeds: ['synthetic'] }, { synthetic: { rate: 200, seed: 7, symbols: ['AAPL', 'MSFT'] } });
  await cluster.waitStreamHealthy('TW_EXEC', 3);
  await cluster.waitStreamHealthy('TW_EXEC_IN', 3);
  order = await connect({ servers: cluster.nodes.map((x) => x.url), maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'order-system' });
  for (const [i, g] of gateways.entries()) {
    const c = await TestClient.connect(`ws://127.0.0.1:${g.port}/v1/stream`, {
      encoding: 'json',
      headers: { authorization: `Bearer ${await userToken(USER)}` },
    });
    const times: number[] = [];
    quoteTimes[i] = times;
    c.ws.on('message', () => {
      if (isQuote(c.frames.at(-1) ?? {})) times.push(Date.now());
    });
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'executions'], snapshot: false });
    expect(ack.subscribed).toEqual(['quote:AAPL', 'executions']);
    raws.push(c);
  }
  sdk = new TickwireClient({
    url: `ws://127.0.0.1:${gateways[0]!.port}/v1/stream`,
    token: () => userToken(USER),
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
  });
  sdk.on('execution', (u) => sdkExecutions.push(u));
  sdk.on('gap', (g) => sdkGaps.push(g));
  sdk.on('quote', () => sdkQuotes++);
  await sdk.connect();
  await sdk.subscribe(['quote:AAPL', 'executions']);
  await waitFor(() => quoteTimes.every((t) => t.length >= 5) && sdkQuotes >= 5, { what: 'quotes on every client', timeout: 30_000 });
}, 120_000);

afterAll(async () => {
  await sdk?.close();
  for (const c of raws) c.close();
  await order?.close().catch(() => undefined);
  for (const e of engines.reverse()) await e.close().catch(() => undefined);
  await cluster?.destroy();
});

/** The order system: one execution at a time, each retried (same id) until it is acknowledged. */
async function recordOne(): Promise<void> {
  const i = ++n;
  const body: ExecutionBody = { user: USER, id: `hx-${i}`, order: `o-${i}`, sym: 'AAPL', side: i % 3 ? 'buy' : 'sell', qty: i, p: 100 + i, t: Date.now() };
  posted.push(body);
  if (i % 2 === 0) {
    await postExecution(() => `http://127.0.0.1:${gateways[i % 4 === 0 ? 0 : 1]!.port}`, body, { timeoutMs: 30_000 });
    return;
  }
  // exec.in.<user> on JetStream: Nats-Msg-Id = the execution id, so a retry is deduplicated
  const { user: _u, ...payload } = body;
  const js = jetstream(order, { timeout: 2000 });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      await js.publish(`exec.in.${USER}`, JSON.stringify(payload), { msgID: body.id });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200)); // an order system's retry interval, not a wait
    }
  }
}

function steadyOrders(): { stop(): Promise<void> } {
  let stopped = false;
  const run = (async () => {
    while (!stopped) {
      const t0 = Date.now();
      await recordOne();
      if (Date.now() - t0 > 1000) console.log(`[nats-cluster] execution ${n} took ${Date.now() - t0} ms`);
      await new Promise((r) => setTimeout(r, 15)); // pacing the steady orders, not a wait
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await run;
    },
  };
}

/** Kill a node, wait until every gateway carries quotes again; returns the longest quote gap per gateway. */
async function killAndMeasure(name: string): Promise<number[]> {
  const node = cluster.node(name);
  const counts = quoteTimes.map((t) => t.length);
  const killedAt = Date.now();
  await node.proc.kill('SIGKILL');
  await waitFor(() => quoteTimes.every((t, i) => t.length >= counts[i]! + 20 && t.at(-1)! > killedAt + 500), {
    what: 'quotes again on every gateway',
    timeout: 30_000,
  });
  return quoteTimes.map((t) => {
    const around = t.filter((x) => x >= killedAt - 1000);
    let gap = 0;
    for (let i = 1; i < around.length; i++) gap = Math.max(gap, around[i]! - around[i - 1]!);
    return gap;
  });
}

function serverOf(e: Engine): string {
  const port = Number((e.bus as NatsBus).nc.getServer().split(':').at(-1));
  return cluster.byPort(port).name;
}

describe('a three-node NATS cluster with one node killed', () => {
  it('market data resumes on every gateway and every execution reaches each client exactly once, in order', async () => {
    const orders = steadyOrders();
    await waitFor(() => raws.every((c) => c.frames.filter(isExec).length >= 10), { what: 'some executions before the first kill', timeout: 30_000 });

    // 1. the node gateway 0 is connected to
    const first = serverOf(gateways[0]!);
    const gaps1 = await killAndMeasure(first);
    console.log(
      `[nats-cluster] killed ${first} (gateway 0's node): longest quote gap per gateway ${gaps1.join(' / ')} ms; gateway 0 now on ${serverOf(gateways[0]!)}`,
    );
    const sofar = n;
    await waitFor(() => raws.every((c) => c.frames.filter(isExec).length >= sofar), { what: 'executions flowing after the first kill', timeout: 30_000 }).catch(
      (err: Error) => {
        throw new Error(`${err.message}: ${sofar} recorded, clients have ${raws.map((r) => r.frames.filter(isExec).length).join(', ')}`);
      },
    );
    cluster.node(first).proc.start();
    await cluster.waitFormed();
    await cluster.waitStreamHealthy('TW_EXEC', 3);
    await cluster.waitStreamHealthy('TW_EXEC_IN', 3);

    // 2. the leader of the executions stream (Raft elects another; appends wait for it)
    const leader = (await cluster.streamLeader('TW_EXEC'))!;
    expect(leader).toBeTruthy();
    const gaps2 = await killAndMeasure(leader);
    let newLeader: string | undefined;
    await waitFor(async () => (newLeader = await cluster.streamLeader('TW_EXEC')) !== undefined && newLeader !== leader, {
      what: 'a new TW_EXEC leader',
      timeout: 30_000,
    });
    console.log(`[nats-cluster] killed ${leader} (TW_EXEC leader): longest quote gap per gateway ${gaps2.join(' / ')} ms; new leader ${newLeader}`);
    const atNewLeader = posted.length;
    await waitFor(() => posted.length >= atNewLeader + 10, { what: 'executions recorded under the new leader', timeout: 30_000 });
    await orders.stop();
    cluster.node(leader).proc.start();
    await cluster.waitFormed();

    const total = posted.length;
    console.log(`[nats-cluster] ${total} executions recorded across two node kills`);
    for (const [i, c] of raws.entries()) {
      await waitFor(() => c.frames.filter(isExec).length >= total, { what: `all ${total} executions on raw client ${i}`, timeout: 30_000 }).catch(
        async (err: Error) => {
          const got = c.frames.filter(isExec);
          const ids = new Set(got.map((f) => f.d.id));
          const jsm = await jetstreamManager(order);
          const ci = await jsm.consumers.info('TW_EXEC_IN', 'tickwire-exec-in').catch((e: Error) => e.message);
          const si = await jsm.streams.info('TW_EXEC_IN').catch((e: Error) => e.message);
          const info = await jsm.streams.info('TW_EXEC');
          const rows: string[] = [];
          for (let q = info.state.first_seq; q <= info.state.last_seq; q++) {
            const m = await jsm.streams.getMessage('TW_EXEC', { seq: q }).catch(() => null);
            rows.push(m ? `${q}:${JSON.parse(new TextDecoder().decode(m.data)).seq}:${JSON.parse(new TextDecoder().decode(m.data)).d.id}` : `${q}:-`);
          }
          console.log('[nats-cluster] TW_EXEC', JSON.stringify(info.state), rows.join(' '));
          console.log('[nats-cluster] inbound consumer', JSON.stringify(ci).slice(0, 1500), 'stream', JSON.stringify((si as any).state ?? si));
          const sq = got.map((f) => f.seq as number);
          const holes = sq.flatMap((q, k) => (k > 0 && q !== sq[k - 1]! + 1 ? [`${sq[k - 1]}->${q}@${k}`] : []));
          console.log(
            `[nats-cluster] client ${i} holes ${holes.join(' ')} last ${sq.at(-1)}; other clients ${raws.map((r) => r.frames.filter(isExec).length).join(',')}; ids at 10..20 ${got
              .slice(10, 20)
              .map((f) => `${f.seq}:${f.d.id}`)
              .join(' ')}`,
          );
          throw new Error(
            `${err.message}; client ${i} has ${got.length}, sdk ${sdkExecutions.length}; missing ${posted
              .filter((b) => !ids.has(b.id))
              .map((b) => b.id)
              .join(',')}; seqs ${got.map((f) => f.seq).join(',')}`,
          );
        },
      );
    }
    await waitFor(() => sdkExecutions.length >= total, { what: `all ${total} executions in the SDK`, timeout: 30_000 });
    await quietFor(500, 'no repeated execution after the last one');

    // the log order, from a fresh replay
    const replay = await TestClient.connect(`ws://127.0.0.1:${gateways[1]!.port}/v1/stream`, {
      encoding: 'json',
      headers: { authorization: `Bearer ${await userToken(USER)}` },
    });
    await replay.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 });
    const replayStart = Date.now();
    const log = await replay.waitForCount(isExec, total, 30_000).catch(async (err: Error) => {
      // slow or short? what arrived, and whether the rest comes later
      const seqs = () => replay.frames.filter(isExec).map((f) => f.seq as number);
      const first = seqs();
      await quietFor(10_000, 'the replay to finish').catch(() => undefined);
      const later = seqs();
      const missing = Array.from({ length: total }, (_, i) => i + 1).filter((q) => !later.includes(q));
      throw new Error(
        `${err.message}; ${first.length} at the timeout, ${later.length} 10 s later; missing seqs ${missing.join(',')}; replay frames ${JSON.stringify(replay.frames.filter((f) => !isExec(f))).slice(0, 600)}`,
      );
    });
    console.log(`[nats-cluster] replay of ${total} executions took ${Date.now() - replayStart} ms`);
    replay.close();
    expect(log.map((f) => f.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(new Set(log.map((f) => f.d.id))).toEqual(new Set(posted.map((b) => b.id))); // none lost, none twice
    const logIds = log.map((f) => f.d.id as string);

    // on the wire, to each client: exactly once, in log order (no duplicates, no holes)
    for (const c of raws) {
      expect(c.frames.filter(isExec).map((f) => f.d.id)).toEqual(logIds);
      expect(c.frames.filter(isExec).map((f) => f.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(c.closeCode).toBeUndefined();
    }
    expect(sdkExecutions.map((u) => u.d.id)).toEqual(logIds);
    // market data may show a seq gap (ticks published while a node was down are gone), repaired by a resync
    console.log(`[nats-cluster] SDK gaps: ${JSON.stringify(sdkGaps.map((g) => ({ ch: g.channel, missed: g.missed })))}`);
    expect(sdkGaps.filter((g) => g.channel === 'executions')).toEqual([]);

    // the portfolio service (its own engine) applied every execution once
    const net = posted.reduce((s, b) => s + (b.side === 'buy' ? b.qty : -b.qty), 0);
    let seen = '';
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${gateways[0]!.port}/v1/users/${USER}/positions`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
        seen = `${res.status} ${await res.text()}`;
        const body = JSON.parse(seen.slice(4)) as { positions: { sym: string; qty: number }[] };
        return body.positions.find((p) => p.sym === 'AAPL')?.qty === net;
      },
      { what: 'positions from every execution', timeout: 20_000 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}: want AAPL ${net}, got ${seen.slice(0, 400)}`);
    });
    for (const g of gateways) expect(g.ready().ready).toBe(true);
  }, 150_000);
});
