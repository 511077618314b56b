import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { api, SECRET, SERVICE_TOKEN } from '../auth/helpers.js';

/**
 * The delay delayed rules were accepted under, end to end in NATS mode (docs/alerts.md,
 * Entitlements): gateways forward rules with their auth.delayMs over `alerts.rpc`, the alert
 * service keeps the longest in Redis, and restarted with a shorter delay it holds the rules it
 * has (listed with `held` through any gateway) until a gateway within its delay forwards one.
 */
describe('alerts in NATS mode: an alert service restarted with a shorter delay holds its delayed rules', () => {
  let nats: TestServer & { destroy(): Promise<void> };
  let redis: TestServer & { destroy(): Promise<void> };
  const open: Engine[] = [];
  const auth = { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN };
  const rule = { id: 'aapl-300', symbol: 'AAPL', kind: 'price', direction: 'above', level: 300 };
  const delayedOnly = { classes: ['crypto'], delayed: ['stock'] };
  const prefix = `test:alerts-floor-nats:${process.pid}:`;

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  }, 60_000);
  afterAll(async () => {
    for (const e of open.splice(0).reverse()) await e.close();
    await Promise.all([nats?.destroy(), redis?.destroy()]);
  });

  const base = () => ({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, natsUrl: nats.url });
  const alertService = async (delayMs: number) => {
    const e = await startEngine(
      { ...base(), redisUrl: redis.url, alerts: { redisKeyPrefix: prefix }, auth: { ...auth, delayMs } },
      { roles: { gateway: false, alerts: true, portfolio: false, feeds: [] }, env: {} },
    );
    open.push(e);
    return e;
  };
  const gateway = async (delayMs: number) => {
    const e = await startEngine({ ...base(), auth: { ...auth, delayMs } }, { roles: { feeds: [], portfolio: false }, env: {} });
    open.push(e);
    return e;
  };

  it('lists the rule held, refuses delayed rules through the longer-delay gateway, and a gateway within the delay lifts the hold', async () => {
    const slow = await gateway(60_000);
    const first = await alertService(60_000);
    const created = await api(slow, 'POST', '/v1/users/dana/alerts', { ...rule, entitlements: delayedOnly });
    expect(created).toMatchObject({ status: 201, body: { id: 'aapl-300', delayed: true } });
    expect(created.body.held).toBeUndefined();
    await first.close();
    open.splice(open.indexOf(first), 1);

    await alertService(2_000);
    const listed = await api(slow, 'GET', '/v1/users/dana/alerts');
    expect(listed).toMatchObject({ status: 200, body: { alerts: [{ id: 'aapl-300', delayed: true, held: true }] } });
    const refused = await api(slow, 'POST', '/v1/users/erin/alerts', { ...rule, entitlements: delayedOnly });
    expect(refused).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });

    const fast = await gateway(2_000);
    expect(await api(fast, 'POST', '/v1/users/finn/alerts', { ...rule, entitlements: delayedOnly })).toMatchObject({ status: 201, body: { delayed: true } });
    const after = await api(slow, 'GET', '/v1/users/dana/alerts/aapl-300');
    expect(after).toMatchObject({ status: 200, body: { id: 'aapl-300', delayed: true } });
    expect(after.body.held).toBeUndefined();
  }, 60_000);
});
