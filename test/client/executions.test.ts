import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient, type Execution, type Update } from '../../src/client/index.js';
import type { Engine } from '../../src/app/engine.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

/**
 * Executions are never dropped and resumable: across a dropped connection, a lost frame and a
 * repeated frame the client delivers every fill once, in order, by its durable `seq`. Fills are
 * created through the engine's service API (POST /v1/executions).
 */
const SECRET = 'test-secret-for-executions-0123456789abcdef';
const SERVICE_TOKEN = 'service-token-for-tests-0123456789';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function userToken(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
}

async function startAuthEngine(): Promise<Engine> {
  const e = await startTestEngine(undefined, { auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  cleanups.push(() => e.close());
  return e;
}

let serial = 0;
async function postExecution(port: number, user: string, n: number): Promise<void> {
  const body = { user, id: `x${++serial}-${n}`, order: `o-${n}`, sym: 'AAPL', side: n % 2 ? 'buy' : 'sell', qty: n, p: 100 + n, t: Date.now() };
  const res = await fetch(`http://127.0.0.1:${port}/v1/executions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST /v1/executions: ${res.status} ${await res.text()}`);
}

function collect(client: TickwireClient): Update<Execution>[] {
  const got: Update<Execution>[] = [];
  client.on('execution', (u) => got.push(u));
  return got;
}

/** qty carries the test's own numbering: delivered fills must be exactly 1..n, in order, once each. */
function expectExactly(got: Update<Execution>[], n: number): void {
  expect(got.map((u) => u.d.qty)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
  const seqs = got.map((u) => u.seq!);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
  expect(new Set(got.map((u) => u.d.id)).size).toBe(n);
}

describe('executions: resumable, never dropped', { timeout: 90_000 }, () => {
  it('resumes from the last seen sequence after the connection drops: no loss, no duplicates', async () => {
    const engine = await startAuthEngine();
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = new TickwireClient({
      url: streamUrl(engine.port),
      token: () => userToken('alice'),
      WebSocket: filteringWebSocket(tap),
      reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    });
    cleanups.push(() => client.close());
    const got = collect(client);
    await client.connect();
    const ack = await client.subscribe(['executions']);
    expect(ack.subscribed).toEqual(['executions']);

    for (let n = 1; n <= 5; n++) await postExecution(engine.port, 'alice', n);
    await postExecution(engine.port, 'bob', 99); // someone else's fill never shows up
    await waitFor(() => got.length >= 5, { what: 'the first five fills', timeout: 20_000 });
    const lastBeforeDrop = client.lastSeq('executions');
    expect(lastBeforeDrop).toBe(got[4]!.seq);

    // cut the connection and keep the client off the network while more fills happen
    tap.block = true;
    tap.sockets[0]!.terminate();
    await waitFor(() => client.state === 'reconnecting', { what: 'the drop', timeout: 20_000 });
    for (let n = 6; n <= 10; n++) await postExecution(engine.port, 'alice', n);
    await quietFor(300, 'no fill reaches a client that is off the network');
    expect(got).toHaveLength(5);
    tap.block = false;

    await waitFor(() => got.length >= 10, { what: 'the fills made while disconnected', timeout: 20_000 });
    for (let n = 11; n <= 12; n++) await postExecution(engine.port, 'alice', n);
    await waitFor(() => got.length >= 12, { what: 'live fills after the resume', timeout: 20_000 });
    // a later fill as a sentinel: once it is in, any duplicate of 1..12 would be too
    await postExecution(engine.port, 'alice', 13);
    await waitFor(() => got.some((u) => u.d.qty === 13), { what: 'the sentinel fill', timeout: 20_000 });
    expectExactly(got, 13);
    expect(got[5]!.seq).toBe(lastBeforeDrop! + 1);
  });

  it('repairs a lost executions frame by replay and drops repeated ones', async () => {
    const engine = await startAuthEngine();
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = new TickwireClient({
      url: streamUrl(engine.port),
      token: await userToken('carol'),
      encoding: 'json',
      WebSocket: filteringWebSocket(tap),
    });
    cleanups.push(() => client.close());
    const got = collect(client);
    const gaps: { channel: string; missed: number }[] = [];
    client.on('gap', (g) => gaps.push(g));
    await client.connect();
    await client.subscribe(['executions']);

    const isExec = (data: unknown, qty: number): boolean => typeof data === 'string' && data.includes('"ch":"executions"') && data.includes(`"qty":${qty},`);
    tap.filter = (data) => {
      if (isExec(data, 2)) return [data, data]; // the same frame twice
      if (isExec(data, 4) && !gaps.length) return undefined; // lost once
      return data;
    };
    for (let n = 1; n <= 6; n++) await postExecution(engine.port, 'carol', n);
    await waitFor(() => gaps.length > 0 && got.length >= 6, { what: 'the gap of the lost fill and its repair', timeout: 20_000 });
    await postExecution(engine.port, 'carol', 7); // a later fill: the repair did not disturb the live stream
    await waitFor(() => got.length >= 7, { what: 'seven fills', timeout: 20_000 });
    // a sentinel fill: once it is in, a duplicate of 1..7 would be too
    await postExecution(engine.port, 'carol', 8);
    await waitFor(() => got.some((u) => u.d.qty === 8), { what: 'the sentinel fill', timeout: 20_000 });
    expect(gaps).toHaveLength(1);
    expect(gaps[0]!.channel).toBe('executions');
    expect(gaps[0]!.missed).toBeGreaterThanOrEqual(1);
    expectExactly(got, 8);
  });
});
