import { marketSubject } from '../bus/subjects.js';
import { DELAYED_PREFIX } from '../bus/private-subjects.js';
import { decodeTick } from '../codec/tick-codec.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { AssetClass, BookTick } from '../core/schema.js';
import { nsToMs } from '../core/time.js';
import { bookStoreKey } from '../book/publisher-books.js';
import { diffView, OrderBook } from '../book/order-book.js';
import type { BookView } from '../book/order-book.js';
import { bookChecksum } from '../protocol/book.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { ChannelResolver, ChannelSpec, Principal, ResolveOptions, ResolveResult } from './channels.js';
import type { Coalescer, Emission, Update } from './coalescer.js';
import type { Payload } from './payloads.js';

/** What a principal may see of a symbol (the access layer decides: entitlements). */
export type BookAccess = (principal: Principal, symbol: string, assetClass: AssetClass) => 'realtime' | 'delayed' | 'none';

export interface BookChannelsOptions {
  registry: InstrumentRegistry;
  /** where the ingest stage stores whole books (absent: books start from the next provider snapshot) */
  store?: LastValueStore;
  /** depths a subscription may ask for; a request rounds up, the largest is the maximum */
  depths: readonly number[];
  maxLevels: number;
  syncRetryMs: number;
  /** entitlements (default: everyone real time) */
  access?: BookAccess;
  /** delay of delayed entitlements, ms */
  delayMs?: number;
}

/** Counters for metrics and the bench. */
export interface BookChannelStats {
  /** book ticks applied to shared books */
  applied: number;
  /** book updates handed to (channel, depth, tier) coalescers */
  pushed: number;
  /** updates emitted to clients (one per (channel, depth, tier) window with a change) */
  emitted: number;
  /** times a shared book lost continuity (seq gap, new epoch) and resynchronised */
  resyncs: number;
  /** shared books alive */
  books: number;
}

/** Anything the hub can be told "this channel changed" through (Hub.inject). */
interface Injector {
  inject(key: string, u: Update<Payload>): boolean;
}

const EMPTY_VIEW: BookView = { bids: [], asks: [] };
const NOTHING: Payload = {};
/** book ticks held while a shared book waits for its base snapshot */
const MAX_BUFFERED = 50_000;

/**
 * One symbol's order book in the gateway, shared by every subscriber, depth and throttle tier of
 * the channel (per upstream subject, so the delayed book is another one). It starts from the
 * whole book the ingest stage stored (PublisherBooks) and the bus updates after it, buffering
 * updates until that snapshot covers them: the snapshot-and-buffer procedure, applied to our own
 * (ep, seq). A gap or a new epoch starts it again; a `reset` tick (provider snapshot) replaces it.
 */
class SharedBook {
  readonly book: OrderBook;
  live = false;
  #ep = -1;
  #seq = -1;
  /** (ep, seq) of the last tick seen, applied or buffered: every depth's channel decodes each payload */
  #seenEp = -1;
  #seenSeq = -1;
  #buffer: BookTick[] = [];
  #fetching = false;
  #retry: NodeJS.Timeout | undefined;
  refs = 0;
  src: string | undefined;
  closed = false;

  constructor(
    readonly sym: string,
    readonly keys: Set<string>,
    private readonly owner: BookChannels,
    private readonly holdMs: number,
  ) {
    this.book = new OrderBook(owner.maxLevels);
    this.#fetch();
  }

  onTick(t: BookTick): void {
    if (t.ep === this.#seenEp && t.seq <= this.#seenSeq) return; // already seen through another depth
    this.#seenEp = t.ep;
    this.#seenSeq = t.seq;
    this.owner.stats.applied++;
    if (t.reset) {
      this.#adopt(t);
      return;
    }
    if (this.live) {
      if (t.ep === this.#ep && t.seq === this.#seq + 1) {
        this.#apply(t);
        return;
      }
      // already in the book: a tick in flight while the stored base was read, or a delayed tick
      // arriving just after the base's hold ended; not a gap (restarting would freeze a delayed
      // book for a whole delay)
      if (this.#holds(t)) return;
      // lost continuity: keep showing the book until a new base is in
      this.live = false;
      this.owner.stats.resyncs++;
    }
    this.#buffer.push(t);
    if (this.#buffer.length > MAX_BUFFERED) this.#buffer.splice(0, this.#buffer.length - MAX_BUFFERED);
    this.#fetch();
  }

  #apply(t: BookTick): void {
    this.book.apply(t.bids, t.asks);
    this.book.t = nsToMs(t.ts);
    this.src = t.src;
    this.#ep = t.ep;
    this.#seq = t.seq;
  }

  #adopt(base: BookTick): void {
    this.book.reset(base.bids, base.asks);
    this.book.t = nsToMs(base.ts);
    this.src = base.src;
    this.#ep = base.ep;
    this.#seq = base.seq;
    this.live = true;
    this.#buffer = this.#buffer.filter((b) => b.ep !== base.ep || b.seq > base.seq);
    const rest = this.#buffer;
    this.#buffer = [];
    for (const b of rest) this.onTickAfterBase(b);
    // a gap among the buffered updates: ask again now, not only when the next update comes (a
    // quiet symbol would keep its book out of sync, and a new tier's subscribers without a snapshot)
    if (!this.live) this.#fetch();
    this.owner.changed(this);
  }

  /** a buffered tick, replayed after a base: contiguous ones apply, anything else restarts */
  private onTickAfterBase(t: BookTick): void {
    if (this.live && t.ep === this.#ep && t.seq === this.#seq + 1) this.#apply(t);
    else if (this.live && this.#holds(t)) return;
    else {
      if (this.live) this.owner.stats.resyncs++;
      this.live = false;
      this.#buffer.push(t);
    }
  }

  /**
   * the live book already includes `t`: same epoch, seq not after the book's. (A tick of another
   * epoch is never skipped: a publisher restarted on a clock set back has a lower epoch, and its
   * ticks must restart the sync, not be ignored.)
   */
  #holds(t: BookTick): boolean {
    return t.ep === this.#ep && t.seq <= this.#seq;
  }

  /** Ask the store for the whole book; a stored book older than the buffered updates waits and asks again. */
  #fetch(): void {
    const store = this.owner.store;
    if (!store || this.#fetching || this.#retry || this.closed) return;
    this.#fetching = true;
    store.getMany([bookStoreKey(this.sym)]).then(
      ([bytes]) => {
        const snap = bytes ? decodeBookTick(bytes) : undefined;
        const use = (): void => {
          this.#fetching = false;
          if (this.closed || this.live) return;
          if (snap && this.#covers(snap)) this.#adopt(snap);
          else this.#later();
        };
        // delayed books: a stored book is real time; it is used only once it is as old as the delay
        if (this.holdMs > 0) setTimeout(use, this.holdMs).unref();
        else use();
      },
      () => {
        this.#fetching = false;
        this.#later();
      },
    );
  }

  /** the stored book continues into the buffered updates (or nothing is buffered) */
  #covers(snap: BookTick): boolean {
    // epochs only grow (Sequencer): updates of an older epoch are superseded by the stored book
    this.#buffer = this.#buffer.filter((b) => b.ep >= snap.ep);
    const first = this.#buffer.find((b) => b.ep !== snap.ep || b.seq > snap.seq);
    if (!first) return this.#buffer.length === 0 || this.#buffer.every((b) => b.ep === snap.ep);
    return first.ep === snap.ep && first.seq === snap.seq + 1;
  }

  #later(): void {
    if (this.closed || this.#retry) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      if (!this.live) this.#fetch();
    }, this.owner.syncRetryMs);
    this.#retry.unref();
  }

  close(): void {
    this.closed = true;
    if (this.#retry) clearTimeout(this.#retry);
  }
}

function decodeBookTick(bytes: Uint8Array): BookTick | undefined {
  try {
    const t = decodeTick(bytes);
    return t.k === 'book' ? t : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The coalescer of one (book channel, depth, throttle tier): it holds no updates, only the view
 * it last emitted. A window's emission is the difference between that view and the shared
 * book's top `depth` levels now, so every change inside the window is merged per price level
 * (the latest size wins, a level added and removed again is not sent) and a client that applies
 * it has exactly the server's view. The snapshot for a new subscriber is the last emitted view
 * with the tier's current seq, so the next emission continues it.
 */
class BookViewCoalescer implements Coalescer<Payload> {
  readonly mode = 'latest' as const;
  conflated = 0;
  #count = 0;
  #last: BookView | undefined;

  constructor(
    private readonly shared: SharedBook,
    private readonly depth: number,
    private readonly stats: BookChannelStats,
    private readonly delayed: number | undefined,
    private readonly release: () => void,
  ) {}

  push(): void {
    this.#count++;
    this.stats.pushed++;
  }

  get pending(): boolean {
    return this.#count > 0;
  }

  drain(): Emission<Payload>[] {
    const count = this.#count;
    this.#count = 0;
    const first = this.#last === undefined;
    const prev = this.#last ?? EMPTY_VIEW;
    const next = this.shared.book.view(this.depth);
    const delta = diffView(prev, next);
    if (delta.bids.length === 0 && delta.asks.length === 0 && !(first && this.shared.live)) {
      // nothing to show (a book still syncing shows nothing): the tier's first emission, the
      // snapshot of subscribers that are waiting for it, must stay a whole view with its depth
      if (!first) this.#last = next;
      this.conflated += count;
      return [];
    }
    this.#last = next;
    this.conflated += Math.max(0, count - 1);
    this.stats.emitted++;
    // the tier's first emission is a whole view: subscribers that waited take it as their snapshot
    return [{ d: this.#payload(delta, next, first), coalesced: Math.max(1, count) }];
  }

  snapshot(): Payload | undefined {
    if (!this.#last) {
      if (!this.shared.live) return undefined; // wait for the book: the first emission is the snapshot
      this.#last = this.shared.book.view(this.depth);
    }
    return this.#payload(this.#last, this.#last, true);
  }

  #payload(levels: BookView, view: BookView, whole: boolean): Payload {
    const d: Payload = { bids: levels.bids, asks: levels.asks, cs: bookChecksum(view.bids, view.asks) };
    if (whole) d.depth = this.depth;
    if (this.shared.book.t > 0) d.t = this.shared.book.t;
    if (this.shared.src) d.src = this.shared.src;
    if (this.delayed !== undefined) d.delayed = this.delayed;
    return d;
  }

  close(): void {
    this.release();
  }
}

/**
 * `book:SYMBOL` channels (docs/protocol.md#order-books-booksymbol): resolves them with the
 * subscription's depth and the principal's entitlements, and keeps one SharedBook per upstream
 * subject while any (depth, tier) of it has subscribers.
 */
export class BookChannels implements ChannelResolver {
  readonly stats: BookChannelStats = { applied: 0, pushed: 0, emitted: 0, resyncs: 0, books: 0 };
  readonly store: LastValueStore | undefined;
  readonly maxLevels: number;
  readonly syncRetryMs: number;
  readonly #opts: BookChannelsOptions;
  readonly #depths: number[];
  readonly #books = new Map<string, SharedBook>();
  readonly #specs = new Map<string, ChannelSpec>();
  #hub: Injector | undefined;

  constructor(opts: BookChannelsOptions) {
    this.#opts = opts;
    this.store = opts.store;
    this.maxLevels = opts.maxLevels;
    this.syncRetryMs = opts.syncRetryMs;
    this.#depths = [...new Set(opts.depths)].sort((a, b) => a - b);
  }

  get maxDepth(): number {
    return this.#depths[this.#depths.length - 1]!;
  }

  /** The hub to tell when a shared book changed without a bus update (a base snapshot came in). */
  bind(hub: Injector): void {
    this.#hub = hub;
  }

  /** A shared book, if one is alive (tests, bench). */
  bookOf(subject: string): OrderBook | undefined {
    return this.#books.get(subject)?.book;
  }

  resolve(name: string, principal: Principal, opts?: ResolveOptions): ResolveResult | undefined {
    if (!name.startsWith('book:')) return undefined;
    const symbol = name.slice(5);
    const inst = this.#opts.registry.get(symbol);
    if (!inst) {
      const hint = this.#opts.registry.get(symbol.toUpperCase()) ? ` (symbols are upper case: ${symbol.toUpperCase()})` : '';
      return { ok: false, code: 'UNKNOWN_CHANNEL', reason: `unknown symbol "${symbol}"${hint}` };
    }
    const want = opts?.depth ?? this.#depths[0]!;
    const depth = this.#depths.find((d) => d >= want);
    if (depth === undefined) {
      return { ok: false, code: 'BAD_REQUEST', reason: `depth ${want} is over the largest book depth ${this.maxDepth} (depths: ${this.#depths.join(', ')})` };
    }
    const access = this.#opts.access?.(principal, symbol, inst.assetClass) ?? 'realtime';
    if (access === 'none') {
      return { ok: false, code: 'FORBIDDEN', reason: `not entitled to ${symbol} (${inst.assetClass}): the token's entitlements do not include it` };
    }
    const subject = marketSubject(inst.assetClass, 'book', symbol);
    return { ok: true, spec: this.#spec(name, symbol, depth, access === 'delayed' ? DELAYED_PREFIX + subject : subject, access === 'delayed') };
  }

  #spec(name: string, sym: string, depth: number, subject: string, delayed: boolean): ChannelSpec {
    const key = `${delayed ? 'delayed:' : ''}${name}@${depth}`;
    let spec = this.#specs.get(key);
    if (spec) return spec;
    const delayMs = delayed ? (this.#opts.delayMs ?? 0) : undefined;
    const decode = (payload: Uint8Array): Update<Payload> | undefined => {
      const t = decodeTick(payload);
      if (t.k !== 'book') return undefined;
      this.#books.get(subject)?.onTick(t);
      return { d: NOTHING };
    };
    spec = {
      key,
      name,
      subject,
      mode: 'latest',
      decode,
      coalescer: () => {
        const shared = this.#acquire(subject, sym, key, delayMs ?? 0);
        return new BookViewCoalescer(shared, depth, this.stats, delayMs, () => this.#release(subject, shared));
      },
    };
    this.#specs.set(key, spec);
    return spec;
  }

  #acquire(subject: string, sym: string, key: string, holdMs: number): SharedBook {
    let b = this.#books.get(subject);
    if (!b) {
      b = new SharedBook(sym, new Set(), this, holdMs);
      this.#books.set(subject, b);
      this.stats.books = this.#books.size;
    }
    b.keys.add(key);
    b.refs++;
    return b;
  }

  #release(subject: string, b: SharedBook): void {
    if (--b.refs > 0) return;
    b.close();
    if (this.#books.get(subject) === b) this.#books.delete(subject);
    this.stats.books = this.#books.size;
  }

  /** @internal a shared book changed outside the bus flow: let its channels' tiers emit */
  changed(b: SharedBook): void {
    for (const key of b.keys) this.#hub?.inject(key, { d: NOTHING });
  }
}

/** The gateway's book channels from the configuration (the composition root calls this). */
export function buildBookChannels(
  config: { book: { depths: number[]; maxLevels: number; syncRetryMs: number }; auth: { delayMs: number } },
  registry: InstrumentRegistry,
  store: LastValueStore | undefined,
  access: BookAccess | undefined,
): BookChannels {
  return new BookChannels({
    registry,
    ...(store ? { store } : {}),
    ...(access ? { access } : {}),
    depths: config.book.depths,
    maxLevels: config.book.maxLevels,
    syncRetryMs: config.book.syncRetryMs,
    delayMs: config.auth.delayMs,
  });
}
