import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import { api, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';

/**
 * NATS mode without a `tickwire alerts` process: a gateway forwards alert calls over `alerts.rpc`
 * and, when nobody answers within alerts.requestTimeoutMs, refuses them with 503
 * `ALERTS_UNAVAILABLE` (docs/alerts.md, Service API and In-band ops), never hangs or crashes.
 */
describe('alerts in NATS mode with no alert service running', () => {
  let nats: TestServer & { destroy(): Promise<void> };
  let gw: Engine;
  beforeAll(async () => {
    nats = await startNats();
    gw = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        natsUrl: nats.url,
        auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
        alerts: { requestTimeoutMs: 300 },
      },
      { roles: { feeds: [] }, env: {} },
    );
  });
  afterAll(async () => {
    await gw?.close();
    await nats?.destroy();
  });

  it('answers the service API with 503 ALERTS_UNAVAILABLE', async () => {
    const rule = { id: 'a1', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 };
    expect(await api(gw, 'POST', '/v1/users/alice/alerts', rule)).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
    expect(await api(gw, 'GET', '/v1/users/alice/alerts')).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
    expect(await api(gw, 'DELETE', '/v1/users/alice/alerts/a1')).toMatchObject({ status: 503, body: { error: 'ALERTS_UNAVAILABLE' } });
  });

  it('answers in-band alert ops with an error frame ALERTS_UNAVAILABLE', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`, {
      headers: { authorization: `Bearer ${await token({ sub: 'alice' })}` },
      encoding: 'json',
    });
    try {
      const r = await c.request({ op: 'alert.create', id: 5, rule: { id: 'a1', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 } });
      expect(r).toMatchObject({ op: 'error', id: 5, code: 'ALERTS_UNAVAILABLE' });
      expect(await c.request({ op: 'alert.list', id: 6 })).toMatchObject({ op: 'error', id: 6, code: 'ALERTS_UNAVAILABLE' });
    } finally {
      c.close();
    }
  });
});
