import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import { api, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';

/**
 * A gateway without an alert service (embedded, the alerts role off): every alert call is refused
 * with the one code docs/protocol.md and docs/alerts.md give for an absent alert service,
 * `ALERTS_UNAVAILABLE` (503 on the service API), the same as a NATS gateway whose alert service
 * does not answer (alerts-unavailable.nats.test.ts). The service API answered `UNAVAILABLE`.
 */
describe('alerts on a gateway with no alert service configured', () => {
  let gw: Engine;
  beforeAll(async () => {
    gw = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' }, auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } },
      { roles: { feeds: [], alerts: false }, env: {} },
    );
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('answers the service API with 503 ALERTS_UNAVAILABLE', async () => {
    const rule = { id: 'a1', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 };
    expect(await api(gw, 'POST', '/v1/users/alice/alerts', rule)).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
    expect(await api(gw, 'GET', '/v1/users/alice/alerts')).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
    expect(await api(gw, 'GET', '/v1/users/alice/alerts/a1')).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
    expect(await api(gw, 'PUT', '/v1/users/alice/alerts/a1', rule)).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
    expect(await api(gw, 'DELETE', '/v1/users/alice/alerts/a1')).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
  });

  it('answers in-band alert ops with ALERTS_UNAVAILABLE', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`, {
      headers: { authorization: `Bearer ${await token({ sub: 'alice' })}` },
      encoding: 'json',
    });
    try {
      expect(await c.request({ op: 'alert.list', id: 6 })).toMatchObject({ op: 'error', id: 6, code: 'ALERTS_UNAVAILABLE' });
    } finally {
      c.close();
    }
  });
});
