import { describe, expect, it } from 'vitest';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { NotificationService } from '../../src/notifications/notification-service.js';
import type { NotificationEvent, NotificationItem } from '../../src/notifications/schemas.js';
import { ReplayBudget } from '../../src/executions/replay-budget.js';

const note = (n: number): NotificationItem => ({
  kind: 'notification',
  id: `n-${n}`,
  type: 'order.filled',
  title: `Order ${n}`,
  body: '',
  priority: 'normal',
  t: n,
});

/**
 * A subscriber without `since` gets every event after its read cursor (`state().cursor`), and the
 * live feed from the moment it joins. The cursor must describe the log as scanned: a notification
 * stored while the scan is under way is either in the scan or after the cursor. Before, a user with
 * nothing stored got the log's head read after the scan as the cursor: a notification stored in
 * between was past neither, and the subscriber never got it (seen in
 * test/client/notifications-resume.test.ts: seq 2 and 3 arrived, 1 never did).
 */
describe('notifications read state: the cursor of a user whose first notification arrives during the scan', () => {
  for (const withBudget of [false, true]) {
    it(withBudget ? 'with a replay budget (as gateways run it)' : 'without a budget', async () => {
      const log = new MemoryEventLog<NotificationEvent>({ maxPerUser: 100, retentionMs: 86_400_000 });
      const read = log.read.bind(log);
      let stored = false;
      // a POST lands right after the scan read the (empty) log
      log.read = async (user, after, limit) => {
        const page = await read(user, after, limit);
        if (!stored) {
          stored = true;
          await log.append(user, note(1));
        }
        return page;
      };
      const head = log.head.bind(log);
      // with a budget the scan asks the head first and reads nothing when it is 0: the POST lands then
      log.head = async (user) => {
        const h = await head(user);
        if (withBudget && !stored) {
          stored = true;
          await log.append(user, note(1));
        }
        return h;
      };
      const svc = new NotificationService(log, {
        maxPerUser: 100,
        ...(withBudget ? { budget: new ReplayBudget({ perUserPerSec: 0, perGatewayPerSec: 0 }) } : {}),
      });
      const s = await svc.state('dana');
      expect(stored).toBe(true);
      // in the scan or not, the notification is after the cursor: the subscriber gets it
      expect(s.cursor).toBe(0);
      expect(s.events.every((e) => e.seq > s.cursor)).toBe(true);
    });
  }
});
