import { z } from 'zod';
import { commonFeedFields, runnerOptions } from '../config.js';
import { decimal, price, quoteFields, quoteSide } from '../sdk/decimal.js';
import type { StreamSession } from '../sdk/runner.js';
import { PacedSender } from '../sdk/paced-sender.js';
import { StreamFeed } from '../sdk/stream-feed.js';
import { pairRule, SymbolMap } from '../sdk/symbol-map.js';
import { isoToNs } from '../sdk/time.js';
import { RecentIds } from '../sdk/trade-id.js';
import { lastStatusCode } from '../sdk/last-status.js';
import { nowNs } from '../../src/core/time.js';
import { OrderBook } from '../../src/book/order-book.js';
import { parseL2Event } from './level2.js';

/**
 * Coinbase Advanced Trade market data WebSocket (public channels, no key needed).
 * On open we send one {"type":"subscribe","product_ids":[...],"channel":C} per channel:
 * `market_trades` (trades), `ticker` (best bid/ask with sizes) and `heartbeats` (one message a
 * second, which keeps quiet subscriptions open and proves the connection alive).
 * Every message is {"channel","timestamp","sequence_num","events":[...]}; `sequence_num` rises by
 * one per message on a connection, so a jump means lost messages: the gap is counted and the
 * data channels are resubscribed (fresh snapshots). The `subscriptions` message confirms.
 * `market_trades` snapshot events (the product's recent trades, re-sent on every subscribe) are
 * history on a product's first subscription and are skipped. After a sequence gap or a reconnect
 * they are how trades lost meanwhile come back (`recoverTrades`): a snapshot trade of a product
 * already being published is emitted when its trade_id was never emitted and it is not older
 * than the first trade published for the product on this subscription (oldest first), so every
 * trade reaches clients once. A message whose `sequence_num` is not above the
 * last one is not dropped whole: its trades are checked against the trade ids already emitted
 * (so a trade not seen before still comes through, a repeated one does not), while its ticker
 * is skipped (an older best bid/ask than the one already published). Subscribe and unsubscribe
 * messages go out in order, at most 8 in any 1.1 s (WebSocket Rate Limits: unauthenticated
 * messages, 8 per second per IP), counted across all the Coinbase feeds of the process; a burst
 * (a gap's resubscription with products added, two feeds opening together) waits.
 *
 * With `book: true` the `level2` channel is subscribed too and each product's order book is
 * published as book ticks: the `snapshot` event as a reset, then every `update` (level2.ts). A
 * product's book is trusted only from its snapshot on: after a sequence gap, or a level2 message
 * that arrives late (its `sequence_num` not above the last), its updates are dropped until the
 * snapshot of the new subscription resets it.
 *
 * Quotes with `book: true` come from the book. The ticker is sent "every time a match happens"
 * ("WebSocket Channels", channel table), so its best_bid/best_ask is stale between trades; level2
 * has "all updates" ("WebSocket Channels" > Level2 Channel: it "guarantees delivery of all updates
 * and is the easiest way to keep a snapshot of the order book"; API reference "Level 2 order
 * book"). So while a product's book is synced, its quote is the mirrored book's best bid and ask:
 * one after each snapshot, then one after each update that changes the best price or size of a
 * side (the level2 event time, as the book tick), and its tickers publish no quote. While the
 * book is not synced (before its snapshot, after a gap or a late message until the new snapshot)
 * the ticker's quotes are published, so the quote stream never stops.
 *
 * With `status` (the default) the `status` channel is subscribed for the feed's products: Coinbase
 * "sends all products and currencies on a preset interval" ("WebSocket Channels" > Status
 * Channel), each product with `id`, `status` and `status_message`. A product's trading status
 * follows its `status`: `online` is trading; the page shows no other value and says nothing of
 * them, so any other (`offline`, `delisted`, ...) is published as halted, `code` the value and
 * `reason` its `status_message`. Only changes are published: a product that stays online gets
 * no status tick.
 */
export const CoinbaseOptionsSchema = z
  .object({
    ...commonFeedFields,
    channels: z
      .array(z.enum(['market_trades', 'ticker']))
      .min(1)
      .default(['market_trades', 'ticker']),
    heartbeats: z.boolean().default(true),
    book: z
      .boolean()
      .default(false)
      .describe(
        "subscribe to the `level2` channel and emit order book ticks; quotes then follow the book's best bid and ask (the ticker's only while a book is not in sync)",
      ),
    bookLevels: z
      .number()
      .int()
      .min(10)
      .max(100_000)
      .default(1000)
      .describe(
        'levels per side the adapter follows (set it to book.maxLevels): a side that dropped levels past it and is down to a quarter of it is refreshed (level2 resubscribed)',
      ),
    status: z
      .boolean()
      .default(true)
      .describe("subscribe to the `status` channel and publish each product's status (anything but `online` is halted) as its trading status"),
    recoverTrades: z
      .boolean()
      .default(true)
      .describe('after a sequence gap or a reconnect, emit the trades missed meanwhile from the market_trades snapshot of the new subscription'),
  })
  .strict();
export type CoinbaseOptions = z.infer<typeof CoinbaseOptionsSchema>;

export const COINBASE_DEFAULT_URL = 'wss://advanced-trade-ws.coinbase.com';

/**
 * Advanced Trade "WebSocket Rate Limits": "Advanced Trade API WebSocket connections are
 * rate-limited at 8 per second per IP address" (an older revision of the page said 750 a second;
 * the stricter is kept). Connection attempts start at least 150 ms apart, at most 8 in any 1.2 s,
 * whatever the `backoff` settings or the cause, across all the Coinbase feeds of the process (the
 * limit is per IP: connectSpacingKey) (feeds/coinbase/test/coinbase-connect-rate.test.ts)
 */
export const COINBASE_MIN_CONNECT_INTERVAL_MS = 150;

/**
 * The "-USDC" products Coinbase's market data channels serve as themselves. WebSocket Channels:
 * "Subscribing to '-USDC' based products are only available on the user channel. Other channels
 * will return the same data as the corresponding '-USD' based products. USDT-USDC and EURC-USDC
 * are available on all channels" (WebSocket Endpoints, Public, says the same). That data comes
 * under the -USD product id (Coinbase developer forum, "The mess of -USD and -USDC pairs",
 * acknowledged by Coinbase staff), so any other -USDC product is refused at start
 * (coinbaseUsdcProblem, feeds/registry.ts): subscribed, it never published anything.
 */
export const COINBASE_USDC_ON_ALL_CHANNELS: ReadonlySet<string> = new Set(['USDT-USDC', 'EURC-USDC']);

/**
 * Why a Coinbase product id cannot be served on the market data channels, or undefined: a -USDC
 * product other than COINBASE_USDC_ON_ALL_CHANNELS. `usd` is the -USD product whose data
 * Coinbase sends for it.
 */
export function coinbaseUsdcProblem(productId: string): { usd: string } | undefined {
  const id = productId.toUpperCase();
  if (!id.endsWith('-USDC') || COINBASE_USDC_ON_ALL_CHANNELS.has(id)) return undefined;
  return { usd: `${id.slice(0, -'-USDC'.length)}-USD` };
}
/** Advanced Trade "WebSocket Rate Limits": "unauthenticated messages are rate-limited at 8 per second per IP address" */
const MAX_MESSAGES_PER_SECOND = 8;
/** the window those 8 are counted over: a second plus a margin, so that network jitter cannot put 9 in Coinbase's second */
const RATE_WINDOW_MS = 1100;

export class CoinbaseFeed extends StreamFeed {
  readonly #opts: CoinbaseOptions;
  readonly #map: SymbolMap;
  #lastSeq = -1;
  #resubscribes = 0;
  /** trade ids already emitted, per product: duplicates are dropped by id, not by sequence */
  readonly #seen = new RecentIds();
  /**
   * per canonical symbol: the time of the first trade emitted since it was (last) subscribed.
   * Snapshot trades not older than it and never emitted were lost (a gap, a reconnect); older
   * ones are history from before we published the product. Survives reconnects; an unsubscribe
   * forgets it.
   */
  readonly #since = new Map<string, bigint>();
  #recovered = 0;
  /**
   * subscribe/unsubscribe messages, paced to the provider's rate limit, which is per IP: every
   * Coinbase feed of the process counts against one window (feeds/coinbase/test/coinbase-connect-rate.test.ts)
   */
  readonly #outbox = new PacedSender(MAX_MESSAGES_PER_SECOND, RATE_WINDOW_MS, 'coinbase');
  /** canonical symbols whose book has had its snapshot on this subscription */
  #bookSynced = new Set<string>();
  #bookResyncs = 0;
  /**
   * per canonical symbol: the book as the engine keeps it (at most `bookLevels` a side, src/book).
   * A side that dropped levels past the limit knows nothing beyond its worst kept price (BookSide
   * `bound`); once it is down to REFRESH_FRACTION of the limit the product's level2 is resubscribed,
   * and the new snapshot (a reset) gives clients the whole top again.
   */
  readonly #mirror = new Map<string, OrderBook>();
  /** per canonical symbol with a synced book: the top last published from it as a quote (undefined: both sides empty) */
  readonly #bookTop = new Map<string, QuoteSides | undefined>();
  #bookRefreshes = 0;
  /**
   * canonical symbols wanted now. An unsubscribe can wait behind the rate limit (PacedSender) and
   * Coinbase sends the product until it arrives: those messages are dropped, so nothing of a
   * product is published after it was unsubscribed, and its snapshot state is not re-armed.
   */
  #active = new Set<string>();
  /** per connection: the products of the opening subscription, until its first `subscriptions` confirmation */
  #opening: readonly string[] | undefined;
  /** per canonical symbol: the product `status` last published as its trading status (absent: none published yet, lastStatusCode: the status taken up after a restart, else online) */
  readonly #published = new Map<string, string>();

  constructor(id: string, opts: CoinbaseOptions) {
    super(
      id,
      opts.symbols,
      runnerOptions(opts, {
        staleAfterMs: opts.heartbeats ? 10_000 : 120_000,
        minConnectIntervalMs: COINBASE_MIN_CONNECT_INTERVAL_MS,
        connectSpacingKey: 'coinbase',
      }),
    );
    this.#opts = opts;
    this.#map = new SymbolMap(opts.symbols, pairRule('-'), opts.symbolMap);
  }

  /** trades published from a market_trades snapshot because they had been missed (a gap, a reconnect) */
  get recoveredTrades(): number {
    return this.#recovered;
  }

  /** levels per side this adapter follows a book to (`bookLevels`; the engine's `book.maxLevels` unless set) */
  get bookLevels(): number {
    return this.#opts.bookLevels;
  }

  /** how many times a sequence gap made us resubscribe */
  get resubscribes(): number {
    return this.#resubscribes;
  }

  url(): string {
    return this.#opts.url ?? COINBASE_DEFAULT_URL;
  }

  /** how many times a book was dropped and resubscribed (a gap or a late level2 message) */
  get bookResyncs(): number {
    return this.#bookResyncs;
  }

  /** the data channels: `channels`, `level2` with `book`, `status` with `status` (resubscribed after a gap: its snapshot resyncs too) */
  #data(): string[] {
    return [...this.#opts.channels, ...(this.#opts.book ? ['level2'] : []), ...(this.#opts.status ? ['status'] : [])];
  }

  #channels(): string[] {
    return this.#opts.heartbeats ? [...this.#data(), 'heartbeats'] : this.#data();
  }

  /**
   * `opening`: the connection's opening subscription. Advanced Trade WebSocket Overview,
   * Subscribing: "you are disconnected if no subscribe has been received within 5 seconds", so its
   * first message goes ahead of what other Coinbase feeds of the process have waiting in the shared
   * window (feeds/coinbase/test/coinbase-connect-rate.test.ts)
   */
  #send(session: StreamSession, type: 'subscribe' | 'unsubscribe', symbols: readonly string[], channels: readonly string[], opening = false): void {
    const product_ids = symbols.map((s) => this.#map.toProvider(s));
    channels.forEach((channel, i) => this.#outbox.send(session, JSON.stringify({ type, product_ids, channel }), opening && i === 0));
  }

  override async stop(): Promise<void> {
    this.#outbox.clear();
    await super.stop();
  }

  onOpen(session: StreamSession, symbols: readonly string[]): void {
    this.#active = new Set(symbols);
    this.#opening = [...symbols];
    this.#lastSeq = -1;
    this.#bookSynced = new Set();
    this.#send(session, 'subscribe', symbols, this.#channels(), true);
  }

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    for (const s of symbols) this.#active.add(s);
    this.#send(session, 'subscribe', symbols, this.#channels());
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    for (const s of symbols) {
      this.#active.delete(s);
      this.#bookSynced.delete(s);
      this.#mirror.delete(s);
      this.#bookTop.delete(s);
      // #published stays: the engine keeps the symbol's last status, so a later subscription must
      // publish a change from it (a product halted when it left, online when it comes back)
      // trades made while a product is not subscribed are not ours: a later subscription starts afresh
      this.#since.delete(s);
    }
    this.#send(session, 'unsubscribe', symbols, this.#data());
  }

  onMessage(data: Buffer, _isBinary: boolean, session: StreamSession): void {
    const msg = JSON.parse(data.toString('utf8')) as Record<string, any>;
    if (msg.type === 'error') {
      const detail = `coinbase error: ${msg.message ?? 'unknown'}${msg.reason ? ` (${msg.reason})` : ''}`;
      session.ctx.metrics?.error(detail);
      session.ctx.log.error({ feed: this.id }, detail);
      return;
    }
    // Coinbase Advanced Trade "WebSocket Overview" > Sequence Numbers: sequence_num rises by one
    // per message on a connection; a lower one is a late or repeated message. It is not dropped
    // whole: its trades are deduplicated by trade_id below, and only its ticker is skipped.
    let late = false;
    if (typeof msg.sequence_num === 'number') {
      const seq = msg.sequence_num;
      late = this.#lastSeq >= 0 && seq <= this.#lastSeq;
      if (!late && this.#lastSeq >= 0 && seq > this.#lastSeq + 1) {
        const missed = seq - this.#lastSeq - 1;
        session.ctx.metrics?.gap(missed, `sequence_num jumped from ${this.#lastSeq} to ${seq}`);
        this.#resubscribes++;
        // resubscribe the data channels on this connection: the snapshots that follow resync us;
        // until its snapshot comes, a book's updates are not applied (some may be lost)
        if (this.#bookSynced.size > 0) this.#bookResyncs++;
        this.#bookSynced.clear();
        this.#send(session, 'unsubscribe', this.runner.symbols, this.#data());
        this.#send(session, 'subscribe', this.runner.symbols, this.#data());
      }
      if (!late) this.#lastSeq = seq;
    }
    // level2 reads its own (below): a message it drops after its sequence_num counted would leave the book behind
    const ts = typeof msg.timestamp === 'string' && msg.channel !== 'l2_data' ? isoToNs(msg.timestamp) : undefined;
    switch (msg.channel) {
      case 'subscriptions': {
        session.ready(`subscribed: ${Object.keys(msg.events?.[0]?.subscriptions ?? {}).join(', ')}`);
        // products added or removed before this confirmation were not sent (the runner waits for ready): send them now
        const opening = this.#opening;
        this.#opening = undefined;
        if (opening) this.reconcileSymbols(opening, session);
        return;
      }
      case 'heartbeats':
        return;
      case 'status':
        // a late status message is older than one already applied: skip it, as a late ticker
        if (this.#opts.status && !late) this.#onStatus(msg, ts, session);
        return;
      case 'l2_data':
        if (this.#opts.book) this.#onLevel2(msg, late, this.#level2Time(msg, session), session);
        return;
      case 'market_trades':
        // Coinbase Advanced Trade "WebSocket Channels" > Market Trades Channel: events of type
        // snapshot (the recent trades, sent on every subscribe) or update; each trade has
        // trade_id, product_id, price, size (base currency), side, time (RFC 3339). An update's
        // trades are "collected over the last 250 ms and sent together" (API reference "Market
        // trades"), in an order neither page gives: emitted oldest first (time, then numeric
        // trade_id), as the snapshot's are, so the last price and the bars never take an older
        // print as the latest.
        for (const ev of msg.events ?? []) {
          if (ev.type === 'snapshot') this.#recover(ev.trades ?? [], ts, session);
          else for (const timed of oldestFirst(ev.trades ?? [], ts)) this.#trade(timed, session);
        }
        return;
      case 'ticker':
      case 'ticker_batch':
        // a late ticker is an older best bid/ask than the one already published: skip it
        if (late) return;
        // Coinbase Advanced Trade "WebSocket Channels" > Ticker Channel: best_bid/best_ask with
        // best_bid_quantity/best_ask_quantity (base currency); the message timestamp is the time.
        // The page gives no "no bid"/"no ask" marker; a side with no order comes as an empty
        // string (or 0), so it is published absent with its quantity (docs/feeds.md, "Empty quote
        // sides"), never by rejecting the whole quote; a ticker with neither side gives no quote.
        for (const ev of msg.events ?? []) {
          for (const tk of ev.tickers ?? []) {
            const sym = this.#ours(tk.product_id);
            if (!sym) continue;
            // a synced book gives the quote (#bookQuote): a ticker's top is as old as the last
            // match, and would move the quote back. Before the snapshot, or after a gap until the
            // new one, the ticker's quote is published, so quotes never stop.
            if (this.#bookSynced.has(sym)) continue;
            const bid = quoteSide(tk.best_bid, tk.best_bid_quantity, 'ticker.best_bid/best_bid_quantity');
            const ask = quoteSide(tk.best_ask, tk.best_ask_quantity, 'ticker.best_ask/best_ask_quantity');
            const sides = quoteFields(bid, ask);
            if (!sides) continue;
            session.ctx.emit({
              k: 'quote',
              sym,
              ...sides,
              ts: ts!,
            });
          }
        }
        return;
      default:
        return;
    }
  }

  /**
   * "WebSocket Channels" > Status Channel: events of `products`, each with `id` (the product id),
   * `status` and `status_message`. `online` is trading; any other value halted (see the class
   * comment). A product without a `status` string is reported and left as it was.
   */
  #onStatus(msg: Record<string, any>, ts: bigint | undefined, session: StreamSession): void {
    for (const ev of Array.isArray(msg.events) ? (msg.events as Record<string, any>[]) : []) {
      for (const p of Array.isArray(ev.products) ? (ev.products as Record<string, unknown>[]) : []) {
        const sym = this.#ours(p.id);
        if (!sym) continue;
        if (typeof p.status !== 'string' || p.status === '') {
          const detail = `coinbase status ${String(p.id)}: no status (${JSON.stringify(p.status)}); its trading status is left as it was`;
          session.ctx.metrics?.error(detail);
          session.ctx.log.warn({ feed: this.id }, detail);
          continue;
        }
        if ((this.#published.get(sym) ?? lastStatusCode(session.ctx, sym, 'online')) === p.status) continue;
        this.#published.set(sym, p.status);
        const message = typeof p.status_message === 'string' && p.status_message !== '' ? p.status_message : undefined;
        const t = ts ?? nowNs();
        if (p.status === 'online') session.ctx.emit({ k: 'status', sym, status: 'trading', code: 'online', ...(message ? { reason: message } : {}), ts: t });
        else session.ctx.emit({ k: 'status', sym, status: 'halted', code: p.status, reason: message ?? `Coinbase product status ${p.status}`, ts: t });
      }
    }
  }

  /** One `market_trades` trade: emitted unless its trade_id was emitted already (late or repeated message). */
  /** One `market_trades` trade, its time read once by the caller (`bad`: why it could not be, reported here). */
  #trade({ tr, t, bad }: TimedTrade, session: StreamSession): void {
    const sym = this.#ours(tr.product_id);
    if (!sym) return;
    // trade_id is unique per product (one product = one canonical symbol of this feed)
    const id = String(tr.trade_id);
    if (!this.#seen.add(sym, id)) return;
    const side = aggressorSide(tr.side);
    if (bad !== undefined) throw bad;
    session.ctx.emit({
      k: 'trade',
      sym,
      id,
      p: price(tr.price, 'market_trades.price'),
      s: decimal(tr.size, 'market_trades.size'),
      ...(side ? { side } : {}),
      ts: t!,
    });
    if (!this.#since.has(sym)) this.#since.set(sym, t!);
  }

  /**
   * A `market_trades` snapshot: the product's recent trades, sent on every subscribe. For a
   * product we already publish, the ones never emitted and not older than its first published
   * trade were lost (in a sequence gap, or while disconnected): emitted oldest first. The rest
   * is history from before the product was published, and is skipped.
   */
  #recover(trades: Record<string, any>[], msgTs: bigint | undefined, session: StreamSession): void {
    if (!this.#opts.recoverTrades) return;
    const missed: { tr: Record<string, any>; sym: string; t: bigint }[] = [];
    for (const tr of trades) {
      const sym = this.#ours(tr.product_id);
      const since = sym ? this.#since.get(sym) : undefined;
      if (!sym || since === undefined || this.#seen.has(sym, String(tr.trade_id))) continue;
      const t = tradeTime(tr, msgTs);
      if (t >= since) missed.push({ tr, sym, t });
    }
    if (missed.length === 0) return;
    // the snapshot's order is not documented: oldest first, trade ids breaking ties
    missed.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : compareIds(String(a.tr.trade_id), String(b.tr.trade_id))));
    for (const m of missed) this.#trade(m, session);
    this.#recovered += missed.length;
    const bySym = [...new Set(missed.map((m) => m.sym))].join(', ');
    session.ctx.log.info(
      { feed: this.id, trades: missed.length },
      `coinbase: ${missed.length} missed trade(s) of ${bySym} recovered from the market_trades snapshot`,
    );
  }

  /** The canonical symbol of a product this feed wants now; undefined for another one, or one unsubscribed. */
  #ours(productId: unknown): string | undefined {
    const sym = this.#map.toCanonical(String(productId));
    return sym !== undefined && this.#active.has(sym) ? sym : undefined;
  }

  /** how many times a book side ran short past the kept levels and was refreshed (level2 resubscribed) */
  get bookRefreshes(): number {
    return this.#bookRefreshes;
  }

  /** Apply an update's levels to a mirror side; true when the side dropped levels and is now short. */
  #short(mirror: OrderBook, levels: readonly [number, number][], side: 'bids' | 'asks'): boolean {
    const s = mirror[side];
    for (const [p, q] of levels) s.set(p, q);
    return s.bound !== undefined && s.prices.length < Math.ceil(this.#opts.bookLevels * REFRESH_FRACTION);
  }

  /** Drop a product's book until the snapshot of a new `level2` subscription resets it. */
  #resyncBook(session: StreamSession, sym: string): void {
    if (this.#bookSynced.delete(sym)) this.#bookResyncs++;
    this.#send(session, 'unsubscribe', [sym], ['level2']);
    this.#send(session, 'subscribe', [sym], ['level2']);
  }

  /**
   * The message `timestamp` of an `l2_data` message; one that cannot be read is reported and left
   * out (updates take their levels' `event_time`, a snapshot the receive time), because the
   * message's levels must still apply: its `sequence_num` is counted, so nothing would resync a
   * book that skipped them.
   */
  #level2Time(msg: Record<string, any>, session: StreamSession): bigint | undefined {
    if (typeof msg.timestamp !== 'string') return undefined;
    try {
      return isoToNs(msg.timestamp);
    } catch (err) {
      session.ctx.metrics?.error(`coinbase level2: message timestamp: ${(err as Error).message}`);
      return undefined;
    }
  }

  /**
   * Publish the book's best bid and ask as the product's quote, when it differs from the last one
   * published from the book (price or size of either side), or always (`fresh`, after a snapshot).
   * An empty side is left out, as a ticker's (`quoteFields`). A synced book is the whole book
   * (Level2 Channel: it "guarantees delivery of all updates"), so an empty one is quoted with
   * neither side (docs/feeds.md, "Empty quote sides"): the last top is gone. A level beyond the
   * kept ones (`bookLevels`) is not in the mirror and cannot be its best.
   */
  #bookQuote(session: StreamSession, sym: string, mirror: OrderBook, ts: bigint, fresh: boolean): void {
    const bid = mirror.bids.length > 0 ? { p: mirror.bids.prices[0]!, s: mirror.bids.sizes[0]! } : undefined;
    const ask = mirror.asks.length > 0 ? { p: mirror.asks.prices[0]!, s: mirror.asks.sizes[0]! } : undefined;
    const sides = quoteFields(bid, ask);
    if (!fresh && this.#bookTop.has(sym) && sameSides(this.#bookTop.get(sym), sides)) return;
    this.#bookTop.set(sym, sides);
    session.ctx.emit({ k: 'quote', sym, ...sides, ts });
  }

  /** `l2_data` events (level2.ts): a snapshot resets the product's book, updates change levels. */
  #onLevel2(msg: Record<string, any>, late: boolean, ts: bigint | undefined, session: StreamSession): void {
    for (const raw of Array.isArray(msg.events) ? (msg.events as Record<string, unknown>[]) : []) {
      let ev;
      try {
        ev = parseL2Event(raw, isoToNs);
      } catch (err) {
        const detail = `coinbase level2: ${(err as Error).message}`;
        session.ctx.metrics?.error(detail);
        session.ctx.log.warn({ feed: this.id, sample: JSON.stringify(raw)?.slice(0, 200) }, `feed: item could not be normalized: ${detail}`);
        // an update that cannot be applied leaves the book behind Coinbase's: start it over
        const sym = typeof raw.product_id === 'string' ? this.#map.toCanonical(raw.product_id) : undefined;
        if (sym && this.#bookSynced.has(sym)) this.#resyncBook(session, sym);
        continue;
      }
      const sym = this.#ours(ev.productId);
      if (!sym) continue;
      if (ev.unknownSides.length > 0) {
        // not guessed: the levels are left out and the value reported
        const detail = `coinbase level2 ${ev.productId}: unknown side ${[...new Set(ev.unknownSides)].map((v) => JSON.stringify(v)).join(', ')} (expected "bid" or "offer"); ${ev.unknownSides.length} level(s) left out`;
        session.ctx.metrics?.error(detail);
        session.ctx.log.error({ feed: this.id }, detail);
      }
      if (late) {
        // an update older than one already applied cannot be put back in order: start this book over
        session.ctx.metrics?.error(
          `coinbase level2 ${ev.productId}: a message arrived out of order (sequence_num ${msg.sequence_num}); resubscribing the book`,
        );
        this.#resyncBook(session, sym);
        continue;
      }
      if (ev.type === 'snapshot') {
        this.#bookSynced.add(sym);
        const bids = ev.bids.filter(([, q]) => q > 0);
        const asks = ev.asks.filter(([, q]) => q > 0);
        let mirror = this.#mirror.get(sym);
        if (!mirror) this.#mirror.set(sym, (mirror = new OrderBook(this.#opts.bookLevels)));
        mirror.reset(bids, asks);
        const t = ts ?? nowNs();
        session.ctx.emit({ k: 'book', sym, reset: true, bids, asks, ts: t });
        // the quote published meanwhile may be a ticker's: the first one from the book always goes out
        this.#bookQuote(session, sym, mirror, t, true);
        continue;
      }
      if (!this.#bookSynced.has(sym)) continue; // waiting for the snapshot of a new subscription
      if (ev.bids.length + ev.asks.length === 0) continue;
      const t = ev.eventTime ?? ts ?? nowNs();
      session.ctx.emit({ k: 'book', sym, bids: ev.bids, asks: ev.asks, ts: t });
      const mirror = this.#mirror.get(sym);
      if (!mirror) continue;
      // both sides applied before either is checked: the quote needs the whole update
      const shortBids = this.#short(mirror, ev.bids, 'bids');
      const shortAsks = this.#short(mirror, ev.asks, 'asks');
      // a short side still holds the exact best levels (it lost only its worst): its top is right
      this.#bookQuote(session, sym, mirror, t, false);
      if (shortBids || shortAsks) {
        this.#bookRefreshes++;
        this.#resyncBook(session, sym);
      }
    }
  }
}

type QuoteSides = NonNullable<ReturnType<typeof quoteFields>>;

function sameSides(a: QuoteSides | undefined, b: QuoteSides | undefined): boolean {
  return a?.bp === b?.bp && a?.bs === b?.bs && a?.ap === b?.ap && a?.as === b?.as;
}

/** a side that dropped levels is refreshed once it keeps fewer than this fraction of `bookLevels` */
export const REFRESH_FRACTION = 0.25;

/** A `market_trades` trade with its time (ns) read once; `bad`: the error reading it (then `t` is undefined). */
interface TimedTrade {
  tr: Record<string, any>;
  t: bigint | undefined;
  bad?: unknown;
}

/** A trade's `time` (RFC 3339), or the message time when it has none; throws when it cannot be read. */
function tradeTime(tr: Record<string, any>, msgTs: bigint | undefined): bigint {
  return tr.time ? isoToNs(String(tr.time)) : msgTs!;
}

/**
 * A `market_trades` update's trades oldest first, each with its time read once: by `time` (the
 * message time when absent), then by trade_id (numeric when both are digits). The sort is stable.
 * A trade whose time cannot be read goes last, where `#trade` reports it, so the trades that can
 * be read go out before it.
 */
function oldestFirst(trades: readonly Record<string, any>[], msgTs: bigint | undefined): TimedTrade[] {
  const keyed = trades.map((tr): TimedTrade => {
    try {
      return { tr, t: tradeTime(tr, msgTs) };
    } catch (bad) {
      return { tr, t: undefined, bad };
    }
  });
  keyed.sort((a, b) => {
    if (a.t === undefined || b.t === undefined) return a.t === b.t ? 0 : a.t === undefined ? 1 : -1;
    return a.t < b.t ? -1 : a.t > b.t ? 1 : compareIds(String(a.tr.trade_id), String(b.tr.trade_id));
  });
  return keyed;
}

/** Trade ids as numbers when both are decimal integers (Coinbase's are), else as text. */
function compareIds(a: string, b: string): number {
  if (/^\d+$/.test(a) && /^\d+$/.test(b)) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The aggressor (taker) side from a Coinbase `market_trades` side. The Advanced Trade pages
 * ("Market trades" AsyncAPI, "WebSocket Channels" > Market Trades Channel) and Coinbase's
 * own SDK (coinbase-advanced-py) type `side` as BUY/SELL without saying whose it is; Coinbase documents it for the same engine's Exchange feed: "The side field
 * indicates the maker order side" (Exchange WebSocket, `match`). So it is read as the MAKER's
 * side (a BUY maker means the resting buy order was hit by a seller), while protocol v1's `side`
 * is the aggressor's: BUY maps to `sell` and SELL to `buy`; anything else leaves the side out
 * (docs/feeds.md, "The trade side is not stated").
 */
export function aggressorSide(makerSide: unknown): 'buy' | 'sell' | undefined {
  const s = String(makerSide).toUpperCase();
  return s === 'BUY' ? 'sell' : s === 'SELL' ? 'buy' : undefined;
}
