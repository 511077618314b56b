import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/bus/nats-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import type { Tick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import { NOTIF_LOG_PREFIX } from '../../src/notifications/notification-channel.js';
import { freePort, startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';
import { waitFor } from '../helpers/wait.js';
import { SECRET, SERVICE_TOKEN } from '../auth/helpers.js';

type Server = TestServer & { destroy(): Promise<void> };

/**
 * SIGTERM reaches `tickwire alerts` (NATS, JetStream notifications log, rules in Redis) while the
 * firings of one crossing are being appended to the log one by one: every firing is kept (appended
 * before the exit, or left in the Redis outbox and appended by the next start), none twice, and the
 * process exits 0 within `shutdownTimeoutMs` (docs/operations.md#graceful-shutdown).
 */
describe('alert service: SIGTERM while firings are appended to the notifications log', () => {
  const RULES = 300;
  let nats: Server;
  let redis: Server;
  let ticks: NatsBus;
  let watch: NatsConnection;
  const procs: TickwireProcess[] = [];
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
    ticks = await NatsBus.connect({ servers: nats.url, name: 'test-ticks' });
    watch = await connect({ servers: nats.url, name: 'test-watch' });
  });
  afterAll(async () => {
    for (const p of procs) await p.stop();
    await watch?.close();
    await ticks?.close();
    await Promise.all([nats?.destroy(), redis?.destroy()]);
  });

  let seq = 0;
  const trade = (p: number): void => {
    const now = Date.now();
    const tick = { k: 'trade', sym: 'AAPL', src: 'test', seq: ++seq, ep: 1, ts: msToNs(now), rt: msToNs(now), id: `t${seq}`, p, s: 1 } as unknown as Tick;
    ticks.publish(marketSubject('stock', 'trade', 'AAPL'), encodeTick(tick));
  };
  const env = (): Record<string, string> => ({
    HOST: '127.0.0.1',
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    TICKWIRE_AUTH: 'required',
    TICKWIRE_JWT_SECRET: SECRET,
    TICKWIRE_SERVICE_TOKEN: SERVICE_TOKEN,
    TICKWIRE_ALERTS_FLUSH_MS: '0',
  });
  async function startAlerts(): Promise<TickwireProcess> {
    const ops = await freePort();
    const p = spawnTickwire(['alerts'], { ...env(), TICKWIRE_OPS_PORT: String(ops) });
    procs.push(p);
    await waitHttpOk(`http://127.0.0.1:${ops}/health`, 60_000, p);
    return p;
  }
  async function call(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: await res.json() };
  }

  it('keeps every firing and exits 0 in time', async () => {
    const alerts = await startAlerts();
    const port = await freePort();
    const gateway = spawnTickwire(['gateway'], { ...env(), PORT: String(port) });
    procs.push(gateway);
    await waitHttpOk(`http://127.0.0.1:${port}/health`, 60_000, gateway);
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
    await startAlerts();
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
