import type { Bus } from '../bus/bus.js';
import { marketSubject } from '../bus/subjects.js';
import { decodeTick, encodeTick } from '../codec/tick-codec.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type {
  AssetClass,
  BarInterval,
  BarTick,
  BookTick,
  MarketChannelKind,
  PriceBasis,
  StatusTick,
  Tick,
  TickerTick,
  TradeCancelTick,
  TradeCorrectionTick,
  TradeTick,
} from '../core/schema.js';
import { BAR_INTERVAL_MS, BAR_INTERVALS, channelKindOf } from '../core/schema.js';
import { nowNs } from '../core/time.js';
import { calendarOf } from '../core/trading-day.js';
import type { LastStatus, TickInput } from '../../feeds/sdk/adapter.js';
import { BarBuilder } from '../derive/bar-builder.js';
import type { BarState } from '../derive/bar-builder.js';
import { TickerBuilder } from '../derive/ticker-builder.js';
import type { TickerState } from '../derive/ticker-builder.js';
import { TradeLog } from '../derive/trade-log.js';
import { midPoint } from '../derive/mid-price.js';
import type { TradeLogOptions } from '../derive/trade-log.js';
import { Sequencer } from './sequencer.js';
import { repairText } from './well-formed-tick.js';
import { tickValueProblems } from '../../feeds/sdk/tick-values.js';
import type { LastValueStore } from '../store/last-value-store.js';
import { PublisherBooks, validBookInput } from '../book/publisher-books.js';
import type { PublisherBooksOptions } from '../book/publisher-books.js';

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
  /** book ticks with a malformed level (not [price > 0, size >= 0]) */
  rejectedBadBook: number;
  /** ticks refused for their numbers: a negative size, a price that is not positive and finite, a bar whose high/low do not bound it (tickValueProblems) */
  rejectedBadValue: number;
  /** ticks published with provider text made well-formed (a lone surrogate replaced by U+FFFD; see repairText) */
  repairedText: number;
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
  /** how much of each symbol's recent trades is kept to apply corrections and cancels */
  tradeLog?: TradeLogOptions;
  /**
   * how long after a bar's end the provider's bar is awaited before the engine's own bar is
   * published instead, ms (default: the interval, at least 5 s)
   */
  providerBarWaitMs?: Partial<Record<BarInterval, number>>;
  /** order books: levels kept per side, how often full books go to the last-value store */
  books?: Partial<PublisherBooksOptions>;
  /** closed bars (engine-built and the provider's) for history: the bar store */
  bars?: ClosedBarSink;
}

/**
 * Where closed bars go (the bar store, src/history/bar-store.ts), keyed by channel name
 * (`bar.1m:AAPL`): the bar as its protocol payload. Called before the bar is published on the
 * bus, so an in-process store already holds every closed bar a gateway has seen.
 */
export interface ClosedBarSink {
  put(channel: string, bar: Record<string, unknown> & { t: number; iv: number; closed: true }): void;
}

/**
 * Open-bar states of these intervals go out at most every OPEN_BAR_MS per symbol (a new bar's
 * first state and every close at once; the newest pending state on the next trade or sweep).
 * Their bars change little per trade, and publishing each state of three more intervals on every
 * trade cost about a third of the ingest throughput (docs/protocol.md, "bar").
 */
const THROTTLED_OPEN_BARS: ReadonlySet<BarInterval> = new Set<BarInterval>(['5m', '1h', '1d']);
const OPEN_BAR_MS = 250;

interface PendingOpenBar {
  from: { sym: string; src: string; ts: bigint; rt: bigint };
  bar: BarState;
}

interface SymbolDerivation {
  ticker: TickerBuilder;
  bars: BarBuilder[];
  log: TradeLog;
  /** throttled intervals: when their open bar was last sent (wall ms) and for which bar start */
  openSent: Map<BarInterval, { at: number; t: number }>;
  /** throttled intervals: the newest open-bar state not sent yet */
  openPending: Map<BarInterval, PendingOpenBar>;
  /** bar intervals: the start of the newest bar published (the channel's last value) */
  newestBar: Map<BarInterval, number>;
  /** merged trading status as last published */
  status: StatusState | undefined;
  /** the feed whose report `status` is */
  statusFrom?: string;
  /** the feed of the symbol's last accepted tick and the epoch it had: another feed in a new epoch is a failover switch */
  source?: string;
  sourceEp?: number;
  /** per feed that does not serve the symbol now: its trading status as it reported it, published when it takes over */
  standbyStatus?: Map<string, StatusState>;
  /**
   * what the ticker and bars were last built from: `mid` (quotes of a quote-only source), or
   * undefined (trades). Set by each update that moves a price, so it follows the source.
   */
  basis?: PriceBasis;
}

/** a symbol's whole trading status (a report may carry only part of it) */
type StatusState = Omit<StatusTick, 'k' | 'sym' | 'src' | 'seq' | 'ep' | 'ts' | 'rt' | 'status'> & { status: NonNullable<StatusTick['status']> };

/**
 * A (partial) status report merged into the state before it: a new status replaces reason and
 * code and is no longer `stale`; a band is kept until replaced. A report that only marks the
 * status `stale` (an adapter resubscribed to a provider that sends no status snapshot) changes a
 * status reported before; with none, there is nothing to mark (undefined: nothing to publish).
 */
function mergeStatus(prev: StatusState | undefined, input: StatusTick | Extract<TickInput, { k: 'status' }>): StatusState | undefined {
  if (input.stale === true && input.status === undefined && input.luld === undefined) {
    return prev === undefined || prev.stale === true ? undefined : { ...prev, stale: true };
  }
  const next: Omit<StatusState, 'status'> & { status?: StatusState['status'] } = { ...prev };
  if (input.status !== undefined) {
    // (a whole state replayed from a recording may carry the mark it was published with)
    if (input.stale === true) next.stale = true;
    else delete next.stale;
    next.status = input.status;
    if (input.reason !== undefined) next.reason = input.reason;
    else delete next.reason;
    if (input.code !== undefined) next.code = input.code;
    else delete next.code;
  }
  if (input.luld !== undefined) next.luld = input.luld;
  return { ...next, status: next.status ?? 'trading' };
}

/**
 * The ingest stage between adapters and the bus: stamps engine fields (src, seq, ep, rt), encodes
 * each tick once, publishes it on its subject, and derives `ticker` and `bar.1s` ... `bar.1d`
 * ticks from trades and quotes, published the same way. Closed bars also go to the bar store
 * (`bars`), which serves `history` on subscribe and `GET /v1/bars`.
 */
export class TickPublisher {
  readonly stats: PublisherStats = {
    published: 0,
    rejectedUnknownSymbol: 0,
    rejectedInactiveSource: 0,
    derived: 0,
    rejectedBadBook: 0,
    rejectedBadValue: 0,
    repairedText: 0,
  };
  readonly sequencer = new Sequencer();
  readonly #bus: Bus;
  readonly #registry: InstrumentRegistry;
  #selector: SourceSelector;
  readonly #derivations = new Map<string, SymbolDerivation>();
  readonly #onPublished: ((tick: Tick) => void) | undefined;
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #lastValues: LastValueStore | undefined;
  readonly #bars: ClosedBarSink | undefined;
  readonly #logOptions: TradeLogOptions;
  readonly #providerWait: Partial<Record<BarInterval, number>>;
  /** bar intervals each feed sends its own bars for (declared, or learned from its first bar) */
  readonly #providerBars = new Map<string, Set<BarInterval>>();
  /** feeds that publish quotes and no trades (FeedAdapter.quotesOnly): their symbols' ticker and bars come from mids */
  readonly #quotesOnly = new Set<string>();
  /** per feed, the symbols whose source it declared quote-only while running (FeedContext.setQuotesOnly) */
  readonly #quotesOnlySymbols = new Map<string, Set<string>>();
  /** each symbol's order book, stored in full for gateways that start theirs (docs/protocol.md#order-books-booksymbol) */
  readonly books: PublisherBooks;

  constructor(opts: TickPublisherOptions) {
    this.#logOptions = opts.tradeLog ?? {};
    this.#providerWait = opts.providerBarWaitMs ?? {};
    this.#bus = opts.bus;
    this.#registry = opts.registry;
    this.#selector = opts.selector ?? acceptAll;
    this.#onPublished = opts.onPublished;
    this.#lastValues = opts.lastValues;
    const put = this.#lastValues;
    this.books = new PublisherBooks(opts.books ?? {}, put ? (key, payload) => put.put(key, payload) : undefined);
    this.#bars = opts.bars;
    const sweep = opts.barSweepMs ?? 250;
    if (sweep > 0) {
      this.#timer = setInterval(() => this.sweepBars(), sweep);
      this.#timer.unref();
    }
  }

  setSelector(selector: SourceSelector): void {
    this.#selector = selector;
  }

  /**
   * Feed `feedId` sends its own closed bars for these intervals: for the symbols it is the
   * source of, its bars are the closed bars and the engine's trade-derived bars only show the
   * open bar (docs/protocol.md, "Bars").
   */
  declareProviderBars(feedId: string, intervals: readonly BarInterval[]): void {
    let set = this.#providerBars.get(feedId);
    if (!set) this.#providerBars.set(feedId, (set = new Set()));
    for (const iv of intervals) set.add(iv);
  }

  /**
   * Feed `feedId` publishes quotes and no trades (FeedAdapter.quotesOnly, e.g. OANDA): for the
   * symbols it is the source of, the ticker and the bars are built from the mid price of each
   * two-sided quote, marked `basis: 'mid'` (docs/protocol.md#ticker). Feeds that send trades are
   * not affected.
   */
  declareQuotesOnly(feedId: string): void {
    this.#quotesOnly.add(feedId);
  }

  /**
   * As declareQuotesOnly, for some symbols of feed `feedId` only, and undone with `on` false: a
   * replay of a recording that holds a quote-only source and trade sources
   * (FeedContext.setQuotesOnly). A whole feed declared quote-only stays so.
   */
  setQuotesOnlySymbols(feedId: string, symbols: readonly string[], on: boolean): void {
    let set = this.#quotesOnlySymbols.get(feedId);
    if (!set) {
      if (!on) return;
      this.#quotesOnlySymbols.set(feedId, (set = new Set()));
    }
    for (const sym of symbols) {
      if (on) set.add(sym);
      else set.delete(sym);
    }
  }

  #isQuotesOnly(feedId: string, sym: string): boolean {
    return this.#quotesOnly.has(feedId) || this.#quotesOnlySymbols.get(feedId)?.has(sym) === true;
  }

  /**
   * Accept one tick from adapter `feedId`. Returns false when it was rejected. Provider text that
   * is not well-formed Unicode is repaired first, for every adapter (repairText); a tick whose
   * numbers no provider documents (tickValueProblems: a negative size, a price that is not a
   * positive finite number, ...) is refused. `onProblem` hears either, as a sentence (the feed
   * host counts it as a feed error).
   */
  publish(feedId: string, tick: TickInput, onProblem?: (detail: string) => void): boolean {
    const repair = repairText(tick);
    if (repair) {
      this.stats.repairedText++;
      onProblem?.(`feed text is not well-formed Unicode: ${repair.detail}`);
    }
    const input = repair ? repair.tick : tick;
    if (input.k !== 'book') {
      const problems = tickValueProblems(input);
      if (problems.length > 0) {
        this.stats.rejectedBadValue++;
        onProblem?.(`tick refused: ${input.k} ${JSON.stringify(input.sym)} ${problems.join('; ')}`);
        return false;
      }
    }
    const inst = this.#registry.get(input.sym);
    if (!inst) {
      this.stats.rejectedUnknownSymbol++;
      return false;
    }
    if (!this.#selector.accept(feedId, input.sym)) {
      this.stats.rejectedInactiveSource++;
      // a standby feed's book is followed, not published: whole when the feed takes over (PublisherBooks.switchTo)
      if (input.k === 'book' && validBookInput(input)) this.books.follow(feedId, input);
      // and so is its trading status: its venue's, published when it takes over (#onSource)
      if (input.k === 'status') {
        const d = this.#derivation(input.sym);
        const m = (d.standbyStatus ??= new Map());
        const merged = mergeStatus(m.get(feedId), input);
        if (merged) m.set(feedId, merged);
      }
      return false;
    }
    // (corrections, cancels, bars and statuses take their seq in their own handlers below)
    const kind = input.k === 'bar' ? `bar.${input.iv}` : input.k;
    const base = { src: feedId, rt: input.rt ?? nowNs() };
    const cls = inst.assetClass;
    this.#onSource(cls, feedId, input.sym, input.ts, base.rt);
    switch (input.k) {
      case 'trade': {
        const tick = { ...input, ...base, ...this.sequencer.next(input.sym, kind) } as TradeTick;
        normalizeFlags(tick);
        this.#send(cls, tick);
        // a print that counts in nothing (docs/protocol.md#trade, `excluded`) is delivered, and
        // changes no ticker, bar or volume; it is logged, flagged, for a correction that makes it count
        if (!tick.excluded) this.#deriveFromTrade(cls, tick);
        else this.#derivation(tick.sym).log.add(tick.id, Number(tick.ts / 1_000_000n), tick.p, tick.s, true, true);
        return true;
      }
      case 'quote': {
        const tick = { ...input, ...base, ...this.sequencer.next(input.sym, kind) } as Tick & { k: 'quote' };
        this.#send(cls, tick);
        const d = this.#derivation(tick.sym);
        const state = d.ticker.onQuote(tick);
        // a quote-only source: a two-sided quote's mid is the price point of the ticker and the
        // bars (the ticker goes out once, with the quote's bid and ask); a one-sided or empty
        // quote sets no price and only updates the bid/ask of a ticker already published
        const mid = this.#isQuotesOnly(feedId, tick.sym) ? midPoint(tick) : undefined;
        // (a quote of an earlier trading day moves no price: its bid and ask still go out)
        const sent = mid !== undefined && this.#deriveFromTrade(cls, mid, tick, false, 'mid');
        if (!sent && state) this.#sendTicker(cls, tick, state);
        return true;
      }
      case 'bar':
        this.#providerBar(cls, feedId, { ...input, ...base } as BarTick);
        return true;
      case 'correction':
      case 'cancel':
        this.#amend(cls, { ...input, ...base } as TradeCorrectionTick | TradeCancelTick);
        return true;
      case 'status':
        this.#status(cls, { ...input, ...base } as StatusTick);
        return true;
      case 'book': {
        if (!validBookInput(input)) {
          this.stats.rejectedBadBook++;
          return false;
        }
        // the first tick of a feed that took the symbol over: its whole book, or nothing until it is known
        const switched = this.books.switchTo(feedId, input, this.sequencer.epoch(input.sym));
        if (switched === false) return false;
        const tick = { ...(switched ?? input), k: 'book', ...base, ...this.sequencer.next(input.sym, kind) } as BookTick;
        this.books.apply(tick);
        // never a last value: the store gets whole books from this.books, on its own schedule
        this.#send(cls, tick, false);
        return true;
      }
      default: {
        const tick = { ...input, ...base, ...this.sequencer.next(input.sym, kind) } as Tick;
        this.#send(cls, tick);
        return true;
      }
    }
  }

  /** A provider bar: the interval's closed bar (see BarBuilder); the engine's own is not sent. */
  #providerBar(cls: AssetClass, feedId: string, bar: BarTick): void {
    if (!bar.closed) {
      // an open bar state from a source (a replayed recording of bar channels): passed through
      this.#send(cls, { ...bar, ...this.sequencer.next(bar.sym, `bar.${bar.iv}`) });
      return;
    }
    this.declareProviderBars(feedId, [bar.iv]);
    const b = this.#derivation(bar.sym).bars.find((x) => x.iv === bar.iv);
    if (!b) return;
    const { k: _k, sym: _s, src: _src, seq: _seq, ep: _ep, ts: _ts, rt: _rt, ...state } = bar;
    this.#sendBar(cls, bar, b.onProviderBar(state));
  }

  /**
   * A correction or cancel: published on the trade channel (never as the channel's last value),
   * then applied to the trade log and everything derived from it. `applied` says whether the
   * original trade was still in the log; when it was not, nothing derived changes.
   */
  #amend(cls: AssetClass, tick: TradeCorrectionTick | TradeCancelTick): void {
    const d = this.#derivation(tick.sym);
    const orig = d.log.get(tick.ref);
    if (orig?.excluded) {
      this.#amendExcluded(cls, d, orig.ms, tick);
      return;
    }
    const before = orig ? { ms: orig.ms, s: orig.s } : undefined;
    // a trade corrected into a print that counts in nothing (`excluded`, docs/protocol.md#trade)
    // leaves everything derived, as a cancelled one does
    const removed = tick.k === 'cancel' || tick.excluded === true;
    if (tick.k === 'correction') normalizeFlags(tick);
    // (corrected into `excluded`, it stays in the log as an excluded print, under its new id: a
    // later correction that makes it count adds it again, as for a print that came excluded)
    const done =
      tick.k === 'cancel'
        ? d.log.cancel(tick.ref)
        : d.log.correct(tick.ref, tick.id, tick.p, tick.s, tick.volumeOnly, tick.excluded === true ? true : undefined, tick.highLowOnly);
    // the log holds every trade after completeAfterMs: a period from then on can be rebuilt
    const complete = (from: number): boolean => from > d.log.completeAfterMs;
    tick.applied = done !== undefined && before !== undefined && complete(before.ms);
    Object.assign(tick, this.sequencer.next(tick.sym, 'trade'));
    this.#send(cls, tick, false);
    if (!done || !before) return;
    const dv = removed ? -before.s : tick.s - before.s;
    const minute = Math.floor(before.ms / 60_000) * 60_000;
    const minuteTrades = complete(minute) ? d.log.range(minute, minute + 60_000) : undefined;
    const ticker = d.ticker.amend(before.ms, dv, minuteTrades, d.log.last());
    if (ticker) this.#sendTicker(cls, tick, ticker);
    for (const b of d.bars) {
      const start = b.startOf(before.ms);
      const end = b.endOf(start);
      // a bar the log holds whole is rebuilt from it; a longer one (hours, a day) is amended
      const trades = complete(start) ? d.log.range(start, end) : undefined;
      let bar = trades ? b.rebuild(start, trades) : b.amend(start, before.ms, dv, removed ? -1 : 0, minuteTrades, d.log.last(start, end));
      // a correction that made a trade of an interval with no bar (only volume-only trades) set a
      // price: the interval's bar opens as for a new trade (from the log, else from the trade)
      if (!bar && !removed && !done.volumeOnly) bar = b.open(start, trades ?? [done]);
      if (bar) this.#sendBar(cls, tick, bar);
    }
  }

  /**
   * A correction or cancel of a print that counts in nothing (`excluded`, traded at `ms`): nothing
   * derived holds it. Corrected into a condition that counts (Alpaca: a correction out of `M`,
   * `Q` or `9`), it is applied as a new trade at its own time would be (volume, prices when it
   * sets one, its bars; a late trade's rules) and `applied`; otherwise only the log changes and
   * the item is not `applied` (docs/protocol.md#trade).
   */
  #amendExcluded(cls: AssetClass, d: SymbolDerivation, ms: number, tick: TradeCorrectionTick | TradeCancelTick): void {
    // a correction that names no conditions (`volumeOnly` absent: the provider did not say, e.g.
    // an Alpaca `c` without `cc`) fixes price and size and keeps the trade's flags, as for any
    // trade (TradeLog.correct): the print stays excluded. Only corrected conditions can make it count.
    const said = tick.k === 'correction' && (tick.volumeOnly !== undefined || tick.excluded !== undefined || tick.highLowOnly !== undefined);
    const counts = tick.k === 'correction' && said && tick.excluded !== true;
    if (tick.k === 'cancel') d.log.cancel(tick.ref);
    else if (!said) d.log.correct(tick.ref, tick.id, tick.p, tick.s);
    else {
      normalizeFlags(tick);
      d.log.correct(tick.ref, tick.id, tick.p, tick.s, tick.volumeOnly === true, !counts, tick.highLowOnly === true);
    }
    tick.applied = counts;
    Object.assign(tick, this.sequencer.next(tick.sym, 'trade'));
    this.#send(cls, tick, false);
    if (tick.k !== 'correction' || !counts) return;
    const { sym, src, id, p, s, seq, ep, rt, volumeOnly, highLowOnly } = tick;
    const trade: TradeTick = {
      k: 'trade',
      sym,
      src,
      id,
      p,
      s,
      seq,
      ep,
      rt,
      ts: BigInt(ms) * 1_000_000n,
      ...(volumeOnly ? { volumeOnly } : {}),
      ...(highLowOnly ? { highLowOnly } : {}),
    };
    this.#deriveFromTrade(cls, trade, tick, false);
  }

  /**
   * A tick accepted from `feedId`. When the symbol's feed changed in a new epoch (the failover
   * selector switched it, docs/feeds.md#failover-per-symbol), the trading status published is the
   * new feed's: the one it reported while on standby, or, without a report, `trading` (protocol v1:
   * a symbol with no status report is trading). Before, the replaced feed's status stayed (a
   * symbol shown halted while the venue that took over traded it), and the new feed, which
   * publishes only changes, never corrected it. The replaced feed's status is kept for its return.
   */
  #onSource(cls: AssetClass, feedId: string, sym: string, ts: bigint, rt: bigint): void {
    const d = this.#derivation(sym);
    const ep = this.sequencer.epoch(sym);
    const switched = d.source !== undefined && d.source !== feedId && d.sourceEp !== ep;
    d.source = feedId;
    d.sourceEp = ep;
    if (!switched) return;
    const standby = d.standbyStatus?.get(feedId);
    if (standby === undefined && (d.status === undefined || d.statusFrom === feedId)) return;
    const m = (d.standbyStatus ??= new Map());
    if (d.status !== undefined && d.statusFrom !== undefined) m.set(d.statusFrom, d.status);
    m.delete(feedId);
    const { luld } = d.status ?? {};
    // without a report of its own, the band stays: limit up / limit down is the security's, not the venue's
    this.#publishStatus(cls, sym, feedId, ts, rt, standby ?? { status: 'trading', ...(luld ? { luld } : {}) });
  }

  /**
   * The trading status of `sym` as feed `feedId` reported it (FeedContext.lastStatus): the one
   * published, or the one kept while the feed is on standby for the symbol; after a restart,
   * the one taken up from the last-value store (restore). undefined when it reported none.
   */
  lastStatus(feedId: string, sym: string): LastStatus | undefined {
    const d = this.#derivations.get(sym);
    if (!d) return undefined;
    const s = d.statusFrom === feedId ? d.status : d.standbyStatus?.get(feedId);
    if (!s) return undefined;
    return { status: s.status, ...(s.code !== undefined ? { code: s.code } : {}), ...(s.stale ? { stale: true as const } : {}) };
  }

  /** Merge a (partial) status report into the symbol's status and publish the full state. */
  #status(cls: AssetClass, input: StatusTick): void {
    const d = this.#derivation(input.sym);
    const next = mergeStatus(d.status, input);
    if (next) this.#publishStatus(cls, input.sym, input.src, input.ts, input.rt, next);
  }

  #publishStatus(cls: AssetClass, sym: string, src: string, ts: bigint, rt: bigint, next: StatusState): void {
    const d = this.#derivation(sym);
    const prev = d.status;
    d.status = next;
    d.statusFrom = src;
    const tick: StatusTick = { k: 'status', sym, src, ts, rt, ...this.sequencer.next(sym, 'status'), ...next };
    this.#send(cls, tick);
    if (prev?.status !== next.status) {
      const state = d.ticker.onStatus(next.status, Number(tick.ts / 1_000_000n));
      if (state) this.#sendTicker(cls, tick, state);
    }
  }

  #send(assetClass: Parameters<typeof marketSubject>[0], tick: Tick, lastValue = true): void {
    const kind = channelKindOf(tick);
    const payload = encodeTick(tick);
    this.#bus.publish(marketSubject(assetClass, kind, tick.sym), payload);
    if (lastValue) this.#lastValues?.put(`${kind}:${tick.sym}`, payload);
    this.stats.published++;
    this.#onPublished?.(tick);
  }

  #derivation(sym: string): SymbolDerivation {
    let d = this.#derivations.get(sym);
    if (!d) {
      const w = this.#providerWait;
      // the instrument's trading day: where bar.1d and the ticker's day start
      const day = calendarOf(this.#registry.get(sym));
      d = {
        ticker: new TickerBuilder(day),
        bars: BAR_INTERVALS.map((iv) => new BarBuilder(iv, w[iv], iv === '1d' ? day : 0)),
        log: new TradeLog(this.#logOptions),
        status: undefined,
        openSent: new Map(),
        openPending: new Map(),
        newestBar: new Map(),
      };
      this.#derivations.set(sym, d);
    }
    return d;
  }

  /**
   * A trade's ticker and bars. `from` is the tick they are published for (the trade, or the
   * correction that made a print count); `log`: add the trade to the trade log (a corrected
   * print is there already); `basis`: `mid` for a quote-only source's mid price (midPoint), absent
   * for a trade. Returns whether a ticker was published.
   */
  #deriveFromTrade(
    assetClass: Parameters<typeof marketSubject>[0],
    trade: TradeTick,
    from: { sym: string; src: string; ts: bigint; rt: bigint } = trade,
    log = true,
    basis?: PriceBasis,
  ): boolean {
    const d = this.#derivation(trade.sym);
    // what the prices are built from follows the source: a trade's, or a quote-only source's mid
    if (basis) d.basis = basis;
    else delete d.basis;
    if (log) d.log.add(trade.id, Number(trade.ts / 1_000_000n), trade.p, trade.s, trade.volumeOnly === true, false, trade.highLowOnly === true);
    const ticker = d.ticker.onTrade(trade);
    if (ticker) this.#sendTicker(assetClass, from, ticker);
    const provided = this.#providerBars.get(trade.src);
    let now = -1;
    for (const b of d.bars) {
      b.providerBars = provided?.has(b.iv) ?? false;
      for (const bar of b.onTrade(trade)) {
        if (!bar.closed && THROTTLED_OPEN_BARS.has(b.iv)) {
          if (now < 0) now = Date.now();
          const sent = d.openSent.get(b.iv);
          if (sent && sent.t === bar.t && now - sent.at < OPEN_BAR_MS) {
            d.openPending.set(b.iv, { from, bar });
            continue;
          }
          d.openSent.set(b.iv, { at: now, t: bar.t });
        }
        this.#sendBar(assetClass, from, bar);
      }
    }
    return ticker !== undefined;
  }

  #sendTicker(assetClass: Parameters<typeof marketSubject>[0], from: { sym: string; src: string; ts: bigint; rt: bigint }, state: TickerState): void {
    const { seq, ep } = this.sequencer.next(from.sym, 'ticker');
    const t: TickerTick = { k: 'ticker', sym: from.sym, src: from.src, seq, ep, ts: from.ts, rt: from.rt, ...state };
    const basis = this.#derivations.get(from.sym)?.basis;
    if (basis) t.basis = basis;
    else delete t.basis;
    this.stats.derived++;
    this.#send(assetClass, t);
  }

  #sendBar(assetClass: Parameters<typeof marketSubject>[0], from: { sym: string; src: string; ts: bigint; rt: bigint }, bar: BarState): void {
    const kind: MarketChannelKind = `bar.${bar.iv}`;
    const { seq, ep } = this.sequencer.next(from.sym, kind);
    const t: BarTick = { k: 'bar', sym: from.sym, src: from.src, seq, ep, ts: from.ts, rt: from.rt, ...bar };
    this.stats.derived++;
    const d = this.#derivations.get(from.sym);
    if (d?.basis) t.basis = d.basis;
    const pending = d?.openPending;
    const held = pending?.get(bar.iv);
    if (held && held.bar.t <= bar.t) pending!.delete(bar.iv); // superseded by this state or its close
    // a closed bar sent again for an earlier interval (corrected) is not the channel's value:
    // snapshots stay the newest bar (docs/protocol.md#bar-history)
    const newest = d?.newestBar.get(bar.iv);
    const current = newest === undefined || bar.t >= newest;
    if (current) d?.newestBar.set(bar.iv, bar.t);
    if (bar.closed && this.#bars) {
      // the bar payload of docs/protocol.md (fanout/payloads.ts builds the same for the wire)
      const p: Record<string, unknown> & { t: number; iv: number; closed: true } = {
        t: bar.t,
        iv: BAR_INTERVAL_MS[bar.iv],
        o: bar.o,
        h: bar.h,
        l: bar.l,
        c: bar.c,
        v: bar.v,
        n: bar.n,
        closed: true as const,
      };
      if (bar.corrected) p.corrected = true;
      if (bar.empty) p.empty = true;
      if (t.basis) p.basis = t.basis;
      this.#bars.put(`${kind}:${from.sym}`, p);
    }
    this.#send(assetClass, t, current);
    // the ticker's previous close `pc` is its day's bar.1d close, corrections included
    // (an empty day bar has no close)
    const prevClose = bar.iv === '1d' && bar.closed && !bar.empty ? d?.ticker.dayBarClosed(bar.t, bar.c) : undefined;
    if (prevClose) this.#sendTicker(assetClass, from, prevClose);
  }

  /**
   * After a restart: take up each symbol's ticker day and bars from the last-value store (Redis in
   * scale-out), so the day's open, high, low and volume and the open bars go on from where the
   * previous process left them, instead of starting again from the first trade after the restart.
   * A ticker of an earlier day, or a bar of an earlier interval, is replaced by the next trade as
   * usual. Call before the first tick (buildFeeds does); returns how many values were taken. A
   * store that cannot be read leaves the state empty (logged by the caller).
   *
   * Each symbol's trading status is taken up too, with the feed that reported it: that feed's
   * adapter learns it through FeedContext.lastStatus, so one that reports only changes compares
   * the provider's first answer with it, and one whose provider sends no status on subscribe
   * (Alpaca, Polygon) marks it `stale` on its first subscribe, as after a reconnect (docs/feeds.md,
   * "Trading status after a restart"). `statusFeeds`: take up only the statuses these feeds
   * reported (the feeds of this process); a status from a feed that does not run here is left to
   * the feed that now serves the symbol, as protocol v1 has it for a symbol with no report.
   */
  async restore(opts: { statusFeeds?: readonly string[] } = {}): Promise<number> {
    const statusFeeds = opts.statusFeeds ? new Set(opts.statusFeeds) : undefined;
    const store = this.#lastValues;
    if (!store) return 0;
    const kinds = ['ticker', ...BAR_INTERVALS.map((iv) => `bar.${iv}`), 'status'];
    const syms = this.#registry.all().map((i) => i.symbol);
    const values = await store.getMany(syms.flatMap((s) => kinds.map((k) => `${k}:${s}`)));
    let taken = 0;
    syms.forEach((sym, i) => {
      const d = this.#derivation(sym);
      kinds.forEach((_k, j) => {
        const bytes = values[i * kinds.length + j];
        if (!bytes) return;
        let tick: Tick;
        try {
          tick = decodeTick(bytes);
        } catch {
          return; // not a tick of this version: start afresh
        }
        if (tick.sym !== sym) return;
        // the log does not hold the trades behind what is taken up
        if (tick.k === 'ticker' || tick.k === 'bar') d.log.forgetUntil(Number(tick.ts / 1_000_000n));
        // built from mids before the restart: bars closed by the sweep before the next quote keep the marker
        if (j === 0 && tick.k === 'ticker' && tick.basis) d.basis = tick.basis;
        if (j === 0 && tick.k === 'ticker') {
          if (d.ticker.restore(tick)) taken++;
        } else if (tick.k === 'status') {
          const { k: _k2, sym: _s, src, seq: _seq, ep: _ep, ts: _ts, rt: _rt, status, ...rest } = tick;
          if (status === undefined || d.status !== undefined || (statusFeeds && !statusFeeds.has(src))) return;
          d.status = { ...rest, status };
          d.statusFrom = src;
          taken++;
        } else if (tick.k === 'bar') {
          const b = d.bars.find((x) => x.iv === tick.iv);
          const { k: _k2, sym: _s, src: _src, seq: _seq, ep: _ep, ts, rt, ...state } = tick;
          if (b?.restore(state, Number(ts / 1_000_000n), Number(rt / 1_000_000n))) {
            d.newestBar.set(tick.iv, tick.t);
            taken++;
          }
        }
      });
    });
    return taken;
  }

  /** Close bars whose interval has passed on quiet symbols. */
  sweepBars(wallMs = Date.now()): void {
    for (const [sym, d] of this.#derivations) {
      const inst = this.#registry.get(sym);
      if (!inst) continue;
      // open-bar states held back by the throttle go first: a close in this sweep supersedes them
      this.#sendPending(inst.assetClass, d, wallMs);
      for (const b of d.bars) {
        const closed = b.closeIfDue(wallMs);
        const due = b.releaseHeld(wallMs);
        if (closed) due.push(closed);
        for (const bar of due) {
          const ns = nowNs();
          this.#sendBar(inst.assetClass, { sym, src: 'tickwire', ts: ns, rt: ns }, bar);
        }
      }
    }
  }

  #sendPending(cls: AssetClass, d: SymbolDerivation, wallMs: number): void {
    for (const { from, bar } of [...d.openPending.values()]) {
      d.openSent.set(bar.iv, { at: wallMs, t: bar.t });
      this.#sendBar(cls, from, bar);
    }
  }

  close(): void {
    // the open-bar states held back by the throttle go out (and to the last-value store, which a
    // restarted process takes them up from)
    try {
      for (const [sym, d] of this.#derivations) {
        const inst = this.#registry.get(sym);
        if (inst) this.#sendPending(inst.assetClass, d, Date.now());
      }
    } catch {
      // the bus is already closed: nothing more can go out
    }
    this.books.close();
    if (this.#timer) clearInterval(this.#timer);
  }
}

/**
 * A trade's or correction's flags as the wire carries them (docs/protocol.md#trade): `excluded`
 * and `highLowOnly` always with `volumeOnly`; `excluded`, the stricter, wins over `highLowOnly`.
 */
function normalizeFlags(tick: TradeTick | TradeCorrectionTick): void {
  if (tick.excluded) delete tick.highLowOnly;
  if (tick.excluded || tick.highLowOnly) tick.volumeOnly = true;
}
