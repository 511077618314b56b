import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { ReplayBudget } from '../../src/executions/replay-budget.js';
import { NotificationService } from '../../src/notifications/notification-service.js';
import type { NotificationEvent } from '../../src/notifications/schemas.js';
import { TestClient } from '../helpers/ws-client.js';
import { api, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { ManualBudgetClock, turnsUntil } from '../helpers/budget-clock.js';

/** Count the events a log hands out (the calls go through to it). */
function countReads(log: { read: MemoryEventLog<NotificationEvent>['read'] }): { events: number } {
  const counter = { events: 0 };
  const read = log.read.bind(log);
  log.read = async (...args) => {
    const page = await read(...args);
    counter.events += page.length;
    return page;
  };
  return counter;
}

/**
 * Deriving a user's read state reads the user's whole retained log. A subscribe without `since`,
 * `notifications.read` and a list each do it; repeated in a loop from many connections they must
 * not read the log faster than the replay budgets let replays read it.
 */
describe('read-state scans take from the replay budget', () => {
  it('ten concurrent scans of a 100-event log with a budget of 100 events/s read at most 100 per second, and all finish', async () => {
    const log = new MemoryEventLog<NotificationEvent>({ maxPerUser: 1000, retentionMs: 3_600_000 });
    for (let i = 1; i <= 100; i++) await log.append('u', { kind: 'notification', id: `n-${i}`, type: 'x', title: 't', body: '', priority: 'normal', t: i });
    const reads = countReads(log);
    const clock = new ManualBudgetClock();
    const service = new NotificationService(log, { maxPerUser: 1000, budget: new ReplayBudget({ perUserPerSec: 100, perGatewayPerSec: 0 }, clock) });
    let done = 0;
    const results: number[] = [];
    for (let i = 0; i < 10; i++) {
      void service.list('u').then((r) => {
        results.push(r.items.length);
        done++;
      });
    }
    const settle = (): Promise<void> => turnsUntil(() => done === 10 || clock.sleepers.size === 10 - done);
    await settle();
    let seconds = 0;
    for (;;) {
      expect(reads.events, `events read after ${seconds} s`).toBeLessThanOrEqual(100 * (seconds + 1));
      if (done === 10 || seconds === 30) break;
      clock.advance(1000);
      seconds++;
      await settle();
    }
    expect(done).toBe(10);
    // one scan of 100 events per second of budget
    expect(seconds).toBe(9);
    expect(results).toEqual(Array(10).fill(100));
    expect(reads.events).toBe(1000);
  });

  it('without a budget (a process that serves no clients) a scan does not wait', async () => {
    const log = new MemoryEventLog<NotificationEvent>({ maxPerUser: 1000, retentionMs: 3_600_000 });
    for (let i = 1; i <= 1500; i++) await log.append('u', { kind: 'notification', id: `n-${i}`, type: 'x', title: 't', body: '', priority: 'normal', t: i });
    const service = new NotificationService(log, { maxPerUser: 1000 });
    expect((await service.list('u')).items).toHaveLength(1000);
  });

  describe('on a gateway (embedded engine)', () => {
    let engine: Engine;
    beforeAll(async () => {
      engine = await testEngine({
        auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
        notifications: { maxPerUser: 200 },
        executions: { replayPerUserPerSec: 1000 },
      });
    });
    afterAll(() => engine.close());

    it('a flood of notifications.read and of subscribes without since waits on the budget; every request is answered', async () => {
      for (let i = 1; i <= 200; i++) {
        expect((await api(engine, 'POST', '/v1/users/flood/notifications', { id: `n-${i}`, type: 'x', title: `n ${i}` })).status).toBe(201);
      }
      const notifications = engine.userAlerts!.notifications;
      const budget = notifications.router!.budget;
      const waitsBefore = budget.stats.userWaits;
      const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'flood' })}` }, encoding: 'json' });
      // 20 full scans of 200 events: 4000 events against a budget of 1000 per second
      const answers = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          i % 2 === 0
            ? c.request({ op: 'notifications.read', id: 100 + i, ids: ['no-such-id'] })
            : c.request({ op: 'subscribe', id: 100 + i, channels: ['notifications'] }),
        ),
      );
      expect(answers.filter((a) => a.op === 'notifications.read')).toHaveLength(5);
      for (const a of answers.filter((x) => x.op === 'notifications.read')) expect(a).toMatchObject({ seq: 0, unread: 200 });
      expect(answers.filter((a) => a.op === 'ack' && a.subscribed?.[0] === 'notifications')).toHaveLength(5);
      // the last subscribe (the others were superseded) gets every unread notification, in order
      await c.waitFor((f) => f.op === 'data' && f.ch === 'notifications' && f.d.id === 'n-200', 15_000);
      expect(budget.stats.userWaits).toBeGreaterThan(waitsBefore);
      c.close();
    });
  });
});
