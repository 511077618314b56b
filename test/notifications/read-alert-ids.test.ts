import { describe, expect, it } from 'vitest';
import { engineRuleId } from '../../src/alerts/alert-api.js';
import { firingNotification } from '../../src/alerts/alerts.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { NotificationService } from '../../src/notifications/notification-service.js';
import type { NotificationEvent } from '../../src/notifications/schemas.js';

/**
 * Every stored notification can be marked read by its id (`ids`, `upToId`): an alert firing's
 * notification id `#alert:<engine rule id>:<n>` is longer than the 128 characters of a posted id
 * when the user's rule id is long (rule ids are up to 96 characters, docs/alerts.md).
 */
describe('marking alert notifications read by id', () => {
  it('accepts the id of a firing of a rule with the longest rule id', async () => {
    const svc = new NotificationService(new MemoryEventLog<NotificationEvent>({ maxPerUser: 100, retentionMs: 86_400_000 }), { maxPerUser: 100 });
    const user = 'alice';
    const ruleId = engineRuleId(user, 'r'.repeat(96), 1_795_316_736_309);
    const at = 1_795_316_736_309;
    const note = (n: number) =>
      firingNotification(
        { id: `${ruleId}:${n}`, ruleId, user, symbol: 'AAPL', kind: 'price', value: 231, previous: 229, level: 230, at, tick: { k: 'trade', seq: n, ep: 1 } },
        undefined,
        undefined,
      );
    const a = note(1);
    const b = note(2);
    expect(a.id.length).toBeGreaterThan(128);
    await svc.record(user, a);
    await svc.record(user, b);
    expect(await svc.markRead(user, { ids: [a.id] })).toMatchObject({ unread: 1 });
    expect(await svc.markRead(user, { upToId: b.id })).toMatchObject({ unread: 0 });
    expect((await svc.list(user)).items.map((i) => i.read)).toEqual([true, true]);
  });
});
