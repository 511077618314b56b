import { z } from 'zod';
import { identityProblem, wellFormedProblem, wellFormedText } from '../core/identity.js';
import { isCanonicalSymbol } from '../core/symbols.js';

/** Shapes accepted by the service API and the exec.in NATS subjects (one definition for both). */

/** Same rules as a token `sub` (src/core/identity.ts): 1-256 printable characters, well-formed Unicode. */
export const UserIdSchema = z.string().superRefine((s, ctx) => {
  const problem = identityProblem(s);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: `user ${problem}` });
});

const symbol = z.string().refine(isCanonicalSymbol, 'a canonical symbol such as AAPL, BRK.B or BTC-USD (upper case)');
const finite = z.number().finite();
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
    qty: finite.positive(),
    p: finite.nonnegative(),
    fee: finite.nonnegative().optional(),
    t: finite.positive().describe('execution time, ms since the epoch'),
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
            qty: finite,
            cost: finite.describe('total cost basis in the instrument currency (qty x average price)'),
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
