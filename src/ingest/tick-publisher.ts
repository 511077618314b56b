import type { Bus } from '../bus/bus.js';
import { marketSubject } from '../bus/subjects.js';
import { encodeTick } from '../codec/tick-codec.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { BarTick, MarketChannelKind, Tick, TickerTick, TradeTick } from '../core/schema.js';
import { channelKindOf } from '../core/schema.js';
import { nowNs } from '../core/time.js';
import type { TickInput } from '../../feeds/sdk/adapter.js';
import { BarBuilder } from '../derive/bar-builder.js';
import type { BarState } from '../derive/bar-builder.js';
import { TickerBuilder } from '../derive/ticker-builder.js';
import { Sequencer } from './sequencer.js';
import type { LastValueStore } from '../store/last-value-store.js';

/** Decides which provider's ticks are accepted for a symbol (failover plugs in here). */
export interface SourceSelector {
  accept(feedId: string, symbol: string): boolean;
}
const acceptAll: SourceSelector = { accept: () => true };

export interface PublisherStats {
  published: number;
  rejectedUnknownSymbol: number;
  rejectedInactiveSource: number;
  derived: number;
}

export interface TickPublisherOptions {
  bus: Bus;
  registry: InstrumentRegistry;
  selector?: SourceSelector;
  /** how often open bars are checked for closing, ms (0 disables the timer: tests call sweepBars) */
  barSweepMs?: number;
  /** observe every published tick (recording, tests) */
  onPublished?: (tick: Tick) => void;
  /** where last values go for snapshots (channel name -> bus payload) */
  lastValues?: LastValueStore;
}

interface SymbolDerivation {
  ticker: TickerBuilder;
  bars: BarBuilder[];
}

/**
 * The ingest stage between adapters and the bus: stamps engine fields (src, seq, ep, rt), encodes
 * each tick once, publishes it on its subject, and derives `ticker` and `bar.1s`/`bar.1m` ticks
 * from trades and quotes, published the same way.
 */
export class TickPublisher {
  readonly stats: PublisherStats = { published: 0, rejectedUnknownSymbol: 0, rejectedInactiveSource: 0, derived: 0 };
  readonly sequencer = new Sequencer();
  readonly #bus: Bus;
  readonly #registry: InstrumentRegistry;
  #selector: SourceSelector;
  readonly #derivations = new Map<string, SymbolDerivation>();
  readonly #onPublished: ((tick: Tick) => void) | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #lastValues: LastValueStore | undefined;

  constructor(opts: TickPublisherOptions) {
    this.#bus = opts.bus;
    this.#registry = opts.registry;
    this.#selector = opts.selector ?? acceptAll;
    this.#onPublished = opts.onPublished;
    this.#lastValues = opts.lastValues;
    const sweep = opts.barSweepMs ?? 250;
    if (sweep > 0) {
      this.#timer = setInterval(() => this.sweepBars(), sweep);
      this.#timer.unref();
    }
  }

  setSelector(selector: SourceSelector): void {
    this.#selector = selector;
  }

  /** Accept one tick from adapter `feedId`. Returns false when it was rejected. */
  publish(feedId: string, input: TickInput): boolean {
    const inst = this.#registry.get(input.sym);
    if (!inst) {
      this.stats.rejectedUnknownSymbol++;
      return false;
    }
    if (!this.#selector.accept(feedId, input.sym)) {
      this.stats.rejectedInactiveSource++;
      return false;
    }
    const kind = input.k === 'bar' ? `bar.${input.iv}` : input.k;
    const { seq, ep } = this.sequencer.next(input.sym, kind);
    const tick = { ...input, src: feedId, seq, ep, rt: input.rt ?? nowNs() } as Tick;
    this.#send(inst.assetClass, tick);
    if (tick.k === 'trade') this.#deriveFromTrade(inst.assetClass, tick);
    else if (tick.k === 'quote') {
      const state = this.#derivation(tick.sym).ticker.onQuote(tick);
      if (state) this.#sendTicker(inst.assetClass, tick, state);
    }
    return true;
  }

  #send(assetClass: Parameters<typeof marketSubject>[0], tick: Tick): void {
    const kind = channelKindOf(tick);
    const payload = encodeTick(tick);
    this.#bus.publish(marketSubject(assetClass, kind, tick.sym), payload);
    this.#lastValues?.put(`${kind}:${tick.sym}`, payload);
    this.stats.published++;
    this.#onPublished?.(tick);
  }

  #derivation(sym: string): SymbolDerivation {
    let d = this.#derivations.get(sym);
    if (!d) {
      d = { ticker: new TickerBuilder(), bars: [new BarBuilder('1s'), new BarBuilder('1m')] };
      this.#derivations.set(sym, d);
    }
    return d;
  }

  #deriveFromTrade(assetClass: Parameters<typeof marketSubject>[0], trade: TradeTick): void {
    const d = this.#derivation(trade.sym);
    this.#sendTicker(assetClass, trade, d.ticker.onTrade(trade));
    for (const b of d.bars) for (const bar of b.onTrade(trade)) this.#sendBar(assetClass, trade, bar);
  }

  #sendTicker(assetClass: Parameters<typeof marketSubject>[0], from: Tick, state: ReturnType<TickerBuilder['onTrade']>): void {
    const { seq, ep } = this.sequencer.next(from.sym, 'ticker');
    const t: TickerTick = { k: 'ticker', sym: from.sym, src: from.src, seq, ep, ts: from.ts, rt: from.rt, ...state };
    this.stats.derived++;
    this.#send(assetClass, t);
  }

  #sendBar(assetClass: Parameters<typeof marketSubject>[0], from: { sym: string; src: string; ts: bigint; rt: bigint }, bar: BarState): void {
    const kind: MarketChannelKind = bar.iv === '1s' ? 'bar.1s' : 'bar.1m';
    const { seq, ep } = this.sequencer.next(from.sym, kind);
    const t: BarTick = { k: 'bar', sym: from.sym, src: from.src, seq, ep, ts: from.ts, rt: from.rt, ...bar };
    this.stats.derived++;
    this.#send(assetClass, t);
  }

  /** Close bars whose interval has passed on quiet symbols. */
  sweepBars(wallMs = Date.now()): void {
    for (const [sym, d] of this.#derivations) {
      const inst = this.#registry.get(sym);
      if (!inst) continue;
      for (const b of d.bars) {
        const closed = b.closeIfDue(wallMs);
        if (closed) {
          const ns = nowNs();
          this.#sendBar(inst.assetClass, { sym, src: 'tickwire', ts: ns, rt: ns }, closed);
        }
      }
    }
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
  }
}
