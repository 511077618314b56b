import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTIF_LOG_PREFIX } from '../../src/notifications/notification-channel.js';
import { freePort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { startAlertsProcessRig } from './process-rig.js';
import type { AlertsProcessRig } from './process-rig.js';

/**
 * SIGTERM reaches `tickwire alerts` (NATS, JetStream notifications log, rules in Redis) while the
 * firings of one crossing are being appended to the log one by one: every firing is kept (appended
 * before the exit, or left in the Redis outbox and appended by the next start), none twice, and the
 * process exits 0 within `shutdownTimeoutMs` (docs/operations.md#graceful-shutdown).
 */
describe('alert service: SIGTERM while firings are appended to the notifications log', () => {
  const RULES = 300;
  let rig: AlertsProcessRig;
  let watch: NatsConnection;
  beforeAll(async () => {
    rig = await startAlertsProcessRig();
    watch = await connect({ servers: rig.nats.url, name: 'test-watch' });
  });
  afterAll(async () => {
    await watch?.close();
    await rig?.stop();
  });

  const trade = (p: number): void => rig.trade(p);
  const call: AlertsProcessRig['call'] = (...args) => rig.call(...args);

  it('keeps every firing and exits 0 in time', async () => {
    const alerts = await rig.startAlerts();
    const port = await freePort();
    await rig.startGateway(port);
    for (let i = 0; i < RULES; i++) {
      const r = await call(port, 'POST', '/v1/users/zoe/alerts', { id: `r${i}`, symbol: 'AAPL', kind: 'price', direction: 'above', level: 100, mode: 'once' });
      expect(r.status).toBe(201);
    }
    const phase = async (): Promise<string | undefined> => (await call(port, 'GET', `/v1/users/zoe/alerts/r${RULES - 1}`)).body.state?.phase;
    await waitFor(
      async () => {
        trade(99);
        return (await phase()) === 'armed';
      },
      { timeout: 15_000, what: 'the rules armed' },
    );

    // the crossing fires every rule; SIGTERM once the first few firings are in the log
    let appended = 0;
    const sub = watch.subscribe(`${NOTIF_LOG_PREFIX}>`, {
      callback: () => {
        appended++;
      },
    });
    trade(101);
    await waitFor(() => appended >= 10, { timeout: 15_000, what: 'the first firings in the log', interval: 1 });
    const signalled = Date.now();
    const atSignal = appended;
    const code = await alerts.stop('SIGTERM');
    const tookMs = Date.now() - signalled;
    const atExit = appended;
    expect(code, alerts.output()).toBe(0);
    // shutdownTimeoutMs (10 s): past it the process exits 1
    expect(tookMs).toBeLessThan(10_000);
    // the signal came while firings were being appended (else this test proves nothing)
    expect(atSignal).toBeLessThan(RULES);

    // the next start appends what the last one left in the outbox
    await rig.startAlerts();
    const firings = async (): Promise<string[]> =>
      ((await call(port, 'GET', '/v1/users/zoe/notifications')).body.items as { kind: string; data: { rule: string } }[])
        .filter((n) => n.kind === 'notification')
        .map((n) => n.data.rule);
    await waitFor(async () => (await firings()).length >= RULES, { timeout: 20_000, what: 'every firing in the log' });
    const rules = await firings();
    expect(new Set(rules).size).toBe(RULES);
    expect(rules).toHaveLength(RULES);
    console.log(
      `SIGTERM after ${atSignal} of ${RULES} log appends, ${atExit} at exit: exit ${code} in ${tookMs} ms; ${RULES} firings in the log after the restart, each once`,
    );
    sub.unsubscribe();
  }, 180_000);
});
