import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { scrape, series } from '../ops/prom-text.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';

/**
 * The alert service on /metrics (docs/operations.md#metrics, docs/alerts.md): rules loaded,
 * ticks evaluated, firings, deliveries and the fire latency, per market data kind (realtime,
 * delayed), after a rule really fired into a user's notifications.
 */
const isNote = (f: Frame) => f.op === 'data' && f.ch === 'notifications' && f.d.kind === 'notification';

describe('alert metrics (embedded engine)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, alerts: { flushMs: 0 } });
  });
  afterAll(() => engine.close());

  const trade = (p: number): void => publishTick(engine, 'stock', { k: 'trade', sym: 'MSFT', id: `t${Math.random()}`, p, s: 1 } as never);
  const metrics = async (): Promise<Map<string, number>> => (await scrape(`http://127.0.0.1:${engine.port}/metrics`)).metrics;

  it('counts rules, evaluations, firings and deliveries, and observes the fire latency', async () => {
    const before = await metrics();
    expect(series(before, 'tickwire_alert_rules{market="realtime"}')).toBe(0);
    expect(series(before, 'tickwire_alert_firings_total{market="realtime"}')).toBe(0);
    expect(series(before, 'tickwire_alert_fire_latency_seconds_count{market="realtime"}')).toBe(0);

    const user = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'mia' })}` }, encoding: 'json' });
    await user.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    for (const [id, level] of [
      ['msft-500', 500],
      ['msft-900', 900],
    ] as const) {
      const r = await api(engine, 'POST', '/v1/users/mia/alerts', { id, symbol: 'MSFT', kind: 'price', direction: 'above', level });
      expect(r.status).toBe(201);
    }
    expect(series(await metrics(), 'tickwire_alert_rules{market="realtime"}')).toBe(2);

    trade(499);
    await waitFor(async () => (await api(engine, 'GET', '/v1/users/mia/alerts/msft-500')).body.state?.phase === 'armed', {
      what: 'the rule armed',
      timeout: 5000,
    });
    trade(501); // crosses 500, not 900
    await user.waitFor(isNote);
    let m = new Map<string, number>();
    await waitFor(async () => series((m = await metrics()), 'tickwire_alert_deliveries_total{market="realtime"}') === 1, {
      what: 'the delivery counted',
      timeout: 5000,
    });
    expect(series(m, 'tickwire_alert_firings_total{market="realtime"}')).toBe(1);
    expect(series(m, 'tickwire_alert_evaluations_total{market="realtime"}')).toBeGreaterThanOrEqual(2);
    expect(series(m, 'tickwire_alert_delivery_errors_total{market="realtime"}')).toBe(0);
    expect(series(m, 'tickwire_alert_store_errors_total{market="realtime"}')).toBe(0);
    expect(series(m, 'tickwire_alert_outbox{market="realtime"}')).toBe(0);
    expect(series(m, 'tickwire_alert_store_commits_total{market="realtime"}')).toBeGreaterThanOrEqual(1);
    // one observation, in a finite bucket (an in-process append takes far less than 30 s)
    expect(series(m, 'tickwire_alert_fire_latency_seconds_count{market="realtime"}')).toBe(1);
    expect(series(m, 'tickwire_alert_fire_latency_seconds_bucket{market="realtime",le="30"}')).toBe(1);
    expect(series(m, 'tickwire_alert_fire_latency_seconds_sum{market="realtime"}')).toBeGreaterThanOrEqual(0);
    // the delayed service has its own series, untouched by a real-time user's rule
    expect(series(m, 'tickwire_alert_firings_total{market="delayed"}')).toBe(0);
    expect(series(m, 'tickwire_alert_rules{market="delayed"}')).toBe(0);
    user.close();
  });
});
