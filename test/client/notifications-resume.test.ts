import { request } from 'node:http';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient, type Update } from '../../src/client/index.js';
import type { Engine } from '../../src/app/engine.js';
import { freePort, startRedis } from '../helpers/servers.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';

/**
 * The `notifications` channel resumes like `executions` (docs/client-sdk.md#reconnect): after the
 * engine restarts, the SDK subscribes again with `since` = the last seq it saw, so the
 * notifications posted while it was away arrive once each, and the unread ones it already has
 * are not sent again. The log is on Redis, so it outlives the engine.
 */
const SECRET = 'test-secret-for-notifications-0123456789abcdef';
const SERVICE_TOKEN = 'service-token-for-tests-0123456789';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function userToken(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
}

/** POST on a connection of its own (fetch would keep one alive to the engine that is closed later). */
async function postNotification(port: number, user: string, n: number): Promise<void> {
  const body = JSON.stringify({ id: `n-${n}`, type: 'order.filled', title: `Order ${n} filled`, data: { n } });
  const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: `/v1/users/${user}/notifications`, method: 'POST', agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.setHeader('authorization', `Bearer ${SERVICE_TOKEN}`);
    req.setHeader('content-type', 'application/json');
    req.end(body);
  });
  if (status >= 300) throw new Error(`POST notifications: ${status} ${text}`);
}

describe('notifications: resumed with since after a reconnect', { timeout: 90_000 }, () => {
  it('delivers every notification once, in order, across an engine restart', async () => {
    const redis = await startRedis();
    cleanups.push(() => redis.destroy());
    const port = await freePort();
    const engineOn = async (): Promise<Engine> => {
      const e = await startTestEngine(port, { redisUrl: redis.url, auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
      cleanups.push(() => e.close());
      await waitFor(() => e.ready().ready, { what: 'the engine ready (its Redis log connected)', timeout: 20_000 });
      return e;
    };
    const first = await engineOn();
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = new TickwireClient({
      url: streamUrl(port),
      token: () => userToken('dana'),
      WebSocket: filteringWebSocket(tap),
      reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
    });
    cleanups.push(() => client.close());
    const got: Update[] = [];
    client.on('data', (u) => {
      if (u.channel === 'notifications') got.push(u);
    });
    await client.connect();
    expect((await client.subscribe(['notifications'])).subscribed).toEqual(['notifications']);
    for (let n = 1; n <= 3; n++) await postNotification(port, 'dana', n);
    await waitFor(() => got.length >= 3, { what: 'the first three notifications', timeout: 20_000 });
    const lastBefore = client.lastSeq('notifications');
    expect(lastBefore).toBe(got[2]!.seq);

    // the engine goes away; the client stays off the network while the new one takes notifications
    tap.block = true;
    await first.close();
    await waitFor(() => client.state === 'reconnecting', { what: 'the drop', timeout: 20_000 });
    await engineOn();
    for (let n = 4; n <= 6; n++) await postNotification(port, 'dana', n);
    tap.block = false;

    await waitFor(() => got.length >= 6, { what: 'the notifications posted while away', timeout: 20_000 });
    // a sentinel: once it is in, a repeat of 1..6 (all still unread) would be too
    await postNotification(port, 'dana', 7);
    await waitFor(() => got.some((u) => (u.d as { id: string }).id === 'n-7'), { what: 'the sentinel notification', timeout: 20_000 });
    await quietFor(200, 'no repeated notification after the sentinel');
    expect(got.map((u) => (u.d as { id: string }).id)).toEqual(['n-1', 'n-2', 'n-3', 'n-4', 'n-5', 'n-6', 'n-7']);
    const seqs = got.map((u) => u.seq!);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
    expect(got[3]!.seq).toBe(lastBefore! + 1);
  });
});
