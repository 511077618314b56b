import { z } from 'zod';
import { nowNs } from '../../src/core/time.js';
import { commonFeedFields, runnerOptions } from '../config.js';
import { decimal, optionalDecimal, price } from '../sdk/decimal.js';
import type { StreamSession } from '../sdk/runner.js';
import { StreamFeed } from '../sdk/stream-feed.js';
import { pairRule, SymbolMap } from '../sdk/symbol-map.js';
import { toNs } from '../sdk/time.js';

/**
 * Binance spot market streams (public, no key). One combined-stream connection:
 *   GET {url}/stream?streams=btcusdt@trade/btcusdt@bookTicker
 * Every frame is {"stream":"<name>","data":<payload>}; symbols are lower case in stream names.
 * `trade` gives trades (id `t`, price `p`, qty `q`, trade time `T` ms, `m` = buyer is maker, so
 * the aggressor sold); `bookTicker` gives best bid/ask (`b`/`B`, `a`/`A`) without a timestamp,
 * so quotes are stamped with the receive time. Symbols added later are sent live with
 * {"method":"SUBSCRIBE"}. The server pings every 20 s (answered by the socket) and closes every
 * connection at 24 h, so we reconnect on our own a little before that.
 */
export const BinanceOptionsSchema = z
  .object({
    ...commonFeedFields,
    streams: z
      .array(z.enum(['trade', 'bookTicker']))
      .min(1)
      .default(['trade', 'bookTicker']),
  })
  .strict();
export type BinanceOptions = z.infer<typeof BinanceOptionsSchema>;

export const BINANCE_DEFAULT_URL = 'wss://stream.binance.com:9443';

export class BinanceFeed extends StreamFeed {
  readonly #opts: BinanceOptions;
  readonly #map: SymbolMap;
  #requestId = 0;

  constructor(id: string, opts: BinanceOptions) {
    super(
      id,
      opts.symbols,
      runnerOptions(opts, {
        pingIntervalMs: 30_000,
        staleAfterMs: 90_000,
        maxConnectionAgeMs: 23 * 3600_000 + 50 * 60_000,
      }),
    );
    this.#opts = opts;
    // BTC-USD -> btcusd by default; the feeds file maps BTC-USD: BTCUSDT where the venue quotes in USDT
    this.#map = new SymbolMap(opts.symbols, pairRule('', { lower: true }), opts.symbolMap);
  }

  #streamNames(symbols: readonly string[]): string[] {
    return symbols.flatMap((s) => this.#opts.streams.map((k) => `${this.#map.toProvider(s).toLowerCase()}@${k}`));
  }

  url(symbols: readonly string[]): string {
    const base = (this.#opts.url ?? BINANCE_DEFAULT_URL).replace(/\/+$/, '');
    const path = /\/stream$/.test(base) ? base : `${base}/stream`;
    return `${path}?streams=${this.#streamNames(symbols).join('/')}`;
  }

  onOpen(session: StreamSession, symbols: readonly string[]): void {
    // the URL carries the subscription: nothing to confirm
    session.ready(`${symbols.length} symbols, streams ${this.#opts.streams.join('+')}`);
  }

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    session.send(JSON.stringify({ method: 'SUBSCRIBE', params: this.#streamNames(symbols), id: ++this.#requestId }));
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    session.send(JSON.stringify({ method: 'UNSUBSCRIBE', params: this.#streamNames(symbols), id: ++this.#requestId }));
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
    if (!sym) return; // not one of ours (e.g. after an unsubscribe in flight)
    if (payload.e === 'trade') {
      // Binance Spot "WebSocket Streams" > Trade Streams: t trade ID (per symbol), p price and
      // q quantity (decimal strings, quote/base asset), T trade time (ms), m "is the buyer the
      // market maker?" (true: the aggressor sold)
      session.ctx.emit({
        k: 'trade',
        sym,
        id: String(payload.t),
        p: price(payload.p, 'trade.p'),
        s: decimal(payload.q, 'trade.q'),
        side: payload.m ? 'sell' : 'buy',
        ts: toNs(payload.T ?? payload.E, 'ms'),
      });
    } else if (stream.endsWith('@bookTicker') || ('b' in payload && 'a' in payload && 'u' in payload)) {
      // Binance Spot "WebSocket Streams" > Individual Symbol Book Ticker Streams: b/B best bid
      // price/qty, a/A best ask price/qty (base asset); no event time, so the receive time
      const bs = optionalDecimal(payload.B, 'bookTicker.B');
      const as = optionalDecimal(payload.A, 'bookTicker.A');
      session.ctx.emit({
        k: 'quote',
        sym,
        bp: price(payload.b, 'bookTicker.b'),
        ap: price(payload.a, 'bookTicker.a'),
        ...(bs === undefined ? {} : { bs }),
        ...(as === undefined ? {} : { as }),
        ts: payload.E !== undefined ? toNs(payload.E, 'ms') : nowNs(),
      });
    }
  }
}
