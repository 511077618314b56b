import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, token, wsUrl } from '../auth/helpers.js';

/**
 * Entitlements withdrawn after a rule was created, in NATS mode (docs/alerts.md, Entitlements):
 * a gateway reports each connect's token to `tickwire alerts` over `alerts.rpc`, the service holds
 * the rules it no longer entitles (their hold is stored with them in Redis, so a restart keeps it),
 * and releases them when a token gives the symbol back.
 */
describe('alerts in NATS mode: rules follow their user’s current entitlements across a gateway and the alert service', () => {
  let nats: TestServer & { destroy(): Promise<void> };
  let redis: TestServer & { destroy(): Promise<void> };
  const open: Engine[] = [];
  const auth = { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN, delayMs: 500 };
  const prefix = `test:alerts-ent-nats:${process.pid}:`;
  const REALTIME = { classes: ['stock', 'crypto'] };
  const NO_STOCK = { classes: ['crypto'] };
  const isNote = (f: Frame) => f.op === 'data' && f.ch === 'notifications' && f.d.kind === 'notification';

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  }, 60_000);
  afterAll(async () => {
    for (const e of open.splice(0).reverse()) await e.close();
    await Promise.all([nats?.destroy(), redis?.destroy()]);
  });

  const base = () => ({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, natsUrl: nats.url, auth });
  const alertService = async () => {
    const e = await startEngine(
      { ...base(), redisUrl: redis.url, alerts: { redisKeyPrefix: prefix, flushMs: 0 } },
      { roles: { gateway: false, alerts: true, portfolio: false, feeds: [] }, env: {} },
    );
    open.push(e);
    return e;
  };
  const connect = async (gw: Engine, sub: string, ent: object) =>
    TestClient.connect(wsUrl(gw), { headers: { authorization: `Bearer ${await token({ sub, claims: { ent } })}` }, encoding: 'json' });

  it('holds the rule of a user who reconnected without the symbol (through a restart of the alert service) and fires it again once the token has it back', async () => {
    const gw = await startEngine(base(), { roles: { feeds: [], portfolio: false }, env: {} });
    open.push(gw);
    const svc = await alertService();
    const trade = (p: number) => publishTick(gw, 'stock', { k: 'trade', sym: 'NVDA', id: `t${Math.random()}`, p, s: 1 } as never);
    const get = async (user: string, id: string) => (await api(gw, 'GET', `/v1/users/${user}/alerts/${id}`)).body;
    const rule = { id: 'nvda-150', symbol: 'NVDA', kind: 'price', direction: 'above', level: 150, mode: 'rearm', rearmBy: 1 };

    const first = await connect(gw, 'erin', REALTIME);
    expect((await first.request({ op: 'alert.create', id: 1, rule })).alert).toMatchObject({ id: 'nvda-150', delayed: false });
    // bob's rule is never held: it shows that the ticks below were evaluated
    expect((await api(gw, 'POST', '/v1/users/bob/alerts', { ...rule, id: 'control' })).status).toBe(201);
    first.close();

    const lost = await connect(gw, 'erin', NO_STOCK);
    await waitFor(async () => (await get('erin', 'nvda-150')).held === true, { timeout: 10_000, what: 'the rule held' });
    expect((await lost.request({ op: 'alert.list', id: 2 })).alerts[0]).toMatchObject({ id: 'nvda-150', held: true, heldReason: 'not-entitled' });
    lost.close();

    // the alert service restarts: the hold is in Redis with the rule
    await svc.close();
    open.splice(open.indexOf(svc), 1);
    await alertService();
    expect(await get('erin', 'nvda-150')).toMatchObject({ held: true, heldReason: 'not-entitled', state: { fired: 0 } });
    // (until the restarted service listens to NVDA, a tick may go unheard: send until bob's rule arms)
    await waitFor(
      async () => {
        trade(149);
        return (await get('bob', 'control')).state?.phase === 'armed';
      },
      { timeout: 10_000, what: 'the control rule armed' },
    );
    trade(151);
    await waitFor(async () => (await get('bob', 'control')).state?.fired === 1, { timeout: 10_000, what: 'the control rule fired' });
    expect(await get('erin', 'nvda-150')).toMatchObject({ held: true, state: { fired: 0 } });

    const back = await connect(gw, 'erin', REALTIME);
    await back.request({ op: 'subscribe', id: 3, channels: ['notifications'] });
    await waitFor(async () => (await get('erin', 'nvda-150')).held === undefined, { timeout: 10_000, what: 'the hold lifted' });
    trade(149);
    await waitFor(async () => (await get('erin', 'nvda-150')).state?.phase === 'armed', { timeout: 10_000, what: 'armed again' });
    trade(152);
    const note = await back.waitFor(isNote);
    expect(note.d).toMatchObject({ type: 'alert', data: { rule: 'nvda-150', symbol: 'NVDA', value: 152, previous: 149 } });
    back.close();
  }, 90_000);
});
