/**
 * The recent trades of one symbol, kept so that a provider's correction or cancel of one of them
 * can be applied to what was derived from it (open and recently closed bars, the ticker's day
 * high/low/volume, the last price).
 *
 * Bounded twice: trades older than `retainMs` of event time (behind the newest trade) and, past
 * `maxTrades`, the oldest trades are dropped. `completeAfterMs` says from when on the log still
 * holds every trade: a bar or minute that starts after it can be rebuilt exactly from the log.
 * A correction for a trade that is no longer here is still published, flagged as not applied.
 */
export interface LoggedTrade {
  id: string;
  /** event time, ms */
  ms: number;
  p: number;
  s: number;
  /** cancelled trades stay in place (their slot keeps the order) but count for nothing */
  cancelled: boolean;
  /** counts in volume only: sets no price (TradeTick.volumeOnly) */
  volumeOnly: boolean;
  /**
   * counts in nothing (TradeTick.excluded): kept only so that a correction into a condition that
   * counts can add it then; no range or last price holds it
   */
  excluded?: boolean;
  /**
   * counts in the volume and the day's high and low, not in the last price, an open or a close
   * (TradeTick.highLowOnly); always with `volumeOnly`
   */
  highLowOnly?: boolean;
}

export interface TradeLogOptions {
  /** event time kept behind the newest trade, ms (default 15 minutes) */
  retainMs?: number;
  /** most trades kept per symbol (default 20,000) */
  maxTrades?: number;
}

export const TRADE_LOG_DEFAULTS: Required<TradeLogOptions> = { retainMs: 15 * 60_000, maxTrades: 20_000 };

export class TradeLog {
  readonly #retainMs: number;
  readonly #max: number;
  /** in arrival order; `#head` is the first live index (amortized O(1) pruning) */
  #items: LoggedTrade[] = [];
  #head = 0;
  readonly #byId = new Map<string, LoggedTrade>();
  #newestMs = -Infinity;
  #completeAfterMs = -Infinity;
  /**
   * The newest trade that sets a price among those pruned (event time; ties: the last to arrive).
   * When every trade after it is cancelled or corrected to volume only, it is the last price again:
   * without it a cancel of the only trade still here left the cancelled price as the last price.
   */
  #prunedLast: LoggedTrade | undefined;

  constructor(opts: TradeLogOptions = {}) {
    this.#retainMs = opts.retainMs ?? TRADE_LOG_DEFAULTS.retainMs;
    this.#max = opts.maxTrades ?? TRADE_LOG_DEFAULTS.maxTrades;
  }

  /** Every trade with an event time after this is still in the log. */
  get completeAfterMs(): number {
    return this.#completeAfterMs;
  }

  /**
   * Trades up to `ms` are not all here (a restart: the derived state taken up from before it
   * holds trades this log never saw), so nothing that starts before is rebuilt from the log.
   */
  forgetUntil(ms: number): void {
    if (ms > this.#completeAfterMs) this.#completeAfterMs = ms;
  }

  get size(): number {
    return this.#items.length - this.#head;
  }

  add(id: string, ms: number, p: number, s: number, volumeOnly = false, excluded = false, highLowOnly = false): void {
    const t: LoggedTrade = { id, ms, p, s, cancelled: false, volumeOnly: volumeOnly || highLowOnly };
    if (excluded) t.excluded = true;
    else if (highLowOnly) t.highLowOnly = true;
    this.#items.push(t);
    this.#byId.set(id, t);
    if (ms > this.#newestMs) this.#newestMs = ms;
    this.#prune();
  }

  get(id: string): LoggedTrade | undefined {
    return this.#byId.get(id);
  }

  /**
   * Replace a trade's id, price and size in place (its time and order stay); `volumeOnly` and
   * `excluded` replace its flags when given; `highLowOnly` too, and a `volumeOnly` given without
   * it clears it (the corrected conditions said what the trade counts in).
   */
  correct(ref: string, id: string, p: number, s: number, volumeOnly?: boolean, excluded?: boolean, highLowOnly?: boolean): LoggedTrade | undefined {
    const t = this.#byId.get(ref);
    if (!t || t.cancelled) return undefined;
    this.#byId.delete(ref);
    t.id = id;
    t.p = p;
    t.s = s;
    if (highLowOnly) {
      t.volumeOnly = true;
      t.highLowOnly = true;
    } else if (volumeOnly !== undefined || highLowOnly === false) delete t.highLowOnly;
    if (volumeOnly !== undefined && !highLowOnly) t.volumeOnly = volumeOnly;
    if (excluded) {
      t.excluded = true;
      delete t.highLowOnly;
    } else if (excluded === false) delete t.excluded;
    this.#byId.set(id, t);
    return t;
  }

  cancel(ref: string): LoggedTrade | undefined {
    const t = this.#byId.get(ref);
    if (!t || t.cancelled) return undefined;
    t.cancelled = true;
    this.#byId.delete(ref);
    return t;
  }

  /** Live trades with fromMs <= ms < toMs, in arrival order. */
  range(fromMs: number, toMs: number): LoggedTrade[] {
    const out: LoggedTrade[] = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const t = this.#items[i]!;
      if (!t.cancelled && !t.excluded && t.ms >= fromMs && t.ms < toMs) out.push(t);
    }
    return out;
  }

  /**
   * The newest live trade that sets a price, in event time (ties: the last to arrive), with
   * fromMs <= ms < toMs: the ticker's last price, as a bar's close (docs/protocol.md#ticker).
   * The newest one pruned from the log counts too (it arrived before every trade still here, so
   * it loses a tie): it is the last price once the trades after it are cancelled.
   */
  last(fromMs = -Infinity, toMs = Infinity): LoggedTrade | undefined {
    let last: LoggedTrade | undefined;
    for (let i = this.#items.length - 1; i >= this.#head; i--) {
      const t = this.#items[i]!;
      if (!t.cancelled && !t.volumeOnly && !t.excluded && t.ms >= fromMs && t.ms < toMs && (!last || t.ms > last.ms)) last = t;
    }
    const p = this.#prunedLast;
    if (p && p.ms >= fromMs && p.ms < toMs && (!last || p.ms > last.ms)) last = p;
    return last;
  }

  #prune(): void {
    const cutoff = this.#newestMs - this.#retainMs;
    while (this.#head < this.#items.length) {
      const t = this.#items[this.#head]!;
      if (t.ms >= cutoff && this.size <= this.#max) break;
      this.#head++;
      if (this.#byId.get(t.id) === t) this.#byId.delete(t.id);
      // pruned in arrival order, so a later one wins a tie in event time
      if (!t.cancelled && !t.volumeOnly && !t.excluded && (!this.#prunedLast || t.ms >= this.#prunedLast.ms)) this.#prunedLast = { ...t };
      if (t.ms > this.#completeAfterMs) this.#completeAfterMs = t.ms;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
