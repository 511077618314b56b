import { describe, expect, it } from 'vitest';
import type { AlertFiring } from '../../src/alerts/alert-engine.js';
import { AlertService } from '../../src/alerts/alert-service.js';
import { MemoryAlertStore } from '../../src/alerts/alert-store.js';
import { buildAlerts } from '../../src/alerts/alerts.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { AppendOptions, AppendResult } from '../../src/executions/event-log.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { NotificationService } from '../../src/notifications/notification-service.js';
import type { NotificationEvent } from '../../src/notifications/schemas.js';
import { waitFor } from '../helpers/wait.js';
import { trade } from './ticks.js';

/**
 * A firing that may already be in the user's notifications log (from the outbox at start, or a
 * retry of a delivery that failed: a failed append may still have been stored) is appended as a
 * redelivery (`redeliveredSince`), so a log whose id deduplication is bounded (JetStream's
 * duplicate window, a new stream leader after a node kill) still stores it once (docs/alerts.md,
 * "Exactly once, end to end").
 */
const registry = defaultRegistry();
const T = 1_900_000_000_000;
const rule = { id: 'r1', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 } as const;
const until = (cond: () => boolean, what: string) => waitFor(cond, { what, timeout: 5000, interval: 5 });

describe('alert firings delivered again are marked as redeliveries', () => {
  it('tells onFire which deliveries are first ones and which may repeat an earlier one', async () => {
    const config = { ...loadConfig({ env: {} }).alerts, flushMs: 0 };
    const bus = new MemoryBus();
    const store = new MemoryAlertStore();
    const seen: { id: string; redelivery: boolean | undefined }[] = [];
    let fail = 1;
    const svc = new AlertService({
      bus,
      registry,
      store,
      config,
      now: () => T,
      redeliverMs: 10,
      onFire: (f: AlertFiring, info?: { redelivery: boolean }) => {
        seen.push({ id: f.id, redelivery: info?.redelivery });
        if (fail-- > 0) throw new Error('log down');
      },
    });
    await svc.start();
    await svc.add(rule);
    const pub = (p: number, ms: number) => bus.publish(marketSubject('stock', 'trade', 'AAPL'), encodeTick(trade('AAPL', p, ms)));
    pub(229, T + 1);
    pub(231, T + 2);
    await until(() => seen.length === 2, 'the failed delivery and its retry');
    expect(seen).toEqual([
      { id: 'r1:1', redelivery: false },
      { id: 'r1:1', redelivery: true },
    ]);
    await svc.close();

    // a firing left in the outbox (its delivery was never acknowledged) is a redelivery at start
    await store.commit({ upserts: [], deletes: [], marks: [], firings: [{ ...firingOf(), id: 'r0:1', ruleId: 'r0' }] });
    const again: { id: string; redelivery: boolean | undefined }[] = [];
    const svc2 = new AlertService({
      bus,
      registry,
      store,
      config,
      now: () => T,
      onFire: (f: AlertFiring, info?: { redelivery: boolean }) => void again.push({ id: f.id, redelivery: info?.redelivery }),
    });
    await svc2.start();
    expect(again).toEqual([{ id: 'r0:1', redelivery: true }]);
    await svc2.close();
  });

  it('appends a redelivered firing to the notifications log with redeliveredSince = the firing time', async () => {
    class FlakyLog extends MemoryEventLog<NotificationEvent> {
      readonly calls: (AppendOptions | undefined)[] = [];
      fail = 1;
      override append(user: string, d: NotificationEvent, opts?: AppendOptions): Promise<AppendResult> {
        this.calls.push(opts);
        if (this.fail-- > 0) return Promise.reject(new Error('append timed out (it may have been stored)'));
        return super.append(user, d);
      }
    }
    const log = new FlakyLog({ maxPerUser: 100, retentionMs: 86_400_000 });
    const notifications = new NotificationService(log, { maxPerUser: 100 });
    const bus = new MemoryBus();
    const config = loadConfig({ env: {}, overrides: { alerts: { flushMs: 0 } } });
    const quiet = { warn: () => undefined, info: () => undefined, error: () => undefined };
    const alerts = await buildAlerts({ config, bus, registry, log: quiet, role: 'service', notifications });
    try {
      await alerts.api.create('u', { id: 'r1', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 }, 'realtime');
      const pub = (p: number, ms: number) => bus.publish(marketSubject('stock', 'trade', 'AAPL'), encodeTick(trade('AAPL', p, ms)));
      pub(229, T + 1);
      pub(231, T + 2);
      await until(() => log.calls.length === 2, 'the failed append and its retry (redeliverMs 1 s)');
      expect(log.calls[0]).toBeUndefined();
      expect(log.calls[1]).toEqual({ redeliveredSince: T + 2 });
      expect((await notifications.list('u')).items).toHaveLength(1);
    } finally {
      await alerts.close();
    }
  });
});

/** A firing of `rule` as the engine makes it (fields other than the id are not looked at). */
function firingOf(): AlertFiring {
  return {
    id: 'r1:1',
    ruleId: 'r1',
    user: 'u',
    symbol: 'AAPL',
    kind: 'price',
    value: 231,
    previous: 229,
    level: 230,
    at: T + 2,
    tick: { k: 'trade', seq: 1, ep: 1 },
  };
}
