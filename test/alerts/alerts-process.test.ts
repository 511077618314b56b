import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { BusAlertsClient } from '../../src/alerts/alert-api.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { startAlertsProcessRig } from './process-rig.js';
import type { AlertsProcessRig } from './process-rig.js';

type Server = TestServer & { destroy(): Promise<void> };
const isNote = (f: Frame) => f.op === 'data' && f.ch === 'notifications' && f.d.kind === 'notification';

/**
 * Scale-out with real processes: `tickwire alerts` (rules in Redis, firings into the JetStream
 * notifications log) and `tickwire gateway`, ticks published on NATS by this test. Each firing
 * must reach the user exactly once across a SIGKILL of the alert service and a restart of the
 * gateway.
 */
describe('alerts in scale-out (real processes, NATS and Redis)', () => {
  let rig: AlertsProcessRig;
  beforeAll(async () => {
    rig = await startAlertsProcessRig();
  });
  afterAll(async () => {
    await rig?.stop();
  });

  const trade = (p: number): void => rig.trade(p);
  const call: AlertsProcessRig['call'] = (...args) => rig.call(...args);
  const phase = async (port: number): Promise<string | undefined> => (await call(port, 'GET', '/v1/users/zoe/alerts/aapl-100')).body.state?.phase;
  /** trades at `price` until the rule reads armed (a trade sent before the service subscribed is not seen) */
  const armAt = (price: number, phaseNow: () => Promise<string | undefined>, what: string): Promise<unknown> =>
    waitFor(
      async () => {
        trade(price);
        return (await phaseNow()) === 'armed';
      },
      { timeout: 15_000, what },
    );

  it('fires each crossing exactly once across an alert-service kill and a gateway restart', async () => {
    const alerts = await rig.startAlerts();
    const port = await freePort();
    const gateway = await rig.startGateway(port);
    const created = await call(port, 'POST', '/v1/users/zoe/alerts', {
      id: 'aapl-100',
      symbol: 'AAPL',
      kind: 'price',
      direction: 'above',
      level: 100,
      mode: 'rearm',
      rearmBy: 1,
    });
    expect(created).toMatchObject({ status: 201, body: { id: 'aapl-100', delayed: false } });
    const zoe = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, {
      headers: { authorization: `Bearer ${await token({ sub: 'zoe' })}` },
      encoding: 'json',
    });
    await zoe.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    // in-band ops reach the alert service over alerts.rpc too
    expect(await zoe.request({ op: 'alert.list', id: 2 })).toMatchObject({
      op: 'alert.list',
      alerts: [expect.objectContaining({ id: 'aapl-100', user: 'zoe' })],
    });
    expect(await zoe.request({ op: 'alert.create', id: 3, rule: { id: 'aapl-100', symbol: 'AAPL', kind: 'spread', threshold: 1 } })).toMatchObject({
      op: 'error',
      id: 3,
      code: 'ALERT_DUPLICATE',
    });

    // 1: arm, cross
    await armAt(99, () => phase(port), 'armed');
    trade(101);
    await zoe.waitForCount(isNote, 1, 15_000);

    // 2: kill the alert service without warning; the rule is `waiting` in Redis and must not fire again
    await alerts.stop('SIGKILL');
    await rig.startAlerts();
    trade(101.5);
    await armAt(98.5, () => phase(port), 're-armed after the restart');
    trade(102);
    await zoe.waitForCount(isNote, 2, 15_000);

    // 3: a firing while the gateway is down is in the log; the user resumes with `since`
    const last = zoe.frames.filter((f) => f.op === 'data' && f.ch === 'notifications').at(-1)!.seq as number;
    zoe.close();
    expect(await gateway.stop()).toBe(0);
    // the gateway is down: ask the alert service over alerts.rpc, as a gateway would
    const rule = () => new BusAlertsClient(rig.ticks.requests, 5000).get('zoe', 'aapl-100');
    await armAt(98, async () => (await rule()).state.phase, 're-armed while the gateway is down');
    trade(103);
    await waitFor(async () => (await rule()).state.fired === 3, { timeout: 15_000, what: 'the third firing' });
    await rig.startGateway(port);
    const again = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, {
      headers: { authorization: `Bearer ${await token({ sub: 'zoe' })}` },
      encoding: 'json',
    });
    await again.request({ op: 'subscribe', id: 1, channels: ['notifications'], since: last });
    const resumed = await again.waitForCount(isNote, 1, 15_000);
    expect(resumed[0]!.d.data).toMatchObject({ rule: 'aapl-100', firing: 3, value: 103 });
    await quietFor(500, 'a firing before `since` sent again on resume');
    expect(again.frames.filter(isNote)).toHaveLength(1);

    // the whole log: three firings, each once, in order
    const list = await call(port, 'GET', '/v1/users/zoe/notifications');
    expect(list.body.items.map((n: { data: { firing: number; value: number } }) => [n.data.firing, n.data.value])).toEqual([
      [1, 101],
      [2, 102],
      [3, 103],
    ]);
    expect((await call(port, 'GET', '/v1/users/zoe/alerts/aapl-100')).body.state).toMatchObject({ fired: 3 });
    again.close();
  }, 120_000);
});

describe('alerts embedded with Redis (one process, restarted)', () => {
  let redis: Server;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.destroy();
  });

  it('keeps rules, state and notifications across a restart: no loss, no re-fire', async () => {
    const cfg = { redisUrl: redis.url, auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, alerts: { flushMs: 0 } };
    const trade = (e: Awaited<ReturnType<typeof testEngine>>, p: number) => publishTick(e, 'stock', { k: 'trade', sym: 'MSFT', id: `m${p}`, p, s: 1 } as never);
    let engine = await testEngine(cfg);
    expect((await api(engine, 'POST', '/v1/users/yan/alerts', { id: 'msft-400', symbol: 'MSFT', kind: 'price', direction: 'above', level: 400 })).status).toBe(
      201,
    );
    const e1 = engine;
    await waitFor(
      async () => {
        trade(e1, 399);
        return (await api(e1, 'GET', '/v1/users/yan/alerts/msft-400')).body.state?.phase === 'armed';
      },
      { timeout: 10_000, what: 'armed' },
    );
    trade(engine, 401);
    await waitFor(async () => (await api(e1, 'GET', '/v1/users/yan/notifications')).body.items?.length === 1, { timeout: 10_000, what: 'fired' });
    await engine.close();

    engine = await testEngine(cfg);
    const e2 = engine;
    // the once-rule is done: crossings after the restart do not fire it again
    expect((await api(e2, 'GET', '/v1/users/yan/alerts/msft-400')).body.state).toMatchObject({ phase: 'done', fired: 1 });
    trade(engine, 399);
    trade(engine, 402);
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'yan' })}` }, encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    await c.waitForCount(isNote, 1);
    await quietFor(300, 'a firing of the done rule after the restart (the trade at 402)');
    expect(c.frames.filter(isNote).map((f) => f.d.data.value)).toEqual([401]);
    c.close();
    await engine.close();
  }, 60_000);
});
