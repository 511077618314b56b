import type { BarInterval, BarTick, TradeTick } from '../core/schema.js';
import { BAR_INTERVAL_MS } from '../core/schema.js';
import { roundQty } from '../core/numbers.js';
import type { LoggedTrade } from './trade-log.js';

/** A bar as the builder holds it: the bar fields of BarTick, without the engine's stamps. */
export type BarState = Pick<BarTick, 'iv' | 't' | 'o' | 'h' | 'l' | 'c' | 'v' | 'n' | 'closed'> & { corrected?: boolean };

/** Closed bars remembered for corrections (and to tell a late provider bar from a first one). */
const MAX_RECENT_CLOSED = 1000;

/**
 * OHLCV bars from trades for one (symbol, interval). Bars are aligned to the interval on the
 * trade's event time (on the Unix epoch: UTC minutes, hours and days; day bars may be shifted to
 * the instrument's day start). A bar closes when a trade lands in a later interval, or when the source
 * clock (estimated as the last event time plus the wall time since it) passes its end plus a
 * grace period, so quiet symbols still close their bars. Intervals without trades produce no bar.
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

  /** `alignOffsetMs`: bars start this many ms after the epoch-aligned grid (0 to interval − 1) */
  constructor(iv: BarInterval, providerWaitMs?: number, alignOffsetMs = 0) {
    this.iv = iv;
    this.#ms = BAR_INTERVAL_MS[iv];
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
    let bar = this.#bar;
    if (bar && start < bar.t) {
      // a late trade for an already closed bar: count it in the current bar's interval rather than rewrite history
      return this.#apply(bar, t, out);
    }
    if (bar && start > bar.t) {
      this.#end(bar, out);
      bar = undefined;
    }
    // a late trade for an interval whose closed bar is already out (or held for the provider's
    // bar): it does not open a second bar for that interval
    if (!bar && (this.#recent.has(start) || this.#held.has(start))) return out;
    // a trade that sets no price does not open a bar (providers build no bar from such trades)
    if (!bar && t.volumeOnly) return out;
    if (!bar) {
      bar = { iv: this.iv, t: start, o: t.p, h: t.p, l: t.p, c: t.p, v: 0, n: 0, closed: false };
      this.#bar = bar;
    }
    return this.#apply(bar, t, out);
  }

  #apply(bar: BarState, t: TradeTick, out: BarState[]): BarState[] {
    if (!t.volumeOnly) {
      if (bar.n === 0) bar.o = bar.h = bar.l = t.p; // every trade of it was cancelled: start over
      if (t.p > bar.h) bar.h = t.p;
      if (t.p < bar.l) bar.l = t.p;
      bar.c = t.p;
    }
    bar.v = roundQty(bar.v + t.s);
    bar.n += 1;
    out.push({ ...bar });
    return out;
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
    this.#recent.set(bar.t, bar);
    if (this.#recent.size > MAX_RECENT_CLOSED) this.#recent.delete(this.#recent.keys().next().value!);
  }

  /**
   * Close the open bar if the source clock has passed its end by `graceMs`. Returns it, or
   * undefined when it is not due or is held for the provider's bar.
   */
  closeIfDue(wallMs = Date.now(), graceMs = 250): BarState | undefined {
    const bar = this.#bar;
    if (!bar || this.#sourceNow(wallMs) < bar.t + this.#ms + graceMs) return undefined;
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
      if (now < t + this.#ms + this.#providerWaitMs) continue;
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
      fill(open, trades);
      return { ...open };
    }
    const held = this.#held.get(start);
    if (held) {
      fill(held, trades); // not published yet: it is published corrected in place
      return undefined;
    }
    if (this.providerBars) return undefined; // the provider's bar for it is the one that counts
    const closed = this.#recent.get(start);
    if (!closed) return undefined;
    fill(closed, trades);
    closed.corrected = true;
    return { ...closed };
  }

  /** Start of the interval that holds `ms`. */
  startOf(ms: number): number {
    return Math.floor((ms - this.#offset) / this.#ms) * this.#ms + this.#offset;
  }

  get intervalMs(): number {
    return this.#ms;
  }
}

/**
 * OHLCV from trades in arrival order: volume and count from every trade, prices from the trades
 * that set one (not `volumeOnly`); with no such trade the prices are left as they were.
 */
function fill(bar: BarState, trades: readonly LoggedTrade[]): void {
  bar.n = trades.length;
  let h = -Infinity;
  let l = Infinity;
  let v = 0;
  let first: LoggedTrade | undefined;
  let last: LoggedTrade | undefined;
  for (const t of trades) {
    v += t.s;
    if (t.volumeOnly) continue;
    first ??= t;
    last = t;
    if (t.p > h) h = t.p;
    if (t.p < l) l = t.p;
  }
  bar.v = roundQty(v);
  if (!first || !last) return;
  bar.o = first.p;
  bar.c = last.p;
  bar.h = h;
  bar.l = l;
}
