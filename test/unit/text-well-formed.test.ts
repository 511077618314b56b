import { describe, expect, it } from 'vitest';
import { AnnouncementSchema } from '../../src/executions/schemas.js';
import { NotificationInputSchema } from '../../src/notifications/schemas.js';

/**
 * Text a backend or an operator posts (notifications, announcements) goes to every client, in
 * MessagePack too, where a string is UTF-8: a lone surrogate has no UTF-8 form and went out as
 * bytes that strict MessagePack decoders (Python, Go, Rust) refuse, so one bad post broke the
 * channel for those clients. The entry points refuse it, naming the field (400 on HTTP).
 */
const LONE = 'price alert \uD83D'; // the first half of an emoji, cut

describe('posted text must be well-formed Unicode', () => {
  it('a notification: title, body, and the strings and keys of data', () => {
    const base = { id: 'n1', type: 'order.filled', title: 'Filled' };
    expect(NotificationInputSchema.safeParse(base).success).toBe(true);
    expect(NotificationInputSchema.safeParse({ ...base, title: 'Filled \uD83D\uDE00' }).success).toBe(true); // a whole emoji is fine
    for (const [bad, field] of [
      [{ ...base, title: LONE }, 'title'],
      [{ ...base, body: LONE }, 'body'],
      [{ ...base, data: { note: LONE } }, 'data'],
      [{ ...base, data: { list: [{ deep: LONE }] } }, 'data'],
      [{ ...base, data: { [LONE]: 1 } }, 'data'],
    ] as const) {
      const r = NotificationInputSchema.safeParse(bad);
      expect(r.success, field).toBe(false);
      expect(r.error!.issues[0]!.path[0], field).toBe(field);
      expect(r.error!.issues[0]!.message, field).toMatch(/well-formed Unicode/);
    }
  });

  it('an announcement: title and message', () => {
    const base = { level: 'info', title: 'Maintenance', message: 'at 22:00' };
    expect(AnnouncementSchema.safeParse(base).success).toBe(true);
    for (const field of ['title', 'message'] as const) {
      const r = AnnouncementSchema.safeParse({ ...base, [field]: LONE });
      expect(r.success, field).toBe(false);
      expect(r.error!.issues[0]!.path[0], field).toBe(field);
    }
  });
});
