import { z } from 'zod';
import { identityProblem, wellFormedProblem, wellFormedText } from '../core/identity.js';
import { MAX_AMOUNT, MAX_PRICE, MAX_QTY } from '../core/numbers.js';
import { isCanonicalSymbol } from '../core/symbols.js';

/** Shapes accepted by the service API and the exec.in NATS subjects (one definition for both). */

/** Same rules as a token `sub` (src/core/identity.ts): 1-256 printable characters, well-formed Unicode. */
export const UserIdSchema = z.string().superRefine((s, ctx) => {
  const problem = identityProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `user ${problem}` });
});

const symbol = z.string().refine(isCanonicalSymbol, 'a canonical symbol such as AAPL, BRK.B or BTC-USD (upper case)');
/** the latest time (ms since the epoch) a JavaScript Date holds (ECMA-262 "Time Values and Time Range") */
export const MAX_TIME_MS = 8.64e15;
/**
 * A finite number from `min` to `max`: the bounds of src/core/numbers.ts, which keep every
 * valuation finite (docs/private-streams.md#service-api). The message names them, for any
 * number out of range and for Infinity (JSON `1e309`) and NaN; anything else that is not a
 * number keeps zod's message ("expected number, received string").
 */
const bounded = (min: number, max: number, range: string) => {
  const message = `must be a finite number ${range}`;
  return z
    .number({ error: (iss) => (typeof iss.input === 'number' ? message : undefined) })
    .min(min, message)
    .max(max, message);
};
/**
 * 1-128 characters of well-formed Unicode: an id is the log's deduplication key, and Redis and
 * JetStream's message id (a hash of its UTF-8 bytes) would take two ids that differ in a lone
 * surrogate for one (test/private/execution-ids.test.ts).
 */
const storedId = z
  .string()
  .min(1)
  .max(128)
  .superRefine((s, ctx) => {
    const problem = wellFormedProblem(s);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

export const ExecutionSchema = z
  .object({
    id: storedId.describe('unique execution id: a repeated id is stored and delivered once'),
    order: storedId,
    sym: symbol,
    side: z.enum(['buy', 'sell']),
    qty: bounded(0, MAX_QTY, 'above 0, at most 1e15').positive('must be a finite number above 0, at most 1e15'),
    p: bounded(0, MAX_PRICE, 'from 0 to 1e15'),
    fee: bounded(0, MAX_AMOUNT, 'from 0 to 1e30').optional(),
    // at most the latest time a JavaScript Date holds (year 275760): `new Date(1e300)` is an
    // Invalid Date, whose toISOString() throws in a client that shows the execution
    t: bounded(0, MAX_TIME_MS, 'above 0, at most 8.64e15 (ms since the epoch)')
      .positive('must be a finite number above 0, at most 8.64e15 (ms since the epoch)')
      .describe('execution time, ms since the epoch'),
  })
  .strict();
export type ExecutionInput = z.infer<typeof ExecutionSchema>;

export const ExecutionRequestSchema = ExecutionSchema.extend({ user: UserIdSchema }).strict();

/** The `executions` payload (`d`), fields in protocol order, `fee` only when given. */
export interface ExecutionPayload {
  id: string;
  order: string;
  sym: string;
  side: 'buy' | 'sell';
  qty: number;
  p: number;
  fee?: number;
  t: number;
}

export function toExecutionPayload(e: ExecutionInput): ExecutionPayload {
  const d: ExecutionPayload = { id: e.id, order: e.order, sym: e.sym, side: e.side, qty: e.qty, p: e.p } as ExecutionPayload;
  if (e.fee !== undefined) d.fee = e.fee;
  d.t = e.t;
  return d;
}

export const AnnouncementSchema = z
  .object({
    level: z.enum(['info', 'warning', 'critical']),
    title: wellFormedText(z.string().min(1).max(200)),
    message: wellFormedText(z.string().min(1).max(4000)),
  })
  .strict();
export type Announcement = z.infer<typeof AnnouncementSchema>;

export const PositionsSchema = z
  .object({
    ccy: z.string().regex(/^[A-Z]{3,5}$/, 'a currency code such as USD or EUR'),
    positions: z
      .array(
        z
          .object({
            sym: symbol,
            qty: bounded(-MAX_QTY, MAX_QTY, 'from -1e15 to 1e15'),
            cost: bounded(-MAX_AMOUNT, MAX_AMOUNT, 'from -1e30 to 1e30').describe('total cost basis in the instrument currency (qty x average price)'),
          })
          .strict(),
      )
      .max(10_000),
  })
  .strict();
export type PositionsInput = z.infer<typeof PositionsSchema>;

/** The first issue of a zod error as {field, message}, e.g. {field: "positions.0.qty", ...}. */
export function describeIssue(err: z.ZodError): { field: string; message: string } {
  const iss = err.issues[0];
  if (!iss) return { field: '', message: 'invalid body' };
  if (iss.code === 'unrecognized_keys') {
    const where = iss.path.length ? iss.path.join('.') + '.' : '';
    const field = `${where}${iss.keys[0] ?? ''}`;
    return { field, message: `unknown field "${field}"` };
  }
  const field = iss.path.map(String).join('.');
  return { field, message: field ? `field "${field}": ${iss.message}` : iss.message };
}
