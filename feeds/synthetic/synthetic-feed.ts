import type { Instrument } from '../../src/core/instruments.js';
import { nowNs } from '../../src/core/time.js';
import type { FeedAdapter, FeedContext } from '../sdk/adapter.js';
import { MarketModel } from './market-model.js';
import { SyntheticBooks } from './synthetic-book.js';

export interface SyntheticFeedOptions {
  instruments: readonly Instrument[];
  seed: number;
  /** total events per second across all symbols */
  rate: number;
  /** scheduling period in ms (events are generated in bursts each period) */
  periodMs?: number;
  /** order book levels per side around the quotes of crypto symbols (default 0: no books; the engine passes synthetic.bookLevels) */
  bookLevels?: number;
}

/**
 * The synthetic provider: realistic random markets for stocks, crypto and forex, generated at a
 * configurable rate (tested to 50,000 ticks/s). Events are paced against the wall clock: each
 * period emits the events due since start, so the long-run rate is exact even on a busy loop.
 */
export class SyntheticFeed implements FeedAdapter {
  readonly id = 'synthetic';
  readonly #opts: SyntheticFeedOptions;
  #ctx: FeedContext | undefined;
  #timer: NodeJS.Timeout | undefined;
  #model: MarketModel | undefined;
  #books: SyntheticBooks | undefined;
  readonly #precision = new Map<string, number>();
  readonly #bookSymbols = new Set<string>();
  #active = new Set<string>();
  #emitted = 0;
  #startedAt = 0;

  constructor(opts: SyntheticFeedOptions) {
    if (!(opts.rate > 0)) throw new RangeError('synthetic.rate must be > 0');
    this.#opts = opts;
    for (const i of opts.instruments) {
      this.#precision.set(i.symbol, i.pricePrecision);
      if (i.assetClass === 'crypto') this.#bookSymbols.add(i.symbol);
    }
  }

  async start(ctx: FeedContext): Promise<void> {
    this.#ctx = ctx;
    ctx.status('connecting');
    this.#rebuild();
    this.#startedAt = performance.now();
    this.#emitted = 0;
    const period = this.#opts.periodMs ?? 10;
    this.#timer = setInterval(() => this.#pump(), period);
    ctx.signal.addEventListener('abort', () => void this.stop(), { once: true });
    ctx.status('connected', `${this.#opts.instruments.length} instruments at ${this.#opts.rate} ticks/s`);
  }

  #rebuild(): void {
    const list = this.#active.size > 0 ? this.#opts.instruments.filter((i) => this.#active.has(i.symbol)) : this.#opts.instruments;
    this.#model = new MarketModel(list, this.#opts.seed, `${Date.now().toString(36)}`);
    const levels = this.#opts.bookLevels ?? 0;
    this.#books = levels > 0 ? new SyntheticBooks({ levels, seed: this.#opts.seed }) : undefined;
  }

  #pump(): void {
    const ctx = this.#ctx;
    const model = this.#model;
    if (!ctx || !model) return;
    const due = Math.floor(((performance.now() - this.#startedAt) / 1000) * this.#opts.rate);
    // never try to catch up more than one second of backlog after a stall
    if (due - this.#emitted > this.#opts.rate) this.#emitted = due - this.#opts.rate;
    const ts = nowNs();
    while (this.#emitted < due) {
      this.#emitted++;
      const tick = model.next(ts);
      if (!tick) continue;
      ctx.emit(tick);
      // crypto symbols get a book around each quote (not counted in the tick rate)
      if (tick.k === 'quote' && this.#books && this.#bookSymbols.has(tick.sym)) {
        const book = this.#books.onQuote(tick, this.#precision.get(tick.sym) ?? 2);
        if (book) ctx.emit(book);
      }
    }
  }

  async subscribe(symbols: readonly string[]): Promise<void> {
    for (const s of symbols) this.#active.add(s);
    this.#rebuild();
  }

  async unsubscribe(symbols: readonly string[]): Promise<void> {
    for (const s of symbols) this.#active.delete(s);
    this.#rebuild();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#ctx?.status('stopped');
    this.#ctx = undefined;
  }
}
