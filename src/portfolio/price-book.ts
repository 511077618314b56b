import type { InstrumentRegistry } from '../core/instruments.js';
import { MAX_PRICE, midOf } from '../core/numbers.js';
import { nsToMs } from '../core/time.js';
import type { Tick } from '../core/schema.js';
import { FxRates } from './fx.js';
import type { PriceSource } from './valuation.js';

/**
 * A price a position may be valued at: positive, finite, at most MAX_PRICE (src/core/numbers.ts).
 * A feed's price beyond it is an error no market makes; valued at it, a position at the quantity
 * bound overflowed to a non-finite amount, sent as 0.
 */
function valuable(p: number | undefined): p is number {
  return p !== undefined && p > 0 && p <= MAX_PRICE;
}

interface PriceState {
  /** last trade price (ticker) */
  last?: number;
  /** ticker day open and the instrument's trading day it belongs to */
  open?: number;
  openDay?: number;
  mid?: number;
  /** a quote was seen (its mid may be absent: the latest quote had an empty side) */
  quoted?: boolean;
  /** first price seen in the trading day, the day open when no ticker says otherwise */
  first?: number;
  firstDay?: number;
  /** the latest ticker's trading day and its previous close `pc` */
  tickerDay?: number;
  prevClose?: number;
}

/**
 * The prices a portfolio service values books at: per symbol the last trade (ticker), its day's
 * open and previous close, and the mid quote; forex rates from the same mids. The service keeps
 * one fed live, and one fed the same ticks `auth.delayMs` later (TickDelay) for delayed views.
 */
export class PriceBook {
  readonly #prices = new Map<string, PriceState>();
  readonly #dayOf: (sym: string, ms: number) => number;
  readonly source: PriceSource;
  readonly fx: FxRates;

  /** `dayOf`: a symbol's trading day at a time (its ticker's day) */
  constructor(registry: InstrumentRegistry, dayOf: (sym: string, ms: number) => number) {
    this.#dayOf = dayOf;
    this.fx = new FxRates(registry, (pair) => {
      const s = this.#prices.get(pair);
      return s?.mid ?? s?.last;
    });
    this.source = {
      price: (sym) => {
        const s = this.#prices.get(sym);
        const p = s?.last ?? s?.mid;
        if (!s || p === undefined) return undefined;
        const today = this.#dayOf(sym, Date.now());
        const open = s.openDay === today ? s.open : s.firstDay === today ? s.first : undefined;
        // today's previous close: today's ticker carries it; a ticker of an earlier day (no trade
        // today yet) closed that day at its last price
        const prevClose = s.tickerDay === today ? s.prevClose : s.tickerDay !== undefined && s.tickerDay < today ? s.last : undefined;
        return prevClose === undefined ? { p, open } : { p, open, prevClose };
      },
    };
  }

  /** whether a ticker (last) or a quote of the symbol is held (a quote with an empty side, no mid, counts) */
  has(sym: string, kind: 'ticker' | 'quote'): boolean {
    const s = this.#prices.get(sym);
    return kind === 'ticker' ? s?.last !== undefined : s?.quoted === true;
  }

  delete(sym: string): void {
    this.#prices.delete(sym);
  }

  /** Update the price state; true when something changed. */
  apply(t: Tick): boolean {
    let s = this.#prices.get(t.sym);
    if (!s) this.#prices.set(t.sym, (s = {}));
    const ms = nsToMs(t.ts);
    const day = this.#dayOf(t.sym, Date.now());
    let changed = false;
    if (t.k === 'ticker') {
      if (t.empty === true && !valuable(t.p)) {
        // the day's trades were all cancelled and no previous close is known (docs/protocol.md#ticker,
        // `empty`: p is 0): no last price, so the cancelled one is not kept (the mid, if any, values)
        if (s.last !== undefined) changed = true;
        delete s.last;
      } else {
        // a last price out of range: the whole ticker is not taken (the last good price stays)
        if (!valuable(t.p)) return false;
        if (s.last !== t.p) changed = true;
        s.last = t.p;
      }
      // the ticker's day is the instrument's trading day: its open is today's when its time is in today
      const tickerDay = this.#dayOf(t.sym, ms);
      // an open or previous close out of range counts as unknown (the day starts from another price)
      const open = valuable(t.o) ? t.o : undefined;
      const pc = valuable(t.pc) ? t.pc : undefined;
      if (tickerDay === day) {
        if (s.open !== open || s.openDay !== day) changed = true;
        if (open === undefined) delete s.open;
        else s.open = open;
        s.openDay = day;
      }
      if (s.prevClose !== pc || s.tickerDay !== tickerDay) changed = true;
      s.tickerDay = tickerDay;
      if (pc === undefined) delete s.prevClose;
      else s.prevClose = pc;
    } else if (t.k === 'quote') {
      // a side present but out of range: the whole quote is not taken (the last good mid stays)
      if ((t.bp !== undefined && !valuable(t.bp)) || (t.ap !== undefined && !valuable(t.ap))) return false;
      s.quoted = true;
      if (t.bp === undefined || t.ap === undefined) {
        // a side reported empty, or both (an empty book: docs/protocol.md#quote): there is no mid
        // now, so the last one is not kept (the last price, if any, values; else nothing does)
        if (s.mid !== undefined) changed = true;
        delete s.mid;
      } else {
        const mid = midOf(t.bp, t.ap); // the mid the ticker and alerts see
        if (s.mid !== mid) changed = true;
        s.mid = mid;
      }
    } else return false;
    if (s.firstDay !== day) {
      const first = s.last ?? s.mid;
      if (first !== undefined) s.first = first;
      else delete s.first;
      s.firstDay = day;
    }
    return changed;
  }
}

interface Slot {
  due: number;
  ticker?: Tick;
  quote?: Tick;
}

/**
 * Ticks held back until `delayMs` after they arrived, like the gateway's delay lines
 * (src/fanout/market-delay.ts), per symbol. Within one slot of `slotMs` only a symbol's latest
 * ticker and latest quote are kept (each replaces the whole price state of its kind), with only
 * the fields a PriceBook reads, so a symbol holds at most `delayMs / slotMs` slots whatever its
 * tick rate (900 of about 200 bytes for 15 minutes in 1 s slots).
 */
export class TickDelay {
  readonly #q = new Map<string, Slot[]>();
  readonly delayMs: number;
  readonly #slotMs: number;

  constructor(delayMs: number, slotMs: number) {
    this.delayMs = delayMs;
    this.#slotMs = Math.max(1, slotMs);
  }

  /** a tick that arrived at `arrivedMs` (a stored last value: when it was received) */
  push(tick: Tick, arrivedMs: number): void {
    let t: Tick;
    if (tick.k === 'ticker') t = { k: 'ticker', sym: tick.sym, ts: tick.ts, p: tick.p, o: tick.o, pc: tick.pc, ...(tick.empty ? { empty: true } : {}) } as Tick;
    else if (tick.k === 'quote') t = { k: 'quote', sym: tick.sym, ts: tick.ts, bp: tick.bp, ap: tick.ap } as Tick;
    else return;
    const due = arrivedMs + this.delayMs;
    let q = this.#q.get(t.sym);
    if (!q) this.#q.set(t.sym, (q = []));
    const last = q[q.length - 1];
    if (last && due >= last.due && Math.floor(last.due / this.#slotMs) === Math.floor(due / this.#slotMs)) {
      last.due = due;
      if (t.k === 'ticker') last.ticker = t;
      else last.quote = t;
      return;
    }
    const entry: Slot = t.k === 'ticker' ? { due, ticker: t } : { due, quote: t };
    // a stored value older than a tick already held (read at start) goes in its place in time
    let i = q.length;
    while (i > 0 && q[i - 1]!.due > due) i--;
    q.splice(i, 0, entry);
  }

  /** Hand each tick due at `now` to `apply`, oldest first per symbol. */
  drain(now: number, apply: (t: Tick) => void): void {
    for (const [sym, q] of this.#q) {
      let n = 0;
      while (n < q.length && q[n]!.due <= now) {
        const s = q[n++]!;
        if (s.ticker) apply(s.ticker);
        if (s.quote) apply(s.quote);
      }
      if (n === q.length) this.#q.delete(sym);
      else if (n > 0) q.splice(0, n);
    }
  }

  delete(sym: string): void {
    this.#q.delete(sym);
  }

  /** slots held, all symbols (memory figure) */
  get held(): number {
    let n = 0;
    for (const q of this.#q.values()) n += q.length;
    return n;
  }
}
