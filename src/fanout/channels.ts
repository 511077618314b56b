import type { InstrumentRegistry } from '../core/instruments.js';
import type { MarketChannelKind } from '../core/schema.js';
import { MARKET_CHANNEL_KINDS } from '../core/schema.js';
import { marketSubject } from '../bus/subjects.js';
import { decodeTick } from '../codec/tick-codec.js';
import type { Coalescer, CoalesceMode, Update } from './coalescer.js';
import { itemOpOf, tickToPayload } from './payloads.js';
import type { Payload } from './payloads.js';
import type { ProtocolErrorCode } from '../core/errors.js';
import { MARKET_KINDS } from '../protocol/channels.js';

/** Who is on a connection: anonymous (auth off) or a verified token's subject and claims. */
export interface Principal {
  /** token `sub`; undefined when anonymous */
  readonly user?: string;
  readonly claims?: Readonly<Record<string, unknown>>;
}

/**
 * Everything the hub needs to serve one channel. `key` is unique per upstream stream (private
 * channels include the user); `name` is what the client subscribed to and sees in `ch`.
 */
export interface ChannelSpec {
  readonly key: string;
  readonly name: string;
  /** bus subject carrying this channel's updates */
  readonly subject: string;
  readonly mode: CoalesceMode;
  /** Turn one bus payload into an update; undefined to skip it. */
  decode(payload: Uint8Array): Update<Payload> | undefined;
  /** Key in the last-value store for snapshots (undefined: no stored snapshot). */
  readonly lastValueKey?: string;
  /**
   * Durable channels (executions) serve `since` replays themselves; when present the hub calls
   * it instead of sending a snapshot. `ctl.signal` aborts when the subscriber re-subscribed or
   * left (the replay should stop at its next page); `ctl.writable()` is undefined while the
   * subscriber can take more frames, else a promise of when it can.
   */
  replay?(since: number | undefined, deliver: (updates: Update<Payload>[]) => void, ctl?: ReplayControl): Promise<void>;
  /**
   * Bar channels with a bar store: closed bars for `history` on subscribe and `GET /v1/bars`,
   * oldest first, as this channel's subscribers see them (delayed access caps and flags them).
   */
  history?(q: BarRange): Promise<Payload[]>;
  /**
   * A coalescer of the channel's own for each throttle tier (order books: a view of a shared
   * book, src/fanout/book-channels.ts); default createCoalescer(mode, tier).
   */
  coalescer?(tier: number): Coalescer<Payload>;
}

/** Per-subscription options a resolver may use (`depth` of `book:SYM`). */
export interface ResolveOptions {
  readonly depth?: number;
}

/** Which closed bars of a bar channel: `from <= t < to` (bar start, ms), the newest `limit`. */
export interface BarRange {
  from?: number;
  to?: number;
  limit: number;
  /**
   * The bars as the store held them at this time (ms since the epoch): each bar in the version
   * current then, none that was put later (delayed access: `now - auth.delayMs`). Absent: now.
   */
  asOf?: number;
}

/** Closed bars per bar channel, oldest first (the bar store, src/history/bar-store.ts). */
export interface BarHistorySource {
  range(channel: string, q: BarRange): Promise<Payload[]>;
}

/**
 * What the hub hands a durable channel's replay about the subscriber it serves, and the two
 * operations of the replay's seam with the live stream: `flush` puts everything the hub holds for
 * the channel on its topics now (the replayed subscriber is not on them), and `join` puts the
 * subscriber on the channel's topic now. A replay that holds its live feed, flushes, delivers the
 * log up to the last event it handed to the hub, joins, then releases the feed, gives the
 * subscriber every event exactly once, without waiting on timers.
 */
export interface ReplayControl {
  readonly signal: AbortSignal;
  writable(): Promise<void> | undefined;
  flush(): void;
  join(): void;
}

export type ResolveResult = { ok: true; spec: ChannelSpec } | { ok: false; code: ProtocolErrorCode; reason: string };

/** Resolves channel names for a principal; private-stream modules register their own. */
export interface ChannelResolver {
  /** Return undefined when the name is not this resolver's. */
  resolve(name: string, principal: Principal, opts?: ResolveOptions): ResolveResult | undefined;
}

const MODE_BY_KIND: Readonly<Record<MarketChannelKind, CoalesceMode>> = {
  trade: 'ordered',
  quote: 'latest',
  ticker: 'latest',
  status: 'latest',
  'bar.1s': 'bar',
  'bar.1m': 'bar',
  'bar.5m': 'bar',
  'bar.1h': 'bar',
  'bar.1d': 'bar',
  book: 'latest', // (not resolved here: src/fanout/book-channels.ts)
};
const KINDS = new Set<string>(MARKET_CHANNEL_KINDS);

function decodeMarket(payload: Uint8Array): Update<Payload> {
  const tick = decodeTick(payload);
  const op = itemOpOf(tick);
  return op === undefined ? { d: tickToPayload(tick) } : { d: tickToPayload(tick), op };
}

/** `trade:AAPL`, `quote:BTC-USD`, `bar.1m:EUR-USD`, ... for instruments in the registry. */
export class MarketChannelResolver implements ChannelResolver {
  readonly #registry: InstrumentRegistry;
  readonly #bars: BarHistorySource | undefined;
  /** `bars`: the bar store, for `history` on bar channels */
  constructor(registry: InstrumentRegistry, bars?: BarHistorySource) {
    this.#registry = registry;
    this.#bars = bars;
  }

  resolve(name: string): ResolveResult | undefined {
    const colon = name.indexOf(':');
    if (colon < 0) return undefined;
    const kind = name.slice(0, colon);
    const symbol = name.slice(colon + 1);
    if (!KINDS.has(kind)) {
      return { ok: false, code: 'UNKNOWN_CHANNEL', reason: `unknown channel kind "${kind}": use one of ${MARKET_KINDS.join(', ')}` };
    }
    const inst = this.#registry.get(symbol);
    if (!inst) {
      const hint = this.#registry.get(symbol.toUpperCase()) ? ` (symbols are upper case: ${symbol.toUpperCase()})` : '';
      return { ok: false, code: 'UNKNOWN_CHANNEL', reason: `unknown symbol "${symbol}"${hint}` };
    }
    const subject = marketSubject(inst.assetClass, kind as MarketChannelKind, symbol);
    const spec: ChannelSpec = { key: name, name, subject, mode: MODE_BY_KIND[kind as MarketChannelKind], decode: decodeMarket, lastValueKey: name };
    const bars = this.#bars;
    if (bars && kind.startsWith('bar.')) spec.history = (q) => bars.range(name, q);
    return { ok: true, spec };
  }
}

/** Channel name checks shared by all resolvers: printable, bounded. */
export function isPlausibleChannelName(name: string): boolean {
  return name.length > 0 && name.length <= 128 && /^[\x21-\x7e]+$/.test(name);
}
