import type { InstrumentRegistry } from '../core/instruments.js';
import { AmountTotal, clean, cleanAmount } from '../core/numbers.js';
import { calendarOf } from '../core/trading-day.js';
import type { FxRates } from './fx.js';
import type { MissingRange, PositionBook } from './positions.js';
import { rollDay, tradingDay } from './positions.js';

/** A position line of the `portfolio` payload: amounts in the instrument's currency (`ccy`). */
export interface PositionValue {
  sym: string;
  qty: number;
  /** last price (average cost while no price has been seen: `priced` is then false) */
  p: number;
  value: number;
  pnl: number;
  ccy: string;
  /** extensions: cost basis and day P&L in `ccy`; `priced: false` when left out of the totals */
  cost: number;
  day_pnl: number;
  priced?: false;
}

/** The `portfolio` payload (protocol v1), totals in the user's base currency `ccy`. */
export interface PortfolioPayload {
  ccy: string;
  value: number;
  cost: number;
  pnl: number;
  day_pnl: number;
  positions: PositionValue[];
  t: number;
  /** extension: realized P&L (closed quantity, fees) in the base currency */
  realized: number;
  /**
   * extension: the rate of each listed priced position's currency to `ccy`, present only when a
   * position is in another currency (a gateway sums the lines a connection may see with it)
   */
  fx?: Record<string, number>;
  /**
   * extension: the book lacks the executions `from` to `to` (the log no longer held them when it
   * was rebuilt): the positions are not the user's until a PUT sets them
   * (docs/private-streams.md#a-book-the-position-store-lost)
   */
  incomplete?: MissingRange;
  /**
   * on the bus only for delayed views (a real-time view drops it: no client receives it): the
   * positions valued at the prices of `ms` ago (`auth.delayMs`), and the rates of that time; a
   * gateway shows these lines to a connection that gets the symbol delayed
   * (src/fanout/portfolio-view.ts)
   */
  dv?: DelayedValuation;
}

/**
 * The `dv` of a `pf.val` message: the same book valued at delayed prices, compact (a gateway
 * decodes it for every view, real-time ones too, which drop it): `lines[i]` is
 * `[p, value, pnl, day_pnl]` of `positions[i]` (the same book at the same time lists the same
 * positions in the same order), or 0 while that position has no delayed price or rate; `fx` the
 * delayed rates.
 */
export interface DelayedValuation {
  ms: number;
  lines: (DelayedLine | 0)[];
  fx?: Record<string, number>;
}
export type DelayedLine = [p: number, value: number, pnl: number, dayPnl: number];

export interface PriceSource {
  /**
   * last price of a symbol, the open of its current trading day and the previous trading day's
   * close (the ticker's `pc`), when known
   */
  price(sym: string): { p: number; open: number | undefined; prevClose?: number } | undefined;
}

/**
 * Value a book at live prices: per position value = qty x p, pnl = value - cost,
 * day_pnl = qty x p - dayQty0 x dayStart - dayFlow, dayStart the previous close (else the day's
 * open while no previous close is known) (in the instrument's currency, over the
 * instrument's trading day, `calendarOf` it like its ticker); totals are
 * converted to the base currency at the live rate. A position without a price or rate is listed
 * with `priced: false` and left out of the totals.
 */
export function valuate(book: PositionBook, prices: PriceSource, fx: FxRates, registry: InstrumentRegistry, now = Date.now()): PortfolioPayload {
  const base = book.ccy;
  // each total is rounded on its largest term (AmountTotal): lines that cancel out give 0
  const value = new AmountTotal();
  const cost = new AmountTotal();
  const dayPnl = new AmountTotal();
  const realized = new AmountTotal();
  const positions: PositionValue[] = [];
  let rates: Record<string, number> | undefined;
  for (const sym of Object.keys(book.positions).sort()) {
    const inst = registry.get(sym);
    const ccy = inst?.currency ?? base;
    rollDay(book, sym, tradingDay(now, calendarOf(inst)), ccy);
    const pos = book.positions[sym];
    if (!pos) continue; // closed before this trading day: only its realized P&L stays
    const px = prices.price(sym);
    const rate = fx.rate(ccy, base);
    if (rate !== undefined) realized.add(pos.realized * rate);
    const unpriced = (): void => {
      if (pos.qty !== 0) {
        positions.push({
          sym,
          qty: clean(pos.qty),
          p: clean(pos.cost / pos.qty),
          value: clean(pos.cost),
          pnl: 0,
          ccy,
          cost: clean(pos.cost),
          day_pnl: 0,
          priced: false,
        });
      }
    };
    if (!px || rate === undefined) {
      unpriced();
      continue;
    }
    // the day starts from the previous close, as brokers count it (an overnight gap is the day's);
    // from the day's open while no previous close is known (the first day the engine sees)
    const start = px.prevClose ?? px.open ?? px.p;
    const v = pos.qty * px.p;
    const pnl = v - pos.cost;
    const dp = v - pos.dayQty0 * start - pos.dayFlow;
    // the scales the line's P&L and day P&L are rounded on (cleanAmount)
    const pnlScale = Math.max(Math.abs(v), Math.abs(pos.cost));
    const dpScale = Math.max(Math.abs(v), Math.abs(pos.dayQty0 * start), Math.abs(pos.dayFlow));
    // never with the inputs the service API and the price book accept (src/core/numbers.ts); a
    // book stored before those bounds could still overflow: unpriced, never a value of 0
    if (!Number.isFinite(v * rate) || !Number.isFinite(dp * rate) || !Number.isFinite(pos.cost * rate) || !Number.isFinite(pnl)) {
      unpriced();
      continue;
    }
    value.add(v * rate);
    cost.add(pos.cost * rate);
    dayPnl.add(dp * rate, dpScale * rate);
    if (pos.qty === 0) continue; // closed today: only its day P&L and realized count
    if (ccy !== base) (rates ??= {})[ccy] = rate;
    positions.push({
      sym,
      qty: clean(pos.qty),
      p: px.p,
      value: clean(v),
      pnl: cleanAmount(pnl, pnlScale),
      ccy,
      cost: clean(pos.cost),
      day_pnl: cleanAmount(dp, dpScale),
    });
  }
  for (const [ccy, r] of Object.entries(book.closedRealized ?? {})) {
    const rate = fx.rate(ccy, base);
    if (rate !== undefined) realized.add(r * rate);
  }
  return {
    ccy: base,
    value: value.wire,
    cost: cost.wire,
    pnl: cleanAmount(value.sum - cost.sum, Math.max(value.scale, cost.scale)),
    day_pnl: dayPnl.wire,
    positions,
    t: now,
    realized: realized.wire,
    ...(rates ? { fx: rates } : {}),
    ...(book.incomplete ? { incomplete: { from: book.incomplete.from, to: book.incomplete.to } } : {}),
  };
}
