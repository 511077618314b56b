import { z } from 'zod';
import { commonFeedFields, runnerOptions } from '../config.js';
import { optionalDecimal, price } from '../sdk/decimal.js';
import type { StreamSession } from '../sdk/runner.js';
import { StreamFeed } from '../sdk/stream-feed.js';
import { pairRule, SymbolMap } from '../sdk/symbol-map.js';
import { anyTimeToNs } from '../sdk/time.js';

/**
 * OANDA v20 pricing stream (forex): an HTTP GET that never ends,
 *   {url}/v3/accounts/{accountID}/pricing/stream?instruments=EUR_USD,USD_JPY
 * with `Authorization: Bearer <token>`, answered with one JSON object per line: PRICE
 * (bids/asks as [{price, liquidity}], time) and a HEARTBEAT every 5 s. Prices become quotes
 * (best bid/ask and their liquidity). The instrument list is part of the URL, so a subscription
 * change reconnects with the new list.
 */
export const OandaOptionsSchema = z
  .object({
    ...commonFeedFields,
    accountId: z.string().min(1).optional().describe('v20 account id, e.g. 101-004-1234567-001'),
    accountIdEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe('or: environment variable holding the account id'),
  })
  .strict();
export type OandaOptions = z.infer<typeof OandaOptionsSchema>;

export const OANDA_DEFAULT_URL = 'https://stream-fxtrade.oanda.com';

/**
 * OANDA writes a HEARTBEAT to the pricing stream every 5 seconds (Pricing Endpoints > Price
 * Stream; PricingHeartbeat "is injected into the Pricing stream to ensure that the HTTP connection
 * remains active"): the adapter's default staleAfterMs is three of them, and the feeds file may not
 * set it below two (feeds/registry.ts), or a quiet market reconnects for ever.
 */
export const OANDA_HEARTBEAT_MS = 5000;

/** at most two new connections per second (v20 Best Practices > Connection Limits) */
export const OANDA_MIN_CONNECT_INTERVAL_MS = 500;

export class OandaFeed extends StreamFeed {
  /**
   * OANDA publishes prices (bid/ask), never trades: the v20 pricing stream carries ClientPrice and
   * PricingHeartbeat objects only (Pricing Endpoints > Price Stream). So the engine builds the
   * ticker and bars from mid prices, as OANDA builds its own candles (Instrument Endpoints > Get
   * Candlesticks: `price` M, midpoint candles, by default; Instrument Definitions > Candlestick:
   * `volume` is "the number of prices created"; docs/feeds.md#oanda-v20-pricing-stream).
   */
  readonly quotesOnly = true;
  readonly #opts: OandaOptions;
  readonly #token: string;
  readonly #tokenEnv: string | undefined;
  readonly #accountId: string;
  readonly #map: SymbolMap;
  /** last tradeable flag published per symbol (a status tick goes out when it changes; absent: the status taken up after a restart, else tradeable) */
  readonly #tradeable = new Map<string, boolean>();

  constructor(id: string, opts: OandaOptions, creds: { token: string; tokenEnv?: string; accountId: string }) {
    // v20 "Best Practices" > Connection Limits: "For new connections, we recommend you limit this
    // to twice per second (2/s)": attempts start at least 500 ms apart, whatever the reason, across
    // all the OANDA feeds of the process (one client: connectSpacingKey)
    // (feeds/oanda/test/oanda-connect-rate.test.ts)
    super(
      id,
      opts.symbols,
      runnerOptions(opts, {
        transport: 'http-lines',
        staleAfterMs: 3 * OANDA_HEARTBEAT_MS,
        minConnectIntervalMs: OANDA_MIN_CONNECT_INTERVAL_MS,
        connectSpacingKey: 'oanda',
      }),
    );
    this.#opts = opts;
    this.#token = creds.token;
    this.#tokenEnv = creds.tokenEnv;
    this.#accountId = creds.accountId;
    this.#map = new SymbolMap(opts.symbols, pairRule('_'), opts.symbolMap);
  }

  url(symbols: readonly string[]): string {
    const base = (this.#opts.url ?? OANDA_DEFAULT_URL).replace(/\/+$/, '');
    const instruments = symbols.map((s) => this.#map.toProvider(s)).join(',');
    return `${base}/v3/accounts/${encodeURIComponent(this.#accountId)}/pricing/stream?instruments=${encodeURIComponent(instruments)}`;
  }

  headers(): Record<string, string> {
    return { authorization: `Bearer ${this.#token}`, 'accept-datetime-format': 'RFC3339' };
  }

  onOpen(session: StreamSession, symbols: readonly string[]): void {
    session.ready(`${symbols.length} instruments`);
  }

  onHttpError(status: number, body: string, session: StreamSession): void {
    const message = errorText(body);
    if (status === 401 || status === 403) {
      session.fail(
        'auth_failed',
        `oanda: HTTP ${status} "${message}": check the API token in ${this.#tokenEnv ?? 'the key variable'} and that it belongs to account ${this.#accountId}`,
      );
    } else if (status === 400 || status === 404 || status === 405) {
      session.fail(
        'error',
        `oanda: HTTP ${status} "${message}": check feeds.${this.id}.accountId and the instruments (${this.runner.symbols.map((s) => this.#map.toProvider(s)).join(',')})`,
      );
    } else {
      session.reconnect(`oanda: HTTP ${status} "${message}"`);
    }
  }

  /**
   * ClientPrice `tradeable` (v20 Pricing Definitions: "Flag indicating if the Price is tradeable
   * or not"; the older `status` field is deprecated and read only when `tradeable` is absent)
   * becomes the symbol's trading status, published when it changes. A symbol counts as trading
   * until its first price says otherwise, so a normal stream carries no status ticks at all.
   */
  #status(sym: string, m: Record<string, any>, ts: bigint, session: StreamSession): void {
    const tradeable = typeof m.tradeable === 'boolean' ? m.tradeable : typeof m.status === 'string' ? m.status === 'tradeable' : undefined;
    // (a status published before a restart of the feed process counts: FeedContext.lastStatus)
    if (tradeable === undefined || (this.#tradeable.get(sym) ?? session.ctx.lastStatus?.(sym)?.status !== 'halted') === tradeable) return;
    this.#tradeable.set(sym, tradeable);
    session.ctx.emit({ k: 'status', sym, status: tradeable ? 'trading' : 'halted', ...(tradeable ? {} : { reason: 'not tradeable' }), ts });
  }

  onMessage(data: Buffer, _isBinary: boolean, session: StreamSession): void {
    const m = JSON.parse(data.toString('utf8')) as Record<string, any>;
    if (m.type === 'HEARTBEAT') return;
    if (m.errorMessage) {
      session.ctx.metrics?.error(`oanda: ${m.errorMessage}`);
      session.ctx.log.warn({ feed: this.id }, `oanda: ${m.errorMessage}`);
      return;
    }
    if (!isPriceLine(m)) return;
    // OANDA v20 "Pricing Endpoints" > Price Stream, ClientPrice: instrument (EUR_USD), bids/asks as
    // PriceBucket {price (quote currency), liquidity ("The amount of liquidity offered by the
    // PriceBucket", "integer or decimal if available", Pricing Common Definitions; no unit named:
    // units of the instrument, as OANDA counts them, passed through)}, time (RFC 3339
    // or UNIX seconds with up to nine decimals, per Accept-Datetime-Format). The best level is
    // chosen by price (bestBucket): the pages do not give the order of the list.
    const sym = this.#map.toCanonical(String(m.instrument));
    if (!sym) return;
    const ts = anyTimeToNs(m.time, 's');
    this.#status(sym, m, ts, session);
    // ClientPrice (v20 Pricing Definitions): `bids`/`asks` "may be empty if there is no bid/ask
    // liquidity currently available"; closeoutBid/closeoutAsk are the prices used to close out a
    // position and "never used to open a new position", so they never stand in for an empty side:
    // that side is published absent
    const bid = bestBucket(m.bids, 'bids', true);
    const ask = bestBucket(m.asks, 'asks', false);
    if (!bid && !ask) return;
    session.ctx.emit({
      k: 'quote',
      sym,
      ...(bid ? { bp: bid.p } : {}),
      ...(ask ? { ap: ask.p } : {}),
      ...(bid?.size === undefined ? {} : { bs: bid.size }),
      ...(ask?.size === undefined ? {} : { as: ask.size }),
      ts,
    });
  }
}

/**
 * The best PriceBucket of a side: the highest bid or the lowest ask. OANDA v20 Pricing
 * Definitions, ClientPrice `bids`/`asks` ("The list of prices and liquidity available on the
 * Instrument's bid side") and PriceBucket ("A Price Bucket represents a price available for an
 * amount of liquidity"): the order of the list is not documented (streams seen so far put the
 * best first), so the best is chosen by price. The other buckets are not published: the pages do
 * not say whether a bucket's liquidity is in addition to the better buckets' or the size an order
 * may have at that price (tiered pricing), so they are not order book levels.
 */
function bestBucket(list: unknown, side: 'bids' | 'asks', highest: boolean): { p: number; size: number | undefined } | undefined {
  if (!Array.isArray(list)) return undefined;
  let best: { p: number; size: number | undefined } | undefined;
  list.forEach((b: Record<string, unknown> | undefined, i) => {
    if (b?.price === undefined) return;
    const p = price(b.price, `${side}[${i}].price`);
    if (best && (highest ? p <= best.p : p >= best.p)) return;
    best = { p, size: optionalDecimal(b.liquidity, `${side}[${i}].liquidity`) };
  });
  return best;
}

/**
 * An HTTP error body for health and logs: OANDA's `errorMessage` when the body is its JSON, else
 * the text (an HTML page from a proxy or load balancer) on one line, cut at 200 characters.
 */
function errorText(body: string): string {
  try {
    const m = (JSON.parse(body) as { errorMessage?: unknown } | null)?.errorMessage;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON: the text, shortened
  }
  const line = body.replace(/\s+/g, ' ').trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * Whether a stream line is a price. OANDA v20 "Pricing Endpoints" > Price Stream: the stream
 * carries ClientPrice objects (type "PRICE") and PricingHeartbeat objects (type "HEARTBEAT");
 * the endpoint's own response example shows price lines without a `type` field at all, so a
 * line with no `type` that carries an instrument and a book side is a price too.
 */
export function isPriceLine(m: Record<string, any>): boolean {
  if (m.type === 'PRICE') return true;
  if (m.type !== undefined) return false;
  return typeof m.instrument === 'string' && (Array.isArray(m.bids) || Array.isArray(m.asks));
}
