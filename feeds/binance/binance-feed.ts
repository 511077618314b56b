import { z } from 'zod';
import { nowNs } from '../../src/core/time.js';
import { commonFeedFields, runnerOptions } from '../config.js';
import { decimal, optionalDecimal, price } from '../sdk/decimal.js';
import type { StreamSession } from '../sdk/runner.js';
import { StreamFeed } from '../sdk/stream-feed.js';
import { pairRule, SymbolMap } from '../sdk/symbol-map.js';
import { toNs } from '../sdk/time.js';
import { DepthSync, parseDepthEvent, parseDepthSnapshot } from './depth-sync.js';
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
 */
export const BinanceOptionsSchema = z
  .object({
    ...commonFeedFields,
    streams: z
      .array(z.enum(['trade', 'bookTicker', 'depth']))
      .min(1)
      .default(['trade', 'bookTicker']),
    restUrl: z.string().url().optional().describe('REST base URL for depth snapshots (default https://api.binance.com)'),
    depthLimit: z.number().int().min(5).max(5000).default(1000).describe('levels per side of each depth snapshot (GET /api/v3/depth limit)'),
    depthSpeed: z.enum(['100ms', '1000ms']).default('100ms').describe('diff depth stream speed: <symbol>@depth@100ms or <symbol>@depth'),
    depthRetryMs: z.number().int().min(1).default(250).describe('wait before asking again for a depth snapshot that was stale or failed'),
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

export class BinanceFeed extends StreamFeed {
  readonly #opts: BinanceOptions;
  readonly #map: SymbolMap;
  #requestId = 0;
  /** order book sync per canonical symbol (streams include `depth`) */
  readonly #depth = new Map<string, DepthSync>();

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

  onOpen(session: StreamSession, symbols: readonly string[]): void {
    // a new connection: every book starts over from a snapshot
    this.#depth.clear();
    // the URL carries the subscription: nothing to confirm
    session.ready(`${symbols.length} symbols, streams ${this.#opts.streams.join('+')}`);
  }

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    session.send(JSON.stringify({ method: 'SUBSCRIBE', params: this.#streamNames(symbols), id: ++this.#requestId }));
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    for (const s of symbols) this.#depth.delete(s);
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
    if (payload.e === 'depthUpdate') {
      this.#onDepth(sym, providerSym, parseDepthEvent(payload), session);
    } else if (payload.e === 'trade') {
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
        ts: binanceTime(payload.T ?? payload.E, 'trade.T'),
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
        ts: payload.E !== undefined ? binanceTime(payload.E, 'bookTicker.E') : nowNs(),
      });
    }
  }

  #onDepth(sym: string, providerSym: string, ev: DepthEvent, session: StreamSession): void {
    let sync = this.#depth.get(sym);
    if (!sync) this.#depth.set(sym, (sync = new DepthSync()));
    const r = sync.onEvent(ev);
    if (r.gap) {
      session.ctx.metrics?.gap(1, `binance depth ${providerSym}: ${r.gap}`);
      session.ctx.log.warn({ sym }, `binance: depth stream gap (${r.gap}), syncing the book again`);
    }
    if (r.out) this.#emitBook(sym, r.out, session);
    if (r.fetch) this.#fetchSnapshot(sym, providerSym, sync, session, 0);
  }

  /** Step 2 of the procedure: GET /api/v3/depth (Binance Spot REST "Order book"), again while stale. */
  #fetchSnapshot(sym: string, providerSym: string, sync: DepthSync, session: StreamSession, delayMs: number): void {
    sync.fetching = true;
    const base = (this.#opts.restUrl ?? BINANCE_DEFAULT_REST_URL).replace(/\/+$/, '');
    const url = `${base}/api/v3/depth?symbol=${encodeURIComponent(providerSym.toUpperCase())}&limit=${this.#opts.depthLimit}`;
    const current = (): boolean => session.open && this.#depth.get(sym) === sync;
    const again = (): void => {
      if (current()) this.#fetchSnapshot(sym, providerSym, sync, session, this.#opts.depthRetryMs);
      else sync.fetching = false;
    };
    const run = async (): Promise<void> => {
      if (!current()) {
        sync.fetching = false;
        return;
      }
      let snap: DepthSnapshot;
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
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
      for (const o of r.out) this.#emitBook(sym, o, session);
    };
    if (delayMs > 0) setTimeout(() => void run(), delayMs).unref();
    else void run();
  }

  /**
   * Binance Spot "WebSocket Streams" > "Diff. Depth Stream": `b` / `a` are [price, quantity]
   * decimal strings where the quantity is the level's new absolute total and 0 removes the level
   * (as in our BookTick); `E` is the event time (ms or µs, see `binanceTime`). REST "Order book" (GET /api/v3/depth):
   * `bids` / `asks` the same pairs, the whole book up to `limit` (our `reset` tick, stamped with
   * the first buffered event's time: the snapshot carries none).
   */
  #emitBook(sym: string, o: DepthOutput, session: StreamSession): void {
    session.ctx.emit({ k: 'book', sym, ...(o.kind === 'reset' ? { reset: true } : {}), bids: o.bids, asks: o.asks, ts: binanceTime(o.E, 'depthUpdate.E') });
  }
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
