import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { extractFeedsFileFlag, loadFeedsFile, parseFeedsFile, resolveFeedsFile } from '../../feeds/config.js';
import { createFeed } from '../../feeds/registry.js';
import { ConfigError } from '../../src/core/errors.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startBinanceFake } from '../../feeds/binance/fake-server.js';
import type { BinanceFeed } from '../../feeds/binance/binance-feed.js';
import type { CoinbaseFeed } from '../../feeds/coinbase/coinbase-feed.js';
import type { KrakenFeed } from '../../feeds/kraken/kraken-feed.js';
import { waitFor } from '../helpers/wait.js';

const config = loadConfig({ env: {} });
const registry = defaultRegistry();
const build = (doc: unknown, name: string, env: NodeJS.ProcessEnv = {}) =>
  createFeed(name, { config, registry, env, feedsFile: parseFeedsFile(doc, 'feeds.yaml') });

describe('feeds file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-feeds-'));
  let engine: Engine | undefined;
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses the documented example', () => {
    const file = loadFeedsFile(new URL('../../examples/feeds.yaml', import.meta.url).pathname);
    expect(Object.keys(file.feeds)).toEqual(expect.arrayContaining(['binance', 'coinbase', 'kraken', 'alpaca', 'polygon', 'oanda', 'replay']));
    expect(file.failover[0]).toMatchObject({ symbol: 'BTC-USD', primary: 'binance', backup: 'coinbase' });
  });

  it('takes credentials only from the environment variables it names', () => {
    const doc = { feeds: { alpaca: { url: 'ws://127.0.0.1:1/v2/iex', keyEnv: 'ALPACA_KEY_ID', secretEnv: 'ALPACA_SECRET_KEY', symbols: ['AAPL'] } } };
    expect(() => build(doc, 'alpaca', { ALPACA_KEY_ID: 'k' })).toThrow(ConfigError);
    expect(() => build(doc, 'alpaca', { ALPACA_KEY_ID: 'k' })).toThrow(/feeds\.alpaca\.secretEnv: environment variable ALPACA_SECRET_KEY is not set/);
    expect(build(doc, 'alpaca', { ALPACA_KEY_ID: 'k', ALPACA_SECRET_KEY: 's' }).id).toBe('alpaca');
    const noKey = { feeds: { polygon: { symbols: ['AAPL'] } } };
    expect(() => build(noKey, 'polygon')).toThrow(/feeds\.polygon\.keyEnv is required: name the environment variable that holds the Polygon/);
  });

  it("follows each Coinbase book to the engine's book.maxLevels unless bookLevels is set, and never beyond it", () => {
    const doc = (entry: Record<string, unknown>) => ({ feeds: { coinbase: { symbols: ['BTC-USD'], book: true, ...entry } } });
    const small = loadConfig({ env: { TICKWIRE_BOOK_MAX_LEVELS: '100', TICKWIRE_BOOK_DEPTHS: '10,50' } });
    const buildWith = (entry: Record<string, unknown>) =>
      createFeed('coinbase', { config: small, registry, env: {}, feedsFile: parseFeedsFile(doc(entry), 'feeds.yaml') });
    expect((buildWith({}) as CoinbaseFeed).bookLevels).toBe(100);
    expect((buildWith({ bookLevels: 40 }) as CoinbaseFeed).bookLevels).toBe(40);
    expect(() => buildWith({ bookLevels: 1000 })).toThrow(/feeds\.coinbase\.bookLevels \(1000\) must not exceed book\.maxLevels \(100\): leave it out/);
  });

  it('keeps Binance depthLimit and Kraken bookDepth within book.maxLevels: unset they follow it, set above it they fail naming the key', () => {
    // the engine keeps book.maxLevels a side; levels the adapter follows past it are cut, and a
    // cut side only shrinks (src/book/order-book.ts): the book showed fewer levels, silently
    const small = loadConfig({ env: { TICKWIRE_BOOK_MAX_LEVELS: '20', TICKWIRE_BOOK_DEPTHS: '10,20' } });
    const buildWith = (name: string, entry: Record<string, unknown>) =>
      createFeed(name, {
        config: small,
        registry,
        env: {},
        feedsFile: parseFeedsFile({ feeds: { [name]: { symbols: ['BTC-USD'], ...entry } } }, 'feeds.yaml'),
      });
    const depth = { streams: ['trade', 'depth'] };
    expect((buildWith('binance', depth) as BinanceFeed).depthLimit).toBe(20);
    expect((buildWith('binance', { ...depth, depthLimit: 15 }) as BinanceFeed).depthLimit).toBe(15);
    expect(() => buildWith('binance', { ...depth, depthLimit: 1000 })).toThrow(
      /feeds\.binance\.depthLimit \(1000\) must not exceed book\.maxLevels \(20\): leave it out \(it follows book\.maxLevels\) or lower it/,
    );
    expect((buildWith('binance', {}) as BinanceFeed).depthLimit).toBe(20);
    // Kraken's depths are 10, 25, 100, 500, 1000: unset, the largest within book.maxLevels
    expect((buildWith('kraken', { book: true }) as KrakenFeed).bookDepth).toBe(10);
    expect((build({ feeds: { kraken: { symbols: ['BTC-USD'], book: true } } }, 'kraken') as KrakenFeed).bookDepth).toBe(25);
    expect(() => buildWith('kraken', { book: true, bookDepth: 25 })).toThrow(
      /feeds\.kraken\.bookDepth \(25\) must not exceed book\.maxLevels \(20\): set bookDepth: 10, or raise book\.maxLevels \(TICKWIRE_BOOK_MAX_LEVELS\)/,
    );
  });

  // Binance "How to manage a local order book correctly": the snapshot (REST GET /api/v3/depth) and
  // the diff stream must be the same venue's, their update IDs one sequence. With a `url` on another
  // host (a testnet, Binance.US, a proxy) and no restUrl, snapshots came from api.binance.com: its
  // lastUpdateId is past every testnet event, so the production book was published for the testnet
  // symbol and never changed again (every event "older" than it), or, the other way round, every
  // snapshot was stale for ever.
  it('refuses Binance depth with a url on another host and no restUrl, naming restUrl', () => {
    const one = (entry: Record<string, unknown>) => build({ feeds: { binance: { symbols: ['BTC-USD'], ...entry } } }, 'binance');
    const testnet = { url: 'wss://stream.testnet.binance.vision', streams: ['trade', 'depth'] };
    expect(() => one(testnet)).toThrow(ConfigError);
    expect(() => one(testnet)).toThrow(
      /feeds\.binance\.restUrl is required with depth in streams and a url on another host than stream\.binance\.com \(stream\.testnet\.binance\.vision\)/,
    );
    expect(one({ ...testnet, restUrl: 'https://testnet.binance.vision' }).id).toBe('binance');
    expect(one({ streams: ['trade', 'depth'] }).id).toBe('binance');
    expect(one({ url: 'wss://stream.binance.com:443', streams: ['depth'] }).id).toBe('binance');
    expect(one({ url: 'wss://stream.testnet.binance.vision' }).id).toBe('binance'); // no depth: no snapshot to mix
  });

  it('refuses book options of a feed whose book is off, and liveness settings that can never hold', () => {
    const one = (name: string, entry: Record<string, unknown>, env: NodeJS.ProcessEnv = {}) =>
      build(
        { feeds: { [name]: { symbols: [name === 'oanda' ? 'EUR-USD' : name === 'alpaca' || name === 'polygon' ? 'AAPL' : 'BTC-USD'], ...entry } } },
        name,
        env,
      );
    expect(() => one('binance', { depthLimit: 500 })).toThrow(
      /feeds\.binance\.depthLimit is set but streams has no depth: add depth to streams, or remove depthLimit/,
    );
    expect(() => one('binance', { depthSpeed: '1000ms' })).toThrow(/feeds\.binance\.depthSpeed is set but streams has no depth/);
    expect(() => one('kraken', { bookDepth: 100 })).toThrow(/feeds\.kraken\.bookDepth is set but book is off: set book: true, or remove bookDepth/);
    expect(() => one('kraken', { bookPrecision: { 'BTC-USD': { price: 1, qty: 8 } } })).toThrow(/feeds\.kraken\.bookPrecision is set but book is off/);
    expect(() => one('coinbase', { bookLevels: 100 })).toThrow(/feeds\.coinbase\.bookLevels is set but book is off: set book: true, or remove bookLevels/);
    // OANDA sends a HEARTBEAT every 5 s: a shorter staleAfterMs reconnects a quiet stream for ever
    const oanda = { keyEnv: 'T', accountId: '101-1' };
    expect(() => one('oanda', { ...oanda, staleAfterMs: 4000 }, { T: 't' })).toThrow(
      /feeds\.oanda\.staleAfterMs \(4000\) must be 0 \(never\) or at least 10000: OANDA sends a HEARTBEAT every 5000 ms/,
    );
    expect(() => one('oanda', { ...oanda, staleAfterMs: 10_000 }, { T: 't' })).not.toThrow();
    expect(() => one('oanda', { ...oanda, staleAfterMs: 0 }, { T: 't' })).not.toThrow();
    // Alpaca and Polygon send no heartbeat: only the answer to our ping shows a quiet connection is alive
    const alpaca = { keyEnv: 'K', secretEnv: 'S' };
    const creds = { K: 'k', S: 's' };
    expect(() => one('alpaca', { ...alpaca, staleAfterMs: 20_000 }, creds)).toThrow(
      /feeds\.alpaca\.staleAfterMs \(20000\) must be 0 \(never\) or at least twice pingIntervalMs \(20000\)/,
    );
    expect(() => one('polygon', { keyEnv: 'K', pingIntervalMs: 30_000, staleAfterMs: 45_000 }, creds)).toThrow(
      /feeds\.polygon\.staleAfterMs \(45000\) must be 0/,
    );
    expect(() => one('polygon', { keyEnv: 'K', pingIntervalMs: 0 }, creds)).toThrow(
      /feeds\.polygon\.pingIntervalMs: 0 turns off the only check that a quiet connection is alive/,
    );
    expect(() => one('polygon', { keyEnv: 'K', pingIntervalMs: 0, staleAfterMs: 0 }, creds)).not.toThrow();
    expect(() => one('alpaca', { ...alpaca, pingIntervalMs: 10_000 }, creds)).not.toThrow();
  });

  it('refuses Alpaca updatedBars without bars: there is no Alpaca minute bar for them to replace', () => {
    const alpaca = (channels: string[]) =>
      build({ feeds: { alpaca: { keyEnv: 'K', secretEnv: 'S', symbols: ['AAPL'], channels } } }, 'alpaca', { K: 'k', S: 's' });
    // accepted before: the first updated bar made the engine hold each of its own closed minute
    // bars a minute for an Alpaca `b` bar that was never subscribed
    expect(() => alpaca(['trades', 'quotes', 'updatedBars'])).toThrow(ConfigError);
    expect(() => alpaca(['trades', 'updatedBars'])).toThrow(/feeds\.alpaca\.channels: updatedBars without bars: .*add bars to channels, or remove updatedBars/);
    expect(alpaca(['trades', 'quotes', 'bars', 'updatedBars']).id).toBe('alpaca');
    expect(alpaca(['trades', 'quotes']).id).toBe('alpaca');
  });

  it('rejects an unknown or misspelled key, naming it', () => {
    expect(() => build({ feeds: { binance: { url: 'ws://127.0.0.1:1', symbol: ['BTC-USD'] } } }, 'binance')).toThrow(/feeds\.binance: unknown key "symbol"/);
    expect(() => build({ feeds: { alpaca: { encoding: 'protobuf', keyEnv: 'A', secretEnv: 'B', symbols: ['AAPL'] } } }, 'alpaca', { A: '1', B: '2' })).toThrow(
      /feeds\.alpaca: encoding/,
    );
    expect(() => parseFeedsFile({ feed: {} }, 'feeds.yaml')).toThrow(/unknown key "feed"/);
    expect(() => parseFeedsFile({ feeds: { binance: { symbols: ['btc-usd'] } } }, 'feeds.yaml')).toThrow(/feeds\.binance\.symbols\.0: a canonical symbol/);
  });

  it('checks failover rules and symbols against the feeds and instruments', () => {
    expect(() => parseFeedsFile({ feeds: { binance: {} }, failover: [{ symbol: 'BTC-USD', primary: 'binance', backup: 'kraken' }] }, 'f')).toThrow(
      /failover\[0\]\.backup: "kraken" is not a feed of this file/,
    );
    expect(() => build({ feeds: { binance: { symbols: ['DOGE-EUR'] } } }, 'binance')).toThrow(/feeds\.binance\.symbols: "DOGE-EUR" is not a known instrument/);
    expect(() => build({ feeds: { mybinance: { adapter: 'binanse', symbols: ['BTC-USD'] } } }, 'mybinance')).toThrow(
      /feeds\.mybinance\.adapter: unknown adapter "binanse"/,
    );
  });

  it('lets a feed name differ from its adapter type (two instances of one provider)', () => {
    const feed = build({ feeds: { 'binance-us': { adapter: 'binance', url: 'wss://stream.binance.us:9443', symbols: ['BTC-USD'] } } }, 'binance-us');
    expect(feed.id).toBe('binance-us');
  });

  it('comes from --feeds-file or TICKWIRE_FEEDS_FILE, and the flag does not reach the main config', () => {
    const path = join(dir, 'feeds.yaml');
    writeFileSync(path, YAML.stringify({ feeds: { binance: { symbols: ['BTC-USD'] } } }));
    expect(extractFeedsFileFlag(['--port', '0', '--feeds-file', path])).toEqual({ path, rest: ['--port', '0'] });
    expect(extractFeedsFileFlag([`--feeds-file=${path}`]).path).toBe(path);
    expect(resolveFeedsFile([], { TICKWIRE_FEEDS_FILE: path }).file?.feeds.binance?.symbols).toEqual(['BTC-USD']);
    expect(() => resolveFeedsFile(['--feeds-file', join(dir, 'missing.yaml')], {})).toThrow(/feeds file .*missing\.yaml .*cannot be read/);
    // TICKWIRE_FEEDS_FILE is not an unknown config key
    expect(() => loadConfig({ env: { TICKWIRE_FEEDS_FILE: path } })).not.toThrow();
  });

  it('starts the engine with the feeds named in `run`, from the file in TICKWIRE_FEEDS_FILE', async () => {
    const fake = await startBinanceFake({ replayFixtures: false });
    try {
      const path = join(dir, 'run.yaml');
      writeFileSync(
        path,
        YAML.stringify({ feeds: { binance: { url: fake.url, symbols: ['BTC-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT' } } }, run: ['binance'] }),
      );
      engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' } }, { env: { TICKWIRE_FEEDS_FILE: path } });
      expect(engine.feeds!.health().map((f) => f.id)).toEqual(['binance']);
      await waitFor(() => (engine!.publisher?.stats.published ?? 0) >= 5, { what: 'five published ticks', timeout: 10_000 }).catch(() => undefined); // asserted below
      expect(engine.publisher!.stats.published).toBeGreaterThanOrEqual(5);
    } finally {
      await engine?.close();
      engine = undefined;
      await fake.close();
    }
  });

  it('fails at start with a message naming a missing credential variable', async () => {
    await expect(
      startEngine(
        { host: '127.0.0.1', port: 0, log: { level: 'silent' } },
        {
          env: {},
          feedsFile: { feeds: { alpaca: { keyEnv: 'ALPACA_KEY_ID', secretEnv: 'ALPACA_SECRET_KEY', symbols: ['AAPL'] } }, run: ['alpaca'] },
        },
      ),
    ).rejects.toThrow(/feeds\.alpaca\.keyEnv: environment variable ALPACA_KEY_ID is not set/);
  });
});
