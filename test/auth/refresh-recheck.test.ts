import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import { SECRET, testEngine, token, wsUrl } from './helpers.js';

/**
 * A refreshed token is checked against the subscriptions the connection holds, as it holds them:
 * a delayed subscription kept through an upgrade to real time is still delayed, and a later token
 * that is delayed again withdraws nothing from it. The check compared the new token with the
 * previous token instead, and closed such a connection 1008 "entitlement withdrawn".
 */
describe('in-band auth re-checks the subscriptions held', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET } });
  });
  afterAll(() => engine.close());

  const delayed = () => token({ sub: 'erin', claims: { ent: { delayed: ['stock'] } } });
  const realtime = () => token({ sub: 'erin', claims: { ent: { classes: ['stock'] } } });

  it('keeps a delayed subscription through real time and back to delayed', async () => {
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await delayed()}` }, encoding: 'json' });
    expect((await c.request({ op: 'subscribe', id: 1, channels: ['quote:MSFT'] })).subscribed).toEqual(['quote:MSFT']);
    expect((await c.request({ op: 'auth', id: 2, token: await realtime() })).op).toBe('ack');
    expect((await c.request({ op: 'auth', id: 3, token: await delayed() })).op).toBe('ack');
    expect((await c.request({ op: 'ping', id: 4 })).op).toBe('pong');
    expect(c.closeCode).toBeUndefined();
    c.close();
  });

  it('closes 1008 when a subscription made in real time would be delayed', async () => {
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await delayed()}` }, encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['quote:MSFT'] });
    await c.request({ op: 'auth', id: 2, token: await realtime() });
    // subscribed again with the real-time token: now real time
    await c.request({ op: 'subscribe', id: 3, channels: ['quote:MSFT'] });
    await c.request({ op: 'auth', id: 4, token: await delayed() });
    expect(await c.waitClose(10_000)).toBe(1008);
    expect(c.closeReason).toBe('entitlement withdrawn: quote:MSFT');
  });
});
