import { Decoder } from '@msgpack/msgpack';
import { pack } from 'msgpackr';
import { z } from 'zod';
import type { BarInterval } from '../../src/core/schema.js';
import type { FeedState } from '../sdk/adapter.js';
import { commonFeedFields, runnerOptions } from '../config.js';
import { decimal, price, quoteFields, quoteSide } from '../sdk/decimal.js';
import { staleAfterUnansweredPings } from '../sdk/runner.js';
import type { StreamSession } from '../sdk/runner.js';
import { forEachMessage, StreamFeed } from '../sdk/stream-feed.js';
import { StaleStatusMarker } from '../sdk/stale-status.js';
import { identityRule, SymbolMap } from '../sdk/symbol-map.js';
import { anyTimeToNs } from '../sdk/time.js';
import { venueTradeId } from '../sdk/trade-id.js';
import { NS_TIMESTAMP_CODEC, NsTimestamp } from './msgpack-time.js';

/**
 * Alpaca market data v2 real-time stream (stocks): wss://stream.data.alpaca.markets/v2/{iex|sip}.
 * The server greets with [{"T":"success","msg":"connected"}]; we authenticate with
 * {"action":"auth","key","secret"} (answer "authenticated"), then subscribe with
 * {"action":"subscribe","trades":[..],"quotes":[..],"bars":[..]} (answer {"T":"subscription"}).
 * Every frame is an array of messages: trades (T "t": i id, x exchange, p, s, t RFC 3339 ns),
 * quotes (T "q": bx bp bs ax ap as t), minute bars (T "b": o h l c v t n vw) and errors
 * ({"T":"error","code","msg"}), mapped below to log lines and health states.
 * Both encodings are supported: JSON text frames, or MessagePack binary frames when the upgrade
 * request carries `Content-Type: application/msgpack` (then our requests are MessagePack too and
 * times arrive as MessagePack timestamps, read to the nanosecond: see msgpack-time.ts).
 */
export const AlpacaOptionsSchema = z
  .object({
    ...commonFeedFields,
    encoding: z.enum(['json', 'msgpack']).default('json'),
    // statuses and lulds: trading halts/resumptions and limit-up/limit-down bands (docs/feeds.md)
    // updatedBars: a minute bar sent again after late trades (published flagged `corrected`);
    // only with bars, whose bars it replaces (refused without: feeds/registry.ts checkAlpacaBarChannels)
    channels: z
      .array(z.enum(['trades', 'quotes', 'bars', 'updatedBars', 'statuses', 'lulds']))
      .min(1)
      .default(['trades', 'quotes', 'bars']),
    // quote bs/as unit. Alpaca's Market Data guidance (github.com/alpacahq/alpaca-skills,
    // skills/broker-api/market-data/SKILL.md, "3. Feeds"): "Trade/quote sizes are in shares as of
    // 2025-11-03 (were round lots before)": the SEC Market Data Infrastructure round-lot change,
    // which the SIPs and Polygon made the same day. So sizes pass through by default. The Real-time
    // Stock Data page (Channels > Quotes > Schema: bs "bid size in round lots", as "ask size in round
    // lots") and the Alpaca forum ("15 means 15 * 100 = 1500 shares") describe the data before it:
    // `round-lots` multiplies by ALPACA_ROUND_LOT, for recordings of data from before 2025-11-03
    // (docs/feeds.md, Alpaca quote size unit)
    quoteSizeUnit: z
      .enum(['shares', 'round-lots'])
      .default('shares')
      .describe('unit of q bs/as as sent: shares (passed through, the default: Alpaca sends shares since 2025-11-03) or round-lots (x100, data from before)'),
  })
  .strict();
export type AlpacaOptions = z.infer<typeof AlpacaOptionsSchema>;

export const ALPACA_DEFAULT_URL = 'wss://stream.data.alpaca.markets/v2/iex';

/** shares per round lot in Alpaca's quote sizes before 2025-11-03 (Real-time Stock Data > Quotes > Schema: "size in round lots"; Alpaca forum: "15 means 15 * 100 = 1500 shares") */
export const ALPACA_ROUND_LOT = 100;

export interface AlpacaCredentials {
  key: string;
  secret: string;
  /** env var names, for error messages that tell the operator what to fix */
  keyEnv?: string;
  secretEnv?: string;
}

type ErrorAction = 'auth_failed' | 'error' | 'reconnect' | 'log';

/** Alpaca stream error codes: what they mean and what we do about them. */
export const ALPACA_ERROR_CODES: Readonly<Record<number, { action: ErrorAction; meaning: string; fix: string }>> = {
  400: { action: 'log', meaning: 'invalid syntax', fix: 'Alpaca could not parse a request from tickwire (please report this bug)' },
  401: { action: 'reconnect', meaning: 'not authenticated', fix: 'a request arrived before authentication; reconnecting to authenticate again' },
  402: {
    action: 'auth_failed',
    meaning: 'auth failed',
    fix: 'the key id in {keyEnv} or the secret in {secretEnv} is wrong, or belongs to another environment (paper vs live)',
  },
  403: { action: 'log', meaning: 'already authenticated', fix: 'harmless: a second auth on the same connection' },
  404: { action: 'reconnect', meaning: 'auth timeout', fix: 'no authentication within 10 s of connecting; reconnecting' },
  405: { action: 'error', meaning: 'symbol limit exceeded', fix: 'the plan allows fewer symbols: remove some from feeds.{id}.symbols' },
  406: { action: 'error', meaning: 'connection limit exceeded', fix: 'another client uses this key on this feed: stop it or use another key' },
  407: { action: 'reconnect', meaning: 'slow client', fix: 'tickwire did not read fast enough; reconnecting' },
  409: {
    action: 'auth_failed',
    meaning: 'insufficient subscription',
    fix: 'the plan does not include this feed (e.g. sip): use the iex URL or upgrade the plan',
  },
  410: { action: 'error', meaning: 'invalid subscribe action for this feed', fix: 'a channel in feeds.{id}.channels is not offered on this feed' },
  500: { action: 'reconnect', meaning: 'internal error', fix: 'Alpaca had an internal error; reconnecting' },
};

export class AlpacaFeed extends StreamFeed {
  readonly #opts: AlpacaOptions;
  readonly #creds: AlpacaCredentials;
  readonly #map: SymbolMap;
  /** per connection: connected -> authenticated -> subscribed */
  #phase: 'greeting' | 'auth' | 'subscribe' | 'live' = 'greeting';
  /** the symbols of the opening subscribe request, to reconcile changes made while it was unanswered */
  #opening: readonly string[] = [];
  /** MessagePack decoder that keeps timestamps exact (ns) instead of turning them into Dates */
  readonly #decoder = new Decoder({ extensionCodec: NS_TIMESTAMP_CODEC });

  constructor(id: string, opts: AlpacaOptions, creds: AlpacaCredentials) {
    // Alpaca's stream documents no heartbeat, and a quiet symbol sends nothing: our pings (every
    // 20 s) are answered with pongs, and three unanswered ones mean a dead connection
    const pingIntervalMs = opts.pingIntervalMs ?? 20_000;
    super(id, opts.symbols, runnerOptions(opts, { staleAfterMs: staleAfterUnansweredPings(pingIntervalMs), pingIntervalMs, readyTimeoutMs: 15_000 }));
    this.#opts = opts;
    this.#creds = creds;
    this.#map = new SymbolMap(opts.symbols, identityRule, opts.symbolMap);
  }

  url(): string {
    return this.#opts.url ?? ALPACA_DEFAULT_URL;
  }

  headers(): Record<string, string> {
    return this.#opts.encoding === 'msgpack' ? { 'Content-Type': 'application/msgpack' } : {};
  }

  #send(session: StreamSession, msg: Record<string, unknown>): void {
    session.send(this.#opts.encoding === 'msgpack' ? pack(msg) : JSON.stringify(msg));
  }

  /**
   * Alpaca sends trading statuses only when they change (Real-time Stock Data, "Trading status":
   * no status on subscribe, and the Market Data API's stock snapshot holds no status): a symbol
   * subscribed again after it had a status is marked stale until its next status message.
   */
  readonly #stale = new StaleStatusMarker();

  #subscribe(symbols: readonly string[], session: StreamSession): void {
    if (this.#opts.channels.includes('statuses')) this.#stale.resubscribing(symbols, session.ctx);
    this.#send(session, { action: 'subscribe', ...this.#subscription(symbols) });
  }

  #subscription(symbols: readonly string[]): Record<string, string[]> {
    const list = symbols.map((s) => this.#map.toProvider(s));
    return Object.fromEntries(this.#opts.channels.map((c) => [c, list]));
  }

  onOpen(): void {
    this.#phase = 'greeting';
  }

  /**
   * The canonical symbol of a data message, when it is one of the feed's symbols now
   * (StreamRunner.has). Alpaca stops a symbol's data only once it has processed the unsubscribe
   * request (Alpaca Data API v2, Real-time data, "Unsubscribe": it then answers with the
   * subscription as it stands), and what it sent before is still on the wire: those trades,
   * quotes, bars, statuses, corrections and cancels are dropped here, as Binance's are. The
   * symbol map alone remembers every symbol ever asked for and would take them for the feed's own.
   */
  #ours(providerSym: unknown): string | undefined {
    const sym = this.#map.toCanonical(String(providerSym));
    return sym !== undefined && this.runner.has(sym) ? sym : undefined;
  }

  /** Alpaca's `b` minute bars are the closed 1m bars of this feed's symbols. */
  get providesBars(): readonly BarInterval[] {
    return this.#opts.channels.includes('bars') ? ['1m'] : [];
  }

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    this.#subscribe(symbols, session);
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    this.#send(session, { action: 'unsubscribe', ...this.#subscription(symbols) });
  }

  onMessage(data: Buffer, isBinary: boolean, session: StreamSession): void {
    const decoded: unknown = isBinary ? this.#decoder.decode(data) : JSON.parse(data.toString('utf8'));
    const messages = (Array.isArray(decoded) ? decoded : [decoded]) as Record<string, any>[];
    // data points arrive batched in one array (WebSocket Stream > Message format): one that
    // cannot be read must not cost the others
    forEachMessage(messages, session, (m) => this.#handle(m, session));
  }

  #handle(m: Record<string, any>, session: StreamSession): void {
    switch (m.T) {
      case 't': {
        // Alpaca "Real-time Stock Data" > Trades: i trade ID, x exchange code, p price, s size
        // (shares), t RFC 3339 time with nanoseconds (a MessagePack timestamp in msgpack mode).
        // Trade ids are per exchange, so the canonical id is venue-qualified: "<x>:<i>".
        const sym = this.#ours(m.S);
        if (!sym) return;
        // `c` conditions with `z` tape: see alpacaSetsNoPrice.
        session.ctx.emit({
          k: 'trade',
          sym,
          id: alpacaTradeId(m.x, m.i),
          p: price(m.p, 't.p'),
          s: decimal(m.s, 't.s'),
          ...(m.x ? { venue: String(m.x) } : {}),
          ...conditionFlags(alpacaTradeEffect(m.c, m.z)),
          ts: alpacaTime(m.t),
        });
        return;
      }
      case 'q': {
        // Alpaca "Real-time Stock Data" > Quotes: bp/bs bid price/size, ap/as ask price/size, t.
        // Sizes are passed through as sent (see docs/feeds.md, Alpaca units). The schema gives no
        // "no bid"/"no ask" marker; a side whose price is 0 (or absent) holds no order (the IEX
        // quotes quoted on the Alpaca forum, "Bid and ask size for IEX data is not as reported by
        // IEX", show a missing offer as ap 0.00 with size 0), so it is published absent
        // (docs/feeds.md, "Empty quote sides"), never as a price of 0 nor by rejecting the quote.
        const sym = this.#ours(m.S);
        if (!sym) return;
        const bid = quoteSide(m.bp, m.bs, 'q.bp/bs');
        const ask = quoteSide(m.ap, m.as, 'q.ap/as');
        const sides = quoteFields(bid, ask, this.#opts.quoteSizeUnit === 'round-lots' ? ALPACA_ROUND_LOT : 1);
        if (!sides) return;
        session.ctx.emit({
          k: 'quote',
          sym,
          ...sides,
          ts: alpacaTime(m.t),
        });
        return;
      }
      // Updated bar ("updatedBars"): a minute bar recalculated after late-reported trades, with the
      // start time of the bar it replaces; the engine publishes it flagged `corrected`
      case 'u':
      case 'b': {
        const sym = this.#ours(m.S);
        if (!sym) return;
        const start = alpacaTime(m.t);
        session.ctx.emit({
          k: 'bar',
          sym,
          iv: '1m',
          t: Number(start / 1_000_000n),
          o: price(m.o, 'b.o'),
          h: price(m.h, 'b.h'),
          l: price(m.l, 'b.l'),
          c: price(m.c, 'b.c'),
          v: decimal(m.v, 'b.v'),
          n: Number.isInteger(m.n) ? m.n : 0,
          closed: true,
          // a minute bar is published when its minute is over
          ts: start + 60_000_000_000n,
        });
        return;
      }
      case 'c': {
        // Trade correction (Real-time Stock Data, "Corrections"; sent to trade subscribers): x
        // exchange, oi/op/os/oc original id, price, size, conditions, ci/cp/cs/cc corrected ones
        const sym = this.#ours(m.S);
        if (!sym) return;
        // cc: the corrected trade's conditions decide what it counts in, as a trade's do (Market
        // Data FAQ, "How are bars aggregated?": M, Q and 9 update nothing, "the strictest rule is applied")
        const effect = Array.isArray(m.cc) ? alpacaTradeEffect(m.cc, m.z) : undefined;
        session.ctx.emit({
          k: 'correction',
          sym,
          ref: alpacaTradeId(m.x, m.oi),
          id: alpacaTradeId(m.x, m.ci),
          p: price(m.cp, 'c.cp'),
          s: decimal(m.cs, 'c.cs'),
          ...(m.op !== undefined ? { op: price(m.op, 'c.op') } : {}),
          ...(m.os !== undefined ? { os: decimal(m.os, 'c.os') } : {}),
          ...(m.x ? { venue: String(m.x) } : {}),
          ...(effect === undefined ? {} : { volumeOnly: effect !== 'price' }),
          ...(effect === 'none' ? { excluded: true as const } : {}),
          ...(effect === 'highlow' ? { highLowOnly: true as const } : {}),
          ts: alpacaTime(m.t),
        });
        return;
      }
      case 'x': {
        // Trade cancel/error (Real-time Stock Data, "Cancel errors"): i id, x exchange, p, s of the
        // original trade; a "C" cancel, "E" error
        const sym = this.#ours(m.S);
        if (!sym) return;
        session.ctx.emit({
          k: 'cancel',
          sym,
          ref: alpacaTradeId(m.x, m.i),
          ...(String(m.a).toUpperCase() === 'E' ? { error: true } : {}),
          ...(m.p !== undefined ? { op: price(m.p, 'x.p') } : {}),
          ...(m.s !== undefined ? { os: decimal(m.s, 'x.s') } : {}),
          ts: alpacaTime(m.t),
        });
        return;
      }
      case 's': {
        // Trading status (Real-time Stock Data, "Trading status"; channel `statuses`): sc status
        // code, sm status message, rc/rm reason code and message. Only codes that start or end
        // a halt change the status; the others (imbalances, price indications, ...) do not.
        const sym = this.#ours(m.S);
        if (!sym) return;
        const status = ALPACA_STATUS_CODES[String(m.sc)];
        if (!status) return;
        const reason = [m.sm, m.rm].filter((x) => typeof x === 'string' && x.length > 0).join(': ');
        session.ctx.emit({ k: 'status', sym, status, code: String(m.sc), ...(reason ? { reason } : {}), ts: alpacaTime(m.t) });
        this.#stale.reported(sym);
        return;
      }
      case 'l': {
        // Limit up - limit down (Real-time Stock Data, "LULDs"; channel `lulds`): u limit-up and
        // d limit-down price, i indicator
        const sym = this.#ours(m.S);
        if (!sym) return;
        session.ctx.emit({ k: 'status', sym, luld: { up: price(m.u, 'l.u'), down: price(m.d, 'l.d') }, ts: alpacaTime(m.t) });
        return;
      }
      case 'success':
        if (m.msg === 'connected') {
          this.#phase = 'auth';
          this.#send(session, { action: 'auth', key: this.#creds.key, secret: this.#creds.secret });
        } else if (m.msg === 'authenticated') {
          this.#phase = 'subscribe';
          this.#opening = [...this.runner.symbols];
          this.#subscribe(this.#opening, session);
        }
        return;
      case 'subscription':
        if (this.#phase !== 'live') {
          this.#phase = 'live';
          const counts = this.#opts.channels.map((c) => `${(m[c] as unknown[] | undefined)?.length ?? 0} ${c}`).join(', ');
          session.ready(`subscribed: ${counts} (${this.#opts.encoding})`);
          this.reconcileSymbols(this.#opening, session);
        }
        return;
      case 'error':
        this.#error(Number(m.code), String(m.msg ?? ''), session);
        return;
      default:
        return; // imbalances and daily bars: not used (updated bars, `u`, are read above)
    }
  }

  #error(code: number, msg: string, session: StreamSession): void {
    const known = ALPACA_ERROR_CODES[code];
    const fix = (known?.fix ?? 'unknown error code')
      .replace('{keyEnv}', this.#creds.keyEnv ?? 'the key variable')
      .replace('{secretEnv}', this.#creds.secretEnv ?? 'the secret variable')
      .replace('{id}', this.id);
    const line = `alpaca error ${code} "${msg || known?.meaning || '?'}": ${fix}`;
    const action: ErrorAction = known?.action ?? 'reconnect';
    switch (action) {
      case 'auth_failed':
      case 'error':
        session.fail(action as Extract<FeedState, 'auth_failed' | 'error'>, line);
        return;
      case 'reconnect':
        session.ctx.metrics?.error(line);
        session.ctx.log.warn({ feed: this.id, code }, line);
        session.reconnect(line);
        return;
      case 'log':
        session.ctx.metrics?.error(line);
        session.ctx.log.warn({ feed: this.id, code }, line);
        return;
    }
  }
}

/**
 * The canonical id of an Alpaca trade (venue-qualified, `<x>:<i>`: Alpaca trade ids are per
 * exchange). Trades, corrections (`oi`, `ci`) and cancels (`i`) all build ids here, so a
 * correction always names the trade it amends the way the trade was named.
 */
export function alpacaTradeId(exchange: unknown, id: unknown): string {
  return venueTradeId(exchange, id);
}

/**
 * Status codes that change whether a symbol trades (Alpaca Market Data docs, Real-time Stock Data >
 * Trading Status > Status Codes: "Tape A & B (CTA)" 2 Trading Halt, 3 Resume; "Tape C & O (UTP)"
 * H Trading Halt, Q Quotation Resumption, T Trading Resumption, P Volatility Trading Pause). The
 * other CTA codes the table lists (5-9, A, C-F: price and trading range indications, imbalances,
 * short sale restriction, limit up-limit down) leave the status as it was; so does any code not
 * listed. A halt's cause is in the reason code (`rc`, e.g. CTA M "LULD Trading Pause", UTP T1
 * "Halt News Pending"), carried as `reason`.
 */
export const ALPACA_STATUS_CODES: Readonly<Record<string, 'trading' | 'halted'>> = {
  '2': 'halted', // CTA: trading halt
  '3': 'trading', // CTA: resume
  H: 'halted', // UTP: trading halt
  P: 'halted', // UTP: volatility trading pause
  Q: 'halted', // UTP: quotation resumption (quotes first, trading not yet)
  T: 'trading', // UTP: trading resumption
};

/**
 * What a sale condition lets a trade count in: `price` sets last, open, high, low, close and
 * counts in volume; `highlow` sets the day's high and low and counts in volume (a late print);
 * `volume` counts in volume only; `none` counts in nothing.
 */
type ConditionEffect = 'price' | 'highlow' | 'volume' | 'none';

/**
 * Every SIP sale condition Alpaca documents for stock trades (Alpaca Market Data docs,
 * "Conditions" > Trade conditions: the CTS table for tapes A and B, the UTDF table for tape C),
 * with what it does to the consolidated last price. Alpaca's docs give the codes and names and
 * point to the SIPs for their processing ("page 64 of the CTS Specification", "page 43 of the
 * UTP Specification"); Alpaca Learn "Stock Minute Bars" says Alpaca's bars follow that SIP
 * guidance and lists the conditions that exclude a trade from a close price. The effect of each
 * code below is that guidance, as Polygon/Massive also publishes it per SIP code (REST
 * Conditions, `sip_mapping` CTA/UTP and `update_rules.consolidated.updates_open_close`), so a
 * condition is handled the same way from both stock providers (POLYGON_NO_PRICE_CONDITIONS):
 * - average price (CTS `B`, UTDF `W`), cash (`C`), price variation (`H`), odd lot (`I`), next
 *   day (`N`), seller (`R`), contingent (`V`), qualified contingent (`7`): special settlement
 *   or pricing, volume only. For `R` this is Alpaca's own rule (Market Data FAQ, "How are bars
 *   aggregated?", row `R` Seller, tapes A B C O: open / close and high / low red on minute and
 *   daily bars; its VWAP paragraph names `R` as a trade that updates "the volume but not the
 *   high / low price"). Polygon's rule for the same SIP code differs (its 29 Seller sets the
 *   high and low: POLYGON_HIGH_LOW_CONDITIONS); each adapter follows its own provider;
 * - out of sequence: sold out of sequence (`Z`), extended hours sold out of sequence (`U`),
 *   prior reference price (`P`), bunched sold (UTDF `G`), derivatively priced (`4`): reported
 *   late or at an earlier price, so not the last sale, open or close. `Z`, `P`, `G` and `4`
 *   still set the day's high and low (`highlow`, flagged `highLowOnly`): Alpaca Market Data FAQ,
 *   "How are bars aggregated?", rows `G` (tape C), `P` (tapes A B C O), `Z` and `4` (tapes A B
 *   C): daily bar "Update high / low" green, minute bar red ("that price possibly happened in
 *   another minute"); open / close yellow on a daily bar (only as the bar's first trade), which
 *   tickwire leaves out. `U` updates no high / low there (volume only);
 * - re-reports of a price already printed: market center official open (`Q`) and close (`M`),
 *   corrected consolidated close (`9`): they count in nothing, neither price nor volume (Alpaca
 *   Market Data FAQ, "How are bars aggregated?", whose table marks them as updating no value:
 *   the shares were counted with the trades they repeat), flagged `excluded`;
 * - everything else is a regular sale that sets the price, including `T` Form T (extended-hours
 *   trades: without a session calendar, flagging it would freeze the last price before and after
 *   regular hours; docs/feeds.md, "Trade conditions") and `L` sold last (reported late but still
 *   the last sale). The placeholders (UTDF `E`, `8`, CTS `8` reserved) carry no trades.
 * A code that is not in these tables is treated as a regular sale.
 */
export const ALPACA_TRADE_CONDITIONS: Readonly<Record<'CTS' | 'UTDF', Readonly<Record<string, { name: string; effect: ConditionEffect }>>>> = {
  CTS: {
    ' ': { name: 'Regular Sale', effect: 'price' },
    '@': { name: 'Regular Sale', effect: 'price' },
    B: { name: 'Average Price Trade', effect: 'volume' },
    C: { name: 'Cash Trade (Same Day Clearing)', effect: 'volume' },
    E: { name: 'Automatic Execution', effect: 'price' },
    F: { name: 'Inter-market Sweep Order', effect: 'price' },
    H: { name: 'Price Variation Trade', effect: 'volume' },
    I: { name: 'Odd Lot Trade', effect: 'volume' },
    K: { name: 'Rule 127 (NYSE only) or Rule 155 (NYSE MKT only)', effect: 'price' },
    L: { name: 'Sold Last (Late Reporting)', effect: 'price' },
    M: { name: 'Market Center Official Close', effect: 'none' },
    N: { name: 'Next Day Trade (Next Day Clearing)', effect: 'volume' },
    O: { name: 'Market Center Opening Trade', effect: 'price' },
    P: { name: 'Prior Reference Price', effect: 'highlow' },
    Q: { name: 'Market Center Official Open', effect: 'none' },
    R: { name: 'Seller', effect: 'volume' },
    T: { name: 'Extended Hours Trade', effect: 'price' },
    U: { name: 'Extended Hours Sold (Out Of Sequence)', effect: 'volume' },
    V: { name: 'Contingent Trade', effect: 'volume' },
    X: { name: 'Cross Trade', effect: 'price' },
    Z: { name: 'Sold (Out Of Sequence)', effect: 'highlow' },
    '4': { name: 'Derivatively Priced', effect: 'highlow' },
    '5': { name: 'Market Center Reopening Trade', effect: 'price' },
    '6': { name: 'Market Center Closing Trade', effect: 'price' },
    '7': { name: 'Qualified Contingent Trade', effect: 'volume' },
    '9': { name: 'Corrected Consolidated Close Price as per Listing Market', effect: 'none' },
  },
  UTDF: {
    '@': { name: 'Regular Sale', effect: 'price' },
    ' ': { name: 'Regular Sale', effect: 'price' },
    A: { name: 'Acquisition', effect: 'price' },
    B: { name: 'Bunched Trade', effect: 'price' },
    C: { name: 'Cash Sale', effect: 'volume' },
    D: { name: 'Distribution', effect: 'price' },
    F: { name: 'Intermarket Sweep', effect: 'price' },
    G: { name: 'Bunched Sold Trade', effect: 'highlow' },
    H: { name: 'Price Variation Trade', effect: 'volume' },
    I: { name: 'Odd Lot Trade', effect: 'volume' },
    K: { name: 'Rule 155 Trade (AMEX)', effect: 'price' },
    L: { name: 'Sold Last', effect: 'price' },
    M: { name: 'Market Center Official Close', effect: 'none' },
    N: { name: 'Next Day', effect: 'volume' },
    O: { name: 'Opening Prints', effect: 'price' },
    P: { name: 'Prior Reference Price', effect: 'highlow' },
    Q: { name: 'Market Center Official Open', effect: 'none' },
    R: { name: 'Seller', effect: 'volume' },
    S: { name: 'Split Trade', effect: 'price' },
    T: { name: 'Form T', effect: 'price' },
    U: { name: 'Extended trading hours (Sold Out of Sequence)', effect: 'volume' },
    V: { name: 'Contingent Trade', effect: 'volume' },
    W: { name: 'Average Price Trade', effect: 'volume' },
    X: { name: 'Cross Trade', effect: 'price' },
    Y: { name: 'Yellow Flag Regular Trade', effect: 'price' },
    Z: { name: 'Sold (out of sequence)', effect: 'highlow' },
    '1': { name: 'Stopped Stock (Regular Trade)', effect: 'price' },
    '4': { name: 'Derivatively priced', effect: 'highlow' },
    '5': { name: 'Re-Opening Prints', effect: 'price' },
    '6': { name: 'Closing Prints', effect: 'price' },
    '7': { name: 'Qualified Contingent Trade (QCT)', effect: 'volume' },
    '9': { name: 'Corrected Consolidated Close (per listing market)', effect: 'none' },
  },
};

/**
 * The condition table of a tape: CTS for tapes A and B, UTDF for tapes C and O (Alpaca Market
 * Data docs, "Conditions"). Tape O (OTC) takes the UTDF codes: Alpaca's Market Data FAQ
 * (docs.alpaca.markets/docs/market-data-faq, "How are bars aggregated?") lists tape O with tape C
 * for `@` and `W` and gives every tape O code (`@` `C` `I` `N` `P` `R` `T` `U` `W`) the rule UTDF
 * has here; Real-time Stock Data heads its UTP tables "Tape C & O (UTP)".
 */
function conditionTable(tape: unknown): Readonly<Record<string, { effect: ConditionEffect }>> | undefined {
  const z = String(tape).toUpperCase();
  return z === 'A' || z === 'B' ? ALPACA_TRADE_CONDITIONS.CTS : z === 'C' || z === 'O' ? ALPACA_TRADE_CONDITIONS.UTDF : undefined;
}

const STRICTNESS: Readonly<Record<ConditionEffect, number>> = { price: 0, highlow: 1, volume: 2, none: 3 };

/**
 * What an Alpaca trade's conditions (`c`, on tape `z`) let it count in: the strictest of its
 * codes (ALPACA_TRADE_CONDITIONS; Alpaca Market Data FAQ, "How are bars aggregated?": "the
 * strictest rule is applied"). Without a known tape, a code counts only as far as both tables
 * agree (`B` is an average price on CTS but a bunched trade on UTDF).
 */
export function alpacaTradeEffect(conditions: unknown, tape: unknown): ConditionEffect {
  if (!Array.isArray(conditions)) return 'price';
  const table = conditionTable(tape);
  let effect: ConditionEffect = 'price';
  for (const c of conditions) {
    const raw = String(c);
    const code = raw.trim() === '' ? ' ' : raw.trim();
    let e: ConditionEffect = 'price';
    if (table) e = Object.hasOwn(table, code) ? table[code]!.effect : 'price';
    else {
      const { CTS, UTDF } = ALPACA_TRADE_CONDITIONS;
      if (Object.hasOwn(CTS, code) && Object.hasOwn(UTDF, code)) {
        const a = CTS[code]!.effect;
        const b = UTDF[code]!.effect;
        e = STRICTNESS[a] <= STRICTNESS[b] ? a : b;
      }
    }
    if (STRICTNESS[e] > STRICTNESS[effect]) effect = e;
  }
  return effect;
}

/** Whether an Alpaca trade's conditions say it sets no price (volume only, or counts in nothing). */
export function alpacaSetsNoPrice(conditions: unknown, tape: unknown): boolean {
  return alpacaTradeEffect(conditions, tape) !== 'price';
}

/** The trade flags of an effect (docs/protocol.md#trade: `excluded` and `highLowOnly` trades carry `volumeOnly` too). */
export function conditionFlags(effect: ConditionEffect): { volumeOnly?: true; excluded?: true; highLowOnly?: true } {
  if (effect === 'price') return {};
  if (effect === 'highlow') return { volumeOnly: true, highLowOnly: true };
  return effect === 'volume' ? { volumeOnly: true } : { volumeOnly: true, excluded: true };
}

/** Alpaca times: RFC 3339 strings with nanoseconds (JSON) or MessagePack timestamps (exact ns). */
function alpacaTime(t: unknown): bigint {
  if (t instanceof NsTimestamp) return t.ns;
  return anyTimeToNs(t);
}
