import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import { api, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';

/**
 * A delayed user's alert fires on the alert service's delay line (its own auth.delayMs). An alert
 * service started with a shorter delay than the gateway's would tell a user entitled to 15-minute
 * delayed data of crossings a few seconds old. The gateway sends its delay with each rule it
 * forwards; the alert service refuses a delayed rule it would evaluate on fresher data
 * (docs/alerts.md#entitlements). Real-time rules and a service at least as delayed are accepted.
 */
describe('alerts in NATS mode: the alert service may not be less delayed than the gateway', () => {
  let nats: TestServer & { destroy(): Promise<void> };
  let service: Engine;
  let slowGateway: Engine;
  let sameGateway: Engine;
  const auth = { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN };
  const rule = { id: 'aapl-300', symbol: 'AAPL', kind: 'price', direction: 'above', level: 300 };
  const delayedOnly = { classes: ['crypto'], delayed: ['stock'] };

  beforeAll(async () => {
    nats = await startNats();
    const base = { host: '127.0.0.1', port: 0, log: { level: 'silent' }, natsUrl: nats.url };
    service = await startEngine(
      { ...base, auth: { ...auth, delayMs: 2_000 } },
      { roles: { gateway: false, alerts: true, portfolio: false, feeds: [] }, env: {} },
    );
    slowGateway = await startEngine({ ...base, auth: { ...auth, delayMs: 60_000 } }, { roles: { feeds: [], portfolio: false }, env: {} });
    sameGateway = await startEngine({ ...base, auth: { ...auth, delayMs: 2_000 } }, { roles: { feeds: [], portfolio: false }, env: {} });
  }, 60_000);
  afterAll(async () => {
    await sameGateway?.close();
    await slowGateway?.close();
    await service?.close();
    await nats?.destroy();
  });

  it('service API: a delayed rule through a gateway with a longer delay is refused with 503 naming the setting', async () => {
    const res = await api(slowGateway, 'POST', '/v1/users/dana/alerts', { ...rule, entitlements: delayedOnly });
    expect(res.status).toBe(503);
    expect(res.body.error).toBe('ALERTS_UNAVAILABLE');
    expect(res.body.message).toMatch(/2000 ms/);
    expect(res.body.message).toMatch(/60000 ms/);
    expect(res.body.message).toMatch(/TICKWIRE_AUTH_DELAY_MS=60000/);
    // nothing was kept
    expect((await api(slowGateway, 'GET', '/v1/users/dana/alerts')).body).toEqual({ user: 'dana', alerts: [] });
    // the same rule in real time is evaluated on live ticks: no delay to compare
    expect(await api(slowGateway, 'POST', '/v1/users/dana/alerts', rule)).toMatchObject({ status: 201, body: { id: 'aapl-300', delayed: false } });
    // replacing it with a delayed one is refused the same way, and the real-time rule stays
    const upd = await api(slowGateway, 'PUT', '/v1/users/dana/alerts/aapl-300', { ...rule, level: 310, entitlements: delayedOnly });
    expect(upd).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
    expect(await api(slowGateway, 'GET', '/v1/users/dana/alerts/aapl-300')).toMatchObject({ status: 200, body: { level: 300, delayed: false } });
  });

  it('in-band: alert.create of a delayed rule is refused with ALERTS_UNAVAILABLE', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${slowGateway.port}/v1/stream`, {
      headers: { authorization: `Bearer ${await token({ sub: 'eli', claims: { ent: delayedOnly } })}` },
      encoding: 'json',
    });
    try {
      const r = await c.request({ op: 'alert.create', id: 7, rule });
      expect(r).toMatchObject({ op: 'error', id: 7, code: 'ALERTS_UNAVAILABLE' });
      expect(String(r.message)).toMatch(/TICKWIRE_AUTH_DELAY_MS=60000/);
    } finally {
      c.close();
    }
  });

  it('a gateway with the same delay creates the delayed rule', async () => {
    const res = await api(sameGateway, 'POST', '/v1/users/finn/alerts', { ...rule, entitlements: delayedOnly });
    expect(res).toMatchObject({ status: 201, body: { id: 'aapl-300', delayed: true } });
  });
});
