import type { ExecutionPayload } from '../executions/schemas.js';

/**
 * One holding. `cost` is the signed cost basis in the instrument's currency (qty x average price,
 * fees of opening trades included; negative for shorts). Day fields give day P&L:
 * day_pnl = qty x p - dayQty0 x dayOpen - dayFlow.
 */
export interface Position {
  qty: number;
  cost: number;
  /** quantity held when the (UTC) day started */
  dayQty0: number;
  /** cash put in today: signed qty x price of today's executions, plus their fees */
  dayFlow: number;
  /** realized P&L of reducing trades, fees included */
  realized: number;
}

/** A user's positions, base currency and the last execution sequence applied to them. */
export interface PositionBook {
  user: string;
  ccy: string;
  /** last execution `seq` applied (executions at or below it are ignored: idempotent) */
  seq: number;
  /** UTC day number the day fields refer to */
  day: number;
  positions: Record<string, Position>;
  updatedAt: number;
}

const DAY_MS = 86_400_000;
const EPS = 1e-12;

export function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

export function emptyBook(user: string, ccy: string, now = Date.now()): PositionBook {
  return { user, ccy, seq: 0, day: utcDay(now), positions: {}, updatedAt: now };
}

/** Start a new day: today's opening quantity is the current one; closed positions go. */
export function rollDay(book: PositionBook, day: number): void {
  if (book.day === day) return;
  for (const [sym, p] of Object.entries(book.positions)) {
    if (Math.abs(p.qty) < EPS) {
      delete book.positions[sym];
      continue;
    }
    p.dayQty0 = p.qty;
    p.dayFlow = 0;
  }
  book.day = day;
}

/**
 * Apply one execution (average-cost method). Buying adds to a long or covers a short; selling the
 * reverse; a trade through zero closes the position and opens the other side at the trade price.
 */
export function applyExecution(book: PositionBook, e: ExecutionPayload, now = Date.now()): void {
  rollDay(book, utcDay(now));
  const p = (book.positions[e.sym] ??= { qty: 0, cost: 0, dayQty0: 0, dayFlow: 0, realized: 0 });
  const s = e.side === 'buy' ? e.qty : -e.qty;
  const fee = e.fee ?? 0;
  p.dayFlow += s * e.p + fee;
  if (Math.abs(p.qty) < EPS || Math.sign(p.qty) === Math.sign(s)) {
    p.qty += s;
    p.cost += s * e.p + fee;
  } else {
    const closing = Math.min(Math.abs(s), Math.abs(p.qty));
    const avg = p.cost / p.qty;
    const dir = Math.sign(p.qty);
    p.realized += (e.p - avg) * closing * dir - fee;
    p.cost -= avg * closing * dir;
    p.qty -= closing * dir;
    const rest = Math.abs(s) - closing;
    if (rest > EPS) {
      p.qty = Math.sign(s) * rest;
      p.cost = p.qty * e.p;
    }
  }
  if (Math.abs(p.qty) < EPS) {
    p.qty = 0;
    p.cost = 0;
  }
  book.updatedAt = now;
}
