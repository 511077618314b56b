import type { AssetClass } from '../core/schema.js';
import { ASSET_CLASSES } from '../core/schema.js';
import { AmountTotal, clean, cleanAmount } from '../core/numbers.js';

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
  /** extension, restricted views only: valued at the price of this many ms ago */
  delayed?: number;
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
  /** the positions valued at the delayed prices: `[p, value, pnl, day_pnl]` or 0 per position (src/portfolio/valuation.ts) */
  dv?: { ms: number; lines: ([number, number, number, number] | 0)[]; fx?: Record<string, number> };
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
 * The `portfolio` payload as a connection that does NOT see every symbol in real time may see it.
 * Each position is shown at the best price the connection may see:
 * - real time for the symbol and for every forex pair its rate may come from: the line as is;
 * - otherwise, when it may see the symbol and those pairs at least delayed: the line of the
 *   service's delayed valuation (`dv`: same quantity and cost, the price and rate of
 *   `auth.delayMs` ago), marked `delayed: <ms>`, summed at the delayed rate;
 * - otherwise (not entitled, or no delayed price yet): unpriced (`priced: false`, `p` = average
 *   cost, value = cost, pnl and day_pnl 0) and left out of the totals.
 * value, cost, pnl and day_pnl are the sums of the lines it sees priced, so no total carries a
 * price (or rate: total / line would give it away) it may not see live. `fx`, `dv` are not sent.
 * Positions closed today (no longer listed) are left out of day_pnl here. `realized` (the user's
 * own fills) is kept. `classOf` gives a symbol's asset class (unknown: not entitled).
 * `minDelayMs` is this gateway's `auth.delayMs`: a `dv` valued at prices younger than that (the
 * portfolio service runs with a shorter delay) is not shown, its lines stay unpriced, and
 * `onShortDelay` is told the service's delay, so a misconfiguration never shows a delayed
 * connection a fresher price than its entitlement allows.
 */
export function entitledPortfolio<T extends PortfolioLike>(
  payload: T,
  access: SymbolAccess,
  classOf: (sym: string) => AssetClass | undefined,
  minDelayMs = 0,
  onShortDelay?: (serviceDelayMs: number) => void,
): T {
  const { fx, dv: sent, ...rest } = payload;
  let dv = sent;
  if (dv && !(typeof dv.ms === 'number' && dv.ms >= minDelayMs)) {
    onShortDelay?.(dv.ms);
    dv = undefined;
  }
  // what the connection sees of the pairs a currency's rate may come from: the worst of them
  const rateAccess = new Map<string, 'realtime' | 'delayed' | 'none'>();
  const seeRate = (ccy: string): 'realtime' | 'delayed' | 'none' => {
    let a = rateAccess.get(ccy);
    if (a === undefined) {
      a = 'realtime';
      for (const pair of fxPairs(ccy, payload.ccy)) {
        if (classOf(pair) !== 'forex') continue;
        const p = access(pair, 'forex');
        if (p === 'none') a = 'none';
        else if (p === 'delayed' && a === 'realtime') a = 'delayed';
      }
      rateAccess.set(ccy, a);
    }
    return a;
  };
  // aligned with positions (one book at one time); anything else is not trusted
  const delayedLines = dv && Array.isArray(dv.lines) && dv.lines.length === payload.positions.length ? dv.lines : undefined;
  // each total is rounded on its largest term (AmountTotal): lines that cancel out give 0
  const value = new AmountTotal();
  const cost = new AmountTotal();
  const dayPnl = new AmountTotal();
  const add = (v: number, c: number, dp: number): void => {
    value.add(v);
    cost.add(c);
    dayPnl.add(dp);
  };
  const positions = payload.positions.map((pos, i): PositionLine => {
    const cls = classOf(pos.sym);
    const sees = cls === undefined ? 'none' : access(pos.sym, cls);
    const rateSeen = pos.ccy === payload.ccy ? 'realtime' : seeRate(pos.ccy);
    if (sees === 'realtime' && rateSeen === 'realtime' && pos.priced !== false) {
      const rate = pos.ccy === payload.ccy ? 1 : fx?.[pos.ccy];
      if (rate !== undefined) {
        add(pos.value * rate, pos.cost * rate, pos.day_pnl * rate);
        return pos;
      }
    }
    const d = delayedLines?.[i];
    if (dv && Array.isArray(d) && sees !== 'none' && rateSeen !== 'none') {
      const rate = pos.ccy === payload.ccy ? 1 : dv.fx?.[pos.ccy];
      if (rate !== undefined) {
        const [p, v, pnl, dp] = d;
        add(v * rate, pos.cost * rate, dp * rate);
        return { sym: pos.sym, qty: pos.qty, p, value: v, pnl, ccy: pos.ccy, cost: pos.cost, day_pnl: dp, delayed: dv.ms };
      }
    }
    if (pos.priced === false) return pos;
    return { sym: pos.sym, qty: pos.qty, p: clean(pos.cost / pos.qty), value: pos.cost, pnl: 0, ccy: pos.ccy, cost: pos.cost, day_pnl: 0, priced: false };
  });
  return {
    ...rest,
    value: value.wire,
    cost: cost.wire,
    pnl: cleanAmount(value.sum - cost.sum, Math.max(value.scale, cost.scale)),
    day_pnl: dayPnl.wire,
    positions,
  } as unknown as T;
}
