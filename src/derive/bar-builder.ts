import type { BarInterval, BarTick, TradeTick } from '../core/schema.js';
import { BAR_INTERVAL_MS } from '../core/schema.js';
import { roundQty } from './ticker-builder.js';

/** A bar as the builder holds it: the bar fields of BarTick, without the engine's stamps. */
export type BarState = Pick<BarTick, 'iv' | 't' | 'o' | 'h' | 'l' | 'c' | 'v' | 'n' | 'closed'>;

/**
 * OHLCV bars from trades for one (symbol, interval). Bars are aligned to the interval on the
 * trade's event time. A bar closes when a trade lands in a later interval, or when the source
 * clock (estimated as the last event time plus the wall time since it) passes its end plus a
 * grace period, so quiet symbols still close their bars. Intervals without trades produce no bar.
 */
export class BarBuilder {
  readonly iv: BarInterval;
  readonly #ms: number;
  #bar: BarState | undefined;
  #lastEventMs = 0;
  #lastEventWallMs = 0;

  constructor(iv: BarInterval) {
    this.iv = iv;
    this.#ms = BAR_INTERVAL_MS[iv];
  }

  /** Apply a trade; returns the bars to emit in order (a closed bar first if one ended). */
  onTrade(t: TradeTick, wallMs = Date.now()): BarState[] {
    const ms = Number(t.ts / 1_000_000n);
    this.#lastEventMs = Math.max(this.#lastEventMs, ms);
    this.#lastEventWallMs = wallMs;
    const start = Math.floor(ms / this.#ms) * this.#ms;
    const out: BarState[] = [];
    let bar = this.#bar;
    if (bar && start < bar.t) {
      // a late trade for an already closed bar: count it in the current bar's interval rather than rewrite history
      return this.#apply(bar, t, out);
    }
    if (bar && start > bar.t) {
      bar.closed = true;
      out.push({ ...bar });
      bar = undefined;
    }
    if (!bar) {
      bar = { iv: this.iv, t: start, o: t.p, h: t.p, l: t.p, c: t.p, v: 0, n: 0, closed: false };
      this.#bar = bar;
    }
    return this.#apply(bar, t, out);
  }

  #apply(bar: BarState, t: TradeTick, out: BarState[]): BarState[] {
    if (t.p > bar.h) bar.h = t.p;
    if (t.p < bar.l) bar.l = t.p;
    bar.c = t.p;
    bar.v = roundQty(bar.v + t.s);
    bar.n += 1;
    out.push({ ...bar });
    return out;
  }

  /** Close the open bar if the source clock has passed its end by `graceMs`. */
  closeIfDue(wallMs = Date.now(), graceMs = 250): BarState | undefined {
    const bar = this.#bar;
    if (!bar) return undefined;
    const sourceNow = this.#lastEventMs + (wallMs - this.#lastEventWallMs);
    if (sourceNow < bar.t + this.#ms + graceMs) return undefined;
    bar.closed = true;
    this.#bar = undefined;
    return { ...bar };
  }
}
