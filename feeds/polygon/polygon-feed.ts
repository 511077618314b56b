import { z } from 'zod';
import type { BarInterval } from '../../src/core/schema.js';
import { commonFeedFields, runnerOptions } from '../config.js';
import { decimal, price, quoteFields, quoteSide } from '../sdk/decimal.js';
import { staleAfterUnansweredPings } from '../sdk/runner.js';
import type { StreamSession } from '../sdk/runner.js';
import { forEachMessage, StreamFeed } from '../sdk/stream-feed.js';
import { StaleStatusMarker } from '../sdk/stale-status.js';
import { identityRule, SymbolMap } from '../sdk/symbol-map.js';
import { toNs } from '../sdk/time.js';
import { venueTradeId } from '../sdk/trade-id.js';

/**
 * Polygon.io (now Massive) stocks WebSocket: wss://socket.polygon.io/stocks (or the delayed
 * cluster). The server greets with {"ev":"status","status":"connected"}; we send
 * {"action":"auth","params":KEY} and, on "auth_success", {"action":"subscribe","params":"T.AAPL,Q.AAPL,AM.AAPL"}.
 * Frames are arrays of events keyed by `ev`: T trades (i id, x exchange, p, s/ds size, t ms), Q quotes
 * (bp bs ap as, t ms), AM minute aggregates (o h l c v, s/e start/end ms) and A second
 * aggregates; "auth_failed" is reported as state auth_failed.
 *
 * Quote sizes: the Stocks Quotes WebSocket reference ("Response Attributes": bs/as) describes
 * them as round lots of 100 shares, but Polygon's announcement "Upcoming Changes to Bid and Ask
 * Sizes in Stocks Quotes" (Oct 27, 2025) says that from November 3, 2025 bid/ask sizes are
 * published in shares on the WebSocket feed too (SEC Market Data Infrastructure rules). The two
 * disagree, so the unit is a setting: `quoteSizeUnit: shares` (default, the dated announcement)
 * passes sizes through; `round-lots` multiplies them by 100 (data from before that date).
 */
export const PolygonOptionsSchema = z
  .object({
    ...commonFeedFields,
    // LULD: limit up - limit down bands, and NASDAQ halts/resumptions, as the symbol's status
    channels: z
      .array(z.enum(['T', 'Q', 'AM', 'A', 'LULD']))
      .min(1)
      .default(['T', 'Q', 'AM']),
    quoteSizeUnit: z
      .enum(['shares', 'round-lots'])
      .default('shares')
      .describe('unit of Q bs/as as sent: shares (since 2025-11-03) or round-lots (x100 shares, older data)'),
  })
  .strict();
export type PolygonOptions = z.infer<typeof PolygonOptionsSchema>;

/** shares per round lot, as the Stocks Quotes reference states it ("The normal round lot size is 100 shares") */
export const POLYGON_ROUND_LOT = 100;

export const POLYGON_DEFAULT_URL = 'wss://socket.polygon.io/stocks';

export class PolygonFeed extends StreamFeed {
  readonly #opts: PolygonOptions;
  readonly #key: string;
  readonly #keyEnv: string | undefined;
  readonly #map: SymbolMap;
  #subscribed = false;
  /** the symbols of the opening subscribe request, to reconcile changes made while it was unanswered */
  #opening: readonly string[] = [];

  constructor(id: string, opts: PolygonOptions, creds: { key: string; keyEnv?: string }) {
    // Polygon/Massive documents no heartbeat and sends nothing in a quiet market: our pings
    // (every 20 s) are answered with pongs, and three unanswered ones mean a dead connection
    const pingIntervalMs = opts.pingIntervalMs ?? 20_000;
    super(id, opts.symbols, runnerOptions(opts, { staleAfterMs: staleAfterUnansweredPings(pingIntervalMs), pingIntervalMs }));
    this.#opts = opts;
    this.#key = creds.key;
    this.#keyEnv = creds.keyEnv;
    this.#map = new SymbolMap(opts.symbols, identityRule, opts.symbolMap);
  }

  url(): string {
    return this.#opts.url ?? POLYGON_DEFAULT_URL;
  }

  #params(symbols: readonly string[]): string {
    return symbols.flatMap((s) => this.#opts.channels.map((c) => `${c}.${this.#map.toProvider(s)}`)).join(',');
  }

  onOpen(): void {
    this.#subscribed = false;
  }

  /**
   * The canonical symbol of an event, when it is one of the feed's symbols now
   * (StreamRunner.has). Polygon stops a symbol's events only once it has read the `unsubscribe`
   * request, and what it sent before is still on the wire: those trades, quotes, aggregates and
   * LULD events are dropped here, as Binance's are. The symbol map alone remembers every symbol
   * ever asked for and would take them for the feed's own.
   */
  #ours(providerSym: unknown): string | undefined {
    const sym = typeof providerSym === 'string' ? this.#map.toCanonical(providerSym) : undefined;
    return sym !== undefined && this.runner.has(sym) ? sym : undefined;
  }

  /**
   * AM (minute) and A (second) aggregates are this feed's closed bars: "Aggregates (Per Minute)"
   * and "(Per Second)" are built from qualifying trades and not emitted for a window without
   * them, so the engine's own bars of those intervals only show the open bar (docs/protocol.md).
   */
  get providesBars(): readonly BarInterval[] {
    const out: BarInterval[] = [];
    if (this.#opts.channels.includes('AM')) out.push('1m');
    if (this.#opts.channels.includes('A')) out.push('1s');
    return out;
  }

  /**
   * Polygon's LULD channel sends halts and resumptions (indicators 17 and 18) as they happen
   * (Stocks WebSocket, "Limit Up - Limit Down (LULD)"): nothing on subscribe, and no REST request
   * for them is documented. A symbol subscribed again after it had a status is marked stale
   * until its next halt or resumption message.
   */
  readonly #stale = new StaleStatusMarker();

  onSubscribe(symbols: readonly string[], session: StreamSession): void {
    if (this.#opts.channels.includes('LULD')) this.#stale.resubscribing(symbols, session.ctx);
    session.send(JSON.stringify({ action: 'subscribe', params: this.#params(symbols) }));
  }

  onUnsubscribe(symbols: readonly string[], session: StreamSession): void {
    session.send(JSON.stringify({ action: 'unsubscribe', params: this.#params(symbols) }));
  }

  /**
   * Limit Up - Limit Down (Stocks WebSocket, "LULD"): `T` ticker, `h` high and `l` low price of
   * the band, `i` indicators, `t` ms. "Halt and resumption messages (indicators 17 and 18) are
   * only available for NASDAQ listed securities": 17 becomes `halted`, 18 `trading`.
   */
  #luld(ev: Record<string, any>, session: StreamSession): void {
    const sym = this.#ours(ev.T);
    if (!sym) return;
    const indicators = Array.isArray(ev.i) ? (ev.i as unknown[]) : [];
    const status = indicators.includes(17) ? 'halted' : indicators.includes(18) ? 'trading' : undefined;
    const hasBand = ev.h !== undefined && ev.l !== undefined && Number(ev.h) > 0 && Number(ev.l) > 0;
    if (!status && !hasBand) return;
    session.ctx.emit({
      k: 'status',
      sym,
      ...(status ? { status, code: `LULD ${indicators.join(',')}`, reason: status === 'halted' ? 'LULD halt' : 'LULD resumption' } : {}),
      ...(hasBand ? { luld: { up: price(ev.h, 'LULD.h'), down: price(ev.l, 'LULD.l') } } : {}),
      ts: toNs(ev.t, 'ms'),
    });
    if (status) this.#stale.reported(sym);
  }

  onMessage(data: Buffer, _isBinary: boolean, session: StreamSession): void {
    const decoded = JSON.parse(data.toString('utf8')) as unknown;
    // a frame is an array of events: one that cannot be read must not cost the others
    forEachMessage((Array.isArray(decoded) ? decoded : [decoded]) as Record<string, any>[], session, (ev) => this.#handle(ev, session));
  }

  #handle(ev: Record<string, any>, session: StreamSession): void {
    if (ev.ev === 'status') {
      switch (ev.status) {
        case 'connected':
          session.send(JSON.stringify({ action: 'auth', params: this.#key }));
          return;
        case 'auth_success':
          this.#opening = [...this.runner.symbols];
          this.onSubscribe(this.#opening, session);
          return;
        case 'auth_failed':
          session.fail('auth_failed', `polygon: authentication failed ("${ev.message ?? ''}"): check the API key in ${this.#keyEnv ?? 'the key variable'}`);
          return;
        case 'success':
          if (!this.#subscribed && /^subscribed to/i.test(String(ev.message ?? ''))) {
            this.#subscribed = true;
            session.ready(String(ev.message));
            this.reconcileSymbols(this.#opening, session);
          }
          return;
        case 'max_connections':
          session.fail('error', `polygon: ${ev.message ?? 'maximum number of connections exceeded'}: another client uses this key`);
          return;
        default:
          if (/error|fail/i.test(String(ev.status))) {
            session.ctx.metrics?.error(`polygon status ${ev.status}: ${ev.message ?? ''}`);
            session.ctx.log.warn({ feed: this.id, status: ev.status }, `polygon: ${ev.message ?? ev.status}`);
          }
          return;
      }
    }
    if (ev.ev === 'LULD') {
      this.#luld(ev, session);
      return;
    }
    const sym = this.#ours(ev.sym);
    if (!sym) return;
    switch (ev.ev) {
      case 'T':
        // Polygon/Massive "WebSocket > Stocks > Trades" Response Attributes: x exchange ID, i trade
        // ID, p price, s size (shares), t SIP timestamp (Unix ms), trfi TRF ID. Trade IDs are
        // unique only per (ticker, exchange, TRF) (Trades REST reference, `id`), so the canonical
        // id is "<x>:<i>", or "<x>.<trfi>:<i>" for a trade reported through a TRF.
        // `c` trade conditions (condition IDs): see polygonSetsNoPrice.
        // Size: `s` is an integer ("The trade size"); `ds` is "The trade size including
        // fractional shares, represented as a string" (same Response Attributes), so a
        // fractional-share trade's size is read from `ds` when it is there, exactly as written
        session.ctx.emit({
          k: 'trade',
          sym,
          id: venueTradeId(tradeVenueKey(ev.x, ev.trfi), ev.i),
          p: price(ev.p, 'T.p'),
          s: ev.ds === undefined || ev.ds === null || ev.ds === '' ? decimal(ev.s, 'T.s') : decimal(ev.ds, 'T.ds'),
          ...(ev.x !== undefined ? { venue: String(ev.x) } : {}),
          ...polygonTradeFlags(ev.c),
          ts: toNs(ev.t, 'ms'),
        });
        return;
      case 'Q': {
        // Polygon/Massive "WebSocket > Stocks > Quotes" Response Attributes: bp/bs bid price/size,
        // ap/as ask price/size, t SIP timestamp (Unix ms). Size unit: see quoteSizeUnit above.
        // No attribute is marked required: a side whose price is absent or 0 holds no order and
        // is published absent (docs/feeds.md, "Empty quote sides"), never as a price of 0 and
        // never by rejecting the whole quote.
        const lot = this.#opts.quoteSizeUnit === 'round-lots' ? POLYGON_ROUND_LOT : 1;
        const sides = quoteFields(quoteSide(ev.bp, ev.bs, 'Q.bp/bs'), quoteSide(ev.ap, ev.as, 'Q.ap/as'), lot);
        if (!sides) return;
        session.ctx.emit({
          k: 'quote',
          sym,
          ...sides,
          ts: toNs(ev.t, 'ms'),
        });
        return;
      }
      case 'AM':
      case 'A': {
        // Knowledge Base, "Why am I receiving a late aggregate bar through Polygon's WebSockets?"
        // (and the blog post "Understanding Aggregate Bar Delays"): a minute bar is recalculated
        // and sent out again when later trades affect it (for up to 15 minutes), and a second bar
        // is held 15 minutes for them. A bar whose start is not after the newest one published is
        // such a bar sent again, with the start of the bar it replaces: the engine publishes a
        // provider bar for an interval it published already as a correction (`corrected`,
        // BarBuilder.onProviderBar), as it does Alpaca's updated bars, so a chart replaces the bar
        // it has instead of adding one
        const iv = ev.ev === 'AM' ? '1m' : '1s';
        const t = Number(ev.s);
        session.ctx.emit({
          k: 'bar',
          sym,
          iv,
          t,
          o: price(ev.o, `${ev.ev}.o`),
          h: price(ev.h, `${ev.ev}.h`),
          l: price(ev.l, `${ev.ev}.l`),
          c: price(ev.c, `${ev.ev}.c`),
          v: decimal(ev.v, `${ev.ev}.v`),
          n: Number.isInteger(ev.n) ? ev.n : 0,
          closed: true,
          ts: toNs(ev.e ?? ev.s, 'ms'),
        });
        return;
      }
      default:
        return;
    }
  }
}

/**
 * Polygon/Massive trade condition IDs (Stocks > Trades `c`; "Conditions and Indicators") after
 * which a trade sets no price (last, open, high, low, close) but still counts in volume. Source:
 * the REST Conditions reference (`/v3/reference/conditions`, asset class stocks, data type
 * trade), whose `update_rules.consolidated.updates_open_close` is false for each of them (it
 * carries the SIPs' sale-condition processing, with each condition's CTA and UTP code in
 * `sip_mapping`, so these are the same conditions as ALPACA_TRADE_CONDITIONS marks volume only):
 * - 2 Average Price Trade, 7 Cash Sale, 20 Next Day, 21 Price Variation Trade, 29 Seller,
 *   37 Odd Lot Trade, 52 Contingent Trade, 53 Qualified Contingent Trade: special settlement or
 *   pricing (for 2: Knowledge Base, "How does Polygon create the open, high, low, close, volume
 *   aggregate bars?"; for 37: "a condition such as Odd Lot that cannot set prices");
 * - 5 Bunched Sold Trade, 10 Derivatively Priced, 13 Extended Trading Hours (Sold Out Of
 *   Sequence), 22 Prior Reference Price, 33 Sold (Out of Sequence) (SIP `Z`): late or at an
 *   earlier price, not the last sale; 5, 10, 22 and 33, and 29 Seller above, still set the day's
 *   high and low (POLYGON_HIGH_LOW_CONDITIONS: flagged `highLowOnly` too);
 * - 15 Market Center Official Close, 16 Market Center Official Open and 38 Corrected
 *   Consolidated Close (per listing market): re-reports of a price already printed, which count
 *   in no volume either (POLYGON_NO_VOLUME_CONDITIONS: flagged `excluded` too).
 * 32 Sold Out is not listed: Polygon's glossary (polygon.io/glossary/us/stocks/conditions-indicators,
 * Trade Conditions) gives it no SIP code and no "No" under Update High/Low or Update Last, and no
 * other Polygon page says it sets no price.
 * 12 Form T is deliberately not listed: the Knowledge Base article "Does a Form T trade update a
 * pre-market minute bar's high, low, open and close?" says Massive's pre-market and after-hours
 * minute bars take their prices from Form T trades (nearly every trade in those hours carries
 * it), and the engine keeps no session calendar to tell the hours apart.
 */
export const POLYGON_NO_PRICE_CONDITIONS: ReadonlySet<number> = new Set([2, 5, 7, 10, 13, 15, 16, 20, 21, 22, 29, 33, 37, 38, 52, 53]);

/** Whether a Polygon trade's conditions say it sets no price (see POLYGON_NO_PRICE_CONDITIONS). */
export function polygonSetsNoPrice(conditions: unknown): boolean {
  return Array.isArray(conditions) && conditions.some((c) => POLYGON_NO_PRICE_CONDITIONS.has(Number(c)));
}

/**
 * Condition IDs after which a trade counts in nothing, volume included: 15 Market Center
 * Official Close, 16 Market Center Official Open, 38 Corrected Consolidated Close. The REST
 * Conditions reference gives them `update_rules.consolidated.updates_volume` false (re-reports of
 * prices already printed: the shares were counted with the trades they repeat), as Alpaca's
 * Market Data FAQ ("How are bars aggregated?") does for the same SIP codes `M`, `Q`, `9`.
 */
export const POLYGON_NO_VOLUME_CONDITIONS: ReadonlySet<number> = new Set([15, 16, 38]);

/**
 * Condition IDs after which a trade sets no last price, open or close but still sets the day's
 * high and low (and counts in volume): 5 Bunched Sold Trade, 10 Derivatively Priced, 22 Prior
 * Reference Price, 29 Seller, 33 Sold (Out of Sequence). Polygon's glossary (Conditions &
 * Indicators, Trade Conditions, consolidated processing: Update High/Low "Yes", Update Last "No";
 * as `update_rules.consolidated` `updates_high_low` true, `updates_open_close` false in the REST
 * Conditions reference) gives all five that rule. Alpaca's Market Data FAQ ("How are bars
 * aggregated?": SIP `G`, `P`, `Z`, `4` update a daily bar's high / low, not a minute bar's) agrees
 * on four; for `R` (Seller) it gives no high / low on any bar. The two providers publish different
 * rules for the same SIP condition, and each adapter follows its own provider's, so the engine's
 * day high and low agree with that provider's aggregates: 29 is `highLowOnly` here, and Alpaca's
 * `R` stays volume only (ALPACA_TRADE_CONDITIONS). Before, 29 was volume only from both.
 */
export const POLYGON_HIGH_LOW_CONDITIONS: ReadonlySet<number> = new Set([5, 10, 22, 29, 33]);

/**
 * The trade flags of a Polygon trade's conditions (docs/protocol.md#trade, `volumeOnly`,
 * `excluded`, `highLowOnly`): the strictest condition decides, so `highLowOnly` only when every
 * condition that sets no price is one of POLYGON_HIGH_LOW_CONDITIONS.
 */
export function polygonTradeFlags(conditions: unknown): { volumeOnly?: true; excluded?: true; highLowOnly?: true } {
  if (!polygonSetsNoPrice(conditions) || !Array.isArray(conditions)) return {};
  const ids = conditions.map(Number);
  if (ids.some((c) => POLYGON_NO_VOLUME_CONDITIONS.has(c))) return { volumeOnly: true, excluded: true };
  const late = ids.filter((c) => POLYGON_NO_PRICE_CONDITIONS.has(c)).every((c) => POLYGON_HIGH_LOW_CONDITIONS.has(c));
  return late ? { volumeOnly: true, highLowOnly: true } : { volumeOnly: true };
}

/** The part of a Polygon trade that scopes its id: exchange, plus the TRF when there is one. */
function tradeVenueKey(x: unknown, trfi: unknown): string | undefined {
  if (x === undefined || x === null || x === '') return undefined;
  return trfi === undefined || trfi === null || trfi === '' ? String(x) : `${String(x)}.${String(trfi)}`;
}
