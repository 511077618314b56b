import { z } from 'zod';
import { nowNs } from '../../src/core/time.js';
import { commonFeedFields, runnerOptions } from '../config.js';
import { decimal, price, quoteFields, quoteSide } from '../sdk/decimal.js';
import type { FeedContext, TickInput } from '../sdk/adapter.js';
import type { StreamSession } from '../sdk/runner.js';
import { PacedSender } from '../sdk/paced-sender.js';
import { StreamFeed } from '../sdk/stream-feed.js';
import { pairRule, SymbolMap } from '../sdk/symbol-map.js';
import { toNs } from '../sdk/time.js';
import { lastStatusCode } from '../sdk/last-status.js';
import { DepthSync, parseDepthEvent, parseDepthSnapshot, rateLimitWaitMs, snapshotRetryMs } from './depth-sync.js';
import type { DepthEvent, DepthOutput, DepthSnapshot } from './depth-sync.js';

/**
 * Binance spot market streams (public, no key). One combined-stream connection:
 *   GET {url}/stream?streams=btcusdt@trade/btcusdt@bookTicker
 * Every frame is {"stream":"<name>","data":<payload>}; symbols are lower case in stream names.
 * `trade` gives trades (id `t`, price `p`, qty `q`, trade time `T` ms, `m` = buyer is maker, so
 * the aggressor sold); `bookTicker` gives best bid/ask (`b`/`B`, `a`/`A`) without a timestamp,
 * so quotes are stamped with the receive time. Symbols added later are sent live with
 * {"method":"SUBSCRIBE"}. The server pings every 20 s (answered by the socket) and closes every
 * connection at 24 h, so we reconnect on our own a little before that. Times: "All time and
 * timestamp related fields are milliseconds by default"; `timeUnit=MICROSECOND` in the URL gives
 * microseconds (General WSS information), which the adapter asks for by default (`timeUnit`) so
 * that trade times keep their sub-millisecond digits. With `depth` in
 * `streams`, each symbol's order book comes from the diff depth stream and REST snapshots,
 * synchronised by Binance's documented procedure (depth-sync.ts).
 *
 * Trades made while the adapter is disconnected (a drop, and the reconnect every 24 h) are not
 * replayed by the stream. Trade IDs are per symbol and consecutive (Trade Streams `t`; the
 * aggregate trade stream's first..last trade ID ranges and REST "Old trade lookup" `fromId`
 * paging rely on it; the page itself only says "Trade ID"), so the first trade of a symbol on a new connection
 * shows the ones missed: when it is not the last one seen + 1, the adapter holds the live trades
 * of that symbol, asks REST "Recent trades list" (GET /api/v3/trades, the 1000 most recent) for
 * the missing ones and, for those older than that, "Old trade lookup" (GET
 * /api/v3/historicalTrades?fromId, keyless since 2023-07-11), emits them in id order, then the
 * held ones (`recoverTrades`). Missing trades beyond BINANCE_MAX_HISTORICAL_PAGES pages of the
 * lookup are counted as a gap.
 */
/**
 * The shortest statusPollMs: one exchangeInfo request (weight 20, REST "Exchange information")
 * every 5 s is 240 weight a minute, 4 % of the documented REQUEST_WEIGHT limit of 6000 a minute
 * per IP (ENUM definitions, Rate limiters: REQUEST_WEIGHT, MINUTE, 6000). The default, one a
 * minute, is 20.
 */
const MIN_STATUS_POLL_MS = 5000;
/**
 * WebSocket Streams > WebSocket Limits: "There is a limit of 300 connections per attempt every 5
 * minutes per IP". A combined-stream connection is ready as soon as it opens (its URL carries the
 * subscription), which resets the backoff, so a server that closes each connection right after
 * opening it was reconnected every 125-250 ms with the default backoff (faster with a shorter
 * `backoff` in the feeds file): attempts start at least 1 s apart, at most 300 in 5 minutes,
 * whatever the backoff settings or the cause, across all the Binance feeds of the process (the
 * limit is per IP: connectSpacingKey) (feeds/binance/test/binance-connect-rate.test.ts)
 */
export const BINANCE_MIN_CONNECT_INTERVAL_MS = 1000;

/**
 * Pages of REST "Old trade lookup" (GET /api/v3/historicalTrades, at most 1000 trades a page, weight
 * 25, the same as "Recent trades list") one trade recovery asks at most, for the missed trades older
 * than the 1000 most recent: 5000 trades (several minutes of the busiest pairs) for at most 125
 * weight a symbol, against REQUEST_WEIGHT 6000 a minute per IP, so that a reconnect of many symbols
 * does not spend the IP's budget (a 429 still pauses every REST request: #restRefused). Older missed
 * trades are counted as a gap.
 */
export const BINANCE_MAX_HISTORICAL_PAGES = 5;

export const BinanceOptionsSchema = z
  .object({
    ...commonFeedFields,
    streams: z
      .array(z.enum(['trade', 'bookTicker', 'depth']))
      .min(1)
      .default(['trade', 'bookTicker']),
    restUrl: z
      .string()
      .url()
      .optional()
      .describe(
        'REST base URL for depth snapshots and trade recovery (default https://api.binance.com; trade recovery needs it for a url on another host than stream.binance.com)',
      ),
    recoverTrades: z
      .boolean()
      .default(true)
      .describe(
        'after a reconnect, emit the trades made meanwhile from GET /api/v3/trades (the 1000 most recent) and, for older ones, GET /api/v3/historicalTrades (up to 5000 more per symbol)',
      ),
    depthLimit: z.number().int().min(5).max(5000).default(1000).describe('levels per side of each depth snapshot (GET /api/v3/depth limit)'),
    depthSpeed: z.enum(['100ms', '1000ms']).default('100ms').describe('diff depth stream speed: <symbol>@depth@100ms or <symbol>@depth'),
    depthRetryMs: z
      .number()
      .int()
      .min(1)
      .default(250)
      .describe(
        'wait before asking again for a depth snapshot that was stale or failed; doubles with each further one in a row, up to 30 s (a 429/418 waits its Retry-After)',
      ),
    statusPollMs: z
      .number()
      .int()
      .refine((v) => v === 0 || v >= MIN_STATUS_POLL_MS, `0 (off) or at least ${MIN_STATUS_POLL_MS} ms`)
      .default(60_000)
      .describe(
        "how often each symbol's trading status is read from REST GET /api/v3/exchangeInfo (weight 20 a request, all the feed's symbols in one); 0 = never",
      ),
    timeUnit: z
      .enum(['MICROSECOND', 'MILLISECOND'])
      .default('MICROSECOND')
      .describe("unit Binance sends times in (URL parameter timeUnit): MICROSECOND keeps sub-millisecond trade times; MILLISECOND is Binance's default"),
  })
  .strict();
export type BinanceOptions = z.infer<typeof BinanceOptionsSchema>;

export const BINANCE_DEFAULT_URL = 'wss://stream.binance.com:9443';
export const BINANCE_DEFAULT_REST_URL = 'https://api.binance.com';
/** WebSocket Streams > WebSocket Limits: "A single connection can listen to a maximum of 1024 streams" */
export const BINANCE_MAX_STREAMS = 1024;
/**
 * WebSocket Limits: "a limit of 5 incoming messages per second", PING and PONG frames included;
 * "a connection that goes beyond the limit will be disconnected". SUBSCRIBE/UNSUBSCRIBE requests
 * go out in order, at most 3 in any RATE_WINDOW_MS, leaving room for the pong to the server's ping
 * and our own ping; a burst of symbol changes waits instead.
 */
const MAX_REQUESTS = 3;
/** the window those are counted over: a second plus a margin for network jitter */
const RATE_WINDOW_MS = 1100;

type TradeInput = Extract<TickInput, { k: 'trade' }>;

/** the first trade of a symbol on a new connection, checked against the last one emitted before */
interface Resume {
  /** the last trade ID emitted before this connection */
  from: number;
  /** live trades held while REST is asked for the missing ones */
  held?: TradeInput[];
}

export class BinanceFeed extends StreamFeed {
  readonly #opts: BinanceOptions;
  readonly #map: SymbolMap;
  #requestId = 0;
  /** order book sync per canonical symbol (streams include `depth`) */
  readonly #depth = new Map<string, DepthSync>();
  /**
   * No REST request (depth snapshot, exchangeInfo status poll, trade recovery) before this time (ms):
   * the Retry-After of a 429/418 on any of them, since the request limits are per IP (General API
   * Information > LIMITS > IP Limits).
   */
  #restPauseUntil = 0;
  readonly #snapshotTimers = new Set<NodeJS.Timeout>();
  /** the last trade ID emitted per canonical symbol; survives reconnects (that is its purpose) */
  readonly #lastTradeId = new Map<string, number>();
  /** per connection: symbols whose first trade on it is still to be checked against #lastTradeId */
  #resume = new Map<string, Resume>();
  #recovered = 0;
  /** subscribe/unsubscribe messages, paced to the provider's rate limit */
  readonly #outbox = new PacedSender(MAX_REQUESTS, RATE_WINDOW_MS);
  // trading status from REST exchangeInfo (see #pollStatus)
  #statusTimer: NodeJS.Timeout | undefined;
  #statusDueAt = 0;
  #statusRunning = false;
  /** an earlier poll was asked for while one ran (a symbol subscribed meanwhile) */
  #statusSooner = false;
  /** the provider symbols the last poll that answered asked for */
  #polledSymbols = new Set<string>();
  #statusStopped = true;
  #lastStatusPoll = -Infinity;
  /** per canonical symbol: the exchangeInfo `status` last published (absent: none published yet, lastStatusCode: the status taken up after a restart, else TRADING) */
  readonly #statusPublished = new Map<string, string>();
  /** provider symbols (upper case) exchangeInfo does not know: left out of later requests */
  readonly #unknownSymbols = new Set<string>();

  constructor(id: string, opts: BinanceOptions) {
    super(
      id,
      opts.symbols,
      runnerOptions(opts, {
        pingIntervalMs: 30_000,
        staleAfterMs: 90_000,
        maxConnectionAgeMs: 23 * 3600_000 + 50 * 60_000,
        minConnectIntervalMs: BINANCE_MIN_CONNECT_INTERVAL_MS,
        connectSpacingKey: 'binance',
      }),
    );
    this.#opts = opts;
    // BTC-USD -> btcusd by default; the feeds file maps BTC-USD: BTCUSDT where the venue quotes in USDT
    this.#map = new SymbolMap(opts.symbols, pairRule('', { lower: true }), opts.symbolMap);
  }

  #streamNames(symbols: readonly string[]): string[] {
    const name = (k: string): string => (k === 'depth' ? (this.#opts.depthSpeed === '100ms' ? 'depth@100ms' : 'depth') : k);
    return symbols.flatMap((s) => this.#opts.streams.map((k) => `${this.#map.toProvider(s).toLowerCase()}@${name(k)}`));
  }

  url(symbols: readonly string[]): string {
    const base = (this.#opts.url ?? BINANCE_DEFAULT_URL).replace(/\/+$/, '');
    const path = /\/stream$/.test(base) ? base : `${base}/stream`;
    // General WSS information: "add the parameter timeUnit=MICROSECOND ... in the URL"; milliseconds are the default
    const unit = this.#opts.timeUnit === 'MICROSECOND' ? '&timeUnit=MICROSECOND' : '';
    return `${path}?streams=${this.#streamNames(symbols).join('/')}${unit}`;
  }

  /** trades emitted from REST "Recent trades list" because the stream missed them (a reconnect) */
  /** levels per side of each depth snapshot (`depthLimit`; the engine's `book.maxLevels` unless set, see feeds/registry.ts) */
  get depthLimit(): number {
    return this.#opts.depthLimit;
  }

  get recoveredTrades(): number {
    return this.#recovered;
  }

  #restBase(): string | undefined {
    return binanceTradeRestBase(this.#opts);
  }

  onOpen(session: StreamSession): void {
    // the URL carries the subscription: its symbols are the ones this connection streams. Symbols
    // added or removed while it was being made are not in it (the runner sends live changes only
    // on a ready connection): they are subscribed or unsubscribed below, once it is ready
    const symbols = session.urlSymbols;
    // a new connection: every book starts over from a snapshot
    this.#depth.clear();
    // and the first trade of each symbol seen before shows whether trades were missed meanwhile
    this.#resume = new Map();
    for (const s of symbols) {
      const from = this.#lastTradeId.get(s);
      if (from !== undefined) this.#resume.set(s, { from });
    }
    // nothing to confirm
    session.ready(`${symbols.length} symbols, streams ${this.#opts.streams.join('+')}`);
    this.reconcileSymbols(symbols, session);
    // a symbol added while there was no connection (no SUBSCRIBE, no onSubscribe) gets its trading
    // status soon too
    if (this.#unpolled()) this.#scheduleStatus(Math.max(0, this.#lastStatusPoll + MIN_STATUS_POLL_MS - Date.now()), true);
  }

  /** Whether a symbol of the feed was not in the last poll that answered (and is not unknown to Binance). */
  #unpolled(): boolean {
    return this.runner.symbols.some((sym) => {
      const S = this.#map.toProvider(sym).toUpperCase();
      return !this.#polledSymbols.has(S) && !this.#unknownSymbols.has(S);
    });
  }

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    // a symbol added gets its trading status soon, not only at the next regular poll
    this.#scheduleStatus(Math.max(0, this.#lastStatusPoll + MIN_STATUS_POLL_MS - Date.now()), true);
    this.#outbox.send(session, JSON.stringify({ method: 'SUBSCRIBE', params: this.#streamNames(symbols), id: ++this.#requestId }));
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    for (const s of symbols) {
      this.#depth.delete(s);
      // trades made while a symbol is not subscribed are not ours to recover later
      this.#lastTradeId.delete(s);
      // #statusPublished stays: the engine keeps the symbol's last status, so a later subscription
      // must publish a change from it (a symbol halted when it left, TRADING when it comes back)
      this.#resume.delete(s);
    }
    this.#outbox.send(session, JSON.stringify({ method: 'UNSUBSCRIBE', params: this.#streamNames(symbols), id: ++this.#requestId }));
  }

  override async start(ctx: FeedContext): Promise<void> {
    await super.start(ctx);
    this.#statusStopped = false;
    ctx.signal.addEventListener('abort', () => this.#stopStatus(), { once: true });
    if (this.#opts.statusPollMs === 0) return;
    if (this.#restBase() === undefined) {
      ctx.log.info(
        { feed: this.id },
        'binance: no restUrl for the custom url: trading status is not read (set restUrl to read it from GET /api/v3/exchangeInfo)',
      );
      return;
    }
    this.#scheduleStatus(0);
  }

  override async stop(): Promise<void> {
    this.#stopStatus();
    // a snapshot request waiting out a back-off or a Retry-After would find its session closed
    // and do nothing; its timer went on after the feed stopped
    for (const t of this.#snapshotTimers) clearTimeout(t);
    this.#snapshotTimers.clear();
    this.#outbox.clear();
    await super.stop();
  }

  onMessage(data: Buffer, _isBinary: boolean, session: StreamSession): void {
    const msg = JSON.parse(data.toString('utf8')) as Record<string, any>;
    const payload = (msg.data ?? msg) as Record<string, any>;
    if ('result' in msg && 'id' in msg) return; // SUBSCRIBE/UNSUBSCRIBE acknowledgement
    if (msg.error || (typeof msg.code === 'number' && msg.msg)) {
      const e = msg.error ?? msg;
      session.ctx.metrics?.error(`binance error ${e.code}: ${e.msg}`);
      session.ctx.log.error({ code: e.code }, `binance: request refused: ${e.msg}`);
      return;
    }
    if (payload.e === 'serverShutdown') {
      session.reconnect('binance announced a server shutdown', { immediate: true });
      return;
    }
    const stream = typeof msg.stream === 'string' ? msg.stream : '';
    const providerSym = String(payload.s ?? stream.split('@')[0] ?? '');
    const sym = this.#map.toCanonical(providerSym);
    // not one of ours, or no longer (StreamRunner.has): an event still in flight after its
    // UNSUBSCRIBE (WebSocket Streams, Live Subscribing/Unsubscribing: a stream stops once Binance
    // has read the request, which waits behind the WebSocket Limits pacing). The symbol map
    // remembers every symbol ever asked for, so it alone would take it for the feed's own.
    if (!sym || !this.runner.has(sym)) return;
    if (payload.e === 'depthUpdate') {
      this.#onDepth(sym, providerSym, parseDepthEvent(payload), session);
    } else if (payload.e === 'trade') {
      // Binance Spot "WebSocket Streams" > Trade Streams: t trade ID (per symbol), p price and
      // q quantity (decimal strings, quote/base asset), T trade time (ms, or µs: timeUnit), m "is the buyer the
      // market maker?" (true: the aggressor sold)
      this.#onTrade(
        sym,
        providerSym,
        {
          k: 'trade',
          sym,
          id: String(payload.t),
          p: price(payload.p, 'trade.p'),
          s: decimal(payload.q, 'trade.q'),
          side: payload.m ? 'sell' : 'buy',
          ts: binanceTime(payload.T ?? payload.E, 'trade.T'),
        },
        session,
      );
    } else if (stream.endsWith('@bookTicker') || ('b' in payload && 'a' in payload && 'u' in payload)) {
      // Binance Spot "WebSocket Streams" > Individual Symbol Book Ticker Streams: b/B best bid
      // price/qty, a/A best ask price/qty (base asset); no event time, so the receive time.
      // The page gives no "no bid"/"no ask" marker; a side with no order comes as price
      // "0.00000000", so it is published absent with its qty (docs/feeds.md, "Empty quote
      // sides"), never by rejecting the whole quote; with neither side there is no quote.
      const bid = quoteSide(payload.b, payload.B, 'bookTicker.b/B');
      const ask = quoteSide(payload.a, payload.A, 'bookTicker.a/A');
      const sides = quoteFields(bid, ask);
      if (!sides) return;
      session.ctx.emit({
        k: 'quote',
        sym,
        ...sides,
        ts: payload.E !== undefined ? binanceTime(payload.E, 'bookTicker.E') : nowNs(),
      });
    }
  }

  /** A live trade: emitted, unless it is the first of its symbol on a new connection and trades are missing before it. */
  #onTrade(sym: string, providerSym: string, trade: TradeInput, session: StreamSession): void {
    const id = Number(trade.id);
    const r = this.#resume.get(sym);
    if (!r || !Number.isSafeInteger(id)) return this.#emitTrade(trade, session);
    if (r.held) {
      r.held.push(trade); // REST is being asked for the missing ones: in order after them
      return;
    }
    if (id <= r.from) return; // already emitted on the previous connection
    if (id === r.from + 1 || !this.#opts.recoverTrades) {
      this.#resume.delete(sym);
      if (id > r.from + 1) this.#gap(sym, providerSym, id - r.from - 1, 'recoverTrades is off', session);
      return this.#emitTrade(trade, session);
    }
    r.held = [trade];
    void this.#recover(sym, providerSym, r, id, session);
  }

  #emitTrade(trade: TradeInput, session: StreamSession): void {
    session.ctx.emit(trade);
    const id = Number(trade.id);
    if (Number.isSafeInteger(id) && id > (this.#lastTradeId.get(trade.sym) ?? -1)) this.#lastTradeId.set(trade.sym, id);
  }

  #gap(sym: string, providerSym: string, missed: number, why: string, session: StreamSession): void {
    session.ctx.metrics?.gap(missed, `binance ${providerSym}: ${missed} trades made while disconnected were not recovered (${why})`);
    session.ctx.log.warn({ feed: this.id, sym, missed }, `binance: ${missed} trades of ${sym} made while disconnected were not recovered (${why})`);
  }

  /**
   * Binance Spot REST "Recent trades list" (GET /api/v3/trades?symbol&limit, at most 1000, oldest
   * first): `id`, `price`, `qty` (base asset), `time`, `isBuyerMaker`, the fields of the Trade
   * Streams' `t`, `p`, `q`, `T`, `m`. When the missed trades reach further back than those 1000,
   * the older ones come from "Old trade lookup" (GET /api/v3/historicalTrades?symbol&fromId&limit,
   * "TradeId to fetch from", oldest first, the same fields): its security type is NONE since the
   * CHANGELOG of 2023-07-11 ("the X-MBX-APIKEY header is no longer necessary"), so no key is
   * needed; before, those were counted as a gap. Paged from the first missed id, at most
   * BINANCE_MAX_HISTORICAL_PAGES pages, the newest missed ones first (so what is emitted is one
   * unbroken run up to the live trades). The trades with IDs between the last one emitted and
   * the first held live one are emitted in ID order, then the held ones.
   */
  async #recover(sym: string, providerSym: string, r: Resume, firstLive: number, session: StreamSession): Promise<void> {
    const current = (): boolean => session.open && this.#resume.get(sym) === r;
    const missing = firstLive - r.from - 1;
    const found = new Map<number, TradeInput>();
    let why = '';
    const base = this.#restBase();
    // REST General API information: times in microseconds with the header X-MBX-TIME-UNIT
    const headers: Record<string, string> = this.#opts.timeUnit === 'MICROSECOND' ? { 'X-MBX-TIME-UNIT': 'MICROSECOND' } : {};
    /** one REST list of trades; keeps those in the missed range, returns the ids it listed */
    const ask = async (path: string, what: string): Promise<number[]> => {
      const res = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
      this.#restRefused(res, what, session.ctx);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const list = (await res.json()) as Record<string, any>[];
      if (!Array.isArray(list)) throw new Error('the answer is not a list of trades');
      const ids: number[] = [];
      for (const t of list) {
        if (!Number.isSafeInteger(t.id)) continue;
        ids.push(t.id);
        if (t.id <= r.from || t.id >= firstLive) continue;
        found.set(t.id, {
          k: 'trade',
          sym,
          id: String(t.id),
          p: price(t.price, 'trades.price'),
          s: decimal(t.qty, 'trades.qty'),
          side: t.isBuyerMaker ? 'sell' : 'buy',
          ts: binanceTime(t.time, 'trades.time'),
        });
      }
      return ids;
    };
    const symbol = encodeURIComponent(providerSym.toUpperCase());
    if (base === undefined) why = 'no restUrl for the custom url';
    else if (this.#restPauseUntil > Date.now()) why = 'REST requests paused by a 429/418 Retry-After';
    else {
      let step = 'GET /api/v3/trades';
      try {
        const recent = await ask(`/api/v3/trades?symbol=${symbol}&limit=1000`, step);
        // the missed trades older than the oldest of the 1000 most recent (none listed: all of them)
        const oldest = recent.length > 0 ? Math.min(...recent) : firstLive;
        const older = Math.min(oldest, firstLive) - r.from - 1;
        if (older > 0 && current()) {
          const pages = Math.min(Math.ceil(older / 1000), BINANCE_MAX_HISTORICAL_PAGES);
          if (pages * 1000 < older) why = `more than ${BINANCE_MAX_HISTORICAL_PAGES * 1000} older than the 1000 most recent`;
          let fromId = Math.max(r.from + 1, oldest - pages * 1000);
          step = 'GET /api/v3/historicalTrades';
          for (let page = 0; page < pages && fromId < oldest && current(); page++) {
            if (this.#restPauseUntil > Date.now()) {
              why = 'REST requests paused by a 429/418 Retry-After';
              break;
            }
            const ids = await ask(`/api/v3/historicalTrades?symbol=${symbol}&fromId=${fromId}&limit=1000`, step);
            if (ids.length === 0) break;
            fromId = Math.max(...ids) + 1;
          }
        }
      } catch (err) {
        why = `${step} failed: ${(err as Error).message}`;
        session.ctx.metrics?.error(`binance trade recovery ${providerSym}: ${(err as Error).message}`);
      }
    }
    const got = [...found.values()].sort((a, b) => Number(a.id) - Number(b.id));
    // a new connection meanwhile starts over from the last trade emitted (the held ones come again or are recovered then)
    if (!current()) return;
    this.#resume.delete(sym);
    for (const t of got) this.#emitTrade(t, session);
    this.#recovered += got.length;
    if (got.length > 0)
      session.ctx.log.info({ feed: this.id, sym, trades: got.length }, `binance: ${got.length} trades of ${sym} made while disconnected recovered`);
    if (got.length < missing) this.#gap(sym, providerSym, missing - got.length, why || 'REST listed fewer of them', session);
    for (const t of r.held ?? []) if (Number(t.id) > (this.#lastTradeId.get(sym) ?? -1)) this.#emitTrade(t, session);
  }

  /** A 429/418 answer pauses every REST request of the adapter for its Retry-After (rateLimitWaitMs). */
  #restRefused(res: Response, what: string, ctx: FeedContext): number | undefined {
    const waitMs = rateLimitWaitMs(res.status, res.headers.get('retry-after'));
    if (waitMs === undefined) return undefined;
    this.#restPauseUntil = Math.max(this.#restPauseUntil, Date.now() + waitMs);
    ctx.log.warn(
      { feed: this.id, status: res.status, waitMs },
      `binance: ${what} refused (HTTP ${res.status}), no REST request for ${waitMs} ms as Retry-After says`,
    );
    return waitMs;
  }

  /** Read the trading status now, whatever the schedule (for tests); resolves when it is applied (not during a REST pause). */
  async pollStatusNow(): Promise<void> {
    if (this.#statusTimer) clearTimeout(this.#statusTimer);
    this.#statusTimer = undefined;
    await this.#pollStatus();
  }

  #stopStatus(): void {
    this.#statusStopped = true;
    if (this.#statusTimer) clearTimeout(this.#statusTimer);
    this.#statusTimer = undefined;
  }

  /** The next status poll in `delayMs`; `sooner` only moves an already planned one earlier. */
  #scheduleStatus(delayMs: number, sooner = false): void {
    if (this.#statusStopped || this.#opts.statusPollMs === 0 || this.#restBase() === undefined) return;
    if (this.#statusRunning) {
      // the poll under way schedules the next one; it asked for the symbols it had, so a sooner
      // one (a symbol subscribed meanwhile) is remembered
      if (sooner) this.#statusSooner = true;
      return;
    }
    if (this.#statusTimer) {
      if (!sooner || this.#statusDueAt <= Date.now() + delayMs) return;
      clearTimeout(this.#statusTimer);
    }
    this.#statusDueAt = Date.now() + delayMs;
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined;
      void this.#pollStatus();
    }, delayMs);
    this.#statusTimer.unref();
  }

  /**
   * Each symbol's trading status. Binance's WebSocket Streams have no status stream, so it is read
   * from REST "Exchange information" (GET /api/v3/exchangeInfo, weight 20), every `statusPollMs`,
   * for the feed's symbols only (`symbols`, a JSON array): `symbols[].status`, one of the values
   * of ENUM definitions "Symbol status": TRADING, END_OF_DAY, HALT, BREAK, CANCEL_ONLY. The pages
   * do not say what each does to matching: only TRADING is published as trading, every other
   * value (and one added later) as halted, `code` the value. Only changes are published.
   */
  async #pollStatus(): Promise<void> {
    const ctx = this.ctx;
    const base = this.#restBase();
    if (!ctx || base === undefined || this.#statusStopped) return;
    const paused = this.#restPauseUntil - Date.now();
    if (paused > 0) {
      // a 429/418 on any REST request holds this one too (the limits are per IP); timers hold at most 2^31-1 ms
      this.#scheduleStatus(Math.min(paused, 2 ** 31 - 1));
      return;
    }
    this.#statusRunning = true;
    this.#lastStatusPoll = Date.now();
    let nextMs = this.#opts.statusPollMs;
    this.#statusSooner = false;
    try {
      const wanted = new Map<string, string>();
      for (const sym of this.runner.symbols) {
        const S = this.#map.toProvider(sym).toUpperCase();
        if (!this.#unknownSymbols.has(S)) wanted.set(S, sym);
      }
      if (wanted.size === 0) return;
      let info = await this.#exchangeInfo(base, [...wanted.keys()], ctx);
      if (info === 'invalid symbol') {
        // "If the value provided to symbol or symbols do not exist, the endpoint will throw an error": find which
        info = await this.#exchangeInfo(base, undefined, ctx);
        if (info === 'invalid symbol') throw new Error('exchangeInfo refused a request without symbols');
        const listed = new Set(info.symbols.map((x) => String((x as Record<string, unknown>).symbol).toUpperCase()));
        const missing = [...wanted.keys()].filter((S) => !listed.has(S));
        for (const S of missing) this.#unknownSymbols.add(S);
        if (missing.length > 0) {
          const detail = `binance exchangeInfo does not know ${missing.join(', ')}: no trading status for ${missing.length === 1 ? 'it' : 'them'}; check feeds.${this.id}.symbols and symbolMap`;
          ctx.metrics?.error(detail);
          ctx.log.error({ feed: this.id }, detail);
        }
      }
      this.#applyStatus(info, wanted, ctx);
      this.#polledSymbols = new Set(wanted.keys());
    } catch (err) {
      const e = err as Error & { retryAfterMs?: number };
      // 429/418: "back off and not spam the API" (LIMITS > IP Limits); Retry-After says how long
      if (e.retryAfterMs !== undefined) nextMs = Math.max(nextMs, e.retryAfterMs);
      const detail = `binance exchangeInfo: ${e.message}`;
      ctx.metrics?.error(detail);
      ctx.log.warn({ feed: this.id }, `${detail}; trading status read again in ${Math.round(nextMs / 1000)} s`);
    } finally {
      this.#statusRunning = false;
      // a symbol subscribed while it ran, or added any other way since the poll took its list: the
      // next poll at the earliest the spacing allows (unless told to back off)
      const sooner = (this.#statusSooner || this.#unpolled()) && nextMs === this.#opts.statusPollMs;
      this.#statusSooner = false;
      this.#scheduleStatus(sooner ? Math.max(0, this.#lastStatusPoll + MIN_STATUS_POLL_MS - Date.now()) : nextMs);
    }
  }

  async #exchangeInfo(base: string, symbols: string[] | undefined, ctx: FeedContext): Promise<{ serverTime: unknown; symbols: unknown[] } | 'invalid symbol'> {
    // showPermissionSets=false: permissions are not read, so Binance need not send them [Exchange information]
    const query = symbols ? `symbols=${encodeURIComponent(JSON.stringify(symbols))}&showPermissionSets=false` : 'showPermissionSets=false';
    const res = await fetch(`${base}/api/v3/exchangeInfo?${query}`, { signal: AbortSignal.timeout(10_000) });
    const body = (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined;
    if (!res.ok) {
      // Error Codes: -1121 "Invalid symbol."
      if (res.status === 400 && body?.code === -1121) return 'invalid symbol';
      const err = new Error(`HTTP ${res.status}${body?.msg ? ` (${String(body.msg)})` : ''}`) as Error & { retryAfterMs?: number };
      const waitMs = this.#restRefused(res, 'exchangeInfo', ctx);
      if (waitMs !== undefined) err.retryAfterMs = waitMs;
      throw err;
    }
    if (!body || !Array.isArray(body.symbols)) throw new Error('the answer has no symbols list');
    return { serverTime: body.serverTime, symbols: body.symbols };
  }

  #applyStatus(info: { serverTime: unknown; symbols: unknown[] }, wanted: Map<string, string>, ctx: FeedContext): void {
    // serverTime: ms [Exchange information, Response]; the status has no time of its own
    const ts = typeof info.serverTime === 'number' && Number.isSafeInteger(info.serverTime) && info.serverTime > 0 ? toNs(info.serverTime, 'ms') : nowNs();
    const current = new Set(this.runner.symbols);
    for (const x of info.symbols as Record<string, unknown>[]) {
      const sym = typeof x?.symbol === 'string' ? wanted.get(x.symbol.toUpperCase()) : undefined;
      if (!sym || !current.has(sym) || typeof x.status !== 'string' || x.status === '') continue;
      if ((this.#statusPublished.get(sym) ?? lastStatusCode(ctx, sym, 'TRADING')) === x.status) continue;
      this.#statusPublished.set(sym, x.status);
      if (x.status === 'TRADING') ctx.emit({ k: 'status', sym, status: 'trading', code: 'TRADING', ts });
      else ctx.emit({ k: 'status', sym, status: 'halted', code: x.status, reason: `Binance symbol status ${x.status}`, ts });
    }
  }

  #onDepth(sym: string, providerSym: string, ev: DepthEvent, session: StreamSession): void {
    let sync = this.#depth.get(sym);
    if (!sync) this.#depth.set(sym, (sync = new DepthSync(this.#opts.depthLimit)));
    const r = sync.onEvent(ev);
    if (r.gap) {
      session.ctx.metrics?.gap(1, `binance depth ${providerSym}: ${r.gap}`);
      session.ctx.log.warn({ sym }, `binance: depth stream gap (${r.gap}), syncing the book again`);
    }
    if (r.refresh) session.ctx.log.info({ sym }, `binance: depth of ${providerSym} ${r.refresh}, syncing the book again`);
    if (r.out) this.#emitBook(sym, r.out, session);
    if (r.fetch) this.#fetchSnapshot(sym, providerSym, sync, session, 0);
  }

  /**
   * Step 2 of the procedure: GET /api/v3/depth (Binance Spot REST "Order book"), again while
   * stale or failing, backing off (snapshotRetryMs); a 429/418 holds every symbol's requests for
   * its Retry-After (rateLimitWaitMs).
   */
  #fetchSnapshot(sym: string, providerSym: string, sync: DepthSync, session: StreamSession, delayMs: number): void {
    sync.fetching = true;
    // the venue of the stream (binanceTradeRestBase): another host's snapshot would not fit its update IDs
    const base = this.#restBase();
    if (base === undefined) {
      // refused at start by feeds/registry.ts; an adapter built directly reports it once per book and stays without it
      session.ctx.metrics?.error(`binance depth ${providerSym}: no restUrl for the custom url: no depth snapshot, no book`);
      return;
    }
    const url = `${base}/api/v3/depth?symbol=${encodeURIComponent(providerSym.toUpperCase())}&limit=${this.#opts.depthLimit}`;
    const current = (): boolean => session.open && this.#depth.get(sym) === sync;
    const again = (): void => {
      if (current()) this.#fetchSnapshot(sym, providerSym, sync, session, snapshotRetryMs(++sync.failures, this.#opts.depthRetryMs));
      else sync.fetching = false;
    };
    const run = async (): Promise<void> => {
      if (!current()) {
        sync.fetching = false;
        return;
      }
      const paused = this.#restPauseUntil - Date.now();
      if (paused > 0) {
        // a timer holds at most 2^31-1 ms (about 24.8 days; a longer one fires at once): wait in steps
        this.#later(run, Math.min(paused, 2 ** 31 - 1));
        return;
      }
      let snap: DepthSnapshot;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
        this.#restRefused(res, `depth snapshot of ${providerSym}`, session.ctx);
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        snap = parseDepthSnapshot((await res.json()) as Record<string, any>);
      } catch (err) {
        session.ctx.metrics?.error(`binance depth snapshot ${providerSym}: ${String(err)}`);
        again();
        return;
      }
      if (!current()) {
        sync.fetching = false;
        return;
      }
      const r = sync.onSnapshot(snap);
      if (r.stale) {
        // step 3: the snapshot is older than the first buffered event
        session.ctx.log.debug({ sym, lastUpdateId: snap.lastUpdateId }, 'binance: stale depth snapshot, asking again');
        again();
        return;
      }
      try {
        for (const o of r.out) this.#emitBook(sym, o, session);
      } catch (err) {
        // outside the message handler's guard: report it and sync the book again, never an unhandled rejection
        session.ctx.metrics?.error(`binance depth ${providerSym}: ${(err as Error).message}`);
        sync.restart();
      }
    };
    if (delayMs > 0) this.#later(run, delayMs);
    else void run();
  }

  /** A snapshot request's wait (a retry's back-off, a Retry-After pause), cleared by stop(). */
  #later(run: () => Promise<void>, ms: number): void {
    const t = setTimeout(() => {
      this.#snapshotTimers.delete(t);
      void run();
    }, ms);
    t.unref();
    this.#snapshotTimers.add(t);
  }

  /**
   * Binance Spot "WebSocket Streams" > "Diff. Depth Stream": `b` / `a` are [price, quantity]
   * decimal strings where the quantity is the level's new absolute total and 0 removes the level
   * (as in our BookTick); `E` is the event time (ms or µs, see `binanceTime`). REST "Order book" (GET /api/v3/depth):
   * `bids` / `asks` the same pairs, the whole book up to `limit` (our `reset` tick, stamped with
   * the time of the buffered event its lastUpdateId falls in: the snapshot carries none).
   */
  #emitBook(sym: string, o: DepthOutput, session: StreamSession): void {
    session.ctx.emit({ k: 'book', sym, ...(o.kind === 'reset' ? { reset: true } : {}), bids: o.bids, asks: o.asks, ts: binanceTime(o.E, 'depthUpdate.E') });
  }
}

/**
 * The REST base URL trade recovery, depth snapshots and the status poll ask: `restUrl`, else
 * Binance's own when `url` is Binance's public stream host (or not set); none for another `url`
 * (a testnet, a proxy, another venue), whose trades, update IDs and statuses are not Binance's.
 */
export function binanceTradeRestBase(opts: Pick<BinanceOptions, 'url' | 'restUrl'>): string | undefined {
  let base = opts.restUrl;
  if (base === undefined && (opts.url === undefined || new URL(opts.url).hostname === new URL(BINANCE_DEFAULT_URL).hostname)) base = BINANCE_DEFAULT_REST_URL;
  return base?.replace(/\/+$/, '');
}

/**
 * A Binance time field to nanoseconds. Binance sends milliseconds, or microseconds when the URL
 * asks for them (General WSS information, `timeUnit`); the unit is read from the magnitude
 * (below 10^14: ms, a time before 5138; above: µs, after 1973), so a time is right even from an
 * endpoint that ignores `timeUnit`.
 */
export function binanceTime(v: unknown, field: string): bigint {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw new RangeError(`${field}: ${JSON.stringify(v)} is not a time in ms or µs`);
  return toNs(v, v < 1e14 ? 'ms' : 'us');
}
