/**
 * Providers send prices and sizes as decimal strings ("67250.12000000") so that no precision is
 * lost in JSON. tickwire carries numbers (protocol v1), so each adapter converts at the edge with
 * these helpers, which reject anything that is not a plain decimal instead of yielding NaN later.
 */
const DECIMAL_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

export function isDecimalString(s: string): boolean {
  return DECIMAL_RE.test(s.trim());
}

/** A decimal string or number as a finite number; throws a RangeError naming `field` otherwise. */
export function decimal(value: unknown, field = 'value'): number {
  if (typeof value === 'number') {
    if (Number.isFinite(value)) return value;
  } else if (typeof value === 'string') {
    const t = value.trim();
    if (DECIMAL_RE.test(t)) {
      const n = Number(t);
      if (Number.isFinite(n)) return n;
    }
  }
  throw new RangeError(`${field}: ${JSON.stringify(value)} is not a decimal number`);
}

/** Like `decimal` but undefined/null/"" give undefined (optional sizes). */
export function optionalDecimal(value: unknown, field = 'value'): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return decimal(value, field);
}

/** A price: a decimal that must be > 0. */
export function price(value: unknown, field = 'price'): number {
  const n = decimal(value, field);
  if (!(n > 0)) throw new RangeError(`${field}: ${JSON.stringify(value)} is not a positive price`);
  return n;
}

/**
 * The price and size fields of a quote from its two sides (`quoteSide`), sizes times `lot` (a
 * provider's round lot): an empty side is left out; undefined when both are (no quote).
 */
export function quoteFields(
  bid: { p: number; s?: number } | undefined,
  ask: { p: number; s?: number } | undefined,
  lot = 1,
): { bp?: number; bs?: number; ap?: number; as?: number } | undefined {
  if (!bid && !ask) return undefined;
  return {
    ...(bid ? { bp: bid.p, ...(bid.s === undefined ? {} : { bs: bid.s * lot }) } : {}),
    ...(ask ? { ap: ask.p, ...(ask.s === undefined ? {} : { as: ask.s * lot }) } : {}),
  };
}

/**
 * One side of a quote: `{ p, s }`, or undefined when the side is empty. A side is empty when its
 * price is absent or 0 (no order on that side: a price must be > 0, so 0 can only mean "none");
 * the size is dropped with it. A negative or unreadable price still throws, and so does a negative
 * size: every provider documents sizes as quantities (docs/feeds.md, "Empty quote sides").
 */
export function quoteSide(priceValue: unknown, sizeValue: unknown, field: string): { p: number; s?: number } | undefined {
  if (priceValue === undefined || priceValue === null || priceValue === '') return undefined;
  if (decimal(priceValue, `${field} price`) === 0) return undefined;
  const s = optionalDecimal(sizeValue, `${field} size`);
  if (s !== undefined && s < 0) throw new RangeError(`${field} size: ${JSON.stringify(sizeValue)} is negative`);
  return { p: price(priceValue, `${field} price`), ...(s === undefined ? {} : { s }) };
}
