import type { Config } from '../src/core/config.js';
import type { InstrumentRegistry } from '../src/core/instruments.js';
import { ConfigError } from '../src/core/errors.js';
import { AlpacaFeed, AlpacaOptionsSchema } from './alpaca/alpaca-feed.js';
import { BINANCE_MAX_STREAMS, BinanceFeed, BinanceOptionsSchema, binanceTradeRestBase } from './binance/binance-feed.js';
import { CoinbaseFeed, CoinbaseOptionsSchema, coinbaseUsdcProblem } from './coinbase/coinbase-feed.js';
import { credentialFromEnv, parseFeedEntry } from './config.js';
import type { FeedEntry, FeedsFile } from './config.js';
import { KRAKEN_BOOK_DEPTHS, KrakenFeed, KrakenOptionsSchema } from './kraken/kraken-feed.js';
import { OANDA_HEARTBEAT_MS, OandaFeed, OandaOptionsSchema } from './oanda/oanda-feed.js';
import { PolygonFeed, PolygonOptionsSchema } from './polygon/polygon-feed.js';
import { ReplayFeed, ReplayOptionsSchema } from './replay/replay-feed.js';
import type { FeedAdapter } from './sdk/adapter.js';
import { SyntheticFeed } from './synthetic/synthetic-feed.js';

export interface FeedFactoryContext {
  config: Readonly<Config>;
  registry: InstrumentRegistry;
  /** the feeds file (TICKWIRE_FEEDS_FILE / --feeds-file), when one is configured */
  feedsFile?: FeedsFile;
  /** where credentials are read from (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** the feed id: its name in the feeds file, `src` of its ticks (default: the adapter type) */
  id?: string;
  /** this feed's entry in the feeds file */
  entry?: FeedEntry;
}
export type FeedFactory = (ctx: FeedFactoryContext) => FeedAdapter;

/** Symbols for a feed: the entry's list, else every instrument that names this feed as a provider. */
function feedSymbols(ctx: FeedFactoryContext, id: string, type: string, listed: readonly string[], required = true): string[] {
  const where = `feeds.${id}.symbols`;
  const symbols =
    listed.length > 0
      ? [...listed]
      : ctx.registry
          .all()
          .filter((i) => i.providers.includes(id) || i.providers.includes(type))
          .map((i) => i.symbol);
  for (const s of symbols) {
    if (!ctx.registry.has(s))
      throw new ConfigError(`${where}: "${s}" is not a known instrument: add it to the instruments file (TICKWIRE_INSTRUMENTS) or remove it`);
  }
  if (required && symbols.length === 0)
    throw new ConfigError(
      `${where}: no symbols: list the canonical symbols this feed serves, e.g. symbols: [${type === 'oanda' ? 'EUR-USD' : type === 'alpaca' || type === 'polygon' ? 'AAPL' : 'BTC-USD'}]`,
    );
  return symbols;
}

function setup<S extends Parameters<typeof parseFeedEntry>[0]>(ctx: FeedFactoryContext, type: string, schema: S) {
  const id = ctx.id ?? type;
  const where = `feeds.${id}`;
  const opts = parseFeedEntry(schema, ctx.entry ?? {}, where) as ReturnType<typeof parseFeedEntry<S>> & {
    symbols: string[];
    keyEnv?: string;
    secretEnv?: string;
  };
  return { id, where, opts, env: ctx.env ?? process.env };
}

/**
 * The Coinbase product of each symbol (its symbolMap entry, else the symbol: the adapter's rule
 * keeps `BTC-USD`) must be one the market data channels serve as itself, and one symbol's only:
 * a -USDC product other than USDT-USDC and EURC-USDC comes as its -USD product's data under the
 * -USD product id (COINBASE_USDC_ON_ALL_CHANNELS), which the feed never took for the symbol, and
 * two symbols on one product id would both take the same messages as theirs.
 */
function checkCoinbaseProducts(where: string, symbols: readonly string[], symbolMap: Readonly<Record<string, string>>): void {
  const productOf = (s: string): string => symbolMap[s] ?? s;
  const owner = new Map<string, string>();
  for (const s of symbols) {
    const product = productOf(s);
    const usdc = coinbaseUsdcProblem(product);
    if (usdc) {
      const served = symbols.find((o) => o !== s && productOf(o).toUpperCase() === usdc.usd);
      const fix = served ? `this feed serves ${usdc.usd} already: remove ${s}` : `serve ${usdc.usd} instead, or set symbolMap: { ${s}: ${usdc.usd} }`;
      throw new ConfigError(
        `${where}.symbols: "${s}" is Coinbase product ${product}, which Coinbase serves only on the user channel: the market data channels send ${usdc.usd}'s data instead, under product_id ${usdc.usd} (Coinbase WebSocket Channels; only USDT-USDC and EURC-USDC are on every channel), so the feed would publish nothing for it: ${fix}`,
      );
    }
    const other = owner.get(product.toUpperCase());
    if (other !== undefined)
      throw new ConfigError(
        `${where}.symbolMap: "${other}" and "${s}" are both Coinbase product ${product}: map each symbol to its own product, or serve one of them`,
      );
    owner.set(product.toUpperCase(), s);
  }
}

/**
 * Alpaca's `updatedBars` are the minute bars of `bars` sent again. Alpaca's announcement "Alpaca
 * Market Data Update: Bars" (forum.alpaca.markets): the OHLC updates "that were sent at the half
 * minute mark on the 'bars' subscription will now be sent under 'updatedBars'"; when a late
 * trade changes a minute, "the bar is recalculated and a new updated bar is streamed 30 seconds
 * later ... It will have the same timestamp as the original bar" (Alpaca Learn, "Stock Minute
 * Bars", says the same). Without `bars` there is no minute bar of Alpaca's for them to replace:
 * the engine builds the minute bars from the trades, late trades included. And the first updated
 * bar made the engine take Alpaca for the source of closed minute bars (a provider bar declares
 * its interval: src/ingest/tick-publisher.ts), so it held each of its own closed minute bars for
 * a `b` bar that never came and published it a minute late (BarBuilder's provider wait), and a
 * late trade no longer corrected it.
 */
function checkAlpacaBarChannels(where: string, channels: readonly string[]): void {
  if (channels.includes('updatedBars') && !channels.includes('bars'))
    throw new ConfigError(
      `${where}.channels: updatedBars without bars: an updated bar is a minute bar of the bars channel sent again after a late trade, so without bars there is none to replace (the engine's own minute bars were held a minute for Alpaca's): add bars to channels, or remove updatedBars`,
    );
}

/** Whether the feeds file itself sets `key` for this feed (not a schema default). */
function isSet(ctx: FeedFactoryContext, key: string): boolean {
  return (ctx.entry as Record<string, unknown> | undefined)?.[key] !== undefined;
}

/**
 * Options that only act with a feature left off do nothing, silently: the user believes the
 * feature is configured. Each one set while `on` is false is a config error naming both keys.
 */
function unusedOptions(ctx: FeedFactoryContext, where: string, on: boolean, keys: readonly string[], offText: string, fix: string): void {
  if (on) return;
  for (const key of keys) if (isSet(ctx, key)) throw new ConfigError(`${where}.${key} is set but ${offText}: ${fix}, or remove ${key}`);
}

/**
 * The engine keeps `book.maxLevels` levels a side (src/book/order-book.ts): levels an adapter
 * follows past that are cut, and a cut side is known only down to its worst level from then on,
 * so it only shrinks until the next reset. An adapter that follows more levels than the engine
 * keeps therefore showed fewer and fewer of them, silently.
 */
function bookLevelsOver(where: string, key: string, value: number, maxLevels: number, fix: string): ConfigError {
  return new ConfigError(`${where}.${key} (${value}) must not exceed book.maxLevels (${maxLevels}): ${fix}`);
}

/**
 * Providers without a heartbeat of their own (Alpaca, Polygon): only the pong to our ping shows that
 * a quiet connection is alive (docs/feeds.md, Provider notes). A staleAfterMs of under two ping
 * intervals reconnects every quiet connection; pings off with the default staleAfterMs (three ping
 * intervals, so 0) leaves a half-open connection `connected` for ever.
 */
function checkPingLiveness(ctx: FeedFactoryContext, where: string, opts: { pingIntervalMs?: number | undefined; staleAfterMs?: number | undefined }): void {
  const ping = opts.pingIntervalMs ?? 20_000;
  if (opts.staleAfterMs !== undefined && opts.staleAfterMs > 0 && ping > 0 && opts.staleAfterMs < 2 * ping)
    throw new ConfigError(
      `${where}.staleAfterMs (${opts.staleAfterMs}) must be 0 (never) or at least twice pingIntervalMs (${ping}): the provider sends no heartbeat, so a quiet connection shows it is alive only by answering our ping; leave staleAfterMs out (it is three ping intervals) or raise it`,
    );
  if (ping === 0 && !isSet(ctx, 'staleAfterMs'))
    throw new ConfigError(
      `${where}.pingIntervalMs: 0 turns off the only check that a quiet connection is alive (the provider sends no heartbeat), and staleAfterMs (three ping intervals) with it: a half-open connection would stay connected for ever. Leave pingIntervalMs out (20000), or set staleAfterMs too (0 to accept that)`,
    );
}

/** Adapters known to `tickwire feed <name>` and the embedded engine, by adapter type. */
export const FEED_FACTORIES: Record<string, FeedFactory> = {
  synthetic: ({ config, registry }) => {
    const wanted = config.synthetic.symbols;
    const instruments = wanted
      ? wanted.map((s) => {
          const i = registry.get(s);
          if (!i) throw new ConfigError(`synthetic.symbols: "${s}" is not a known instrument: add it to the instruments file or remove it`);
          return i;
        })
      : registry.all().filter((i) => i.providers.includes('synthetic'));
    return new SyntheticFeed({ instruments, seed: config.synthetic.seed, rate: config.synthetic.rate, bookLevels: config.synthetic.bookLevels });
  },
  binance: (ctx) => {
    const { id, where, opts } = setup(ctx, 'binance', BinanceOptionsSchema);
    const symbols = feedSymbols(ctx, id, 'binance', opts.symbols);
    unusedOptions(ctx, where, opts.streams.includes('depth'), ['depthLimit', 'depthSpeed', 'depthRetryMs'], 'streams has no depth', 'add depth to streams');
    // depthLimit is book.maxLevels unless set (Binance takes any limit up to 5000: Spot REST API,
    // Market data endpoints > Order book), and never more
    const maxLevels = ctx.config.book.maxLevels;
    if (isSet(ctx, 'depthLimit') && opts.depthLimit > maxLevels)
      throw bookLevelsOver(where, 'depthLimit', opts.depthLimit, maxLevels, 'leave it out (it follows book.maxLevels) or lower it');
    const depthLimit = isSet(ctx, 'depthLimit') ? opts.depthLimit : Math.min(opts.depthLimit, maxLevels);
    // "How to manage a local order book correctly": the REST snapshot and the diff stream are one
    // venue's, their update IDs one sequence. Another host's stream (a testnet, Binance.US, a proxy)
    // with api.binance.com's snapshots gave a production book that never changed, or stale snapshots for ever
    if (opts.streams.includes('depth') && binanceTradeRestBase(opts) === undefined)
      throw new ConfigError(
        `${where}.restUrl is required with depth in streams and a url on another host than stream.binance.com (${new URL(opts.url!).hostname}): depth snapshots must come from the same venue as the stream (e.g. https://testnet.binance.vision for the testnet; https://api.binance.com if the url is a proxy of Binance's own stream)`,
      );
    // Binance Spot "WebSocket Streams" > WebSocket Limits: "A single connection can listen to a maximum of 1024 streams"
    const streams = symbols.length * opts.streams.length;
    if (streams > BINANCE_MAX_STREAMS)
      throw new ConfigError(
        `feeds.${id}.symbols: ${symbols.length} symbols x ${opts.streams.length} streams (${opts.streams.join(', ')}) = ${streams} streams, but one Binance connection carries at most ${BINANCE_MAX_STREAMS}: split the symbols over several feeds (e.g. binance-2: {adapter: binance, symbols: [...]}) or list fewer streams`,
      );
    return new BinanceFeed(id, { ...opts, depthLimit, symbols });
  },
  coinbase: (ctx) => {
    const { id, where, opts } = setup(ctx, 'coinbase', CoinbaseOptionsSchema);
    // the adapter follows each book as the engine keeps it (docs/feeds.md, Coinbase order books):
    // bookLevels is book.maxLevels unless set, and never more (a side the engine cut would then
    // never look short to the adapter, and would not be refreshed)
    const maxLevels = ctx.config.book.maxLevels;
    const set = isSet(ctx, 'bookLevels');
    unusedOptions(ctx, where, opts.book, ['bookLevels'], 'book is off', 'set book: true');
    if (set && opts.bookLevels > maxLevels)
      throw bookLevelsOver(where, 'bookLevels', opts.bookLevels, maxLevels, 'leave it out (it follows book.maxLevels) or lower it');
    const symbols = feedSymbols(ctx, id, 'coinbase', opts.symbols);
    checkCoinbaseProducts(where, symbols, opts.symbolMap);
    return new CoinbaseFeed(id, { ...opts, bookLevels: set ? opts.bookLevels : maxLevels, symbols });
  },
  kraken: (ctx) => {
    const { id, where, opts } = setup(ctx, 'kraken', KrakenOptionsSchema);
    unusedOptions(ctx, where, opts.book, ['bookDepth', 'bookPrecision'], 'book is off', 'set book: true');
    // Kraken subscribes books only at its listed depths (book: Subscribe Request, `depth`); unset,
    // the default (25) or, under a smaller book.maxLevels, the largest listed depth within it
    const maxLevels = ctx.config.book.maxLevels;
    const within = KRAKEN_BOOK_DEPTHS.filter((d) => d <= maxLevels).at(-1) ?? KRAKEN_BOOK_DEPTHS[0];
    if (opts.book && isSet(ctx, 'bookDepth') && opts.bookDepth > maxLevels)
      throw bookLevelsOver(where, 'bookDepth', opts.bookDepth, maxLevels, `set bookDepth: ${within}, or raise book.maxLevels (TICKWIRE_BOOK_MAX_LEVELS)`);
    const bookDepth = isSet(ctx, 'bookDepth') ? opts.bookDepth : (Math.min(opts.bookDepth, within) as typeof opts.bookDepth);
    return new KrakenFeed(id, { ...opts, bookDepth, symbols: feedSymbols(ctx, id, 'kraken', opts.symbols) });
  },
  alpaca: (ctx) => {
    const { id, where, opts, env } = setup(ctx, 'alpaca', AlpacaOptionsSchema);
    checkPingLiveness(ctx, where, opts);
    checkAlpacaBarChannels(where, opts.channels);
    const key = credentialFromEnv(env, where, 'keyEnv', opts.keyEnv, 'the Alpaca API key id');
    const secret = credentialFromEnv(env, where, 'secretEnv', opts.secretEnv, 'the Alpaca API secret key');
    return new AlpacaFeed(
      id,
      { ...opts, symbols: feedSymbols(ctx, id, 'alpaca', opts.symbols) },
      {
        key,
        secret,
        ...(opts.keyEnv ? { keyEnv: opts.keyEnv } : {}),
        ...(opts.secretEnv ? { secretEnv: opts.secretEnv } : {}),
      },
    );
  },
  polygon: (ctx) => {
    const { id, where, opts, env } = setup(ctx, 'polygon', PolygonOptionsSchema);
    checkPingLiveness(ctx, where, opts);
    const key = credentialFromEnv(env, where, 'keyEnv', opts.keyEnv, 'the Polygon (Massive) API key');
    return new PolygonFeed(id, { ...opts, symbols: feedSymbols(ctx, id, 'polygon', opts.symbols) }, { key, ...(opts.keyEnv ? { keyEnv: opts.keyEnv } : {}) });
  },
  oanda: (ctx) => {
    const { id, where, opts, env } = setup(ctx, 'oanda', OandaOptionsSchema);
    if (opts.staleAfterMs !== undefined && opts.staleAfterMs > 0 && opts.staleAfterMs < 2 * OANDA_HEARTBEAT_MS)
      throw new ConfigError(
        `${where}.staleAfterMs (${opts.staleAfterMs}) must be 0 (never) or at least ${2 * OANDA_HEARTBEAT_MS}: OANDA sends a HEARTBEAT every ${OANDA_HEARTBEAT_MS} ms, so a shorter wait reconnects a quiet stream over and over; leave it out (${3 * OANDA_HEARTBEAT_MS}) or raise it`,
      );
    const token = credentialFromEnv(env, where, 'keyEnv', opts.keyEnv, 'the OANDA v20 API token');
    const accountId =
      opts.accountId ?? (opts.accountIdEnv ? credentialFromEnv(env, where, 'accountIdEnv', opts.accountIdEnv, 'the OANDA account id') : undefined);
    if (!accountId) throw new ConfigError(`${where}.accountId is required: set accountId (e.g. 101-004-1234567-001) or accountIdEnv`);
    return new OandaFeed(
      id,
      { ...opts, symbols: feedSymbols(ctx, id, 'oanda', opts.symbols) },
      {
        token,
        accountId,
        ...(opts.keyEnv ? { tokenEnv: opts.keyEnv } : {}),
      },
    );
  },
  replay: (ctx) => {
    const id = ctx.id ?? 'replay';
    if (!ctx.entry) throw new ConfigError(`feeds.${id}: the replay feed needs an entry in the feeds file with file: PATH`);
    const { opts } = setup(ctx, 'replay', ReplayOptionsSchema);
    // no symbols listed: every symbol of the recording plays
    if (opts.symbols.length > 0) feedSymbols(ctx, id, 'replay', opts.symbols);
    return new ReplayFeed(id, opts);
  },
};

/** The adapter type of a feed name (its `adapter:` in the feeds file, else the name itself). */
export function feedType(name: string, feedsFile?: FeedsFile): string {
  return feedsFile?.feeds[name]?.adapter ?? name;
}

export function createFeed(name: string, ctx: FeedFactoryContext): FeedAdapter {
  const entry = ctx.feedsFile?.feeds[name];
  const type = feedType(name, ctx.feedsFile);
  const factory = FEED_FACTORIES[type];
  if (!factory) {
    const fromFile = ctx.feedsFile ? Object.keys(ctx.feedsFile.feeds) : [];
    throw new ConfigError(
      entry
        ? `feeds.${name}.adapter: unknown adapter "${type}": known adapters are ${Object.keys(FEED_FACTORIES).join(', ')}`
        : `unknown feed "${name}" (feeds / tickwire feed <name>): known feeds are ${[...new Set([...fromFile, ...Object.keys(FEED_FACTORIES)])].join(', ')}`,
    );
  }
  return factory({ ...ctx, id: name, ...(entry ? { entry } : {}) });
}
