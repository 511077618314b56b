import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient, type Execution, type Update } from '../../src/client/index.js';
import type { Engine } from '../../src/app/engine.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { ExecutionRouter } from '../../src/executions/execution-router.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from '../client/helpers.js';
import { freePort } from '../helpers/servers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

/**
 * A client resumes `executions` with a `since` the log no longer has: the log started again
 * below it. The default embedded engine keeps the log in memory, so a restart of `tickwire start`
 * does that; so does Redis losing its data while the engine restarts. Before the fix the
 * replay after `since` was empty and the new log's events (seq 1, 2, ... again) were dropped as
 * duplicates by the SDK, which had passed those numbers: executions recorded after the restart
 * reached a connected portfolio screen only once their seq passed the old one, or never.
 */
const SECRET = 'test-secret-for-log-reset-0123456789abcdef';
const SERVICE_TOKEN = 'service-token-for-tests-0123456789';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function userToken(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
}

async function postExecution(port: number, user: string, n: number): Promise<void> {
  const body = { user, id: `reset-${n}`, order: `o-${n}`, sym: 'AAPL', side: 'buy', qty: n, p: 100 + n, t: Date.now() };
  const res = await fetch(`http://127.0.0.1:${port}/v1/executions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json', connection: 'close' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`POST /v1/executions: ${res.status} ${await res.text()}`);
}

describe('executions: resumed after the log started again (memory log, engine restart)', { timeout: 90_000 }, () => {
  it('delivers every execution of the new log once, in order, and the client follows the new numbering', async () => {
    const port = await freePort();
    const engineOn = async (): Promise<Engine> => {
      const e = await startTestEngine(port, { auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
      cleanups.push(() => e.close());
      return e;
    };
    const first = await engineOn();
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = new TickwireClient({
      url: streamUrl(port),
      token: () => userToken('eve'),
      WebSocket: filteringWebSocket(tap),
      reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    });
    cleanups.push(() => client.close());
    const got: Update<Execution>[] = [];
    client.on('execution', (u) => got.push(u));
    const resets: unknown[] = [];
    client.on('reset', (r) => resets.push(r));
    await client.connect();
    expect((await client.subscribe(['executions'], { snapshot: false })).subscribed).toEqual(['executions']);
    for (let n = 1; n <= 3; n++) await postExecution(port, 'eve', n);
    await waitFor(() => got.length >= 3, { what: 'the first three executions', timeout: 20_000 });
    expect(client.lastSeq('executions')).toBe(3);

    // the engine restarts with an empty memory log; two executions are recorded while the client is away
    tap.block = true;
    await first.close();
    await waitFor(() => client.state === 'reconnecting', { what: 'the drop', timeout: 20_000 });
    await engineOn();
    for (let n = 4; n <= 5; n++) await postExecution(port, 'eve', n);
    tap.block = false;

    await waitFor(() => got.length >= 5, { what: 'the executions recorded while away', timeout: 20_000 });
    await postExecution(port, 'eve', 6); // live, numbered 3 by the new log
    await waitFor(() => got.length >= 6, { what: 'the live execution after the resume', timeout: 20_000 });
    await quietFor(200, 'no repeated execution');
    expect(got.map((u) => u.d.qty)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(got.map((u) => u.seq)).toEqual([1, 2, 3, 1, 2, 3]);
    expect(resets).toEqual([{ channel: 'executions', since: 3, received: 1 }]);
    expect(client.lastSeq('executions')).toBe(3);
  });
});

describe('the replay seam: a since past the log head', () => {
  it('sends the whole log (the log started again) and joins; a since within the log is unchanged', async () => {
    const log = new MemoryEventLog({ maxPerUser: 100, retentionMs: 3_600_000 });
    const router = new ExecutionRouter({ log, snapshotEvents: 20, reconcileMs: 0 });
    cleanups.push(() => router.close());
    for (let n = 1; n <= 2; n++) await log.append('fay', { id: `f-${n}`, order: 'o', sym: 'AAPL', side: 'buy', qty: n, p: 1, t: n });
    const seqsOf = async (since: number, withFeed: boolean): Promise<number[]> => {
      const off = withFeed ? router.subscribe('fay', () => undefined) : () => undefined;
      const got: number[] = [];
      let joined = false;
      await router.replay('fay', since, (evs) => got.push(...evs.map((e) => e.seq)), { join: () => (joined = true) });
      off();
      if (withFeed) expect(joined).toBe(true);
      return got;
    };
    expect(await seqsOf(7, true)).toEqual([1, 2]);
    expect(await seqsOf(7, false)).toEqual([1, 2]);
    expect(await seqsOf(2, true)).toEqual([]);
    expect(await seqsOf(1, true)).toEqual([2]);
    expect(router.stats.restarts).toBe(2);
  });
});
