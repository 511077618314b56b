import type { QuoteTick, TickerTick, TradeTick, TradingStatus } from '../core/schema.js';
import { TradingCalendar } from '../core/trading-day.js';
import type { LoggedTrade } from './trade-log.js';
import { addToMinute, amendMinute, rangeOf, setsHighLowOnly } from './minute-range.js';
import type { MinuteBuckets } from './minute-range.js';
import { percentOf, priceDiff, roundQty } from '../core/numbers.js';

const MINUTE_MS = 60_000;
/** the minute bucket holding a restored day's high and low (no real minute starts there) */
const RESTORED_BUCKET = -1;

export type TickerState = Omit<TickerTick, 'k' | 'sym' | 'src' | 'seq' | 'ep' | 'rt' | 'ts'>;

/**
 * Builds the `ticker:SYM` view from trades and quotes: last price, bid/ask, day open/high/low,
 * day volume and change against the day open, and the previous trading day's close (`pc`). The day
 * is the instrument's trading day, the one `bar.1d` is built over: its TradingCalendar
 * (src/core/trading-day.ts, docs/protocol.md#ticker).
 *
 * The day's high and low are kept per minute (at most 1,440 buckets), so that a correction or
 * cancel of a trade can rebuild its minute from the trade log and the day from the minutes.
 */
export class TickerBuilder {
  /** the instrument's trading days */
  readonly #calendar: TradingCalendar;
  #day = -1;
  /** the day has a trade that sets a price */
  #hasTrade = false;
  /**
   * a ticker of the current day was published: after its trades that set a price were all
   * cancelled, the day's ticker is `empty` and quotes and volume still update it
   */
  #published = false;
  /** the trading day whose last trade price `pc` is; -1 when not known (a restored `pc`) */
  #pcDay = -1;
  /** the current day's close, once its bar.1d closed (the sweep closes a quiet day's bar) */
  #dayClose: number | undefined;
  /** (no `bp`/`ap` until a quote has one: docs/protocol.md#ticker, absent before the first quote) */
  readonly #s: TickerState = { p: 0, o: 0, h: 0, l: 0, v: 0, chg: 0, chgp: 0 };
  /** high and low per minute of the current day, by minute start */
  readonly #minutes: MinuteBuckets = new Map();
  /**
   * high and low per minute of the day's `highLowOnly` prints (late prints: the day's high and
   * low take them, once a trade sets a price; the last price and open never do)
   */
  readonly #lateMinutes: MinuteBuckets = new Map();
  /**
   * event times (ms) of the trades that set the day open and the last price: like a bar's open
   * and close, they are the day's first and last trade in event time (ties in arrival order), so
   * a late trade sets neither unless it is the earliest (open) or is not older (last). -Infinity /
   * Infinity after a restore: the first trade after it sets the last price, none revises the open.
   */
  #openMs = Infinity;
  #lastMs = -Infinity;

  /**
   * `day`: the instrument's trading calendar, or (legacy) where its day starts in ms after UTC
   * midnight (default: UTC midnight)
   */
  constructor(day: TradingCalendar | number = 0) {
    this.#calendar = typeof day === 'number' ? new TradingCalendar(day / MINUTE_MS, 'UTC') : day;
  }

  /**
   * Apply a trade; returns the new ticker state, or undefined while the day has no trade that
   * sets a price yet. A `volumeOnly` trade adds to the volume and sets no price.
   */
  onTrade(t: TradeTick): TickerState | undefined {
    const ms = Number(t.ts / 1_000_000n);
    const day = this.#dayOf(ms);
    const s = this.#s;
    // a late trade of an earlier day: today's figures are not its day's
    if (day < this.#day) return undefined;
    if (day > this.#day) {
      // the day that ends had a trade: its close (its bar.1d's, else the last price) is the new day's
      // previous close (a day without one leaves `pc` at the last day that traded)
      if (this.#hasTrade) {
        s.pc = this.#dayClose ?? s.p;
        this.#pcDay = this.#day;
      }
      this.#dayClose = undefined;
      this.#day = day;
      s.v = 0;
      this.#minutes.clear();
      this.#lateMinutes.clear();
      this.#hasTrade = false;
      this.#published = false;
    }
    if (t.volumeOnly) {
      s.v = roundQty(s.v + t.s);
      if (t.highLowOnly) {
        // a late print: in the day's high and low (once a trade sets a price), never the last price or open
        addToMinute(this.#lateMinutes, ms, t.p);
        if (this.#hasTrade) {
          if (t.p > s.h) s.h = t.p;
          if (t.p < s.l) s.l = t.p;
        }
      }
      return this.#published ? { ...s } : undefined;
    }
    if (!this.#hasTrade) this.#first(t.p, ms);
    // the last price and the day open follow event time, as a bar's close and open do (docs/protocol.md#ticker)
    if (ms >= this.#lastMs) {
      s.p = t.p;
      this.#lastMs = ms;
    }
    if (ms < this.#openMs) {
      s.o = t.p;
      this.#openMs = ms;
    }
    if (t.p > s.h) s.h = t.p;
    if (t.p < s.l) s.l = t.p;
    s.v = roundQty(s.v + t.s);
    const m = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
    const b = this.#minutes.get(m);
    if (!b) this.#minutes.set(m, { h: t.p, l: t.p });
    else {
      if (t.p > b.h) b.h = t.p;
      if (t.p < b.l) b.l = t.p;
    }
    this.#change();
    return { ...s };
  }

  #dayOf(ms: number): number {
    return this.#calendar.dayOf(ms);
  }

  /**
   * Take up a ticker published before a restart (the last-value store's): its day's figures go on
   * from it. Only before the first trade; returns whether it was taken. Its high and low stay in
   * the day's high/low (a correction rebuilds the minutes after the restart around them).
   */
  restore(t: Omit<TickerState, 'status'> & { ts: bigint; status?: TickerState['status'] }): boolean {
    if (this.#day !== -1) return false;
    const ms = Number(t.ts / 1_000_000n);
    this.#day = this.#dayOf(ms);
    this.#hasTrade = t.empty !== true;
    this.#published = true;
    const s = this.#s;
    s.p = t.p;
    s.o = t.o;
    s.h = t.h;
    s.l = t.l;
    s.v = t.v;
    // (a ticker stored by an earlier version holds bp/ap 0 for a side never quoted: a price is > 0)
    if (t.bp === undefined || !(t.bp > 0)) delete s.bp;
    else s.bp = t.bp;
    if (t.ap === undefined || !(t.ap > 0)) delete s.ap;
    else s.ap = t.ap;
    if (t.status !== undefined) s.status = t.status;
    if (t.pc !== undefined) s.pc = t.pc;
    if (t.empty) s.empty = true;
    else this.#minutes.set(RESTORED_BUCKET, { h: t.h, l: t.l });
    // the times of the restored open and last trade are not known: the open stays, and the next trade is the last
    this.#openMs = -Infinity;
    this.#lastMs = -Infinity;
    this.#change();
    return true;
  }

  /**
   * Apply a quote; returns the new state once a trade has set the day, else undefined: before the
   * first trade, and from the start of a new day until its first trade (the day figures held are
   * the day before's).
   */
  onQuote(q: QuoteTick): TickerState | undefined {
    // an empty side is shown as absent, never as the previous side's price
    if (q.bp === undefined) delete this.#s.bp;
    else this.#s.bp = q.bp;
    if (q.ap === undefined) delete this.#s.ap;
    else this.#s.ap = q.ap;
    return this.#current(Number(q.ts / 1_000_000n));
  }

  /** Trading status from the provider at `ms`; returns the new state as onQuote does. */
  onStatus(status: TradingStatus, ms: number): TickerState | undefined {
    this.#s.status = status;
    return this.#current(ms);
  }

  /** The state, when a trade has set the day and `ms` is still in it. */
  #current(ms: number): TickerState | undefined {
    return this.#published && this.#dayOf(ms) <= this.#day ? { ...this.#s } : undefined;
  }

  /**
   * A trade at `ms` was corrected or cancelled: `dv` is the change in volume, `minuteTrades`
   * the remaining trades of its minute when the trade log still holds that whole minute
   * (undefined: high/low are left as they are), `last` the newest remaining trade in event time
   * (the last price; TradeLog.last). Returns the new state, or undefined when the trade is not from the current day.
   * The day open is not revised. When no trade that sets a price is left in the day (every minute
   * of it rebuilt empty), the day is `empty`: no last price, as before its first trade, but its
   * ticker was published, so it is published again saying so (docs/protocol.md#ticker).
   */
  amend(ms: number, dv: number, minuteTrades: readonly LoggedTrade[] | undefined, last: LoggedTrade | undefined): TickerState | undefined {
    if (this.#dayOf(ms) !== this.#day) return undefined;
    const s = this.#s;
    s.v = roundQty(Math.max(0, s.v + dv));
    const late = minuteTrades ? amendMinute(this.#lateMinutes, ms, minuteTrades, setsHighLowOnly) : rangeOf(this.#lateMinutes);
    if (!this.#hasTrade) {
      // no trade of the day set a price (only volumeOnly ones, or the day was emptied): a
      // correction that makes one set a price makes it the day's first, which it is (the only one)
      if (last && this.#dayOf(last.ms) === this.#day) {
        this.#first(last.p, last.ms);
        this.#change();
        return { ...s };
      }
      // else its volume is amended: no ticker yet, or the empty day's again
      return this.#published ? { ...s } : undefined;
    }
    if (minuteTrades) {
      const range = amendMinute(this.#minutes, ms, minuteTrades);
      if (range) {
        s.h = late ? Math.max(range.h, late.h) : range.h;
        s.l = late ? Math.min(range.l, late.l) : range.l;
      } else {
        this.#empty();
        return { ...s };
      }
    }
    if (last && this.#dayOf(last.ms) === this.#day) {
      s.p = last.p;
      this.#lastMs = last.ms;
    }
    this.#change();
    return { ...s };
  }

  /**
   * The `bar.1d` starting at `dayStartMs` closed, or was corrected after it closed, with close
   * `c`. The current day's close becomes `pc` when the next day starts; the day `pc` was taken
   * from changes `pc`. Returns the new state as onQuote does (undefined when nothing changed, and
   * before today's first trade: the corrected `pc` goes out with it; an emptied day's prices
   * follow it).
   */
  dayBarClosed(dayStartMs: number, c: number): TickerState | undefined {
    const day = this.#dayOf(dayStartMs);
    if (day === this.#day) {
      this.#dayClose = c;
      return undefined;
    }
    if (this.#pcDay === -1 || day !== this.#pcDay || this.#s.pc === c) return undefined;
    this.#s.pc = c;
    if (this.#hasTrade) return { ...this.#s };
    if (!this.#published) return undefined;
    // an emptied day's ticker (published, no trade that sets a price left): its prices are the
    // previous close, which changed (docs/protocol.md#ticker, `empty`)
    this.#empty();
    return { ...this.#s };
  }

  /** The day's first trade that sets a price, at `ms`: the day open, high, low and last price. */
  #first(p: number, ms: number): void {
    const s = this.#s;
    s.o = s.h = s.l = s.p = p;
    // the day's late prints before it (highLowOnly) are in its high and low
    const late = rangeOf(this.#lateMinutes);
    if (late) {
      if (late.h > s.h) s.h = late.h;
      if (late.l < s.l) s.l = late.l;
    }
    delete s.empty;
    this.#hasTrade = true;
    this.#published = true;
    this.#openMs = ms;
    this.#lastMs = ms;
    const m = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
    this.#minutes.set(m, { h: p, l: p });
  }

  /**
   * No trade of the day sets a price any more. The price fields are required numbers in protocol
   * v1: they carry the previous close (no change against it), or 0 when none is known, and
   * `empty` says the day has no last price.
   */
  #empty(): void {
    const s = this.#s;
    this.#hasTrade = false;
    this.#openMs = Infinity;
    this.#lastMs = -Infinity;
    s.p = s.o = s.h = s.l = s.pc ?? 0;
    s.chg = 0;
    s.chgp = 0;
    s.empty = true;
  }

  #change(): void {
    const s = this.#s;
    // as quoted: 100.3 against an open of 100 is a change of 0.3 and 0.3 %, not 0.29999999999999716
    s.chg = priceDiff(s.p, s.o);
    s.chgp = s.o !== 0 ? percentOf(s.chg, s.o) : 0;
  }
}
