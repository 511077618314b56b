import { describe, expect, it } from 'vitest';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { NotificationService } from '../../src/notifications/notification-service.js';
import type { NotificationEvent } from '../../src/notifications/schemas.js';

/**
 * `notifications.read` and `POST .../notifications/read` sent again, or at the same time, while
 * the first is still being written: "Nothing new read: no marker, seq is 0"
 * (docs/private-streams.md, Read state). Every extra marker would go to each of the user's
 * connections and take one of the log's `notifications.maxPerUser` slots, and an answer computed
 * on the state before the other request's marker would report a wrong `unread` count.
 */
const mk = () => new MemoryEventLog<NotificationEvent>({ maxPerUser: 100, retentionMs: 86_400_000 });
const note = (id: string) => ({ id, type: 'info', title: id, body: '', priority: 'normal' as const });

describe('read markers of requests that overlap', () => {
  it('the same read sent three times at once writes one marker; the others answer seq 0', async () => {
    const log = mk();
    const svc = new NotificationService(log, { maxPerUser: 100 });
    for (const id of ['n1', 'n2', 'n3', 'n4']) await svc.post('alice', note(id));
    const answers = await Promise.all([1, 2, 3].map(() => svc.markRead('alice', { ids: ['n4'] })));
    expect(answers.filter((a) => a.seq > 0)).toHaveLength(1);
    expect(answers.map((a) => a.unread)).toEqual([3, 3, 3]);
    const markers = (await log.read('alice', 0, 100)).filter((e) => e.d.kind === 'read');
    expect(markers).toHaveLength(1);
  });

  it('overlapping reads of different ids each count what the other already read', async () => {
    const log = mk();
    const svc = new NotificationService(log, { maxPerUser: 100 });
    for (const id of ['a-1', 'a-2', 'a-3']) await svc.post('erin', note(id));
    const [both, one] = await Promise.all([svc.markRead('erin', { ids: ['a-1', 'a-1', 'a-2'] }), svc.markRead('erin', { ids: ['a-1'] })]);
    expect(both).toMatchObject({ unread: 1 });
    expect(one).toEqual({ seq: 0, unread: 1 });
    expect((await svc.state('erin')).unread.map((e) => e.d.id)).toEqual(['a-3']);
  });

  it('two services on one log (two gateway processes) reading the same ids at once store one marker', async () => {
    const log = mk();
    const a = new NotificationService(log, { maxPerUser: 100 });
    const b = new NotificationService(log, { maxPerUser: 100 });
    for (const id of ['x1', 'x2']) await a.post('finn', note(id));
    const answers = await Promise.all([a.markRead('finn', { upToId: 'x2' }), b.markRead('finn', { upToId: 'x2' })]);
    expect(answers.filter((r) => r.seq > 0)).toHaveLength(1);
    expect((await log.read('finn', 0, 100)).filter((e) => e.d.kind === 'read')).toHaveLength(1);
  });
});
