import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TickwireClient } from '../../src/client/index.js';
import type { Execution, Update } from '../../src/client/index.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { Cluster, errorLines, postExecution, userToken } from './cluster.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import type { ExecutionBody } from './cluster.js';

/**
 * Infrastructure faults with real processes: nats-server (JetStream), redis-server, a
 * `tickwire feed synthetic` process and two `tickwire gateway` processes. Clients: the SDK
 * (user alice: quotes, trades, executions) and a plain WebSocket (user bob) that never
 * reconnects, so a close would show. Each fault is injected while they are connected, in turn:
 * NATS down and back, Redis down and back, a gateway killed and restarted, the feed process
 * stopped and restarted. docs/reliability.md ("Faults") points here.
 */
let cluster: Cluster;
let sdk: TickwireClient;
let bob: TestClient;
const states: string[] = [];
const executions: Update<Execution>[] = [];
const epochs: { channel: string; previous: number; current: number }[] = [];
let quotes = 0;
let nextExec = 0;

beforeAll(async () => {
  cluster = await Cluster.start({ gateways: 2, synthetic: { rate: 300, seed: 21, symbols: ['AAPL', 'MSFT', 'BTC-USD', 'EUR-USD'] } });
  sdk = new TickwireClient({
    url: cluster.url(0),
    token: () => userToken('alice'),
    reconnect: { initialDelayMs: 100, maxDelayMs: 1000 },
    heartbeatIntervalMs: 2000,
    heartbeatTimeoutMs: 5000,
  });
  sdk.on('state', ({ state }) => states.push(state));
  sdk.on('execution', (u) => executions.push(u));
  sdk.on('quote', () => quotes++);
  sdk.on('epoch', (e) => epochs.push(e));
  await sdk.connect();
  const ack = await sdk.subscribe(['quote:AAPL', 'trade:AAPL', 'executions']);
  expect(ack.rejected).toEqual([]);
  bob = await TestClient.connect(cluster.url(0), { encoding: 'json', headers: { Authorization: `Bearer ${await userToken('bob')}` } });
  const bobAck = await bob.request({ op: 'subscribe', id: 1, channels: ['quote:MSFT', 'trade:MSFT'] });
  expect(bobAck.subscribed).toEqual(['quote:MSFT', 'trade:MSFT']);
  await waitFor(() => quotes >= 3 && bobData('quote:MSFT').length >= 3, { what: 'live data on both clients', timeout: 30_000 });
}, 120_000);

afterAll(async () => {
  await sdk?.close();
  bob?.close();
  await cluster?.stop();
});

function bobData(ch: string): Frame[] {
  return bob.frames.filter((f) => f.op === 'data' && f.ch === ch);
}

function execution(n: number): ExecutionBody {
  return { user: 'alice', id: `ex-${n}`, order: `o-${n}`, sym: 'AAPL', side: n % 2 ? 'buy' : 'sell', qty: n, p: 100 + n, t: Date.now() };
}

/** post the next n executions to gateway i, one after the other (each retried until 2xx), as an order system does */
async function post(n: number, gateway = 0): Promise<{ seq: number; attempts: number; duplicate: boolean }[]> {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await postExecution(cluster.http(gateway), execution(++nextExec)));
  return out;
}

/** one more execution, delivered: a repeat of an earlier one would have arrived before it */
async function sentinelExecution(): Promise<void> {
  await post(1);
  await waitFor(() => executions.some((u) => u.d.qty === nextExec), { what: 'the sentinel execution', timeout: 30_000 });
}

/** every execution posted so far, once each, in order, seq contiguous */
function expectExecutionsExactlyOnce(): void {
  expect(executions.map((u) => u.d.qty)).toEqual(Array.from({ length: nextExec }, (_, i) => i + 1));
  const seqs = executions.map((u) => u.seq!);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
}

/** the plain client's channels: contiguous seq from its snapshot on, no error frame, never closed */
function expectBobUndisturbed(): void {
  expect(bob.closeCode).toBeUndefined();
  expect(bob.frames.filter((f) => f.op === 'error')).toEqual([]);
  for (const ch of ['quote:MSFT', 'trade:MSFT']) {
    const seqs = bobData(ch).map((f) => f.seq as number);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i], `${ch} seq`).toBe(seqs[i - 1]! + 1);
  }
}

async function json(url: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/** Gateway 0's `tickwire_executions_log_ready` gauge. */
async function logReady(): Promise<number | undefined> {
  const text = await (await fetch(`${cluster.http(0)}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('tickwire_executions_log_ready '));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

// each fault waits on several steps of up to 30 s: a stalled step must fail with its own name, not the test's timeout
describe('faults with real processes', { timeout: 120_000 }, () => {
  it('NATS killed and restarted: sockets stay open, /ready and /health say the bus is down, data resumes by itself, executions posted during the outage are delivered once, in order', async () => {
    await post(3);
    await waitFor(() => executions.length === 3, { what: 'the first executions', timeout: 30_000 });

    await cluster.nats.stop();
    // (each of the gateway's workers answers /ready from its own connection: the 503 checked)
    const ready = await waitFor(
      async () => {
        const r = await json(`${cluster.http(0)}/ready`);
        return r.status === 503 && (r.body.checks as Record<string, unknown>).bus === false ? r : undefined;
      },
      { what: '/ready 503 with bus false', timeout: 30_000 },
    );
    expect(ready.body.checks).toMatchObject({ bus: false });
    expect((await json(`${cluster.http(0)}/health`)).body).toMatchObject({ status: 'ok', bus: 'disconnected' });
    // the execution log is on the same connection: down too, for alerting (not part of /ready).
    // /metrics is the minimum over the gateway's workers, each with its own connection: waited
    // for, as /ready may be answered by a worker that noticed first
    await waitFor(async () => (await logReady()) === 0, { what: 'tickwire_executions_log_ready 0', timeout: 30_000 });
    // executions posted now cannot be stored yet: the poster retries (same id) until they are
    const during = post(3, 1);
    await quietFor(1500, 'the SDK connection stays open while NATS is away');
    expect(sdk.state).toBe('open');
    expect(bob.closeCode).toBeUndefined();

    await cluster.nats.start();
    await waitFor(async () => (await json(`${cluster.http(0)}/ready`)).status === 200, { what: '/ready 200', timeout: 30_000 });
    await waitFor(async () => (await logReady()) === 1, { what: 'tickwire_executions_log_ready 1', timeout: 30_000 });
    const q = quotes;
    const b = bobData('quote:MSFT').length;
    await waitFor(() => quotes >= q + 5 && bobData('quote:MSFT').length >= b + 5, { what: 'data resumed on both clients', timeout: 30_000 });
    // refused while NATS was away (503: retry), then stored once each
    const outcome = await during;
    expect(outcome.map((o) => o.seq)).toEqual([4, 5, 6]);
    expect(outcome.every((o) => !o.duplicate)).toBe(true);
    await waitFor(() => executions.length >= 6, { what: 'the executions of the outage', timeout: 30_000 });
    await sentinelExecution();
    expectExecutionsExactlyOnce();
    expect(states.filter((s) => s === 'reconnecting')).toEqual([]); // the SDK never had to reconnect
    expectBobUndisturbed();
  });

  it('Redis killed and restarted: live streams carry on without error, snapshots are still served, executions unaffected', async () => {
    await cluster.redis.stop();
    // (two gateway processes or workers may answer /ready: each notices with its own connection,
    // so a 503 from one and then a `store: true` from the other was seen on a loaded runner)
    const ready = await waitFor(
      async () => {
        const r = await json(`${cluster.http(0)}/ready`);
        return r.status === 503 && (r.body.checks as Record<string, unknown>).store === false ? r : undefined;
      },
      { what: '/ready 503 with store false', timeout: 30_000 },
    );
    expect(ready.body.checks).toMatchObject({ bus: true, store: false });
    const q = quotes;
    const b = bobData('quote:MSFT').length;
    await waitFor(() => quotes >= q + 5 && bobData('quote:MSFT').length >= b + 5, { what: 'data keeps flowing', timeout: 30_000 });
    // snapshots: from the gateway's memory for a channel it carries, else the first live value
    for (const [gw, ch] of [
      [0, 'quote:AAPL'],
      [1, 'ticker:BTC-USD'],
    ] as const) {
      const c = await TestClient.connect(cluster.url(gw), { headers: { Authorization: `Bearer ${await userToken('carol')}` } });
      await c.request({ op: 'subscribe', id: 1, channels: [ch] });
      await c.waitFor((f) => f.op === 'data' && f.ch === ch && f.snapshot === true, 15_000);
      c.close();
    }
    await post(1);
    await waitFor(() => executions.length === nextExec, { what: 'an execution while Redis is down', timeout: 30_000 });

    await cluster.redis.start(); // empty: no persistence
    await waitFor(async () => (await json(`${cluster.http(0)}/ready`)).status === 200, { what: '/ready 200', timeout: 30_000 });
    expectExecutionsExactlyOnce();
    expectBobUndisturbed();
    for (const role of [cluster.feed, ...cluster.gateways]) expect(errorLines(role.output()), role.name).toEqual([]);
  });

  it('a gateway killed and restarted: the SDK reconnects and resubscribes by itself; executions resume with no loss and no duplicates', async () => {
    const before = executions.length;
    await cluster.gateways[0]!.stop('SIGKILL');
    await waitFor(() => sdk.state === 'reconnecting', { what: 'the SDK noticed', timeout: 30_000 });
    expect(await bob.waitClose(10_000)).toBe(1006); // the plain socket just dies
    // executions keep being recorded through the other gateway meanwhile
    await post(3, 1);
    expect(executions.length).toBe(before);

    await cluster.gateways[0]!.start();
    await waitFor(() => sdk.state === 'open', { what: 'the SDK is back', timeout: 30_000 });
    // a restart is an outage, not a network refusing WebSockets: the SDK is back over WebSocket (or,
    // if a long restart ended on the HTTP fallback, moves back at its first probe, 5 s later), not
    // a minute later (docs/client-sdk.md#fallback-transport)
    await waitFor(() => sdk.state === 'open' && sdk.transport === 'websocket', { what: 'the SDK back over WebSocket', timeout: 20_000 });
    await waitFor(() => executions.length >= nextExec, { what: 'the executions made while it was down', timeout: 30_000 });
    const q = quotes;
    await waitFor(() => quotes >= q + 3, { what: 'quotes again', timeout: 30_000 });
    await post(2);
    await waitFor(() => executions.length >= nextExec, { what: 'live executions after the resume', timeout: 30_000 });
    await sentinelExecution();
    expectExecutionsExactlyOnce();
    expect(sdk.subscriptions.sort()).toEqual(['executions', 'quote:AAPL', 'trade:AAPL']);
    // the restarted gateway serves snapshots (from Redis, refilled by the feed since its restart)
    const c = await TestClient.connect(cluster.url(0), { headers: { Authorization: `Bearer ${await userToken('dave')}` } });
    await c.request({ op: 'subscribe', id: 1, channels: ['quote:EUR-USD'] });
    await c.waitFor((f) => f.op === 'data' && f.ch === 'quote:EUR-USD' && f.snapshot === true, 15_000);
    c.close();
  });

  it('the feed process stopped and restarted: subscriptions stay, /v1/feeds says it stopped, data resumes with a new epoch', async () => {
    await cluster.feed.stop('SIGTERM');
    await waitFor(
      async () => {
        const feeds = (await json(`${cluster.http(0)}/v1/feeds`)).body.feeds as { id: string; state: string }[];
        return feeds.some((f) => f.id === 'synthetic' && f.state === 'stopped');
      },
      { what: 'the gateway knows the feed stopped', timeout: 30_000 },
    );
    const epochsBefore = epochs.length;
    await cluster.feed.start();
    const q = quotes;
    await waitFor(() => quotes >= q + 3, { what: 'quotes from the restarted feed', timeout: 30_000 });
    await waitFor(() => epochs.slice(epochsBefore).some((e) => e.channel === 'quote:AAPL' && e.current !== e.previous), {
      what: 'the SDK saw the new epoch',
      timeout: 30_000,
    });
    expect(sdk.state).toBe('open');
    const feeds = (await json(`${cluster.http(0)}/v1/feeds`)).body.feeds as { id: string; state: string }[];
    expect(feeds.find((f) => f.id === 'synthetic')?.state).toBe('connected');
  });
});
