/**
 * Sums of quantities (trade sizes, day volumes, positions) are sums of decimals: round each
 * result to 15 significant digits and at most 10 decimals, so that float noise never reaches
 * the wire or a book: 3 x 100000.1 is 300000.3 (not 300000.30000000005), and a position bought
 * in three parts and sold in one closes to exactly 0. (Scaling by 1e10 whatever the size is not
 * enough: past about 1e5 the scaled value has no room for the 10 decimals, and 300000.3000000001
 * came out.) The scale follows the size, so the scaled value stays below 1e15, where doubles
 * hold every integer; halves round away from zero. It runs on every trade (the ticker and five
 * bars): scaling costs a few times less than `toFixed` and parsing the string back.
 */
export function roundQty(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const digits = 15 - (Math.floor(Math.log10(Math.abs(x))) + 1);
  if (digits < 0) return Number(x.toPrecision(15)); // 1e15 and above
  return roundAt(x, Math.min(10, digits));
}

/**
 * A money amount for the wire: 12 significant digits, so no float noise (0.1 + 0.2) at any
 * magnitude; 0 for anything not finite. The portfolio's valuations and the gateway's restricted
 * portfolio views both use it.
 */
export function clean(x: number): number {
  if (!Number.isFinite(x) || x === 0) return 0;
  return Number(x.toPrecision(12));
}

/**
 * A sum of signed money amounts (a cost basis and a trade's value and fee; proceeds less the cost
 * they close and the fee), rounded at the 14th significant digit of its largest term: the doubles
 * of decimal amounts leave noise of that term's size (0.1 + 0.2 - 0.3 is 5.6e-17), which a
 * book's cost or realized P&L would keep and add up execution after execution, and which `clean`
 * keeps in a result that is 0 or small (it rounds at the result's own digits). Amounts carry at
 * most 15 significant digits (prices and quantities do: roundQty), so this is their decimal sum.
 */
export function sumAmounts(...terms: number[]): number {
  let sum = 0;
  let scale = 0;
  for (const t of terms) {
    sum += t;
    const a = Math.abs(t);
    if (a > scale) scale = a;
  }
  return roundOnScale(sum, scale, 14);
}

/**
 * `x` for the wire (as `clean`) when it is computed from larger amounts, `scale` the largest of
 * them (a P&L from a value and a cost, a total from its lines): 12 significant digits of `scale`,
 * so the float noise of those amounts never shows (a P&L of 0 is 0, not -2.77555756156e-17).
 */
export function cleanAmount(x: number, scale: number): number {
  if (!Number.isFinite(x)) return 0;
  return clean(roundOnScale(x, Math.max(Math.abs(x), Math.abs(scale)), 12));
}

/**
 * A running total of money amounts (a portfolio's value, cost, day P&L, realized P&L over its
 * lines) with its largest term, the scale it goes to the wire on (`cleanAmount`): lines that
 * cancel out give 0, not the float noise of their sum.
 */
export class AmountTotal {
  sum = 0;
  /** the largest term, or the largest scale a term was given */
  scale = 0;

  /** Add `x`; `scale`: the amounts `x` was computed from, when larger than |x| (a line's day P&L). */
  add(x: number, scale = Math.abs(x)): void {
    this.sum += x;
    this.scale = Math.max(this.scale, scale);
  }

  /** the total for the wire */
  get wire(): number {
    return cleanAmount(this.sum, this.scale);
  }
}

/** `x` rounded at the `digits`th significant digit of `scale` (at least |x|); never -0 */
function roundOnScale(x: number, scale: number, digits: number): number {
  if (x === 0 || !Number.isFinite(x) || !Number.isFinite(scale) || scale === 0) return x === 0 ? 0 : x;
  const decimals = digits - (Math.floor(Math.log10(Math.max(scale, Math.abs(x)))) + 1);
  if (decimals >= 0) return roundAt(x, decimals);
  // 1e15 and above (amounts reach 1e30, 1e60 converted): whole multiples of a power of ten
  const unit = Number(`1e${-decimals}`);
  const r = Math.round(Math.abs(x) / unit) * unit;
  return r === 0 ? 0 : x < 0 ? -r : r;
}

/**
 * Values derived from quoted prices, as the quotes state them rather than as the doubles their
 * arithmetic gives: the mid of 3.3 and 3.4 is 3.35 (not 3.3499999999999996), the spread of 1.1 and
 * 1.3 is 0.2 (not 0.19999999999999996), a rise from 100 to 100.3 is 0.3 % (not
 * 0.29999999999999716). Prices carry at most 15 significant digits, so these round there: the
 * ticker, the bars, alert rules and the portfolio all see the same number, and a rule whose level
 * is exactly the quoted value fires.
 */
export function midOf(bid: number, ask: number): number {
  return round15((bid + ask) / 2);
}

/**
 * `a - b` for two prices, rounded at the 15th significant digit of the larger: the difference of
 * two close prices has fewer significant digits than they do (12345.67 - 12345.66 is
 * 0.010000000000218279 as doubles; it is 0.01), so rounding it to 15 significant digits of its
 * own would keep the noise.
 */
export function priceDiff(a: number, b: number): number {
  return roundAt(a - b, 15 - (Math.floor(Math.log10(Math.max(Math.abs(a), Math.abs(b)))) + 1));
}

const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/**
 * `x` rounded to `decimals` decimals, halves away from zero (so `-x` rounds to minus what `x`
 * does). Scaling by a power of ten (exact up to 1e22) and dividing back gives the double nearest
 * to the decimal, a few times faster than `toFixed` and parsing (it runs on every trade: sizes,
 * the ticker's change); past 22 decimals (prices below 1e-7) it is `toFixed`. A negative
 * `decimals` (1e15 and above) or a value that is 0 or not finite is returned as it is; never -0.
 */
function roundAt(x: number, decimals: number): number {
  if (x === 0 || !Number.isFinite(x) || decimals < 0) return x === 0 ? 0 : x;
  const ax = Math.abs(x);
  const p = POW10[decimals];
  const r = p === undefined ? Number(ax.toFixed(Math.min(100, decimals))) : Math.round(ax * p) / p;
  return r === 0 ? 0 : x < 0 ? -r : r;
}

/** A quoted difference (`priceDiff`) in percent of `base`, to 15 significant digits. */
export function percentOf(diff: number, base: number): number {
  return round15((diff * 100) / base);
}

/** `x` to 15 significant digits (as `Number(x.toPrecision(15))`, faster); never -0 */
function round15(x: number): number {
  return roundAt(x, 15 - (Math.floor(Math.log10(Math.abs(x))) + 1));
}

/**
 * Bounds of the numbers a user's book is made of, so that no valuation overflows to a
 * non-finite amount (which the wire would carry as 0: a portfolio silently worth nothing).
 * - MAX_QTY: the largest |quantity| of a position line or an execution. roundQty keeps a
 *   quantity exact to 15 significant digits, all of them integer digits from 1e15 on, and
 *   doubles hold every integer only up to 2^53 (about 9e15). The largest real holdings are far
 *   below: a meme coin's whole supply is under 1e15 units.
 * - MAX_PRICE: the highest execution price and the highest price a position is valued at (a
 *   feed's price above it is an error, not taken). BRK.A trades near 7e5 USD, a bitcoin near 1e10
 *   in the weakest currencies. Forex rates are taken only within [1 / MAX_PRICE, MAX_PRICE].
 * - MAX_AMOUNT: the largest |amount| (a cost basis, a fee): MAX_QTY x MAX_PRICE.
 * A line is then at most 1e30 in its currency, 1e60 in the base currency (two rate legs of at
 * most 1e15), and a book's totals stay finite for any number of lines a book can hold (doubles
 * reach 1.8e308); executions add up to more than MAX_QTY only after as many of them as there are
 * nanoseconds in an age of the universe.
 */
export const MAX_QTY = 1e15;
export const MAX_PRICE = 1e15;
export const MAX_AMOUNT = 1e30;
