import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine } from '../client/helpers.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * GET /v1/stats lists one row per channel name (docs/operations.md): a private channel
 * (`portfolio`, `executions`, `notifications`) is one hub channel per user inside, and was listed
 * once per user in identical rows. No user name appears in the answer.
 */
const SECRET = 'stats-channels-secret-0123456789abcdefgh';
const userToken = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

describe('/v1/stats channels', { timeout: 60_000 }, () => {
  let engine: Engine;
  const clients: TestClient[] = [];
  beforeAll(async () => {
    engine = await startTestEngine(undefined, { auth: { mode: 'optional', jwtSecret: SECRET } });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await engine?.close();
  });

  it('a private channel of several users is one row with their subscribers summed per tier, and names no user', async () => {
    for (const user of ['ann-stats', 'bob-stats', 'cy-stats']) {
      const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, {
        encoding: 'json',
        headers: { authorization: `Bearer ${await userToken(user)}` },
      });
      clients.push(c);
      const ack = await c.request({ op: 'subscribe', id: 1, channels: ['portfolio', 'quote:BTC-USD'], throttle: user === 'cy-stats' ? 250 : 0 });
      expect(ack.subscribed).toEqual(['portfolio', 'quote:BTC-USD']);
    }
    const res = await fetch(`http://127.0.0.1:${engine.port}/v1/stats`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toMatch(/ann-stats|bob-stats|cy-stats/);
    const rows = (JSON.parse(text) as { channels: { channel: string; subscribers: number; tiers: Record<string, number> }[] }).channels;
    expect(rows.filter((r) => r.channel === 'portfolio')).toEqual([{ channel: 'portfolio', subscribers: 3, tiers: { 0: 2, 250: 1 } }]);
    expect(rows.filter((r) => r.channel === 'quote:BTC-USD')).toEqual([expect.objectContaining({ subscribers: 3, tiers: { 0: 2, 250: 1 } })]);
    expect(new Set(rows.map((r) => r.channel)).size).toBe(rows.length);
  });
});
