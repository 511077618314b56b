/**
 * Sums of quantities (trade sizes, day volumes, positions) are sums of decimals: round each
 * result to 15 significant digits and at most 10 decimals, so that float noise never reaches
 * the wire or a book: 3 x 100000.1 is 300000.3 (not 300000.30000000005), and a position bought
 * in three parts and sold in one closes to exactly 0. (Scaling by 1e10 and rounding is not
 * enough: past about 1e5 the scaled value has no room for the 10 decimals, and 300000.3000000001
 * came out.)
 */
export function roundQty(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return x;
  const digits = Math.min(10, 15 - (Math.floor(Math.log10(Math.abs(x))) + 1));
  const r = digits >= 0 ? Number(x.toFixed(digits)) : Number(x.toPrecision(15));
  return r === 0 ? 0 : r; // no -0
}
