const POW10 = [1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10] as const;

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
  const ax = Math.abs(x);
  const digits = Math.min(10, 15 - (Math.floor(Math.log10(ax)) + 1));
  if (digits < 0) return Number(x.toPrecision(15)); // 1e15 and above
  const p = POW10[digits]!;
  const r = Math.round(ax * p) / p;
  return r === 0 ? 0 : x < 0 ? -r : r; // no -0
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
