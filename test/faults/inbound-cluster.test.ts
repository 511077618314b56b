import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INBOUND_DURABLE } from '../../src/executions/inbound-consumer.js';
import type { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { NatsCluster } from '../helpers/ha-servers.js';
import { startIntakeGateway } from '../helpers/intake-gateway.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The inbound work queue (`exec.in.<user>` → the execution log) across node kills, without the
 * rest of the engine: two "gateways" (each its own connection, log and inbound consumer, on
 * different nodes) share the durable consumer while an order system publishes steadily. Each
 * round SIGKILLs one node (the consumer's leader, a gateway's node, the log stream's leader),
 * starts it again, and requires every message published so far to be in the log within a bound,
 * and a replay of the log to hold each message once with increasing seq (holes are printed: a
 * client sees them as a gap), read several times after the kills: each read's consumer lives on
 * a replica nats-server picks, which can then hold other messages than the leader (printed for
 * each replica; the log checks a consumer's read against the leader). This is the intake path whose stall lost every other
 * execution of test/faults/nats-cluster.test.ts (the odd ones go through exec.in).
 */
const USER = 'inbound-user';
/** one kill of each kind by default; TW_INBOUND_ROUNDS=N for a longer stress run */
const ROUNDS = Number(process.env.TW_INBOUND_ROUNDS ?? 3);
/**
 * The intake is stuck when the messages a round waits for stop going into the log for this long:
 * longer than a redelivery takes (the 10 s ack wait, then up to 15 s of retry delay). How fast a
 * slow machine catches up is not a pass/fail matter here (printed, and measured by
 * bench/intake-cluster); a message that never gets into the log is. CI once ran this beside other
 * cluster tests on a loaded machine where the two gateways appended 18 orders/s against 35
 * published: a fixed 25 s bound failed although nothing was stuck.
 */
const STALL_MS = Number(process.env.TW_STALL_MS ?? 30_000);
/** the longest a whole catch-up may take, stuck or not (the test's own timeout comes after) */
const CATCH_UP_MAX_MS = 150_000;
/** replay reads of the whole log at the end (each through a consumer on a replica nats-server picks) */
const READS = 6;

let cluster: NatsCluster;
const conns: NatsConnection[] = [];
const logs: JetStreamEventLog<{ id: string; n: number }>[] = [];
const stops: (() => void)[] = [];
let order: NatsConnection;
const published: string[] = [];
const handled = new Map<string, number>();
/** per gateway: the message its handler is on and since when (a failure's report tells a stuck append from lost deliveries) */
const handling: ({ id: string; since: number; deliveries: number } | undefined)[] = [];
/** per gateway: messages delivered to it and when it last got one */
const deliveries: { count: number; last: number; failures: number; lastError?: string }[] = [];
/** per gateway: how long each append took, first deliveries and redeliveries apart (a failure's report shows where the time went) */
const timings: { first: number[]; again: number[] }[] = [];

function timingSummary(g: number): string {
  const t = timings[g];
  if (!t) return 'no appends';
  const row = (xs: number[]): string => {
    if (xs.length === 0) return '0';
    const s = [...xs].sort((a, b) => a - b);
    const sum = s.reduce((a, b) => a + b, 0);
    return `${s.length} (total ${Math.round(sum)} ms, p50 ${Math.round(s[Math.floor(s.length / 2)]!)} ms, max ${Math.round(s.at(-1)!)} ms)`;
  };
  return `appends of first deliveries ${row(t.first)}; of redeliveries ${row(t.again)}`;
}
const warnings: string[] = [];

beforeAll(async () => {
  cluster = await NatsCluster.start(3);
  const urls = cluster.nodes.map((x) => x.url);
  for (let g = 0; g < 2; g++) {
    // gateway g starts on node g (the list is rotated; no randomizing)
    const servers = [...urls.slice(g), ...urls.slice(0, g)];
    const nc = await connect({ servers, noRandomize: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: `gateway-${g}` });
    conns.push(nc);
    const { log, stop } = await startIntakeGateway<{ id: string; n: number }>(nc, {
      onError: (err, what) => warnings.push(`gateway ${g}: ${what}: ${(err as Error).message}`),
      warn: (o, msg) => warnings.push(`gateway ${g}: ${msg} ${(o as { err?: Error }).err?.message ?? ''}`),
      handle: (log) => async (user, body, opts) => {
        const seen = (deliveries[g] ??= { count: 0, last: 0, failures: 0 });
        seen.count++;
        seen.last = Date.now();
        handling[g] = { id: body.id, since: Date.now(), deliveries: seen.count };
        try {
          // as the engine's intake does: a redelivery carries its first delivery's time, and the
          // log looks for its id among what was stored since (a retry of an append that was
          // stored but not acknowledged comes back as a duplicate)
          const began = performance.now();
          await log.append(user, body, opts);
          const t = (timings[g] ??= { first: [], again: [] });
          (opts.redeliveredSince === undefined ? t.first : t.again).push(performance.now() - began);
        } catch (err) {
          seen.failures++;
          seen.lastError = (err as Error).message;
          throw err;
        } finally {
          handling[g] = undefined;
        }
        handled.set(body.id, (handled.get(body.id) ?? 0) + 1);
      },
    });
    logs.push(log);
    stops.push(stop);
  }
  await cluster.waitStreamHealthy('TW_EXEC', 3);
  await cluster.waitStreamHealthy('TW_EXEC_IN', 3);
  order = await connect({ servers: urls, maxReconnectAttempts: -1, reconnectTimeWait: 250, name: 'order-system' });
}, 120_000);

afterAll(async () => {
  for (const s of stops) s();
  await order?.close().catch(() => undefined);
  for (const l of logs) await l.close();
  for (const c of conns) await c.close().catch(() => undefined);
  await cluster?.destroy();
});

/**
 * Until every message of `want` is in the log. Fails when none of the missing ones went into the
 * log for STALL_MS (printing each gateway's state), not on the time the whole catch-up takes.
 */
async function caughtUp(want: string[], what: string): Promise<void> {
  let missing = want.length;
  let progressAt = Date.now();
  await waitFor(
    () => {
      const now = want.reduce((n, id) => n + (handled.has(id) ? 0 : 1), 0);
      if (now < missing) {
        missing = now;
        progressAt = Date.now();
      }
      return now === 0 || Date.now() - progressAt > STALL_MS;
    },
    { what, timeout: CATCH_UP_MAX_MS, interval: 100 },
  ).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await diagnostics()}`);
  });
  if (missing > 0) throw new Error(`${what}: stuck, ${missing} messages not in the log and none appended for ${STALL_MS} ms\n${await diagnostics()}`);
}

/** The order system: one message at a time, each retried (same msgID) until JetStream acknowledges it. */
function steadyOrders(): { stop(): Promise<void> } {
  let stopped = false;
  const js = jetstream(order, { timeout: 2000 });
  const run = (async () => {
    let n = 0;
    while (!stopped) {
      const id = `in-${++n}`;
      for (;;) {
        try {
          await js.publish(`exec.in.${USER}`, JSON.stringify({ id, n }), { msgID: id });
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 200)); // an order system's retry interval, not a wait
        }
      }
      published.push(id);
      await new Promise((r) => setTimeout(r, 25)); // pacing the steady orders, not a wait
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await run;
    },
  };
}

async function diagnostics(): Promise<string> {
  const jsm = await jetstreamManager(order);
  const ci = await jsm.consumers.info('TW_EXEC_IN', INBOUND_DURABLE).catch((e: Error) => e.message);
  const si = await jsm.streams.info('TW_EXEC_IN').catch((e: Error) => e.message);
  const missing = published.filter((id) => !handled.has(id));
  return [
    `missing ${missing.length} of ${published.length}: ${missing.slice(0, 20).join(',')}`,
    `consumer ${JSON.stringify(ci).slice(0, 1200)}`,
    `stream ${JSON.stringify(typeof si === 'string' ? si : si.state)}`,
    `warnings ${warnings.slice(-10).join(' | ')}`,
    ...[0, 1].map((g) => {
      const h = handling[g];
      const d = deliveries[g];
      return `gateway ${g}: ${d?.count ?? 0} deliveries (${d?.failures ?? 0} failed${d?.lastError ? `, last: ${d.lastError}` : ''}), the last ${d ? Date.now() - d.last : '-'} ms ago; ${h ? `handling ${h.id} for ${Date.now() - h.since} ms` : 'idle'}; ${timingSummary(g)}`;
    }),
  ].join('\n');
}

/**
 * What each replica of the log stream holds, next to the leader's messages: a consumer is
 * created until one has lived on each node (nats-server picks the replica), and what it delivers
 * is compared with the leader's message at each stream sequence.
 */
async function replicaViews(): Promise<{ text: string; onDivergedReplicas: Set<string> }> {
  const jsm = await jetstreamManager(order);
  const js = jetstream(order);
  const info = await jsm.streams.info('TW_EXEC');
  const leader = new Map<number, string>();
  for (let q = info.state.first_seq; q <= info.state.last_seq; q++) {
    const m = await jsm.streams.getMessage('TW_EXEC', { seq: q }).catch(() => null);
    if (m) leader.set(q, new TextDecoder().decode(m.data));
  }
  const views: string[] = [`leader ${info.cluster?.leader} holds ${leader.size}`];
  const seen = new Set<string>();
  // ids a replica holds where it differs from the leader
  const onDivergedReplicas = new Set<string>();
  for (let attempt = 0; attempt < 30 && seen.size < 3; attempt++) {
    const c = await js.consumers.get('TW_EXEC', { filter_subjects: `exec.log.${USER}`, opt_start_seq: 1 });
    const node = (await c.info(true)).cluster?.leader ?? '?';
    if (seen.has(node)) {
      await c.delete().catch(() => undefined);
      continue;
    }
    seen.add(node);
    const held = new Map<number, string>();
    for (;;) {
      const batch = await c.fetch({ max_messages: 256, expires: 1000 });
      let got = 0;
      for await (const m of batch) {
        got++;
        held.set(m.seq, new TextDecoder().decode(m.data));
      }
      if (got === 0) break;
    }
    await c.delete().catch(() => undefined);
    const differ = [...new Set([...leader.keys(), ...held.keys()])].filter((q) => leader.get(q) !== held.get(q)).sort((x, y) => x - y);
    const row = (v: string | undefined): string => {
      if (v === undefined) return '-';
      const p = JSON.parse(v) as { seq: number; d: { id: string } };
      return `${p.seq}:${p.d.id}`;
    };
    for (const q of differ) {
      const v = held.get(q);
      if (v !== undefined) onDivergedReplicas.add((JSON.parse(v) as { d: { id: string } }).d.id);
    }
    const rows = differ.slice(0, 12).map((q) => `${q} ${row(leader.get(q))}/${row(held.get(q))}`);
    views.push(`${node} holds ${held.size}, differs at ${differ.length} stream seqs${rows.length ? ` (seq leader/replica: ${rows.join(', ')})` : ''}`);
  }
  return { text: views.join('; '), onDivergedReplicas };
}

/** Every message of the log stream: stream seq, per-user seq, id (for a failure's report). */
async function dumpLog(): Promise<string> {
  const jsm = await jetstreamManager(order);
  const info = await jsm.streams.info('TW_EXEC');
  const rows: string[] = [];
  for (let q = info.state.first_seq; q <= info.state.last_seq; q++) {
    const m = await jsm.streams.getMessage('TW_EXEC', { seq: q }).catch(() => null);
    if (!m) {
      rows.push(`${q}:-`);
      continue;
    }
    const v = JSON.parse(new TextDecoder().decode(m.data)) as { seq: number; d: { id: string } };
    rows.push(`${q}:${v.seq}:${v.d.id}`);
  }
  return `${JSON.stringify(info.state)} ${rows.join(' ')}`;
}

describe('the inbound work queue across node kills', () => {
  it('appends every published message exactly once, and no round leaves a message stuck', async (ctx) => {
    const orders = steadyOrders();
    const catchUps: string[] = [];
    try {
      await waitFor(() => handled.size >= 20, { what: 'intake before the first kill', timeout: 30_000 });
      for (let round = 0; round < ROUNDS; round++) {
        const kind = ['consumer leader', "gateway 0's node", 'log leader'][round % 3]!;
        const victim =
          kind === 'consumer leader'
            ? await cluster.consumerLeader('TW_EXEC_IN', INBOUND_DURABLE)
            : kind === 'log leader'
              ? await cluster.streamLeader('TW_EXEC')
              : cluster.byPort(Number(conns[0]!.getServer().split(':').at(-1))).name;
        expect(victim, kind).toBeTruthy();
        const node = cluster.node(victim!);
        const killedAt = Date.now();
        await node.proc.kill('SIGKILL');
        const atKill = published.length;
        await waitFor(() => published.length >= atKill + 20, { what: 'orders accepted while a node is down', timeout: 30_000 });
        node.proc.start();
        await cluster.waitFormed();
        await caughtUp(published.slice(), `round ${round} (${kind} ${victim}): intake caught up`);
        catchUps.push(`${kind} ${victim}: ${Date.now() - killedAt} ms`);
        await cluster.waitStreamHealthy('TW_EXEC', 3);
        await cluster.waitStreamHealthy('TW_EXEC_IN', 3);
      }
    } finally {
      await orders.stop();
    }
    console.log(`[inbound-cluster] kill to caught up: ${catchUps.join('; ')}; gateway 0: ${timingSummary(0)}; gateway 1: ${timingSummary(1)}`);
    await caughtUp(published.slice(), 'the last orders');
    // the log as a replay reads it: every published message once, seq increasing. A long read
    // goes through a consumer that nats-server places on any replica, and after the kills a
    // replica can hold other messages than the leader (CI once read 1112 of 1113 stored
    // messages, and once 494 of 498, the retries of 10 s alike): each read must return what the
    // leader holds the first time. Several reads, so that one is likely served by each replica.
    const replicas = await replicaViews();
    console.log(`[inbound-cluster] replicas: ${replicas.text}`);
    for (let r = 0; r < READS; r++) {
      const readFrom = Date.now();
      const stored = await logs[1]!.read(USER, 0, published.length + 100);
      const holes = stored.filter((e, i) => e.seq !== (i === 0 ? 1 : stored[i - 1]!.seq + 1)).length;
      const again = warnings.filter((w) => w.includes('read again from the leader')).length;
      console.log(
        `[inbound-cluster] read ${r}: ${published.length} messages, ${stored.length} events in ${Date.now() - readFrom} ms, ${holes} seq holes (${again} reads so far corrected from the leader)`,
      );
      if (stored.length !== published.length || holes > 0) {
        // what the read left out: not on the stream leader at all (nats-server lost it there), or
        // on the leader under a seq not above the one before (a copy that was never repaired)
        const read = new Set(stored.map((e) => e.d.id));
        const log = await dumpLog();
        const missing = published.filter((id) => !read.has(id));
        const onLeader = missing.filter((id) => new RegExp(`:${id}( |$)`).test(log));
        console.log(`[inbound-cluster] not read: ${missing.join(',')}; of these the leader holds ${onLeader.join(',') || 'none'}`);
        console.log(`[inbound-cluster] log ${log}`);
        // The stream's own replicas disagree: an acknowledged execution is held only by a replica
        // that differs from the leader at the same stream sequences. That is nats-server's
        // clustered-stream sequence drift after rejected proposals (expected-sequence checks)
        // and leader changes, fixed after the 2.9.10 that Debian ships (nats-server pull requests
        // #4365, #4777, #5179, #8057; docs/operations.md). No read through the JetStream API can
        // return it; reported as skipped, never passed. Anything else fails below.
        const serverDrift =
          stored.length + missing.length === published.length &&
          onLeader.length === 0 &&
          missing.every((id) => replicas.onDivergedReplicas.has(id)) &&
          new Set(stored.map((e) => e.d.id)).size === stored.length;
        if (serverDrift) {
          ctx.skip(`nats-server replica drift: ${missing.join(',')} held only by a replica that differs from the leader`);
          return;
        }
      }
      expect(stored.map((e) => e.d.id).sort()).toEqual([...published].sort());
      for (let i = 1; i < stored.length; i++) expect(stored[i]!.seq).toBeGreaterThan(stored[i - 1]!.seq);
    }
  }, 300_000);
});
