import type { QuoteTick, TickerTick, TradeTick } from '../core/schema.js';

const DAY_MS = 86_400_000;

/** Sums of sizes are kept to 10 decimals so float noise (0.1 + 0.2) never reaches the wire. */
export function roundQty(x: number): number {
  return Math.round(x * 1e10) / 1e10;
}

type TickerState = Omit<TickerTick, 'k' | 'sym' | 'src' | 'seq' | 'ep' | 'rt' | 'ts'>;

/**
 * Builds the `ticker:SYM` view from trades and quotes: last price, bid/ask, day open/high/low,
 * day volume and change against the day open. The day is the UTC calendar day of the event time
 * (documented; venue session calendars are a later refinement).
 */
export class TickerBuilder {
  #day = -1;
  #hasTrade = false;
  readonly #s: TickerState = { p: 0, bp: 0, ap: 0, o: 0, h: 0, l: 0, v: 0, chg: 0, chgp: 0 };

  /** Apply a trade; returns the new ticker state. */
  onTrade(t: TradeTick): TickerState {
    const ms = Number(t.ts / 1_000_000n);
    const day = Math.floor(ms / DAY_MS);
    const s = this.#s;
    if (day !== this.#day || !this.#hasTrade) {
      this.#day = day;
      s.o = s.h = s.l = t.p;
      s.v = 0;
      this.#hasTrade = true;
    }
    s.p = t.p;
    if (t.p > s.h) s.h = t.p;
    if (t.p < s.l) s.l = t.p;
    s.v = roundQty(s.v + t.s);
    s.chg = s.p - s.o;
    s.chgp = s.o !== 0 ? (s.chg / s.o) * 100 : 0;
    return { ...s };
  }

  /** Apply a quote; returns the new state once a trade has set the day, else undefined. */
  onQuote(q: QuoteTick): TickerState | undefined {
    this.#s.bp = q.bp;
    this.#s.ap = q.ap;
    return this.#hasTrade ? { ...this.#s } : undefined;
  }
}
