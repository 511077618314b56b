import type { AssetClass } from '../core/schema.js';
import { ASSET_CLASSES } from '../core/schema.js';
import { clean } from '../core/numbers.js';

/** What a connection may see of a symbol's price (its entitlements: src/access/entitlements.ts). */
export type SymbolAccess = (symbol: string, assetClass: AssetClass) => 'realtime' | 'delayed' | 'none';

/** The fields of a `portfolio` position line this view reads and writes (src/portfolio/valuation.ts). */
interface PositionLine {
  sym: string;
  qty: number;
  p: number;
  value: number;
  pnl: number;
  ccy: string;
  cost: number;
  day_pnl: number;
  priced?: false;
}

interface PortfolioLike {
  ccy: string;
  value: number;
  cost: number;
  pnl: number;
  day_pnl: number;
  positions: PositionLine[];
  /** extension: rate of each position currency to `ccy` (set by the service when a position is in another currency) */
  fx?: Record<string, number>;
  [k: string]: unknown;
}

/** the pivot currency of cross rates (src/portfolio/fx.ts) */
const FX_PIVOT = 'USD';

/**
 * The forex pairs the portfolio service may read to convert `from` to `to` (FxRates.pairsFor,
 * src/portfolio/fx.ts: the direct pair, its inverse, or both legs through USD). Those the registry
 * does not list as forex are skipped by the caller.
 */
function fxPairs(from: string, to: string): string[] {
  const legs = (a: string, b: string): string[] => [`${a}-${b}`, `${b}-${a}`];
  return from === FX_PIVOT || to === FX_PIVOT ? legs(from, to) : [...legs(from, to), ...legs(from, FX_PIVOT), ...legs(FX_PIVOT, to)];
}

/** True when the connection sees every symbol of every asset class in real time (its payload is passed as is). */
export function seesAllRealtime(access: SymbolAccess): boolean {
  // a class rule matches any symbol of the class; the empty symbol matches no symbol pattern but `*`
  return ASSET_CLASSES.every((c) => access('', c) === 'realtime');
}

/**
 * The `portfolio` payload as a connection that does NOT see every symbol in real time may see it:
 * a position whose symbol is not real time for it (delayed or not entitled) is listed unpriced
 * (`priced: false`, `p` = average cost, value = cost, pnl and day_pnl 0, as a symbol without a
 * price) and left out of the totals; value, cost, pnl and day_pnl are the sums of the priced lines
 * it sees (converted with the service's `fx` rates), so no total carries a price it may not see.
 * A line in another currency than `ccy` is summed only when the connection sees every forex pair
 * the rate may come from in real time (else it is listed unpriced too: the total would give the
 * rate away).
 * Positions closed today (no longer listed) are left out of day_pnl here. `realized` (the user's
 * own fills) is kept. `classOf` gives a symbol's asset class (unknown: not entitled).
 */
export function entitledPortfolio<T extends PortfolioLike>(payload: T, access: SymbolAccess, classOf: (sym: string) => AssetClass | undefined): T {
  const { fx, ...rest } = payload;
  // a rate is a price too: a total holding a line converted at a rate the connection may not see
  // live gives the rate away (total / line), so such a line is left out like a delayed symbol
  const rateAccess = new Map<string, boolean>();
  const liveRate = (ccy: string): boolean => {
    let ok = rateAccess.get(ccy);
    if (ok === undefined)
      rateAccess.set(ccy, (ok = fxPairs(ccy, payload.ccy).every((pair) => classOf(pair) !== 'forex' || access(pair, 'forex') === 'realtime')));
    return ok;
  };
  let value = 0;
  let cost = 0;
  let dayPnl = 0;
  const positions = payload.positions.map((pos): PositionLine => {
    const cls = classOf(pos.sym);
    const live = cls !== undefined && access(pos.sym, cls) === 'realtime';
    if (live && pos.priced !== false) {
      const rate = pos.ccy === payload.ccy ? 1 : liveRate(pos.ccy) ? fx?.[pos.ccy] : undefined;
      if (rate !== undefined) {
        value += pos.value * rate;
        cost += pos.cost * rate;
        dayPnl += pos.day_pnl * rate;
        return pos;
      }
    }
    if (pos.priced === false) return pos;
    return { sym: pos.sym, qty: pos.qty, p: clean(pos.cost / pos.qty), value: pos.cost, pnl: 0, ccy: pos.ccy, cost: pos.cost, day_pnl: 0, priced: false };
  });
  return { ...rest, value: clean(value), cost: clean(cost), pnl: clean(value - cost), day_pnl: clean(dayPnl), positions } as unknown as T;
}
