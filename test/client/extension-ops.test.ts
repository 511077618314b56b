import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TickwireClient, TickwireClientError, type Encoding } from '../../src/client/index.js';
import type { Engine } from '../../src/app/engine.js';
import { waitFor } from '../helpers/wait.js';
import { startTestEngine, streamUrl } from './helpers.js';

/**
 * The SDK's methods for the in-band extension ops (docs/client-sdk.md, "Alerts and
 * notifications"): alert rules and notification read marks over the client's own connection,
 * with the server's refusals as errors carrying their protocol code.
 */
const SECRET = 'test-secret-for-extension-ops-0123456789abcdef';
const SERVICE_TOKEN = 'service-token-for-extension-ops-0123456789';
let engine: Engine;
let port: number;
const clients: TickwireClient[] = [];

beforeAll(async () => {
  engine = await startTestEngine(undefined, { auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  port = engine.port;
});

afterAll(async () => {
  for (const c of clients) await c.close();
  await engine?.close();
});

async function tokenFor(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
}

async function client(sub: string | undefined, encoding: Encoding): Promise<TickwireClient> {
  const c = new TickwireClient({ url: streamUrl(port), encoding, ...(sub ? { token: () => tokenFor(sub) } : {}) });
  clients.push(c);
  await c.connect();
  return c;
}

async function refusal(p: Promise<unknown>): Promise<TickwireClientError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TickwireClientError);
  return err as TickwireClientError;
}

async function postNotification(user: string, id: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/users/${user}/notifications`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ id, type: 'note', title: id }),
  });
  expect(res.status).toBeLessThan(300);
}

describe.each(['json', 'msgpack'] as const)('extension ops through the SDK (%s)', (encoding) => {
  it('creates, lists, updates and deletes the user’s alert rules', async () => {
    const c = await client(`alice-${encoding}`, encoding);
    const created = await c.createAlert({ id: 'aapl-high', symbol: 'AAPL', kind: 'price', direction: 'above', level: 100_000 });
    expect(created).toMatchObject({ id: 'aapl-high', user: `alice-${encoding}`, symbol: 'AAPL', kind: 'price', level: 100_000, mode: 'once', delayed: false });
    expect(created.state.phase).toBe('fresh');
    expect((await c.listAlerts()).map((a) => a.id)).toEqual(['aapl-high']);

    const updated = await c.updateAlert({ id: 'aapl-high', symbol: 'AAPL', kind: 'price', direction: 'below', level: 1 });
    expect(updated).toMatchObject({ id: 'aapl-high', direction: 'below', level: 1 });

    // another user's connection sees none of them
    const other = await client(`bob-${encoding}`, encoding);
    expect(await other.listAlerts()).toEqual([]);
    expect((await refusal(other.deleteAlert('aapl-high'))).code).toBe('ALERT_NOT_FOUND');

    expect(await c.deleteAlert('aapl-high')).toBe('aapl-high');
    expect(await c.listAlerts()).toEqual([]);
  });

  it('rejects with the server’s code, and keeps the connection', async () => {
    const c = await client(`carol-${encoding}`, encoding);
    const bad = await refusal(c.createAlert({ id: 'bad', symbol: 'AAPL', kind: 'price', direction: 'above', level: Number.NaN }));
    expect(bad.code).toBe('ALERT_INVALID');
    expect(typeof bad.requestId).toBe('number');
    expect((await refusal(c.createAlert({ id: 'x', symbol: 'NOPE', kind: 'price', direction: 'above', level: 1 }))).code).toBe('ALERT_UNKNOWN_SYMBOL');
    const anonymous = await client(undefined, encoding);
    expect((await refusal(anonymous.listAlerts())).code).toBe('UNAUTHENTICATED');
    expect(typeof (await c.ping())).toBe('number');
    // a core op is not an extension op: refused by the client, before anything is sent
    await expect(c.request('subscribe', { channels: ['quote:AAPL'] })).rejects.toThrow(TypeError);
  });

  it('marks notifications read, and the marker reaches the user’s notifications channel', async () => {
    const user = `dana-${encoding}`;
    const c = await client(user, encoding);
    const items: { kind?: string; unread?: number }[] = [];
    c.on('data', (u) => {
      if (u.channel === 'notifications') items.push(u.d as { kind?: string; unread?: number });
    });
    await c.subscribe(['notifications']);
    for (const id of ['n-1', 'n-2', 'n-3']) await postNotification(user, id);
    await waitFor(() => items.filter((d) => d.kind === 'notification').length === 3, { what: 'three notifications' });
    expect(await c.markNotificationsRead({ upToId: 'n-2' })).toMatchObject({ unread: 1 });
    await waitFor(() => items.some((d) => d.kind === 'read'), { what: 'the read marker on the channel' });
    expect(await c.markNotificationsRead({ ids: ['n-3'] })).toMatchObject({ unread: 0 });
    expect((await refusal(c.markNotificationsRead({ upToId: 'n-404' }))).code).toBe('NOT_FOUND');
  });
});
