import type { Bus, BusHandler, Unsubscribe } from '../bus/bus.js';
import { parseMarketSubject } from '../bus/subjects.js';
import { decodeTick } from '../codec/tick-codec.js';

export interface MarketDelayOptions {
  delayMs: number;
  /** entries held per delayed subject */
  maxBuffered: number;
}

export interface MarketDelayStats {
  /** updates currently held across all lines */
  buffered: number;
  /** conflatable updates replaced by a newer one in the same time slot */
  thinned: number;
  /** updates dropped because a line was full (oldest first) */
  dropped: number;
  lines: number;
}

interface Entry {
  at: number;
  payload: Uint8Array;
  /** a newer update of the same slot may replace it (quote, ticker, open bar) */
  replaceable: boolean;
  slot: number;
}

/** One upstream subject delayed for its local subscribers. */
class DelayLine {
  readonly #q: Entry[] = [];
  #head = 0;
  readonly handlers = new Set<BusHandler>();
  unsubscribe: Unsubscribe = () => undefined;

  constructor(
    readonly subject: string,
    readonly conflatable: 'always' | 'open-bars' | 'never',
  ) {}

  get size(): number {
    return this.#q.length - this.#head;
  }

  push(e: Entry, max: number, stats: MarketDelayStats): void {
    const last = this.size > 0 ? this.#q[this.#q.length - 1]! : undefined;
    if (last && last.replaceable && last.slot === e.slot) {
      this.#q[this.#q.length - 1] = e;
      stats.thinned++;
      return;
    }
    this.#q.push(e);
    stats.buffered++;
    if (this.size > max) {
      this.#head++;
      stats.buffered--;
      stats.dropped++;
    }
  }

  /** Entries due at `now`, oldest first. */
  take(now: number, delayMs: number, stats: MarketDelayStats): Uint8Array[] {
    const out: Uint8Array[] = [];
    while (this.#head < this.#q.length && this.#q[this.#head]!.at + delayMs <= now) {
      out.push(this.#q[this.#head]!.payload);
      this.#q[this.#head] = undefined as never;
      this.#head++;
      stats.buffered--;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#q.length) {
      this.#q.splice(0, this.#head);
      this.#head = 0;
    }
    return out;
  }

  clear(stats: MarketDelayStats): void {
    stats.buffered -= this.size;
    this.#q.length = 0;
    this.#head = 0;
  }
}

/**
 * Delayed market data for delayed entitlements. A gateway-local delay line per subject with
 * delayed subscribers holds the upstream payloads and hands them on `delayMs` later, in order.
 *
 * Memory is bounded per line: time is cut in `delayMs / maxBuffered` slots and a conflatable
 * update (quote, ticker, an open bar) replaces the previous one of its slot, so those lines never
 * exceed `maxBuffered`; trades and closed bars are all kept up to `maxBuffered`, beyond which the
 * oldest is dropped (counted). A line starts empty when its first subscriber arrives, so a fresh
 * delayed channel stays silent for `delayMs`.
 */
export class MarketDelay {
  readonly stats: MarketDelayStats = { buffered: 0, thinned: 0, dropped: 0, lines: 0 };
  readonly #bus: Bus;
  readonly #opts: MarketDelayOptions;
  readonly #slotMs: number;
  readonly #lines = new Map<string, DelayLine>();
  #timer: NodeJS.Timeout | undefined;

  constructor(bus: Bus, opts: MarketDelayOptions) {
    this.#bus = bus;
    this.#opts = opts;
    this.#slotMs = Math.max(1, Math.floor(opts.delayMs / opts.maxBuffered));
  }

  get delayMs(): number {
    return this.#opts.delayMs;
  }

  /** Deliver `subject`'s messages to `handler` delayed (the handler sees the upstream subject). */
  subscribe(subject: string, handler: BusHandler): Unsubscribe {
    let line = this.#lines.get(subject);
    if (!line) {
      const kind = parseMarketSubject(subject)?.kind;
      const conflatable = kind === 'quote' || kind === 'ticker' ? 'always' : kind?.startsWith('bar.') ? 'open-bars' : 'never';
      const l = new DelayLine(subject, conflatable);
      line = l;
      this.#lines.set(subject, l);
      this.stats.lines = this.#lines.size;
      l.unsubscribe = this.#bus.subscribe(subject, (_s, payload) => this.#onMessage(l, payload));
      this.#ensureTimer();
    }
    const l = line;
    const h: BusHandler = (s, p) => handler(s, p);
    l.handlers.add(h);
    return () => {
      if (!l.handlers.delete(h) || l.handlers.size > 0) return;
      l.unsubscribe();
      l.clear(this.stats);
      this.#lines.delete(subject);
      this.stats.lines = this.#lines.size;
      if (this.#lines.size === 0 && this.#timer) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
    };
  }

  #onMessage(line: DelayLine, payload: Uint8Array): void {
    const at = Date.now();
    let replaceable = line.conflatable === 'always';
    if (line.conflatable === 'open-bars') {
      try {
        const t = decodeTick(payload);
        replaceable = t.k === 'bar' && !t.closed;
      } catch {
        return;
      }
    }
    line.push({ at, payload, replaceable, slot: Math.floor(at / this.#slotMs) }, this.#opts.maxBuffered, this.stats);
  }

  #ensureTimer(): void {
    if (this.#timer) return;
    const tick = Math.min(250, Math.max(10, Math.floor(this.#opts.delayMs / 20)));
    this.#timer = setInterval(() => this.#release(), tick);
    this.#timer.unref();
  }

  #release(): void {
    const now = Date.now();
    for (const line of this.#lines.values()) {
      const due = line.take(now, this.#opts.delayMs, this.stats);
      for (const p of due) {
        for (const h of line.handlers) {
          try {
            h(line.subject, p);
          } catch {
            // one faulty subscriber must not stop the line
          }
        }
      }
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    for (const l of this.#lines.values()) {
      l.unsubscribe();
      l.clear(this.stats);
    }
    this.#lines.clear();
    this.stats.lines = 0;
  }
}
