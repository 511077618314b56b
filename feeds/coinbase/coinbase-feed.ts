import { z } from 'zod';
import { commonFeedFields, runnerOptions } from '../config.js';
import { decimal, optionalDecimal, price } from '../sdk/decimal.js';
import type { StreamSession } from '../sdk/runner.js';
import { StreamFeed } from '../sdk/stream-feed.js';
import { pairRule, SymbolMap } from '../sdk/symbol-map.js';
import { isoToNs } from '../sdk/time.js';

/**
 * Coinbase Advanced Trade market data WebSocket (public channels, no key needed).
 * On open we send one {"type":"subscribe","product_ids":[...],"channel":C} per channel:
 * `market_trades` (trades), `ticker` (best bid/ask with sizes) and `heartbeats` (one message a
 * second, which keeps quiet subscriptions open and proves the connection alive).
 * Every message is {"channel","timestamp","sequence_num","events":[...]}; `sequence_num` rises by
 * one per message on a connection, so a jump means lost messages: the gap is counted and the
 * data channels are resubscribed (fresh snapshots). The `subscriptions` message confirms.
 * `market_trades` snapshot events (recent history, re-sent on every subscribe) are skipped so that
 * a resubscription does not replay old trades.
 */
export const CoinbaseOptionsSchema = z
  .object({
    ...commonFeedFields,
    channels: z.array(z.enum(['market_trades', 'ticker'])).min(1).default(['market_trades', 'ticker']),
    heartbeats: z.boolean().default(true),
  })
  .strict();
export type CoinbaseOptions = z.infer<typeof CoinbaseOptionsSchema>;

export const COINBASE_DEFAULT_URL = 'wss://advanced-trade-ws.coinbase.com';

export class CoinbaseFeed extends StreamFeed {
  readonly #opts: CoinbaseOptions;
  readonly #map: SymbolMap;
  #lastSeq = -1;
  #resubscribes = 0;

  constructor(id: string, opts: CoinbaseOptions) {
    super(id, opts.symbols, runnerOptions(opts, { staleAfterMs: opts.heartbeats ? 10_000 : 120_000 }));
    this.#opts = opts;
    this.#map = new SymbolMap(opts.symbols, pairRule('-'), opts.symbolMap);
  }

  /** how many times a sequence gap made us resubscribe */
  get resubscribes(): number {
    return this.#resubscribes;
  }

  url(): string {
    return this.#opts.url ?? COINBASE_DEFAULT_URL;
  }

  #channels(): string[] {
    return this.#opts.heartbeats ? [...this.#opts.channels, 'heartbeats'] : [...this.#opts.channels];
  }

  #send(session: StreamSession, type: 'subscribe' | 'unsubscribe', symbols: readonly string[], channels: readonly string[]): void {
    const product_ids = symbols.map((s) => this.#map.toProvider(s));
    for (const channel of channels) session.send(JSON.stringify({ type, product_ids, channel }));
  }

  onOpen(session: StreamSession, symbols: readonly string[]): void {
    this.#lastSeq = -1;
    this.#send(session, 'subscribe', symbols, this.#channels());
  }

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    this.#send(session, 'subscribe', symbols, this.#channels());
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    this.#send(session, 'unsubscribe', symbols, this.#opts.channels);
  }

  onMessage(data: Buffer, _isBinary: boolean, session: StreamSession): void {
    const msg = JSON.parse(data.toString('utf8')) as Record<string, any>;
    if (msg.type === 'error') {
      const detail = `coinbase error: ${msg.message ?? 'unknown'}${msg.reason ? ` (${msg.reason})` : ''}`;
      session.ctx.metrics?.error(detail);
      session.ctx.log.error({ feed: this.id }, detail);
      return;
    }
    if (typeof msg.sequence_num === 'number') {
      const seq = msg.sequence_num;
      if (this.#lastSeq >= 0 && seq <= this.#lastSeq) return; // duplicate or replayed: already handled
      if (this.#lastSeq >= 0 && seq > this.#lastSeq + 1) {
        const missed = seq - this.#lastSeq - 1;
        session.ctx.metrics?.gap(missed, `sequence_num jumped from ${this.#lastSeq} to ${seq}`);
        this.#resubscribes++;
        // resubscribe the data channels on this connection: the snapshots that follow resync us
        this.#send(session, 'unsubscribe', this.runner.symbols, this.#opts.channels);
        this.#send(session, 'subscribe', this.runner.symbols, this.#opts.channels);
      }
      this.#lastSeq = seq;
    }
    const ts = typeof msg.timestamp === 'string' ? isoToNs(msg.timestamp) : undefined;
    switch (msg.channel) {
      case 'subscriptions':
        session.ready(`subscribed: ${Object.keys(msg.events?.[0]?.subscriptions ?? {}).join(', ')}`);
        return;
      case 'heartbeats':
        return;
      case 'market_trades':
        for (const ev of msg.events ?? []) {
          if (ev.type === 'snapshot') continue;
          for (const tr of ev.trades ?? []) {
            const sym = this.#map.toCanonical(String(tr.product_id));
            if (!sym) continue;
            const side = String(tr.side).toUpperCase();
            session.ctx.emit({
              k: 'trade',
              sym,
              id: String(tr.trade_id),
              p: price(tr.price, 'market_trades.price'),
              s: decimal(tr.size, 'market_trades.size'),
              ...(side === 'BUY' ? { side: 'buy' as const } : side === 'SELL' ? { side: 'sell' as const } : {}),
              ts: tr.time ? isoToNs(String(tr.time)) : ts!,
            });
          }
        }
        return;
      case 'ticker':
      case 'ticker_batch':
        for (const ev of msg.events ?? []) {
          for (const tk of ev.tickers ?? []) {
            const sym = this.#map.toCanonical(String(tk.product_id));
            if (!sym || tk.best_bid === undefined || tk.best_ask === undefined) continue;
            const bs = optionalDecimal(tk.best_bid_quantity, 'ticker.best_bid_quantity');
            const as = optionalDecimal(tk.best_ask_quantity, 'ticker.best_ask_quantity');
            session.ctx.emit({
              k: 'quote',
              sym,
              bp: price(tk.best_bid, 'ticker.best_bid'),
              ap: price(tk.best_ask, 'ticker.best_ask'),
              ...(bs === undefined ? {} : { bs }),
              ...(as === undefined ? {} : { as }),
              ts: ts!,
            });
          }
        }
        return;
      default:
        return;
    }
  }
}
