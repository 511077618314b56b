import type { BarInterval, BarTick, TradeTick } from '../core/schema.js';
import { BAR_INTERVAL_MS } from '../core/schema.js';
import type { TradingCalendar } from '../core/trading-day.js';
import { roundQty } from '../core/numbers.js';
import type { LoggedTrade } from './trade-log.js';
import { addToMinute, amendMinute, rangeOf, setsHighLowOnly } from './minute-range.js';
import type { MinuteBuckets } from './minute-range.js';

/** A bar as the builder holds it: the bar fields of BarTick, without the engine's stamps. */
export type BarState = Pick<BarTick, 'iv' | 't' | 'o' | 'h' | 'l' | 'c' | 'v' | 'n' | 'closed'> & { corrected?: boolean; empty?: boolean };

/** volume-only trades of an interval that has no bar yet (BarBuilder #pending) */
type PendingVolume = { v: number; n: number; late?: MinuteBuckets };
/** intervals without a bar whose volume-only trades are kept for a late priced trade */
const MAX_PENDING = 64;

/** Closed bars remembered for corrections (and to tell a late provider bar from a first one). */
const MAX_RECENT_CLOSED = 1000;
const MINUTE_MS = 60_000;
/** the minute bucket holding a restored bar's high and low (no real minute starts there) */
const RESTORED_BUCKET = -1;

/**
 * OHLCV bars from trades for one (symbol, interval). Bars are aligned to the interval on the
 * trade's event time (on the Unix epoch: UTC seconds, minutes and hours); day bars follow the
 * instrument's trading calendar (src/core/trading-day.ts: its day start in its time zone, so a
 * day bar is 23 or 25 hours long across a daylight-saving change). A bar closes when a trade lands in a later interval, or when the source
 * clock (estimated as the last event time plus the wall time since it) passes its end plus a
 * grace period, so quiet symbols still close their bars. Intervals without trades produce no bar.
 *
 * A trade counts in the bar of its own event time; within a bar, open and close are the trades
 * first and last in event time (ties: in arrival order). A late trade, for an interval whose bar
 * has closed, corrects that bar: it is sent again with `corrected: true` (an interval that had no
 * bar gets its first closed bar). A trade older than every bar this builder knows (before it
 * started, or past the bars it remembers) changes no bar: the stored one may hold trades this
 * builder never saw.
 *
 * Provider bars (docs/protocol.md, "Bars"): while `providerBars` is on (the symbol's source sends
 * its own bars for this interval), the builder still publishes the open bar from trades, but a
 * bar that ends is held instead of published: the provider's bar for that interval is the closed
 * bar. Only when no provider bar came `providerWaitMs` after the end is the held bar published
 * (a provider bar arriving later still replaces it, flagged `corrected`). So each interval gets
 * exactly one closed bar, plus a flagged correction in that late case.
 */
export class BarBuilder {
  readonly iv: BarInterval;
  readonly #ms: number;
  /** bar starts are `offset + k * interval` ms since the epoch (a day start other than UTC midnight) */
  readonly #offset: number;
  /** day bars: the instrument's trading days (instead of the fixed grid) */
  readonly #calendar: TradingCalendar | undefined;
  #bar: BarState | undefined;
  #lastEventMs = 0;
  #lastEventWallMs = 0;
  /** the source sends its own closed bars for this interval */
  providerBars = false;
  readonly #providerWaitMs: number;
  /** engine bars that ended while provider bars are on, by start */
  readonly #held = new Map<number, BarState>();
  /** closed bars already published, by start (bounded) */
  readonly #recent = new Map<number, BarState>();
  /** event times of the first and last priced trade of a bar (open and close by event time) */
  readonly #span = new WeakMap<BarState, { first: number; last: number }>();
  /** every bar from this start on is known here (open, held or recent); NaN before the first trade */
  #knownFrom = Number.NaN;
  /** start of the newest bar opened or closed here */
  #newest = -Infinity;
  /**
   * intervals longer than a minute: high and low per minute of the open and held bars and the
   * last closed one, so that a correction can rebuild them when the trade log no longer holds
   * all their trades (as the ticker does for its day)
   */
  readonly #minutes = new WeakMap<BarState, MinuteBuckets>();
  /**
   * day bars: high and low per minute of the bar's `highLowOnly` prints (late prints count in a
   * day's high and low, not in an intraday bar's: docs/feeds.md, "Trade conditions")
   */
  readonly #lateMinutes = new WeakMap<BarState, MinuteBuckets>();
  #lastRemembered: BarState | undefined;
  /**
   * volume-only trades of intervals that have no bar (no trade of them set a price), by start:
   * they open no bar, but their size counts in the bar the interval's first priced trade opens.
   * The providers filter trades per field, then sum: Alpaca Learn, "Stock Minute Bars" (step 2,
   * "Filter by 'trade condition'": "Volume includes almost all trades"); Polygon/Massive
   * Knowledge Base, "How does Polygon create the OHLCV aggregate bars?" (condition 2
   * `updates_volume: true`, no high/low or open/close). `late`: day bars, the high and low of the
   * `highLowOnly` prints among them (as #lateMinutes)
   */
  readonly #pending = new Map<number, PendingVolume>();

  /**
   * `align`: bars start this many ms after the epoch-aligned grid (0 to interval − 1), or, for
   * day bars, on the days of this trading calendar
   */
  constructor(iv: BarInterval, providerWaitMs?: number, align: number | TradingCalendar = 0) {
    this.iv = iv;
    this.#ms = BAR_INTERVAL_MS[iv];
    const alignOffsetMs = typeof align === 'number' ? align : 0;
    this.#calendar = typeof align === 'number' ? undefined : align;
    this.#offset = ((alignOffsetMs % this.#ms) + this.#ms) % this.#ms;
    this.#providerWaitMs = providerWaitMs ?? Math.max(this.#ms, 5000);
  }

  /** Apply a trade; returns the bars to emit in order (a closed bar first if one ended). */
  onTrade(t: TradeTick, wallMs = Date.now()): BarState[] {
    const ms = Number(t.ts / 1_000_000n);
    this.#lastEventMs = Math.max(this.#lastEventMs, ms);
    this.#lastEventWallMs = wallMs;
    const start = this.startOf(ms);
    const out: BarState[] = [];
    if (Number.isNaN(this.#knownFrom)) this.#knownFrom = start;
    let bar = this.#bar;
    // a late trade: its interval's bar has closed (or is held for the provider's bar), or it had none
    if (start < (bar?.t ?? this.#newest) || (!bar && (this.#recent.has(start) || this.#held.has(start)))) return this.#late(start, t, ms, out);
    if (bar && start > bar.t) {
      this.#end(bar, out);
      bar = undefined;
    }
    // a trade that sets no price does not open a bar (providers build no bar from such trades),
    // but counts in the one the interval's first priced trade opens (#pending)
    if (!bar && t.volumeOnly) {
      this.#addPending(start, t, ms);
      return out;
    }
    if (!bar) {
      bar = { iv: this.iv, t: start, o: t.p, h: t.p, l: t.p, c: t.p, v: 0, n: 0, closed: false };
      this.#takePending(start, bar);
      this.#bar = bar;
      this.#newest = start;
    }
    this.#apply(bar, t, ms);
    out.push({ ...bar });
    return out;
  }

  /**
   * A volume-only trade of the interval at `start`, which has no bar (#pending): kept for the
   * interval's first priced trade, also a late one (the newest MAX_PENDING intervals)
   */
  #addPending(start: number, t: TradeTick, ms: number): void {
    let p = this.#pending.get(start);
    if (!p) {
      this.#pending.set(start, (p = { v: 0, n: 0 }));
      if (this.#pending.size > MAX_PENDING) this.#pending.delete(Math.min(...this.#pending.keys()));
    }
    p.v = roundQty(p.v + t.s);
    p.n += 1;
    if (t.highLowOnly && this.#calendar) addToMinute((p.late ??= new Map()), ms, t.p);
  }

  /** The kept volume-only trades of the interval at `start` (#pending), taken into its new bar. */
  #takePending(start: number, bar: BarState): void {
    const p = this.#pending.get(start);
    if (!p) return;
    this.#pending.delete(start);
    bar.v = p.v;
    bar.n = p.n;
    if (p.late) this.#lateMinutes.set(bar, p.late);
  }

  /** A trade for the interval at `start`, which has ended. */
  #late(start: number, t: TradeTick, ms: number, out: BarState[]): BarState[] {
    if (start < this.#knownFrom) return out; // older than what this builder knows
    const held = this.#held.get(start);
    if (held) {
      this.#apply(held, t, ms); // not published yet: it goes out with this trade in it
      return out;
    }
    if (this.providerBars) return out; // the provider's closed bar is the one that counts
    const closed = this.#recent.get(start);
    if (closed) {
      this.#apply(closed, t, ms);
      closed.corrected = true;
      out.push({ ...closed });
      return out;
    }
    if (t.volumeOnly) {
      // no price to open the interval's bar with: kept for a priced one (#pending)
      this.#addPending(start, t, ms);
      return out;
    }
    // an interval that had no trade that set a price until now: its first and only closed bar,
    // with its volume-only trades (#pending)
    const bar: BarState = { iv: this.iv, t: start, o: t.p, h: t.p, l: t.p, c: t.p, v: 0, n: 0, closed: true };
    this.#takePending(start, bar);
    this.#apply(bar, t, ms);
    this.#remember(bar);
    out.push({ ...bar });
    return out;
  }

  #apply(bar: BarState, t: TradeTick, ms: number): void {
    if (t.volumeOnly && t.highLowOnly && this.#calendar) {
      // a late print: in the day bar's high and low (once a trade set its prices), never its open or close
      let late = this.#lateMinutes.get(bar);
      if (!late) this.#lateMinutes.set(bar, (late = new Map()));
      addToMinute(late, ms, t.p);
      if (bar.n > 0 && this.#span.has(bar)) {
        if (t.p > bar.h) bar.h = t.p;
        if (t.p < bar.l) bar.l = t.p;
      }
    }
    if (!t.volumeOnly) {
      const span = this.#span.get(bar);
      if (bar.n === 0 || !span) {
        // the bar's first priced trade (or every trade of it was cancelled: start over)
        bar.o = bar.h = bar.l = bar.c = t.p;
        const late = this.#lateMinutes.get(bar);
        const lr = late && rangeOf(late);
        if (lr) {
          if (lr.h > bar.h) bar.h = lr.h;
          if (lr.l < bar.l) bar.l = lr.l;
        }
        delete bar.empty;
        this.#span.set(bar, { first: ms, last: ms });
        if (this.#ms > MINUTE_MS) this.#minutes.set(bar, new Map());
      } else {
        if (ms < span.first) {
          span.first = ms;
          bar.o = t.p;
        }
        if (ms >= span.last) {
          span.last = ms;
          bar.c = t.p;
        }
        if (t.p > bar.h) bar.h = t.p;
        if (t.p < bar.l) bar.l = t.p;
      }
      const buckets = this.#minutes.get(bar);
      if (buckets) {
        const m = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
        const b = buckets.get(m);
        if (!b) buckets.set(m, { h: t.p, l: t.p });
        else {
          if (t.p > b.h) b.h = t.p;
          if (t.p < b.l) b.l = t.p;
        }
      }
    }
    bar.v = roundQty(bar.v + t.s);
    bar.n += 1;
  }

  /**
   * A trade at `ms` of the bar at `start` was corrected or cancelled, and the trade log no longer
   * holds every trade of that bar (so `rebuild` cannot): volume and count change by `dv` and
   * `dn`, the trade's minute is rebuilt from `minuteTrades` (its remaining trades, when the log
   * holds that whole minute; undefined: high and low are left) and the high and low from the
   * minutes, and when the trade was the bar's close, the close is `close`: the newest remaining
   * trade of the bar that sets a price, in event time (TradeLog.last over the bar, which knows the
   * newest trade pruned from the log too; undefined: the close is left). The open is not revised. Returns what
   * `rebuild` returns.
   */
  amend(
    start: number,
    ms: number,
    dv: number,
    dn: number,
    minuteTrades: readonly LoggedTrade[] | undefined,
    close: LoggedTrade | undefined,
  ): BarState | undefined {
    let bar = this.#bar?.t === start ? this.#bar : this.#held.get(start);
    const held = bar !== undefined && bar !== this.#bar;
    const pending = this.#pending.get(start);
    if (!bar && pending) {
      // a volume-only trade of the interval with no bar yet: its volume and count (a late
      // print's price stays in `late` until the next priced trade; rebuilt when the log holds it)
      pending.v = roundQty(Math.max(0, pending.v + dv));
      pending.n = Math.max(0, pending.n + dn);
      if (pending.late && minuteTrades) amendMinute(pending.late, ms, minuteTrades, setsHighLowOnly);
      return undefined;
    }
    if (!bar) {
      if (this.providerBars) return undefined; // the provider's bar for it is the one that counts
      bar = this.#recent.get(start);
      if (!bar) return undefined;
    }
    bar.v = roundQty(Math.max(0, bar.v + dv));
    bar.n = Math.max(0, bar.n + dn);
    const buckets = this.#minutes.get(bar);
    const lateBuckets = this.#lateMinutes.get(bar);
    const late = lateBuckets && (minuteTrades ? amendMinute(lateBuckets, ms, minuteTrades, setsHighLowOnly) : rangeOf(lateBuckets));
    if (buckets && minuteTrades) {
      const range = amendMinute(buckets, ms, minuteTrades);
      if (range) {
        bar.h = late ? Math.max(range.h, late.h) : range.h;
        bar.l = late ? Math.min(range.l, late.l) : range.l;
      } else {
        // no minute of the bar has a trade that sets a price left: its prices are not the interval's
        bar.empty = true;
        this.#span.delete(bar);
      }
    }
    const span = this.#span.get(bar);
    if (span && ms >= span.last && close) {
      bar.c = close.p;
      span.last = close.ms;
    }
    if (held) return undefined; // not published yet: it is published corrected in place
    if (bar.closed) bar.corrected = true;
    return { ...bar };
  }

  /** The open bar ended: publish it, or hold it for the provider's bar. */
  #end(bar: BarState, out: BarState[]): void {
    bar.closed = true;
    this.#bar = undefined;
    if (this.providerBars) {
      this.#held.set(bar.t, bar);
      return;
    }
    this.#remember(bar);
    out.push({ ...bar });
  }

  #remember(bar: BarState): void {
    // only the newest closed bar keeps its minutes (a late correction of it is the likely one)
    if (this.#lastRemembered && this.#lastRemembered !== bar) this.#minutes.delete(this.#lastRemembered);
    this.#lastRemembered = bar;
    this.#recent.set(bar.t, bar);
    if (this.#recent.size > MAX_RECENT_CLOSED) {
      // the first remembered (in start order but for late bars of empty intervals)
      const first = this.#recent.keys().next().value!;
      this.#recent.delete(first);
      // bars up to it are no longer all known
      if (first + 1 > this.#knownFrom) this.#knownFrom = first + 1;
    }
  }

  /**
   * Take up the bar a previous process published last (the last-value store's), before the first
   * trade: an open bar goes on collecting trades (and closes when its interval has passed on the
   * source clock: `eventMs` its last trade's time, seen at wall time `wallMs`), a closed one can
   * still be corrected by a late trade. A bar not on this builder's grid (the day start changed)
   * is not taken. Returns whether it was taken.
   */
  restore(bar: BarState, eventMs: number, wallMs: number): boolean {
    if (!Number.isNaN(this.#knownFrom) || bar.iv !== this.iv || this.startOf(bar.t) !== bar.t) return false;
    const state: BarState = { iv: bar.iv, t: bar.t, o: bar.o, h: bar.h, l: bar.l, c: bar.c, v: bar.v, n: bar.n, closed: bar.closed };
    if (bar.corrected) state.corrected = true;
    if (bar.empty) state.empty = true;
    this.#knownFrom = bar.t;
    this.#newest = bar.t;
    this.#lastEventMs = eventMs;
    this.#lastEventWallMs = wallMs;
    // the bar's stamp is its last trade's time while open; a closed bar's is the time that closed
    // it (a later trade, the sweep), which says nothing of its own trades' times
    if (bar.n > 0 && !bar.empty) this.#span.set(state, { first: bar.t, last: eventMs < this.endOf(bar.t) ? eventMs : bar.t });
    if (this.#ms > MINUTE_MS && bar.n > 0 && !bar.empty) this.#minutes.set(state, new Map([[RESTORED_BUCKET, { h: bar.h, l: bar.l }]]));
    if (bar.closed) this.#remember(state);
    else this.#bar = state;
    return true;
  }

  /**
   * Close the open bar if the source clock has passed its end by `graceMs`. Returns it, or
   * undefined when it is not due or is held for the provider's bar.
   */
  closeIfDue(wallMs = Date.now(), graceMs = 250): BarState | undefined {
    const bar = this.#bar;
    if (!bar || this.#sourceNow(wallMs) < this.endOf(bar.t) + graceMs) return undefined;
    const out: BarState[] = [];
    this.#end(bar, out);
    return out[0];
  }

  /** Held bars whose provider bar did not come `providerWaitMs` after their end, in order. */
  releaseHeld(wallMs = Date.now()): BarState[] {
    if (this.#held.size === 0) return [];
    const now = this.#sourceNow(wallMs);
    const out: BarState[] = [];
    for (const [t, held] of [...this.#held].sort((a, b) => a[0] - b[0])) {
      if (now < this.endOf(t) + this.#providerWaitMs) continue;
      this.#held.delete(t);
      this.#remember(held);
      out.push({ ...held });
    }
    return out;
  }

  #sourceNow(wallMs: number): number {
    return this.#lastEventMs + (wallMs - this.#lastEventWallMs);
  }

  /**
   * A provider's closed bar for this interval. Returns what to publish: the provider bar as the
   * interval's closed bar, flagged `corrected` when an engine bar for it was already published.
   */
  onProviderBar(bar: BarState): BarState {
    this.providerBars = true;
    const open = this.#bar;
    if (open && open.t <= bar.t) this.#bar = undefined; // the provider closed this interval
    this.#held.delete(bar.t);
    const out: BarState = { ...bar, closed: true };
    if (bar.t > this.#newest) this.#newest = bar.t;
    if (this.#recent.has(bar.t)) out.corrected = true;
    else delete out.corrected;
    this.#remember({ ...out });
    return out;
  }

  /**
   * Rebuild the bar starting at `start` from its remaining trades after a correction or cancel.
   * Returns the open bar's new state, a closed bar published again with `corrected: true`, or
   * undefined when this builder has no such bar (too old, or closed by the provider's bars).
   */
  rebuild(start: number, trades: readonly LoggedTrade[]): BarState | undefined {
    const open = this.#bar;
    if (open && open.t === start) {
      this.#fill(open, trades);
      return { ...open };
    }
    const held = this.#held.get(start);
    if (held) {
      this.#fill(held, trades); // not published yet: it is published corrected in place
      return undefined;
    }
    const pending = this.#pending.get(start);
    if (pending) {
      // the interval has no bar yet (its trades set no price): its pending volume and count, from
      // its remaining trades (a trade corrected to set a price opens the bar: `open`)
      pending.v = roundQty(trades.reduce((v, t) => v + t.s, 0));
      pending.n = trades.length;
      if (this.#calendar) {
        const late = new Map<number, { h: number; l: number }>();
        for (const t of trades) if (t.highLowOnly) addToMinute(late, t.ms, t.p);
        pending.late = late;
      }
      return undefined;
    }
    if (this.providerBars) return undefined; // the provider's bar for it is the one that counts
    const closed = this.#recent.get(start);
    if (!closed) return undefined;
    this.#fill(closed, trades);
    closed.corrected = true;
    return { ...closed };
  }

  /**
   * A correction made a trade of the interval at `start` set a price, and this builder has no bar
   * for it (its trades so far were all volume-only, which open none): its bar opens as for a new
   * trade, from `trades` (the interval's remaining trades when the log holds them all, else the
   * corrected one). The current interval's bar opens; an ended one is published closed, as a late
   * trade's first bar (`#late`). Returns it, or undefined when a bar exists (`rebuild` and
   * `amend` revise that one), the interval is older than what this builder knows, the provider's
   * bar counts, or no trade sets a price.
   */
  open(start: number, trades: readonly LoggedTrade[]): BarState | undefined {
    if (this.#bar?.t === start || this.#held.has(start) || this.#recent.has(start)) return undefined;
    if (this.providerBars || start < this.#knownFrom) return undefined;
    const first = trades.find((t) => !t.volumeOnly);
    if (!first) return undefined;
    const current = !this.#bar && start >= this.#newest;
    // an open bar of an earlier interval would have closed at a trade of this one (publish)
    if (!current && this.#bar && this.#bar.t < start) return undefined;
    const bar: BarState = { iv: this.iv, t: start, o: first.p, h: first.p, l: first.p, c: first.p, v: 0, n: 0, closed: !current };
    if (this.#ms > MINUTE_MS) this.#minutes.set(bar, new Map());
    this.#fill(bar, trades);
    this.#pending.delete(start); // now in the bar, as far as `trades` hold them
    if (current) {
      this.#bar = bar;
      this.#newest = start;
    } else this.#remember(bar);
    return { ...bar };
  }

  #fill(bar: BarState, trades: readonly LoggedTrade[]): void {
    const span = fill(bar, trades, this.#calendar !== undefined);
    if (this.#calendar) {
      const late = new Map<number, { h: number; l: number }>();
      for (const t of trades) if (t.highLowOnly) addToMinute(late, t.ms, t.p);
      this.#lateMinutes.set(bar, late);
    }
    if (span) this.#span.set(bar, span);
    else this.#span.delete(bar);
    if (this.#ms > MINUTE_MS && this.#minutes.has(bar)) {
      const buckets = new Map<number, { h: number; l: number }>();
      for (const t of trades) {
        if (t.volumeOnly) continue;
        const m = Math.floor(t.ms / MINUTE_MS) * MINUTE_MS;
        const b = buckets.get(m);
        if (!b) buckets.set(m, { h: t.p, l: t.p });
        else {
          if (t.p > b.h) b.h = t.p;
          if (t.p < b.l) b.l = t.p;
        }
      }
      this.#minutes.set(bar, buckets);
    }
  }

  /** Start of the interval that holds `ms`. */
  startOf(ms: number): number {
    if (this.#calendar) return this.#calendar.startOf(ms);
    return Math.floor((ms - this.#offset) / this.#ms) * this.#ms + this.#offset;
  }

  /** End (exclusive) of the interval that starts at `start`: the next interval's start. */
  endOf(start: number): number {
    if (this.#calendar) return this.#calendar.endOf(start);
    return start + this.#ms;
  }

  get intervalMs(): number {
    return this.#ms;
  }
}

/**
 * OHLCV from trades (in arrival order): volume and count from every trade, prices from the trades
 * that set one (not `volumeOnly`), open and close the first and last in event time (ties: in
 * arrival order); with no such trade the prices are left as they were and the bar is `empty`.
 * `lateInRange` (day bars): the `highLowOnly` trades count in the high and low too. Returns the
 * event times of the open and close.
 */
function fill(bar: BarState, trades: readonly LoggedTrade[], lateInRange = false): { first: number; last: number } | undefined {
  bar.n = trades.length;
  let h = -Infinity;
  let l = Infinity;
  let v = 0;
  let first: LoggedTrade | undefined;
  let last: LoggedTrade | undefined;
  let lateH = -Infinity;
  let lateL = Infinity;
  for (const t of trades) {
    v += t.s;
    if (lateInRange && t.highLowOnly) {
      if (t.p > lateH) lateH = t.p;
      if (t.p < lateL) lateL = t.p;
    }
    if (t.volumeOnly) continue;
    if (!first || t.ms < first.ms) first = t;
    if (!last || t.ms >= last.ms) last = t;
    if (t.p > h) h = t.p;
    if (t.p < l) l = t.p;
  }
  bar.v = roundQty(v);
  if (!first || !last) {
    bar.empty = true;
    return undefined;
  }
  delete bar.empty;
  bar.o = first.p;
  bar.c = last.p;
  bar.h = Math.max(h, lateH);
  bar.l = Math.min(l, lateL);
  return { first: first.ms, last: last.ms };
}
