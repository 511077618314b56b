import { roundQty, sumAmounts } from '../core/numbers.js';
import { tradingCalendar } from '../core/trading-day.js';
import type { TradingCalendar } from '../core/trading-day.js';
import type { ExecutionPayload } from '../executions/schemas.js';

/**
 * One holding. `cost` is the signed cost basis in the instrument's currency (qty x average price,
 * fees of opening trades included; negative for shorts). Day fields give day P&L:
 * day_pnl = qty x p - dayQty0 x dayStart - dayFlow (dayStart: the previous close, else the day's open).
 */
export interface Position {
  qty: number;
  cost: number;
  /** quantity held when the instrument's trading day `day` started */
  dayQty0: number;
  /** cash put in during `day`: signed qty x price of that day's executions, plus their fees */
  dayFlow: number;
  /** realized P&L of reducing trades, fees included */
  realized: number;
  /**
   * the instrument's trading day the day fields refer to (see tradingDay). Books saved by
   * earlier versions have none: their fields refer to the book's `day` (a UTC day).
   */
  day?: number;
}

/** A user's positions, base currency and the last execution sequence applied to them. */
export interface PositionBook {
  user: string;
  ccy: string;
  /** last execution `seq` applied (executions at or below it are ignored: idempotent) */
  seq: number;
  /** UTC day the book was created on; the day of positions without their own `day` (older books) */
  day: number;
  positions: Record<string, Position>;
  /**
   * realized P&L of positions closed on an earlier day (and removed), per instrument currency:
   * `realized` is kept until the next PUT
   */
  closedRealized?: Record<string, number>;
  /**
   * Executions `from` to `to` (per-user seqs) belong before this book's but were never applied: the
   * log no longer held them when the book was rebuilt or caught up (retention, a log that lost
   * data). The book is then not the user's positions; a PUT replaces it (and clears this).
   */
  incomplete?: MissingRange;
  /**
   * The PUT this book is built on (its record's id and time, src/portfolio/put-records.ts): a
   * stored book without the user's last PUT record's id predates that PUT (a store restored from an
   * older snapshot) and is rebuilt from the record. Unset: no PUT since this field exists.
   */
  put?: { id: string; t: number };
  updatedAt: number;
}

/** Executions a book lacks, first and last per-user seq. */
export interface MissingRange {
  from: number;
  to: number;
}

const DAY_MS = 86_400_000;
const EPS = 1e-12;

export function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

/**
 * The trading day of an instrument at `ms`: on its trading calendar (`calendarOf` the instrument,
 * src/core/trading-day.ts), like its ticker and `bar.1d`; UTC days by default.
 */
export function tradingDay(ms: number, day: TradingCalendar = tradingCalendar(0, 'UTC')): number {
  return day.dayOf(ms);
}

export function emptyBook(user: string, ccy: string, now = Date.now()): PositionBook {
  return { user, ccy, seq: 0, day: utcDay(now), positions: {}, updatedAt: now };
}

/** Bring a position's day fields to trading day `day` (never back): the opening quantity is the current one. */
export function rollPosition(p: Position, day: number, bookDay: number): void {
  const cur = p.day ?? bookDay;
  if (cur < day) {
    p.dayQty0 = p.qty;
    p.dayFlow = 0;
    p.day = day;
  } else p.day = cur;
}

/**
 * A new trading day for position `sym`: roll its day fields; a position closed before that day
 * goes, its realized P&L moving to the book's `closedRealized` (in the instrument currency `ccy`).
 */
export function rollDay(book: PositionBook, sym: string, day: number, ccy: string): void {
  const p = book.positions[sym];
  if (!p || (p.day ?? book.day) >= day) return;
  if (Math.abs(p.qty) < EPS) {
    if (p.realized !== 0) {
      const closed = (book.closedRealized ??= {});
      closed[ccy] = (closed[ccy] ?? 0) + p.realized;
    }
    delete book.positions[sym];
    return;
  }
  rollPosition(p, day, book.day);
}

/**
 * Apply one execution (average-cost method: adding buys at a new average price, reducing leaves
 * the average price as it is and realizes (exit price - average price) x closed quantity; see
 * e.g. moomoo's "average cost" help, https://moomoo.com/my/support/topic9_100). Buying adds to a
 * long or covers a short; selling the reverse; a trade through zero closes the position and opens
 * the other side at the trade price, its fee split pro rata between the two parts. Fees of
 * opening trades are in the cost, fees of reducing trades in the realized P&L.
 * The execution belongs to the trading day of its own time `t` (on the instrument's calendar `day`),
 * not to the day it is applied on: a late or replayed execution of an earlier day changes the
 * day's opening quantity, not today's cash flow, so a book rebuilt from the log equals the live one.
 * `ccy` is the instrument's currency (for the realized P&L of a position removed at a day change).
 */
export function applyExecution(
  book: PositionBook,
  e: ExecutionPayload,
  now = Date.now(),
  day: TradingCalendar = tradingCalendar(0, 'UTC'),
  ccy = book.ccy,
): void {
  const today = tradingDay(now, day);
  rollDay(book, e.sym, today, ccy);
  const p = (book.positions[e.sym] ??= { qty: 0, cost: 0, dayQty0: 0, dayFlow: 0, realized: 0, day: today });
  rollPosition(p, today, book.day);
  const s = e.side === 'buy' ? e.qty : -e.qty;
  const fee = e.fee ?? 0;
  // stamped later than now (a clock ahead): counted as today, never moving the day forward
  // amounts are decimal sums (sumAmounts): no float noise kept in the book, added up execution after
  // execution (a position bought at 0.1 and 0.2 and sold at 0.15 realized -2.8e-17, not 0)
  if (tradingDay(e.t, day) >= p.day!) p.dayFlow = sumAmounts(p.dayFlow, s * e.p, fee);
  else p.dayQty0 = roundQty(p.dayQty0 + s);
  if (Math.abs(p.qty) < EPS || Math.sign(p.qty) === Math.sign(s)) {
    p.qty = roundQty(p.qty + s);
    p.cost = sumAmounts(p.cost, s * e.p, fee);
  } else {
    const closing = Math.min(Math.abs(s), Math.abs(p.qty));
    const dir = Math.sign(p.qty);
    // the cost of the closed quantity at the average price (cost / qty, which stays), signed like
    // the cost: all of it when the position closes
    const closed = closing === Math.abs(p.qty) ? p.cost : (p.cost * closing) / Math.abs(p.qty);
    const rest = roundQty(Math.abs(s) - closing);
    // a trade through zero: the fee is split pro rata between the closed and the opened quantity
    const openFee = rest > EPS ? (fee * rest) / Math.abs(s) : 0;
    // (exit price - average price) x closed quantity, less the closing part of the fee
    p.realized = sumAmounts(p.realized, sumAmounts(e.p * closing * dir, -closed, -(fee - openFee)));
    p.cost = sumAmounts(p.cost, -closed);
    p.qty = roundQty(p.qty - closing * dir);
    if (rest > EPS) {
      p.qty = Math.sign(s) * rest;
      p.cost = sumAmounts(p.qty * e.p, openFee);
    }
  }
  if (Math.abs(p.qty) < EPS) {
    p.qty = 0;
    p.cost = 0;
  }
  book.updatedAt = now;
}
