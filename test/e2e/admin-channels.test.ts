import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine } from '../client/helpers.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The console's channel list (GET /admin/api/channels, docs/operations.md#operators-console-admin)
 * has one row per channel name: a private channel (`portfolio`, `executions`, `notifications`) is
 * one hub channel per user inside, and was listed once per user, in rows an operator could not
 * tell apart.
 */
const SECRET = 'admin-channels-secret-0123456789abcdefgh';
const SERVICE_TOKEN = 'admin-channels-service-token-0123456789';
const userToken = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

describe('admin channels', { timeout: 60_000 }, () => {
  let engine: Engine;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    engine = await startTestEngine(undefined, { auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await engine?.close();
  });

  it('a private channel of several users is one row with their subscribers summed', async () => {
    for (const user of ['ann', 'bob', 'cy']) {
      const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, {
        encoding: 'json',
        headers: { authorization: `Bearer ${await userToken(user)}` },
      });
      clients.push(c);
      const ack = await c.request({ op: 'subscribe', id: 1, channels: ['portfolio', 'quote:BTC-USD'], throttle: user === 'cy' ? 250 : 0 });
      expect(ack.subscribed).toEqual(['portfolio', 'quote:BTC-USD']);
    }
    const res = await fetch(`http://127.0.0.1:${engine.port}/admin/api/channels`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
    expect(res.status).toBe(200);
    const { channels: rows } = (await res.json()) as { channels: { channel: string; subscribers: number; tiers: Record<string, number> }[] };
    const portfolio = rows.filter((r) => r.channel === 'portfolio');
    expect(portfolio).toHaveLength(1);
    expect(portfolio[0]).toMatchObject({ subscribers: 3, tiers: { 0: 2, 250: 1 } });
    expect(rows.filter((r) => r.channel === 'quote:BTC-USD')).toEqual([expect.objectContaining({ subscribers: 3 })]);
  });
});
