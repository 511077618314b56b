import { describe, expect, it } from 'vitest';
import { parseFeedsFile } from '../../feeds/config.js';
import { createFeed } from '../../feeds/registry.js';
import { startHarness } from '../../feeds/sdk/conformance.js';
import type { FakeProvider } from '../../feeds/sdk/testing/fake-provider.js';
import { startAlpacaFake } from '../../feeds/alpaca/fake-server.js';
import { startBinanceFake } from '../../feeds/binance/fake-server.js';
import { startCoinbaseFake } from '../../feeds/coinbase/fake-server.js';
import { startKrakenFake } from '../../feeds/kraken/fake-server.js';
import { startOandaFake } from '../../feeds/oanda/fake-server.js';
import { startPolygonFake } from '../../feeds/polygon/fake-server.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';

/**
 * What `tickwire feed NAME` does: build the adapter from its feeds-file entry (URL, symbols,
 * mapping, credentials from the named env vars) and run it. Each one against its fake server.
 */
const env = { ALPACA_KEY_ID: 'ak', ALPACA_SECRET_KEY: 'as', POLYGON_API_KEY: 'pk', OANDA_API_TOKEN: 'ot', OANDA_ACCOUNT_ID: '101-1' };
const cases: { name: string; start: () => Promise<FakeProvider>; entry: (url: string) => Record<string, unknown>; symbols: string[] }[] = [
  {
    name: 'binance',
    start: () => startBinanceFake(),
    entry: (url) => ({ url, symbols: ['BTC-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT' } }),
    symbols: ['BTC-USD'],
  },
  { name: 'coinbase', start: () => startCoinbaseFake(), entry: (url) => ({ url, symbols: ['ETH-USD'] }), symbols: ['ETH-USD'] },
  {
    name: 'kraken',
    start: () => startKrakenFake(),
    entry: (url) => ({ url, symbols: ['SOL-USD'], channels: ['trade', 'ticker'], tickerTrigger: 'trades' }),
    symbols: ['SOL-USD'],
  },
  {
    name: 'alpaca',
    start: () => startAlpacaFake({ key: 'ak', secret: 'as' }),
    entry: (url) => ({ url, keyEnv: 'ALPACA_KEY_ID', secretEnv: 'ALPACA_SECRET_KEY', symbols: ['AAPL'], encoding: 'msgpack' }),
    symbols: ['AAPL'],
  },
  {
    name: 'polygon',
    start: () => startPolygonFake({ apiKey: 'pk' }),
    entry: (url) => ({ url, keyEnv: 'POLYGON_API_KEY', symbols: ['MSFT'] }),
    symbols: ['MSFT'],
  },
  {
    name: 'oanda',
    start: () => startOandaFake({ token: 'ot', accountId: '101-1' }),
    entry: (url) => ({ url, keyEnv: 'OANDA_API_TOKEN', accountIdEnv: 'OANDA_ACCOUNT_ID', symbols: ['EUR-USD'] }),
    symbols: ['EUR-USD'],
  },
];

describe('adapters built from the feeds file', () => {
  for (const c of cases) {
    it(`${c.name}: connects to the URL given in the file and delivers its symbols`, async () => {
      const h = await startHarness(c.start, (p) =>
        createFeed(c.name, {
          config: loadConfig({ env: {} }),
          registry: defaultRegistry(),
          env,
          feedsFile: parseFeedsFile({ feeds: { [c.name]: c.entry(p.url) } }, 'feeds.yaml'),
        }),
      );
      try {
        await h.waitFor('connected with ticks', () => h.state === 'connected' && h.ticks.length > 3);
        expect(h.adapter.id).toBe(c.name);
        expect(new Set(h.ticks.map((t) => t.sym))).toEqual(new Set(c.symbols));
      } finally {
        await h.close();
      }
    }, 30_000);
  }
});
