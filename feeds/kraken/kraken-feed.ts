import { z } from 'zod';
import type { TradingStatus } from '../../src/core/schema.js';
import { nowNs } from '../../src/core/time.js';
import { commonFeedFields, runnerOptions } from '../config.js';
import { Backoff } from '../sdk/backoff.js';
import type { BackoffOptions } from '../sdk/backoff.js';
import { decimal, price, quoteFields, quoteSide } from '../sdk/decimal.js';
import type { StreamSession } from '../sdk/runner.js';
import { StreamFeed } from '../sdk/stream-feed.js';
import { pairRule, SymbolMap } from '../sdk/symbol-map.js';
import { isoToNs } from '../sdk/time.js';
import { lastStatusCode } from '../sdk/last-status.js';
import { KrakenBook, parseBookData, rawBookNumbers } from './book.js';
import type { BookPrecision } from './book.js';

/** the depths Kraken accepts for a `book` subscription (book: Subscribe Request, `depth`) */
export const KRAKEN_BOOK_DEPTHS = [10, 25, 100, 500, 1000] as const;

/**
 * Kraken Spot WebSocket API v2, public market data (no key).
 *
 * Doc sections cited below are pages of Kraken's API reference, "Spot Websockets v2":
 * [intro] guides/spot-ws-intro, [trade] websocket-v2/trade, [ticker] websocket-v2/ticker,
 * [heartbeat] websocket-v2/heartbeat, [status] websocket-v2/status, [ping] websocket-v2/ping.
 *
 * One connection to wss://ws.kraken.com/v2 [intro: Connection Details]. On open we send
 * {"method":"subscribe","params":{"channel":C,"symbol":[...]},"req_id":N} for `trade` and
 * `ticker`; Kraken acknowledges each (channel, symbol) with its own message ({"method":
 * "subscribe","success":true,"result":{"channel","symbol",...}} or success:false with `error`)
 * [trade/ticker: Subscribe Ack]. The feed is `connected` once every (channel, symbol) was answered
 * and at least one was accepted; a symbol Kraken refuses is logged and counted as an error, and a
 * connection where every one was refused goes to state `error` (retried after the longest backoff).
 *
 * Data messages are {"channel","type":"snapshot"|"update","data":[...]} [trade/ticker:
 * Snapshot / Update]; prices and quantities are JSON numbers carrying the engine's precision
 * [intro: Websockets v2]; times are RFC 3339 with microseconds [intro], converted exactly to
 * nanoseconds. `heartbeat` arrives about once a second when nothing else does [heartbeat], so a
 * silent connection goes stale after 10 s. `status` is sent on connect and whenever the trading
 * engine's state changes [status]: `maintenance`, `cancel_only` and `post_only` all mean "no order
 * matching will occur", so each symbol of the feed is published as `halted` (status tick, code the
 * `system` value) and as `trading` again once `online`; it is logged too. With `pairStatus` (the
 * default) the `instrument` channel [instrument] is subscribed once per connection: its
 * `pairs[].status` is each pair's own state (KRAKEN_PAIR_STATUS), and a pair is trading only
 * while both the exchange and the pair allow it.
 *
 * Trades: `trade_id` is "a sequence number, unique per book" [trade], i.e. per pair, so it is
 * unique per canonical symbol and becomes the tick id as is. The adapter remembers the last
 * trade_id per symbol: a jump inside a connection is counted as a gap, and after a reconnect the
 * trade subscription asks for Kraken's snapshot (its most recent 50 trades [trade]) and emits the
 * ones newer than the last seen, so trades made while we were disconnected are not lost (up to 50
 * per symbol; more is counted as a gap). On a first connection the snapshot is not requested:
 * it is history, not live data. Updates of a resumed pair that arrive before its snapshot wait
 * for it, so that they do not make the snapshot's trades look already seen.
 */
export const KrakenOptionsSchema = z
  .object({
    ...commonFeedFields,
    channels: z
      .array(z.enum(['trade', 'ticker']))
      .min(1)
      .default(['trade', 'ticker'])
      .describe('data channels'),
    tickerTrigger: z
      .enum(['bbo', 'trades'])
      .default('bbo')
      .describe('ticker `event_trigger`: bbo = a quote on every best bid/offer change, trades = on every trade (Kraken default)'),
    recoverTrades: z.boolean().default(true).describe("after a reconnect, emit trades missed meanwhile from Kraken's trade snapshot"),
    book: z
      .boolean()
      .default(false)
      .describe('subscribe to the level 2 `book` channel and emit order book ticks, each message checked against its CRC32 checksum'),
    bookDepth: z
      .union(
        KRAKEN_BOOK_DEPTHS.map((d) => z.literal(d)) as unknown as [
          z.ZodLiteral<10>,
          z.ZodLiteral<25>,
          z.ZodLiteral<100>,
          z.ZodLiteral<500>,
          z.ZodLiteral<1000>,
        ],
      )
      .default(25)
      .describe('levels per side of the `book` subscription (Kraken accepts 10, 25, 100, 500, 1000)'),
    pairStatus: z
      .boolean()
      .default(true)
      .describe("subscribe to the `instrument` channel and publish each pair's own state (cancel_only, delisted, ...) as its trading status"),
    bookPrecision: z
      .record(z.string(), z.object({ price: z.number().int().min(0).max(18), qty: z.number().int().min(0).max(18) }).strict())
      .optional()
      .describe("decimal places of each symbol's prices and quantities for the book checksum; symbols not listed get them from Kraken's `instrument` channel"),
  })
  .strict();
export type KrakenOptions = z.infer<typeof KrakenOptionsSchema>;

export const KRAKEN_DEFAULT_URL = 'wss://ws.kraken.com/v2';

type Channel = 'trade' | 'ticker' | 'book' | 'instrument';
/** updates of a resumed pair held waiting for its trade snapshot beyond this many: released without it */
const MAX_HELD_TRADES = 1000;
/** a checksum mismatch right on a fresh snapshot this many times in a row: the precision is wrong, stop resubscribing */
const MAX_SNAPSHOT_MISMATCHES = 3;

/**
 * Refusals that say nothing about what was asked, only about how fast: the same request succeeds
 * later, so it is asked again (#retryLater). Kraken publishes no number for the message rate of a
 * connection; its rate-limit guide (docs.kraken.com, Spot Rate Limits, WebSocket) says only that
 * it varies with the load on the system, and a connection over it is answered `Exceeded msg rate`
 * (the WebSocket API reference's error example, `{"errorMessage":"Exceeded msg rate", "event":
 * "error", "reqid":42}` in v1; v2 answers the request with `success: false` and that `error`).
 * `EAPI:Rate limit exceeded` is Kraken's rate-limit error text elsewhere (Kraken Support, "API
 * error messages" > Rate limit errors). Every other refusal (an unknown pair, a bad depth, a
 * channel we may not have) is permanent: it is counted and named in health, and not asked again.
 */
export const KRAKEN_TRANSIENT_ERRORS: readonly RegExp[] = [/exceeded msg rate/i, /rate limit exceeded/i];
/** asking again after a rate refusal: Kraken gives no number, so start at 1 s, double, at most 30 s, jittered */
export const KRAKEN_RATE_RETRY: Readonly<BackoffOptions & { attempts: number }> = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5, attempts: 8 };

export interface KrakenTiming {
  /** retries after a rate refusal (tests shorten them); `attempts` per pair and channel before giving up */
  rateRetry?: Partial<BackoffOptions & { attempts: number }>;
  random?: () => number;
}

interface BookState {
  book: KrakenBook;
  /** false after a checksum mismatch until the snapshot of the new subscription arrives */
  synced: boolean;
  /** consecutive snapshots whose checksum did not match */
  snapshotMismatches: number;
}
interface Request {
  method: 'subscribe' | 'unsubscribe';
  channel: Channel;
  symbols: string[];
  /** part of the opening subscription: its acks decide `ready` */
  initial: boolean;
  /** acks still expected (one per symbol); the request is forgotten at 0 */
  remaining?: number;
  /** the request's other params (snapshot, event_trigger, depth): a retry sends the same */
  extra?: Record<string, unknown>;
}
/** requests waiting to be asked again after a rate refusal: one per method, channel and params, every waiting pair in it */
interface RetryGroup {
  method: 'subscribe' | 'unsubscribe';
  channel: Channel;
  extra: Record<string, unknown>;
  /** provider symbols, as sent */
  symbols: Set<string>;
}

/** `ticker` and `trade` items as documented; every field is checked before use. */
type Item = Record<string, unknown>;

export class KrakenFeed extends StreamFeed {
  readonly #opts: KrakenOptions;
  readonly #map: SymbolMap;
  /** last trade_id emitted per canonical symbol; survives reconnects (that is its purpose) */
  readonly #lastTradeId = new Map<string, number>();
  /**
   * per connection: pairs resumed with a trade snapshot, and the updates that came before it.
   * The snapshot holds the trades made while we were away; an update applied first would make
   * them look already seen, so updates wait until the snapshot (or a refusal) arrives.
   */
  #awaiting = new Map<string, { sym: string; id: number; item: Item }[]>();
  /** canonical symbols wanted now: messages still in flight for a symbol just unsubscribed are dropped */
  #active = new Set<string>();
  // per connection
  #reqId = 0;
  #requests = new Map<number, Request>();
  #pending = new Set<string>();
  /** keys of #pending refused for the message rate and being asked again, with the error */
  #retrying = new Map<string, string>();
  #accepted: string[] = [];
  #rejected: string[] = [];
  #system: string | undefined;
  /** the last exchange state the status page lists (kept across connections: a state it does not list changes nothing) */
  #systemState: string | undefined;
  /** per Kraken pair (upper case): its own state from the `instrument` channel; kept across connections, replaced by each snapshot */
  readonly #pairStatus = new Map<string, string>();
  /**
   * Whether the pairs' own states are known: an `instrument` snapshot was read (on any
   * connection), or the subscription was refused. Until then a halted symbol is not reopened on
   * the exchange state alone (#publishStatus): Kraken does not promise which channel's first
   * message comes first.
   */
  #pairStatesKnown = false;
  /** pair states the instrument page does not list, already logged */
  readonly #unknownPairStates = new Set<string>();
  /** per canonical symbol: the `code` of the trading status last published (absent: none published yet, lastStatusCode: the status taken up after a restart, else online) */
  readonly #published = new Map<string, string>();
  #opening: readonly string[] = [];
  /** order books per canonical symbol (option `book`), rebuilt from a snapshot on every connection */
  #books = new Map<string, BookState>();
  /** canonical symbols whose book subscription waits for their precision from the `instrument` channel */
  #bookWaiting = new Set<string>();
  /** canonical symbols whose book subscription was sent on this connection */
  #bookSubscribed = new Set<string>();
  #instrumentRequested = false;
  /** checksum precision per Kraken pair (upper case): from `bookPrecision`, else from the `instrument` channel; kept across connections */
  readonly #precision = new Map<string, BookPrecision>();
  /** Kraken pairs (upper case) whose precision comes from `bookPrecision`: the instrument channel does not replace it */
  readonly #configured = new Set<string>();
  #checksumMismatches = 0;
  // per connection: requests refused for the message rate, asked again together after a delay
  #retry = new Map<string, RetryGroup>();
  #retryTimer: NodeJS.Timeout | undefined;
  #retryBackoff: Backoff;
  /** per `method channel PAIR`: rate refusals in a row (the bound) and the last error text */
  #retryAttempts = new Map<string, { n: number; error: string }>();
  readonly #retryOpts: BackoffOptions & { attempts: number };
  /** the opening subscription was decided (session.ready called) on this connection */
  #decided = false;
  #retrySession: StreamSession | undefined;

  constructor(id: string, opts: KrakenOptions, timing: KrakenTiming = {}) {
    // heartbeats come about once a second when nothing else does [heartbeat]: 10 s of silence is a dead connection
    super(id, opts.symbols, runnerOptions(opts, { staleAfterMs: 10_000 }));
    this.#opts = opts;
    this.#retryOpts = { ...KRAKEN_RATE_RETRY, ...timing.rateRetry };
    this.#retryBackoff = new Backoff(this.#retryOpts, timing.random);
    // v2 spells pairs BASE/QUOTE with BTC, not v1's XBT [intro: Websockets v2, "BTC/USD" format]
    this.#map = new SymbolMap(opts.symbols, pairRule('/'), opts.symbolMap);
    for (const [sym, p] of Object.entries(opts.bookPrecision ?? {})) {
      const pair = this.#map.toProvider(sym).toUpperCase();
      this.#precision.set(pair, p);
      this.#configured.add(pair);
    }
  }

  /** levels per side of the `book` subscription (`bookDepth`; kept within the engine's `book.maxLevels`, see feeds/registry.ts) */
  get bookDepth(): number {
    return this.#opts.bookDepth;
  }

  /** Book messages whose checksum did not match the local book (each one resubscribed that pair's book). */
  get checksumMismatches(): number {
    return this.#checksumMismatches;
  }

  /** The local order book of a canonical symbol, best first (for tests and health); undefined without one. */
  book(symbol: string): { bids: [number, number][]; asks: [number, number][]; synced: boolean } | undefined {
    const st = this.#books.get(symbol);
    return st && { bids: st.book.levels('bids'), asks: st.book.levels('asks'), synced: st.synced };
  }

  url(): string {
    return this.#opts.url ?? KRAKEN_DEFAULT_URL;
  }

  /** Requests of this connection still waiting for acknowledgements. */
  get openRequests(): number {
    return this.#requests.size;
  }

  /** The last trade id seen for a canonical symbol (for tests and health). */
  lastTradeId(symbol: string): number | undefined {
    return this.#lastTradeId.get(symbol);
  }

  override async stop(): Promise<void> {
    this.#clearRetry();
    await super.stop();
  }

  /** Pairs and channels waiting to be asked again after a rate refusal, as `method channel PAIR` (for tests and health). */
  get retrying(): string[] {
    return [...this.#retry.values()].flatMap((g) => [...g.symbols].map((s) => `${g.method} ${g.channel} ${s}`.trim()));
  }

  #clearRetry(): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    this.#retry = new Map();
    this.#retryAttempts = new Map();
    this.#retryBackoff.reset();
  }

  onOpen(session: StreamSession, symbols: readonly string[]): void {
    // a new connection subscribes everything afresh: nothing of the old one is retried
    this.#clearRetry();
    this.#decided = false;
    this.#retrySession = session;
    this.#reqId = 0;
    this.#requests = new Map();
    this.#pending = new Set();
    this.#retrying = new Map();
    this.#accepted = [];
    this.#rejected = [];
    this.#system = undefined;
    this.#opening = [...symbols];
    this.#active = new Set(symbols);
    this.#awaiting = new Map();
    // a new connection: every book starts over from the snapshot of its new subscription
    this.#books = new Map();
    this.#bookWaiting = new Set();
    this.#bookSubscribed = new Set();
    this.#instrumentRequested = false;
    if (symbols.length === 0) {
      session.ready('no symbols to subscribe');
      return;
    }
    this.#subscribe(session, symbols, true);
  }

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    for (const s of symbols) this.#active.add(s);
    this.#dropRetry(
      'unsubscribe',
      symbols.map((s) => this.#map.toProvider(s)),
    );
    // a pair added while the exchange does no matching, or whose own state stops matching, is halted at once [status; instrument]
    this.#publishStatus(session, symbols);
    this.#subscribe(session, symbols, false);
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    // a pair whose subscribe still waits to be asked again is not subscribed at Kraken: nothing to unsubscribe
    const notSubscribed = this.#dropRetry(
      'subscribe',
      symbols.map((s) => this.#map.toProvider(s)),
    );
    for (const k of notSubscribed) {
      this.#pending.delete(k);
      this.#retrying.delete(k);
    }
    const subscribedOn = (channel: Channel, list: readonly string[]): string[] =>
      list.map((s) => this.#map.toProvider(s)).filter((p) => !notSubscribed.has(`${channel} ${p.toUpperCase()}`));
    for (const s of symbols) {
      this.#active.delete(s);
      // #published stays: the engine keeps the symbol's last status, so a later subscription must
      // publish a change from it (a pair halted when it left, online when it comes back)
      this.#awaiting.delete(s);
    }
    for (const channel of this.#opts.channels) {
      const list = subscribedOn(channel, symbols);
      if (list.length > 0) this.#send(session, { method: 'unsubscribe', channel, symbols: list, initial: false });
    }
    if (this.#opts.book) {
      const subscribed = symbols.filter((s) => this.#bookSubscribed.has(s) && subscribedOn('book', [s]).length > 0);
      for (const s of symbols) {
        this.#books.delete(s);
        this.#bookWaiting.delete(s);
        this.#bookSubscribed.delete(s);
      }
      if (subscribed.length > 0)
        this.#send(
          session,
          { method: 'unsubscribe', channel: 'book', symbols: subscribed.map((s) => this.#map.toProvider(s)), initial: false },
          { depth: this.#opts.bookDepth },
        );
    }
  }

  #subscribe(session: StreamSession, symbols: readonly string[], initial: boolean): void {
    for (const channel of this.#opts.channels) {
      if (channel === 'trade') {
        // a snapshot only where we already have trades to continue from (see the class comment)
        const resume = symbols.filter((s) => this.#opts.recoverTrades && this.#lastTradeId.has(s));
        const fresh = symbols.filter((s) => !resume.includes(s));
        for (const s of resume) this.#awaiting.set(s, []);
        if (resume.length > 0)
          this.#send(session, { method: 'subscribe', channel, symbols: resume.map((s) => this.#map.toProvider(s)), initial }, { snapshot: true });
        if (fresh.length > 0)
          this.#send(session, { method: 'subscribe', channel, symbols: fresh.map((s) => this.#map.toProvider(s)), initial }, { snapshot: false });
      } else {
        // the ticker snapshot is the current best bid/offer: wanted on every connection [ticker: snapshot]
        this.#send(
          session,
          { method: 'subscribe', channel, symbols: symbols.map((s) => this.#map.toProvider(s)), initial },
          { snapshot: true, event_trigger: this.#opts.tickerTrigger },
        );
      }
    }
    if (this.#opts.book) this.#subscribeBooks(session, symbols);
    // the instrument snapshot lists every pair with its state, so one subscription per connection covers pairs added later
    if (this.#opts.pairStatus) this.#requestInstrument(session);
  }

  /**
   * Book subscriptions need each pair's precision to check the checksum [checksum: Checksum
   * calculation]: pairs without one from `bookPrecision` wait for the `instrument` channel's
   * snapshot, which lists every pair with its `price_precision` and `qty_precision` [instrument].
   */
  #subscribeBooks(session: StreamSession, symbols: readonly string[]): void {
    const known = symbols.filter((s) => this.#precision.has(this.#map.toProvider(s).toUpperCase()));
    const waiting = symbols.filter((s) => !known.includes(s));
    this.#sendBook(session, known);
    if (waiting.length === 0) return;
    for (const s of waiting) this.#bookWaiting.add(s);
    this.#requestInstrument(session);
  }

  /** [instrument: Subscribe] once per connection, with no symbol list: the channel covers every pair. */
  #requestInstrument(session: StreamSession): void {
    if (this.#instrumentRequested) return;
    this.#instrumentRequested = true;
    const reqId = ++this.#reqId;
    this.#requests.set(reqId, { method: 'subscribe', channel: 'instrument', symbols: [], initial: false, remaining: 0 });
    session.send(JSON.stringify({ method: 'subscribe', params: { channel: 'instrument', snapshot: true }, req_id: reqId }));
  }

  /** [book: Subscribe Request] `depth` levels per side; the snapshot is what the book is built from. */
  #sendBook(session: StreamSession, symbols: readonly string[]): void {
    if (symbols.length === 0) return;
    for (const s of symbols) {
      this.#bookWaiting.delete(s);
      this.#bookSubscribed.add(s);
    }
    this.#send(
      session,
      { method: 'subscribe', channel: 'book', symbols: symbols.map((s) => this.#map.toProvider(s)), initial: false },
      { depth: this.#opts.bookDepth, snapshot: true },
    );
  }

  #send(session: StreamSession, req: Request, extra: Record<string, unknown> = {}): void {
    // while requests refused for the message rate wait to be asked again, new ones wait with them:
    // sent now, they would only be refused too, and keep the connection over the rate
    if (this.#retryTimer && !req.initial) {
      this.#addRetry(req.method, req.channel, extra, req.symbols);
      return;
    }
    const reqId = ++this.#reqId;
    this.#requests.set(reqId, { ...req, extra, remaining: req.symbols.length });
    if (req.initial) for (const s of req.symbols) this.#pending.add(`${req.channel} ${s.toUpperCase()}`);
    session.send(JSON.stringify({ method: req.method, params: { channel: req.channel, symbol: req.symbols, ...extra }, req_id: reqId }));
  }

  #addRetry(method: Request['method'], channel: Channel, extra: Record<string, unknown>, symbols: readonly string[]): void {
    const key = `${method} ${channel} ${JSON.stringify(extra)}`;
    let g = this.#retry.get(key);
    if (!g) this.#retry.set(key, (g = { method, channel, extra, symbols: new Set() }));
    for (const s of symbols) g.symbols.add(s);
  }

  /**
   * Forget waiting retries of these provider symbols for `method` (the symbol changed direction
   * meanwhile); returns the `channel PAIR` dropped.
   */
  #dropRetry(method: Request['method'], symbols: readonly string[]): Set<string> {
    const dropped = new Set<string>();
    for (const [key, g] of this.#retry) {
      if (g.method !== method) continue;
      for (const s of symbols) {
        if (g.symbols.delete(s)) dropped.add(`${g.channel} ${s.toUpperCase()}`);
        for (const k of this.#retryAttempts.keys()) if (k.startsWith(`${method} `) && k.endsWith(` ${s.toUpperCase()}`)) this.#retryAttempts.delete(k);
      }
      if (g.symbols.size === 0 && g.channel !== 'instrument') this.#retry.delete(key);
    }
    return dropped;
  }

  /**
   * A request Kraken refused for its message rate (KRAKEN_TRANSIENT_ERRORS): the pairs still wanted
   * are asked again after a jittered delay that doubles with each refusal in a row (1 s to 30 s),
   * together with whatever else waits, in one request per channel, so that the retries do not keep
   * the connection over the rate. After `attempts` refusals in a row a pair is given up and
   * reported as refused (a rate that never lets it through is no longer transient).
   */
  #retryLater(session: StreamSession, req: Request, method: Request['method'], symbols: readonly string[], error: string): void {
    const wanted = symbols.filter((s) => {
      if (req.channel === 'instrument') return true;
      const sym = this.#map.toCanonical(s);
      if (!sym) return false;
      if (method === 'unsubscribe') return !this.#active.has(sym);
      return this.#active.has(sym) && (req.channel !== 'book' || this.#bookSubscribed.has(sym));
    });
    const names = req.channel === 'instrument' ? [''] : wanted;
    const retried: string[] = [];
    for (const s of names) {
      const key = `${method} ${req.channel} ${s.toUpperCase()}`;
      const n = (this.#retryAttempts.get(key)?.n ?? 0) + 1;
      if (n > this.#retryOpts.attempts) {
        this.#retryAttempts.delete(key);
        this.#providerError(
          session,
          `kraken gave up ${method === 'subscribe' ? 'subscribing' : 'unsubscribing'} ${req.channel} ${s} after ${this.#retryOpts.attempts} attempts refused for its message rate (${error}); it stays ${method === 'subscribe' ? 'unsubscribed' : 'subscribed'} until the next connection`,
        );
        if (method === 'subscribe') this.#resolve(session, req.channel, s, 'refused', `${error}, given up`);
        if (method === 'subscribe' && req.channel === 'instrument' && !this.#pairStatesKnown) {
          // no pair states will come on this connection: the exchange state alone decides, as for any refusal
          this.#pairStatesKnown = true;
          this.#publishStatus(session, [...this.#active]);
        }
        continue;
      }
      this.#retryAttempts.set(key, { n, error });
      retried.push(s);
      if (method === 'subscribe' && s) this.#resolve(session, req.channel, s, 'retry', error);
    }
    if (retried.length === 0) return;
    if (req.channel === 'instrument') this.#addRetry(method, 'instrument', {}, []);
    else this.#addRetry(method, req.channel, req.extra ?? {}, retried);
    const attempt = Math.max(...retried.map((s) => this.#retryAttempts.get(`${method} ${req.channel} ${s.toUpperCase()}`)!.n));
    let delay: number | undefined;
    if (!this.#retryTimer) {
      delay = this.#retryBackoff.next();
      this.#retryTimer = setTimeout(() => this.#flushRetry(), delay);
      this.#retryTimer.unref?.();
    }
    const detail = `kraken refused ${method} ${req.channel} ${retried.join(',')} for its message rate (${error})`;
    session.ctx.metrics?.error(detail);
    session.ctx.log.warn(
      { feed: this.id, attempt, of: this.#retryOpts.attempts, retryInMs: delay },
      `${detail}: retrying ${req.channel} ${delay === undefined ? 'with the retry already planned' : `in ${delay} ms`} (attempt ${attempt} of ${this.#retryOpts.attempts})`,
    );
  }

  /** Ask again for everything the message rate refused: unsubscribes first, one request per channel and params. */
  #flushRetry(): void {
    this.#retryTimer = undefined;
    const session = this.#retrySession;
    const groups = [...this.#retry.values()].sort((a, b) => (a.method === b.method ? 0 : a.method === 'unsubscribe' ? -1 : 1));
    this.#retry = new Map();
    if (!session?.open) return;
    for (const g of groups) {
      if (g.channel === 'instrument') {
        this.#instrumentRequested = false;
        this.#requestInstrument(session);
        continue;
      }
      const symbols = [...g.symbols];
      if (symbols.length === 0) continue;
      if (g.channel === 'trade' && g.method === 'subscribe' && g.extra.snapshot === true)
        for (const s of symbols) {
          // a resumed pair: its updates wait for the snapshot again (see #awaiting)
          const sym = this.#map.toCanonical(s);
          if (sym && this.#active.has(sym)) this.#awaiting.set(sym, []);
        }
      this.#send(session, { method: g.method, channel: g.channel, symbols, initial: false }, g.extra);
    }
  }

  onMessage(data: Buffer, _isBinary: boolean, session: StreamSession): void {
    const text = data.toString('utf8');
    const msg = JSON.parse(text) as Record<string, unknown>;
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) throw new TypeError('kraken: a message is not a JSON object');
    // requests are answered with `method` (subscribe, unsubscribe, pong) [trade: Subscribe Ack; ping]
    // an error answering one of our requests may carry its req_id without `method`
    if (typeof msg.method === 'string' || (typeof msg.error === 'string' && typeof msg.req_id === 'number' && this.#requests.has(msg.req_id)))
      return this.#onResponse(msg, session);
    switch (msg.channel) {
      case 'heartbeat': // liveness only: arriving is all it does [heartbeat]
        return;
      case 'status':
        return this.#onStatus(msg, text, session);
      case 'trade':
        return this.#onTrades(msg, session);
      case 'ticker':
        return this.#onTicker(msg, session);
      case 'book':
        // re-read with prices and quantities as their exact text, for the checksum [checksum: Checksum calculation]
        return this.#opts.book ? this.#onBook(JSON.parse(rawBookNumbers(text)) as Record<string, unknown>, session) : undefined;
      case 'instrument':
        return this.#opts.book || this.#opts.pairStatus ? this.#onInstrument(msg, session) : undefined;
      default:
        if (typeof msg.error === 'string') this.#providerError(session, `kraken error: ${msg.error}`);
        return; // channels we did not ask for (book, ohlc, ...) are ignored
    }
  }

  /** Subscribe/unsubscribe acknowledgements, pongs and request errors. */
  #onResponse(msg: Record<string, any>, session: StreamSession): void {
    if (msg.method === 'pong') return;
    const req = typeof msg.req_id === 'number' ? this.#requests.get(msg.req_id) : undefined;
    const method = typeof msg.method === 'string' ? msg.method : req?.method;
    const result = (msg.result ?? {}) as Record<string, unknown>;
    const channel = (typeof result.channel === 'string' ? result.channel : req?.channel) as string | undefined;
    // one ack per symbol [trade: Subscribe Ack "symbol: the currency pair associated with this subscription"];
    // a refusal may name its symbol beside `error` rather than in `result`
    const named = typeof result.symbol === 'string' ? result.symbol : typeof msg.symbol === 'string' ? msg.symbol : undefined;
    const symbols = named !== undefined ? [named] : (req?.symbols ?? []);
    if (req) {
      // an ack naming no symbol answers the whole request
      req.remaining = named !== undefined ? (req.remaining ?? 1) - 1 : 0;
      if (req.remaining <= 0) this.#requests.delete(msg.req_id as number);
    }
    if (msg.success === false || typeof msg.error === 'string') {
      const error = String(msg.error ?? '');
      // a refusal for the message rate, of a request we know: asked again later (#retryLater)
      if (req && (method === 'subscribe' || method === 'unsubscribe') && KRAKEN_TRANSIENT_ERRORS.some((re) => re.test(error))) {
        if (method === 'subscribe' && channel === 'trade')
          for (const s of symbols) {
            const sym = this.#map.toCanonical(s);
            if (sym) this.#release(sym, session); // no snapshot comes for this request; a retry asks for it again
          }
        this.#retryLater(session, req, method, symbols, error);
        return;
      }
      const what = `${method} ${channel ?? '?'} ${symbols.join(',') || '(no symbol named)'}`;
      const hint = symbols.length > 0 ? `; check feeds.${this.id}.symbols and symbolMap (Kraken v2 pairs look like BTC/USD)` : '';
      this.#providerError(session, `kraken refused ${what}: ${String(msg.error ?? 'no reason given')}${hint}`);
      if (method === 'subscribe' && channel) for (const s of symbols) this.#resolve(session, channel, s, 'refused', error);
      if (method === 'subscribe' && channel === 'instrument' && !this.#pairStatesKnown) {
        // no pair states will come: the exchange state alone decides
        this.#pairStatesKnown = true;
        this.#publishStatus(session, [...this.#active]);
      }
      // a refused trade subscription sends no snapshot: what was held goes out now
      if (method === 'subscribe' && channel === 'trade')
        for (const s of symbols) {
          const sym = this.#map.toCanonical(s);
          if (sym) this.#release(sym, session);
        }
      return;
    }
    if (channel && (method === 'subscribe' || method === 'unsubscribe'))
      for (const s of symbols) {
        // accepted: a pair asked again after a rate refusal is through
        const retried = this.#retryAttempts.delete(`${method} ${channel} ${s.toUpperCase()}`);
        if (retried && this.#retry.size === 0 && !this.#retryTimer) this.#retryBackoff.reset();
      }
    if (channel === 'instrument' && method === 'subscribe') this.#retryAttempts.delete('subscribe instrument ');
    if (method === 'subscribe' && channel) for (const s of symbols) this.#resolve(session, channel, s, 'ok');
    if (Array.isArray(result.warnings) && result.warnings.length > 0)
      session.ctx.log.warn({ feed: this.id, warnings: result.warnings }, `kraken: ${channel} warnings`);
  }

  /**
   * One (channel, pair) of the opening subscription answered: accepted, refused, or refused for the
   * message rate and asked again (`retry`, undecided until the retry is answered). The feed is
   * `connected` once every pair was answered and one was accepted; pairs still being retried are
   * named in the detail meanwhile. Only permanent refusals of every pair make it `error`.
   */
  #resolve(session: StreamSession, channel: string, providerSymbol: string, outcome: 'ok' | 'refused' | 'retry', error = ''): void {
    const key = `${channel} ${providerSymbol.toUpperCase()}`;
    if (!this.#pending.has(key)) return; // a later, live subscription: nothing to decide
    if (outcome === 'retry') this.#retrying.set(key, error);
    else {
      this.#pending.delete(key);
      this.#retrying.delete(key);
      if (outcome === 'ok') this.#accepted.push(key);
      else this.#rejected.push(`${key}${error ? ` (${error})` : ''}`);
    }
    if (this.#decided) {
      if (outcome !== 'retry') session.ready(this.#readyDetail());
      return;
    }
    for (const k of this.#pending) if (!this.#retrying.has(k)) return; // still waiting for answers
    if (this.#accepted.length === 0) {
      if (this.#pending.size > 0) return; // only pairs being retried: wait for their answers
      session.fail('error', `kraken refused every subscription: ${this.#rejected.join('; ')}; check feeds.${this.id}.symbols and symbolMap`);
      return;
    }
    this.#decided = true;
    session.ready(this.#readyDetail());
    this.reconcileSymbols(this.#opening, session);
  }

  #readyDetail(): string {
    const system = this.#system && this.#system !== 'online' ? `; exchange status ${this.#system}` : '';
    const rejected = this.#rejected.length > 0 ? `; refused: ${this.#rejected.join('; ')}` : '';
    const retrying = this.#retrying.size > 0 ? `; retrying after Kraken's message rate: ${[...this.#retrying.keys()].join(', ')}` : '';
    return `subscribed ${this.#opts.channels.join('+')} for ${this.#opening.length} symbols${rejected}${retrying}${system}`;
  }

  /** [status] `system`: online, maintenance, cancel_only or post_only; sent on connect and on change. */
  #onStatus(msg: Record<string, any>, text: string, session: StreamSession): void {
    const st = Array.isArray(msg.data) ? (msg.data[0] as Record<string, unknown> | undefined) : undefined;
    if (!st) return;
    this.#system = typeof st.system === 'string' ? st.system : undefined;
    // a state the page does not list is not guessed: it stays in the log only, and the last listed one stands
    if (this.#system === 'online' || (this.#system !== undefined && Object.hasOwn(KRAKEN_SYSTEM_REASON, this.#system))) this.#systemState = this.#system;
    // connection_id is a 64-bit integer (above 2^53): keep its digits from the text, not the parsed double
    const connectionId = /"connection_id"\s*:\s*(\d+)/.exec(text)?.[1];
    const fields = { feed: this.id, system: this.#system, api_version: st.api_version, version: st.version, connection_id: connectionId };
    if (this.#system === 'online') session.ctx.log.info(fields, 'kraken: exchange status online');
    else session.ctx.log.warn(fields, `kraken: exchange status ${this.#system ?? 'unknown'}: no matching (no trades) until it is online again`);
    this.#publishStatus(session, [...this.#active]);
  }

  /**
   * Each symbol's trading status: the exchange state [status: `system`] and the pair's own state
   * [instrument: `pairs[].status`] together; a pair trades only if both let it (`#tradingStatus`).
   * Kraken sends both on every connection: only changes are published, and a symbol that never
   * left `online` gets no status tick at all.
   */
  #publishStatus(session: StreamSession, symbols: readonly string[]): void {
    let ts: bigint | undefined; // neither message carries a time [status; instrument]
    for (const sym of symbols) {
      if (!this.#active.has(sym)) continue;
      const st = this.#tradingStatus(sym);
      if ((this.#published.get(sym) ?? lastStatusCode(session.ctx, sym, 'online')) === st.code) continue;
      if (st.status === 'trading' && this.#opts.pairStatus && !this.#pairStatesKnown) continue; // its own state may still hold it
      this.#published.set(sym, st.code);
      ts ??= nowNs();
      session.ctx.emit({ k: 'status', sym, ...st, ts });
    }
  }

  /**
   * The exchange first: any listed state but `online` stops matching for every pair [status]. Then
   * the pair's own state (KRAKEN_PAIR_STATUS); a pair without one (none received yet, or not in the
   * instrument snapshot) is trading, as protocol v1 has it for a symbol with no status report.
   */
  #tradingStatus(sym: string): { status: TradingStatus; code: string; reason?: string } {
    const system = this.#systemState;
    if (system !== undefined && system !== 'online') return { status: 'halted', code: system, reason: KRAKEN_SYSTEM_REASON[system]! };
    const pair = this.#opts.pairStatus ? this.#pairStatus.get(this.#map.toProvider(sym).toUpperCase()) : undefined;
    if (pair === undefined || pair === 'online') return { status: 'trading', code: 'online' };
    const known = Object.hasOwn(KRAKEN_PAIR_STATUS, pair) ? KRAKEN_PAIR_STATUS[pair] : undefined;
    if (known) return { code: pair, ...known };
    // a state the instrument page does not list: not shown as trading (the conservative reading)
    return { status: 'halted', code: pair, reason: `Kraken pair state ${pair} (not documented): not shown as trading` };
  }

  #onTrades(msg: Record<string, any>, session: StreamSession): void {
    const items = Array.isArray(msg.data) ? (msg.data as Item[]) : [];
    const snapshot = msg.type === 'snapshot';
    // parse every item first; one bad item is reported and skipped, the others still count
    const trades: { sym: string; id: number; item: Item }[] = [];
    for (const item of items) {
      const r = this.#guard(session, 'trade', item, () => {
        const sym = typeof item.symbol === 'string' ? this.#map.toCanonical(item.symbol) : undefined;
        if (!sym || !this.#active.has(sym)) return undefined; // not one of ours (or no longer)
        return { sym, id: tradeId(item.trade_id), item };
      });
      if (r) trades.push(r);
    }
    if (snapshot) trades.sort((a, b) => a.id - b.id);
    else if (this.#awaiting.size > 0) {
      // a pair resumed on this connection: its updates wait behind its snapshot (see #awaiting)
      const live = trades.filter((t) => {
        const held = this.#awaiting.get(t.sym);
        if (held) held.push(t);
        return !held;
      });
      for (const [sym, held] of this.#awaiting) if (held.length > MAX_HELD_TRADES) this.#release(sym, session);
      trades.length = 0;
      trades.push(...live);
    }
    this.#emitTrades(trades, snapshot, session);
    if (snapshot) for (const sym of new Set(trades.map((t) => t.sym))) this.#release(sym, session);
  }

  /** The pair's snapshot came (or will not): its held updates go out after it, in order. */
  #release(sym: string, session: StreamSession): void {
    const held = this.#awaiting.get(sym);
    if (!held) return;
    this.#awaiting.delete(sym);
    this.#emitTrades(held, false, session);
  }

  #emitTrades(trades: readonly { sym: string; id: number; item: Item }[], snapshot: boolean, session: StreamSession): void {
    for (const { sym, id, item } of trades) {
      const last = this.#lastTradeId.get(sym);
      if (last !== undefined && id <= last) continue; // already emitted (a snapshot overlapping what we had)
      if (snapshot && last === undefined) continue; // history from before we started, not live data
      if (last !== undefined && id > last + 1) {
        const missed = id - last - 1;
        session.ctx.metrics?.gap(missed, `${sym}: trade_id jumped from ${last} to ${id}`);
        session.ctx.log.warn({ feed: this.id, sym, from: last, to: id }, `kraken: ${missed} trades of ${sym} were not received`);
      }
      const ok = this.#guard(session, 'trade', item, () => {
        session.ctx.emit({
          k: 'trade',
          sym,
          id: String(id), // unique per book [trade: trade_id], so per canonical symbol
          p: price(item.price, 'trade.price'), // [trade: price] "Average price of the trade", quote currency
          s: size(item.qty, 'trade.qty'), // [trade: qty] in base currency
          ...side(item.side), // [trade: side] "The side of the taker order" = the aggressor
          ts: time(item.timestamp, 'trade.timestamp'), // [trade: timestamp] RFC 3339, microseconds
        });
        return true;
      });
      if (ok) this.#lastTradeId.set(sym, id);
    }
  }

  #onTicker(msg: Record<string, any>, session: StreamSession): void {
    // "The ticker element is always the first and only item in the data payload" [ticker]; all are read anyway
    for (const item of Array.isArray(msg.data) ? (msg.data as Item[]) : []) {
      this.#guard(session, 'ticker', item, () => {
        const sym = typeof item.symbol === 'string' ? this.#map.toCanonical(item.symbol) : undefined;
        if (!sym || !this.#active.has(sym)) return undefined;
        // [ticker] gives no "no bid"/"no ask" marker; a side with no order comes as price 0, so it
        // is published absent with its quantity (docs/feeds.md, "Empty quote sides"), never by
        // rejecting the whole quote; a ticker with neither side gives no quote
        // a negative quantity is refused, as a trade's `size` is
        const bid = quoteSide(item.bid, item.bid_qty, 'ticker.bid/bid_qty'); // [ticker: bid, bid_qty] best bid price, quantity (base currency)
        const ask = quoteSide(item.ask, item.ask_qty, 'ticker.ask/ask_qty'); // [ticker: ask, ask_qty] best ask price, quantity
        const sides = quoteFields(bid, ask);
        if (!sides) return undefined;
        session.ctx.emit({
          k: 'quote',
          sym,
          ...sides,
          // newer revisions of the page document `timestamp` (RFC 3339); without it the quote is stamped on receipt
          ts: item.timestamp === undefined ? nowNs() : time(item.timestamp, 'ticker.timestamp'),
        });
        return true;
      });
    }
  }

  /**
   * [instrument: Snapshot / Update] `data.pairs[]` with `symbol`, `price_precision` and
   * `qty_precision`: the precisions the book checksum formats numbers with. Book subscriptions
   * waiting for them are sent; a pair the snapshot does not list is reported (set `bookPrecision`).
   */
  #onInstrument(msg: Record<string, any>, session: StreamSession): void {
    const pairs = Array.isArray(msg.data?.pairs) ? (msg.data.pairs as Item[]) : [];
    const snapshot = msg.type === 'snapshot';
    if (this.#opts.pairStatus) this.#readPairStates(pairs, snapshot, session);
    if (!this.#opts.book) return;
    for (const pair of pairs) {
      const { symbol, price_precision: pp, qty_precision: qp } = pair;
      if (typeof symbol !== 'string' || !Number.isInteger(pp) || !Number.isInteger(qp) || this.#configured.has(symbol.toUpperCase())) continue;
      this.#precision.set(symbol.toUpperCase(), { price: pp as number, qty: qp as number });
    }
    const ready = [...this.#bookWaiting].filter((s) => this.#precision.has(this.#map.toProvider(s).toUpperCase()));
    this.#sendBook(session, ready);
    if (!snapshot) return;
    for (const s of [...this.#bookWaiting]) {
      this.#bookWaiting.delete(s);
      this.#providerError(
        session,
        `kraken book ${this.#map.toProvider(s)}: the instrument channel gives no price/qty precision for it, so its checksum cannot be checked; set feeds.${this.id}.bookPrecision.${s}`,
      );
    }
  }

  /**
   * [instrument: Snapshot / Update] `pairs[].status`, the pair's own state. "The snapshot and
   * update responses share the same structure": a snapshot lists every pair (it replaces what we
   * had), an update the pairs that changed. The trading status of our symbols follows.
   */
  #readPairStates(pairs: readonly Item[], snapshot: boolean, session: StreamSession): void {
    if (snapshot) {
      this.#pairStatus.clear();
      this.#pairStatesKnown = true;
    }
    for (const { symbol, status } of pairs) {
      if (typeof symbol !== 'string' || typeof status !== 'string') continue;
      this.#pairStatus.set(symbol.toUpperCase(), status);
      if (status === 'online' || Object.hasOwn(KRAKEN_PAIR_STATUS, status) || this.#unknownPairStates.has(status)) continue;
      this.#unknownPairStates.add(status);
      session.ctx.log.warn({ feed: this.id, pair: symbol, status }, `kraken: pair state ${status} is not documented; its pairs are published as halted`);
    }
    this.#publishStatus(session, [...this.#active]);
  }

  /**
   * [book: Snapshot / Update] one item per pair: `bids`, `asks` ({price, qty}), `checksum`, and
   * `timestamp` on updates. Every message is applied to the local book, truncated to the
   * subscribed depth, and checked against its checksum [checksum]. A mismatch means the local
   * book is not Kraken's: it is counted, the pair's book is resubscribed (a new snapshot resets
   * it) and nothing more is emitted for that pair until that snapshot arrives.
   */
  #onBook(msg: Record<string, any>, session: StreamSession): void {
    const snapshot = msg.type === 'snapshot';
    for (const item of Array.isArray(msg.data) ? (msg.data as Item[]) : []) {
      let data;
      let ts;
      try {
        data = parseBookData(item);
        ts = !snapshot && data.timestamp !== undefined ? time(data.timestamp, 'book.timestamp') : nowNs();
      } catch (err) {
        this.#guard(session, 'book', item, () => {
          throw err;
        });
        // a message that cannot be applied leaves the book behind Kraken's: start it over
        const sym = typeof item.symbol === 'string' ? this.#map.toCanonical(item.symbol) : undefined;
        const st = sym ? this.#books.get(sym) : undefined;
        if (sym && st?.synced && this.#active.has(sym)) this.#resync(session, sym, st);
        continue;
      }
      const sym = this.#map.toCanonical(data.symbol);
      if (!sym || !this.#active.has(sym)) continue;
      const precision = this.#precision.get(data.symbol.toUpperCase());
      if (!precision) {
        this.#providerError(session, `kraken book ${data.symbol}: no price/qty precision to check the checksum with`);
        continue;
      }
      let st = this.#books.get(sym);
      if (snapshot) {
        const book = new KrakenBook(this.#opts.bookDepth);
        const levels = book.snapshot(data.bids, data.asks, data.text);
        st = { book, synced: true, snapshotMismatches: st?.snapshotMismatches ?? 0 };
        this.#books.set(sym, st);
        if (!this.#verify(session, sym, st, data.checksum, precision, true)) continue;
        st.snapshotMismatches = 0;
        // the snapshot has no timestamp [book: Snapshot]: stamped on receipt
        session.ctx.emit({ k: 'book', sym, reset: true, bids: levels.bids, asks: levels.asks, ts });
        continue;
      }
      if (!st?.synced) continue; // resyncing: the new subscription's snapshot resets the book
      const changed = st.book.update(data.bids, data.asks, data.text);
      if (!this.#verify(session, sym, st, data.checksum, precision, false)) continue;
      if (changed.bids.length + changed.asks.length > 0) session.ctx.emit({ k: 'book', sym, bids: changed.bids, asks: changed.asks, ts });
    }
  }

  #verify(session: StreamSession, sym: string, st: BookState, expected: number, precision: BookPrecision, snapshot: boolean): boolean {
    const actual = st.book.checksum(precision);
    if (actual === expected) return true;
    this.#checksumMismatches++;
    st.synced = false;
    const pair = this.#map.toProvider(sym);
    const detail = `kraken book ${pair}: checksum ${actual} does not match Kraken's ${expected}${snapshot ? ' on a snapshot' : ''}`;
    session.ctx.metrics?.error(detail);
    if (snapshot && ++st.snapshotMismatches >= MAX_SNAPSHOT_MISMATCHES) {
      // a fresh snapshot that never matches: the precision is wrong, resubscribing would loop
      this.#providerError(
        session,
        `kraken book ${pair}: ${st.snapshotMismatches} snapshots in a row fail their checksum; the book is not published. Check feeds.${this.id}.bookPrecision.${sym} (price ${precision.price}, qty ${precision.qty} decimals)`,
      );
      return false;
    }
    session.ctx.log.warn({ feed: this.id, sym, expected, actual }, `${detail}: resubscribing the book`);
    this.#resync(session, sym, st);
    return false;
  }

  /** Drop the pair's book and subscribe it again: the new subscription's snapshot resets it [book: Subscribe Request]. */
  #resync(session: StreamSession, sym: string, st: BookState): void {
    st.synced = false;
    const req = { channel: 'book' as const, symbols: [this.#map.toProvider(sym)], initial: false };
    this.#send(session, { method: 'unsubscribe', ...req }, { depth: this.#opts.bookDepth });
    this.#send(session, { method: 'subscribe', ...req }, { depth: this.#opts.bookDepth, snapshot: true });
  }

  /** Run `fn` for one item; a throw is reported (counted, logged with the item) and gives undefined. */
  #guard<T>(session: StreamSession, channel: string, item: unknown, fn: () => T | undefined): T | undefined {
    try {
      return fn();
    } catch (err) {
      const detail = `kraken ${channel}: ${(err as Error).message}`;
      session.ctx.metrics?.error(detail);
      session.ctx.log.warn({ feed: this.id, sample: JSON.stringify(item)?.slice(0, 200) }, `feed: item could not be normalized: ${detail}`);
      return undefined;
    }
  }

  #providerError(session: StreamSession, detail: string): void {
    session.ctx.metrics?.error(detail);
    session.ctx.log.error({ feed: this.id }, detail);
  }
}

/** [status: `system`] what each state other than `online` means for trading (Kraken's own wording, shortened) */
const KRAKEN_SYSTEM_REASON: Readonly<Record<string, string>> = {
  maintenance: 'Kraken maintenance: markets offline, no order matching',
  cancel_only: 'Kraken cancel only: no new orders, no order matching',
  post_only: 'Kraken post only: only post-only limit orders, no order matching',
};

/**
 * [instrument: `pairs[].status`] the pair's own state. Kraken's instrument page lists the values
 * (online, cancel_only, delisted, limit_only, maintenance, post_only, reduce_only,
 * work_in_progress) without saying what each does to matching; where another Kraken page does,
 * it is cited. `online` is trading and is not listed here.
 */
const KRAKEN_PAIR_STATUS: Readonly<Record<string, { status: TradingStatus; reason: string }>> = {
  // [status] and Kraken Support "What are the possible trading modes?": "No order matching (trades) will occur"
  maintenance: { status: 'halted', reason: 'Kraken pair in maintenance: no order matching' },
  cancel_only: { status: 'halted', reason: 'Kraken pair cancel only: no new orders, no order matching' },
  post_only: { status: 'halted', reason: 'Kraken pair post only: only post-only limit orders, no order matching' },
  // trading modes, Limit Only: "Only limit orders can be submitted ... No order matching (trades) will occur"
  limit_only: { status: 'halted', reason: 'Kraken pair limit only: only limit orders, no order matching' },
  // not described: a delisted pair is not traded, and a pair being set up is not open yet (conservative)
  delisted: { status: 'halted', reason: 'Kraken pair delisted' },
  work_in_progress: { status: 'halted', reason: 'Kraken pair not open yet (work in progress)' },
  // not described either: the instrument page, the FIX Instrument List (AssetPairStatus 7
  // ReduceOnly) and the trading modes page say nothing of matching in it. Kraken Support "Other
  // order options" > Reduce only describes only the order flag (an order that "will only reduce a
  // currently open position"; "If there is no existing position, the reduce-only order will be
  // rejected"), so in a reduce_only pair an order that opens or adds to a position is refused:
  // the pair is not open to ordinary trading. Conservative, like the other undescribed states:
  // halted, with the code, so a client can show "reduce only". Trades that still print are
  // published (trade:SYM and the ticker follow them whatever the status).
  reduce_only: { status: 'halted', reason: 'Kraken pair reduce only: only orders that reduce a position are accepted' },
};

/** [trade: trade_id] an integer; anything else, or one past 2^53 that a JSON number cannot hold exactly, is refused. */
function tradeId(v: unknown): number {
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new RangeError(`trade.trade_id: ${JSON.stringify(v)} is not a non-negative integer below 2^53`);
  return n;
}

function size(v: unknown, field: string): number {
  const n = decimal(v, field);
  if (n < 0) throw new RangeError(`${field}: ${JSON.stringify(v)} is negative`);
  return n;
}

function time(v: unknown, field: string): bigint {
  if (typeof v !== 'string') throw new RangeError(`${field}: ${JSON.stringify(v)} is not an RFC 3339 time`);
  return isoToNs(v);
}

function side(v: unknown): { side?: 'buy' | 'sell' } {
  return v === 'buy' ? { side: 'buy' } : v === 'sell' ? { side: 'sell' } : {};
}
