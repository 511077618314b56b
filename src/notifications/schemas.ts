import { z } from 'zod';
import type { NotificationPayload, NotificationReadPayload } from '../protocol/payloads.js';
import { nestsDeeperThan } from '../core/json-depth.js';
import { wellFormedDeepProblem, wellFormedText } from '../core/identity.js';

/**
 * Shapes of the notifications channel (docs/private-streams.md#notifications): what a backend
 * posts (service API, NATS `notif.in.<user>`), what the durable log stores and what a read
 * request carries. One definition for every entry point.
 */

/** client-supplied ids: 1-128 of `A-Z a-z 0-9 . _ : -`; ids starting with `#` are the engine's own */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const MAX_DATA_BYTES = 4096;
/** `data` nests at most this many levels (the object itself is level 1) */
const MAX_DATA_DEPTH = 16;

/**
 * Why `data` is refused, or undefined. The depth is checked first, without recursion: a value
 * from `notif.in` nested 100 000 deep would make JSON.stringify throw a RangeError, which the
 * inbound consumer takes for a failure to retry, redelivering the message for ever. The size is
 * UTF-8 bytes, as documented, not UTF-16 code units.
 */
function dataProblem(d: Record<string, unknown>): string | undefined {
  if (nestsDeeperThan(d, MAX_DATA_DEPTH)) return `data must nest at most ${MAX_DATA_DEPTH} levels of objects and arrays`;
  if (Buffer.byteLength(JSON.stringify(d), 'utf8') > MAX_DATA_BYTES) return `data must be at most ${MAX_DATA_BYTES} bytes of JSON`;
  const malformed = wellFormedDeepProblem(d);
  if (malformed) return `a string in data ${malformed}`;
  return undefined;
}

/**
 * Where `data` (as parsed from JSON, before any schema ran) holds a `__proto__` key, or undefined.
 * A strict MessagePack decoder (@msgpack/msgpack) refuses a map with that key, so a notification
 * carrying one could never be read by such a client (and it comes again with every subscribe);
 * msgpackr renames it and zod drops it from the top level. Walked without recursion; only called
 * on a value that nests at most MAX_DATA_DEPTH levels.
 */
function protoKeyPath(data: unknown): string | undefined {
  const stack: [unknown, string][] = [[data, 'data']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (Array.isArray(v)) {
      v.forEach((x, i) => stack.push([x, `${path}.${i}`]));
      continue;
    }
    for (const k of Object.keys(v)) {
      if (k === '__proto__') return path;
      stack.push([(v as Record<string, unknown>)[k], `${path}.${k}`]);
    }
  }
  return undefined;
}

export const NotificationPriority = z.enum(['low', 'normal', 'high', 'urgent']);
export type NotificationPriority = z.infer<typeof NotificationPriority>;

export const NotificationInputSchema = z
  .object({
    id: z
      .string()
      .regex(ID, 'id must be 1-128 characters: letters, digits and . _ : - (not starting with a punctuation mark)')
      .describe('client-supplied id, unique per user: a repeated id is stored and delivered once'),
    type: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'type must be 1-64 lower-case letters, digits and . _ - (e.g. "order.filled")'),
    title: wellFormedText(z.string().min(1).max(200)),
    body: wellFormedText(z.string().max(4000)).default(''),
    priority: NotificationPriority.default('normal'),
    data: z
      .unknown()
      .superRefine((raw, ctx) => {
        // on the value as sent: the record below would drop a top-level "__proto__" silently
        const at = nestsDeeperThan(raw, MAX_DATA_DEPTH) ? undefined : protoKeyPath(raw);
        if (at !== undefined)
          ctx.addIssue({
            code: 'custom',
            message: `data must not hold a "__proto__" key (found in ${at}): MessagePack decoders refuse it; rename the key`,
            abort: true,
          });
      })
      .pipe(
        z.record(z.string(), z.unknown()).superRefine((d, ctx) => {
          const problem = dataProblem(d);
          if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .optional(),
  })
  .strict();
export type NotificationInput = z.input<typeof NotificationInputSchema>;

/** A notification as stored and delivered (`d` of a `notifications` item with kind "notification"): the wire type. */
export type NotificationItem = NotificationPayload;

/** A read marker (`d` of an item with kind "read"): everything up to `upTo` and/or these ids are read. */
export type ReadItem = NotificationReadPayload;

export type NotificationEvent = NotificationItem | ReadItem;

const seq = z.number().int().min(1, 'upTo must be a sequence number >= 1');
/**
 * Longest id a read request names: a posted id has at most 128 characters, but the engine's own are
 * longer: an alert firing's `#alert:<16 hex>-<time>:<rule id up to 96>:<n>` reaches about 150.
 * Every stored notification must be markable read by its id.
 */
const MAX_READ_ID = 256;
const readId = z.string().min(1).max(MAX_READ_ID);

/** `POST .../notifications/read` and the in-band `notifications.read` op. */
export const MarkReadSchema = z
  .object({
    upTo: seq.optional().describe('mark every notification with seq <= upTo read'),
    upToId: readId.optional().describe('mark every notification up to and including this one read'),
    ids: z.array(readId).min(1).max(1000).optional().describe('mark these notifications read'),
  })
  .strict()
  .refine((r) => r.upTo !== undefined || r.upToId !== undefined || r.ids !== undefined, { message: 'give upTo (a seq), upToId or ids' });
export type MarkRead = z.infer<typeof MarkReadSchema>;

export function toNotificationItem(input: z.output<typeof NotificationInputSchema>, t: number): NotificationItem {
  const d: NotificationItem = { kind: 'notification', id: input.id, type: input.type, title: input.title, body: input.body, priority: input.priority, t };
  if (input.data !== undefined) d.data = input.data;
  return d;
}
