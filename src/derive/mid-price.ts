import { midOf } from '../core/numbers.js';
import type { QuoteTick, TradeTick } from '../core/schema.js';

/**
 * The mid price of a two-sided quote, (bid + ask) / 2, or undefined when a side is empty (or not a
 * positive price): a one-sided or empty quote has no mid and sets no price. Rounded to 15
 * significant digits (`midOf`), so float noise of the sum never reaches the wire: 1.07612 and
 * 1.07626 give 1.07619.
 *
 * OANDA builds its candles the same way from its prices: v20 Instrument Endpoints, Get
 * Candlesticks, `price` "M" (midpoint candles, the default); Instrument Definitions, Candlestick
 * `mid` ("The candlestick data based on midpoints").
 */
export function midPrice(q: Pick<QuoteTick, 'bp' | 'ap'>): number | undefined {
  const { bp, ap } = q;
  if (bp === undefined || ap === undefined || !(bp > 0) || !(ap > 0) || !Number.isFinite(bp) || !Number.isFinite(ap)) return undefined;
  return midOf(bp, ap);
}

/**
 * A quote of a quote-only source as the price point the ticker and bar builders take: a print at
 * the quote's mid and event time, of size 0. So a bar's `o h l c` are the first, highest, lowest
 * and last mid of its interval (event time, as for trades; OANDA's un-smoothed candle "uses the
 * first price from its time range as its open price", Get Candlesticks `smooth`), its `v` 0 (no
 * traded volume) and its `n` the number of prices, OANDA's candle `volume` ("The number of prices
 * created during the time-range represented by the candlestick", Instrument Definitions,
 * Candlestick). Undefined when the quote has no mid. Never logged as a trade: no correction
 * names it.
 */
export function midPoint(q: QuoteTick): TradeTick | undefined {
  const p = midPrice(q);
  if (p === undefined) return undefined;
  return { k: 'trade', sym: q.sym, src: q.src, seq: q.seq, ep: q.ep, ts: q.ts, rt: q.rt, id: `mid:${q.seq}`, p, s: 0 };
}
