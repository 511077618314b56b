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
    accountIdEnv: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).optional().describe('or: environment variable holding the account id'),
  })
  .strict();
export type OandaOptions = z.infer<typeof OandaOptionsSchema>;

export const OANDA_DEFAULT_URL = 'https://stream-fxtrade.oanda.com';

export class OandaFeed extends StreamFeed {
  readonly #opts: OandaOptions;
  readonly #token: string;
  readonly #tokenEnv: string | undefined;
  readonly #accountId: string;
  readonly #map: SymbolMap;

  constructor(id: string, opts: OandaOptions, creds: { token: string; tokenEnv?: string; accountId: string }) {
    super(id, opts.symbols, runnerOptions(opts, { transport: 'http-lines', staleAfterMs: 15_000 }));
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
    let message = body;
    try {
      message = (JSON.parse(body) as { errorMessage?: string }).errorMessage ?? body;
    } catch {
      // not JSON: keep the text
    }
    if (status === 401 || status === 403) {
      session.fail('auth_failed', `oanda: HTTP ${status} "${message}": check the API token in ${this.#tokenEnv ?? 'the key variable'} and that it belongs to account ${this.#accountId}`);
    } else if (status === 400 || status === 404 || status === 405) {
      session.fail('error', `oanda: HTTP ${status} "${message}": check feeds.${this.id}.accountId and the instruments (${this.runner.symbols.map((s) => this.#map.toProvider(s)).join(',')})`);
    } else {
      session.reconnect(`oanda: HTTP ${status} "${message}"`);
    }
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
    // PriceBucket {price (quote currency), liquidity (units of the base currency)}, time (RFC 3339
    // or UNIX seconds with up to nine decimals, per Accept-Datetime-Format). Best level = index 0.
    const sym = this.#map.toCanonical(String(m.instrument));
    if (!sym) return;
    const bid = m.bids?.[0];
    const ask = m.asks?.[0];
    // an empty side (no liquidity) falls back to the closeout price
    const bidPx = bid?.price ?? m.closeoutBid;
    const askPx = ask?.price ?? m.closeoutAsk;
    if (bidPx === undefined || askPx === undefined) return;
    const bs = optionalDecimal(bid?.liquidity, 'bids[0].liquidity');
    const as = optionalDecimal(ask?.liquidity, 'asks[0].liquidity');
    session.ctx.emit({
      k: 'quote',
      sym,
      bp: price(bidPx, 'bids[0].price'),
      ap: price(askPx, 'asks[0].price'),
      ...(bs === undefined ? {} : { bs }),
      ...(as === undefined ? {} : { as }),
      ts: anyTimeToNs(m.time, 's'),
    });
  }
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
