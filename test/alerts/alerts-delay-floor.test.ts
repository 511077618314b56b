import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAlerts } from '../../src/alerts/alerts.js';
import type { Alerts } from '../../src/alerts/alerts.js';
import { RedisAlertStore } from '../../src/alerts/alert-store.js';
import type { BusRequests } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { NotificationService } from '../../src/notifications/notification-service.js';
import type { NotificationEvent } from '../../src/notifications/schemas.js';
import { startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { trade } from './ticks.js';

/**
 * An alert service restarted with a shorter auth.delayMs than the gateways' must not run the
 * delayed rules it already holds on fresher data than their users may see (docs/alerts.md,
 * Entitlements): the delay they were accepted under is stored with them, and they are held
 * (kept, listed with `held`, not evaluated) until a gateway within the service's delay forwards
 * a rule, or the service runs the gateways' delay again.
 */
const registry = defaultRegistry();
const rule = { id: 'aapl-230', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 };
const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined };

/** NATS mode as buildAlerts sees it: a bus with request/reply (serving alerts.rpc is not exercised here) */
class RequestsBus extends MemoryBus {
  readonly requests: BusRequests = {
    request: () => Promise.reject(new Error('no responder')),
    serve: () => () => undefined,
  };
}

describe('delayed alert rules across an alert-service restart with a shorter delay', () => {
  let redis: TestServer & { destroy(): Promise<void> };
  const prefix = `test:alerts-floor:${process.pid}:`;
  beforeAll(async () => {
    redis = await startRedis();
  }, 30_000);
  afterAll(async () => {
    await redis?.destroy();
  });

  async function service(delayMs: number, log: { error: (o: object, m: string) => void } = quiet) {
    const config = loadConfig({
      env: {},
      overrides: { redisUrl: redis.url, auth: { delayMs }, alerts: { flushMs: 0, redisKeyPrefix: prefix } },
    });
    const bus = new RequestsBus();
    const notifications = new NotificationService(new MemoryEventLog<NotificationEvent>({ maxPerUser: 100, retentionMs: 86_400_000 }), { maxPerUser: 100 });
    const alerts: Alerts = await buildAlerts({ config, bus, registry, log: { ...quiet, ...log }, role: 'service', notifications });
    let ms = Date.now();
    const pub = (p: number) => bus.publish(marketSubject('stock', 'trade', 'AAPL'), encodeTick(trade('AAPL', p, ++ms)));
    const fired = async (user: string) => (await notifications.list(user)).items.length;
    return { alerts, pub, fired };
  }

  it('holds them, refuses new delayed rules meanwhile, and lets a gateway within the delay lift the hold', async () => {
    // accepted through a gateway delaying by 400 ms, on a service that does too
    const first = await service(400);
    await expect(first.alerts.api.create('dana', rule, 'delayed', { minDelayMs: 400 })).resolves.toMatchObject({ delayed: true });
    await first.alerts.close();

    // restarted with 100 ms: the rule is kept and listed, but held
    const errors: string[] = [];
    const second = await service(100, { error: (_o, m) => void errors.push(m) });
    try {
      expect(errors.join('\n')).toMatch(/1 delayed alert rules are held.*400 ms.*100 ms.*TICKWIRE_AUTH_DELAY_MS=400/);
      expect(await second.alerts.api.list('dana')).toEqual([expect.objectContaining({ id: 'aapl-230', delayed: true, held: true })]);
      // a crossing 100 ms old does not fire it
      second.pub(229);
      second.pub(231);
      await quietFor(400, 'a firing of the held rule on 100 ms old data');
      expect(await second.fired('dana')).toBe(0);

      // a gateway still on 400 ms is refused as before; one that sends no delay (older) cannot lift the
      // hold, and its delayed rule is refused while the rules are held; a real-time rule is not affected
      await expect(second.alerts.api.create('erin', rule, 'delayed', { minDelayMs: 400 })).rejects.toMatchObject({ status: 503, code: 'ALERTS_UNAVAILABLE' });
      const held = second.alerts.api.create('erin', rule, 'delayed', {});
      await expect(held).rejects.toMatchObject({ status: 503, code: 'ALERTS_UNAVAILABLE' });
      await expect(held).rejects.toThrow(/held.*400 ms.*TICKWIRE_AUTH_DELAY_MS=400/);
      await expect(second.alerts.api.create('erin', rule, 'realtime', {})).resolves.toMatchObject({ delayed: false });
      expect((await second.alerts.api.get('dana', 'aapl-230')).held).toBe(true);

      // the gateways were lowered too: the first rule through one of them lifts the hold
      await expect(second.alerts.api.create('finn', rule, 'delayed', { minDelayMs: 100 })).resolves.toMatchObject({ delayed: true });
      expect((await second.alerts.api.get('dana', 'aapl-230')).held).toBeUndefined();
      const store = new RedisAlertStore(redis.url, prefix + 'delayed:');
      expect(await store.readDelay()).toBe(100);
      await store.close();
      second.pub(229);
      second.pub(232);
      await waitFor(async () => (await second.fired('dana')) === 1, { what: "dana's rule evaluated again", timeout: 5000, interval: 20 });
    } finally {
      await second.alerts.close();
    }
  });

  it('a service at least as delayed as the rules were accepted under, or with no delayed rules, is not held', async () => {
    const p = `${prefix}2:`;
    const config = (delayMs: number) =>
      loadConfig({ env: {}, overrides: { redisUrl: redis.url, auth: { delayMs }, alerts: { flushMs: 0, redisKeyPrefix: p } } });
    const store = new RedisAlertStore(redis.url, p + 'delayed:');
    await store.writeDelay(900);
    await store.close();
    const notifications = new NotificationService(new MemoryEventLog<NotificationEvent>({ maxPerUser: 100, retentionMs: 86_400_000 }), { maxPerUser: 100 });
    // no delayed rule stored: nothing to hold, and a delayed rule through an older gateway is accepted
    const a = await buildAlerts({ config: config(100), bus: new RequestsBus(), registry, log: quiet, role: 'service', notifications });
    try {
      await expect(a.api.create('gus', rule, 'delayed', {})).resolves.toMatchObject({ delayed: true });
      expect((await a.api.get('gus', 'aapl-230')).held).toBeUndefined();
    } finally {
      await a.close();
    }
  });
});
