import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { ALERTS_RPC_SUBJECT } from '../../src/alerts/alert-api.js';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import { api, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';

/** A gateway in NATS mode (no feeds, auth required) that waits `requestTimeoutMs` for the alert service. */
function startGateway(natsUrl: string, requestTimeoutMs: number): Promise<Engine> {
  return startEngine(
    {
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      natsUrl,
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      alerts: { requestTimeoutMs },
    },
    { roles: { feeds: [] }, env: {} },
  );
}

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
    gw = await startGateway(nats.url, 300);
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

/**
 * An alert service that takes requests and never answers (hung, or stuck behind its store): one
 * user's `alert.list` requests are served one after another (CostlyQueues), so each used to wait
 * out the timeouts of all those before it: the 12th of a burst was answered after 12 ×
 * alerts.requestTimeoutMs (up to 32 × 3 s with the defaults). A request that has waited its
 * timeout behind the others is now answered ALERTS_UNAVAILABLE without being sent.
 */
describe('alerts in NATS mode with an alert service that never answers', () => {
  let nats: TestServer & { destroy(): Promise<void> };
  let gw: Engine;
  let hung: NatsConnection;
  let received = 0;
  const TIMEOUT = 400;
  beforeAll(async () => {
    nats = await startNats();
    hung = await connect({ servers: nats.url });
    hung.subscribe(ALERTS_RPC_SUBJECT, {
      callback: (_err, m) => {
        if ((JSON.parse(m.string()) as { op?: string }).op === 'list') received++;
      },
    });
    await hung.flush();
    gw = await startGateway(nats.url, TIMEOUT);
  });
  afterAll(async () => {
    await gw?.close();
    await hung?.close();
    await nats?.destroy();
  });

  it('a burst of alert.list is answered ALERTS_UNAVAILABLE after one timeout, not one timeout each', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`, {
      headers: { authorization: `Bearer ${await token({ sub: 'alice' })}` },
      encoding: 'json',
    });
    try {
      const N = 12;
      const answers = await Promise.all(Array.from({ length: N }, (_, i) => c.request({ op: 'alert.list', id: 100 + i }, 30_000)));
      for (const [i, a] of answers.entries()) expect(a).toMatchObject({ op: 'error', id: 100 + i, code: 'ALERTS_UNAVAILABLE' });
      // the first was sent and timed out; those that had waited as long behind it were not sent (the
      // service got 12 lists before)
      expect(received).toBeGreaterThanOrEqual(1);
      expect(received).toBeLessThan(N / 2);
      expect(answers.slice(1).map((a) => String(a.message))).toContain(
        `the alert service did not answer this user's earlier alert.list within ${TIMEOUT} ms (alerts.requestTimeoutMs): this one was not sent; retry`,
      );
    } finally {
      c.close();
    }
  });
});
