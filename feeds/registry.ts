import type { Config } from '../src/core/config.js';
import type { InstrumentRegistry } from '../src/core/instruments.js';
import { ConfigError } from '../src/core/errors.js';
import { AlpacaFeed, AlpacaOptionsSchema } from './alpaca/alpaca-feed.js';
import { BINANCE_MAX_STREAMS, BinanceFeed, BinanceOptionsSchema } from './binance/binance-feed.js';
import { CoinbaseFeed, CoinbaseOptionsSchema } from './coinbase/coinbase-feed.js';
import { credentialFromEnv, parseFeedEntry } from './config.js';
import type { FeedEntry, FeedsFile } from './config.js';
import { KrakenFeed, KrakenOptionsSchema } from './kraken/kraken-feed.js';
import { OandaFeed, OandaOptionsSchema } from './oanda/oanda-feed.js';
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
    const { id, opts } = setup(ctx, 'binance', BinanceOptionsSchema);
    const symbols = feedSymbols(ctx, id, 'binance', opts.symbols);
    // Binance Spot "WebSocket Streams" > WebSocket Limits: "A single connection can listen to a maximum of 1024 streams"
    const streams = symbols.length * opts.streams.length;
    if (streams > BINANCE_MAX_STREAMS)
      throw new ConfigError(
        `feeds.${id}.symbols: ${symbols.length} symbols x ${opts.streams.length} streams (${opts.streams.join(', ')}) = ${streams} streams, but one Binance connection carries at most ${BINANCE_MAX_STREAMS}: split the symbols over several feeds (e.g. binance-2: {adapter: binance, symbols: [...]}) or list fewer streams`,
      );
    return new BinanceFeed(id, { ...opts, symbols });
  },
  coinbase: (ctx) => {
    const { id, where, opts } = setup(ctx, 'coinbase', CoinbaseOptionsSchema);
    // the adapter follows each book as the engine keeps it (docs/feeds.md, Coinbase order books):
    // bookLevels is book.maxLevels unless set, and never more (a side the engine cut would then
    // never look short to the adapter, and would not be refreshed)
    const maxLevels = ctx.config.book.maxLevels;
    const set = (ctx.entry as { bookLevels?: unknown } | undefined)?.bookLevels !== undefined;
    if (set && opts.bookLevels > maxLevels)
      throw new ConfigError(
        `${where}.bookLevels (${opts.bookLevels}) must not exceed book.maxLevels (${maxLevels}): leave it out (it follows book.maxLevels) or lower it`,
      );
    return new CoinbaseFeed(id, { ...opts, bookLevels: set ? opts.bookLevels : maxLevels, symbols: feedSymbols(ctx, id, 'coinbase', opts.symbols) });
  },
  kraken: (ctx) => {
    const { id, opts } = setup(ctx, 'kraken', KrakenOptionsSchema);
    return new KrakenFeed(id, { ...opts, symbols: feedSymbols(ctx, id, 'kraken', opts.symbols) });
  },
  alpaca: (ctx) => {
    const { id, where, opts, env } = setup(ctx, 'alpaca', AlpacaOptionsSchema);
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
    const key = credentialFromEnv(env, where, 'keyEnv', opts.keyEnv, 'the Polygon (Massive) API key');
    return new PolygonFeed(id, { ...opts, symbols: feedSymbols(ctx, id, 'polygon', opts.symbols) }, { key, ...(opts.keyEnv ? { keyEnv: opts.keyEnv } : {}) });
  },
  oanda: (ctx) => {
    const { id, where, opts, env } = setup(ctx, 'oanda', OandaOptionsSchema);
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
