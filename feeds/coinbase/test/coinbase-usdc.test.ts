import { describe, expect, it } from 'vitest';
import { parseFeedsFile } from '../../config.js';
import { createFeed } from '../../registry.js';
import { ConfigError } from '../../../src/core/errors.js';
import { loadConfig } from '../../../src/core/config.js';
import { DEFAULT_INSTRUMENTS, InstrumentRegistry } from '../../../src/core/instruments.js';
import type { Instrument } from '../../../src/core/instruments.js';

/**
 * Coinbase Advanced Trade, WebSocket Channels: "Subscribing to '-USDC' based products are only
 * available on the user channel. Other channels will return the same data as the corresponding
 * '-USD' based products. USDT-USDC and EURC-USDC are available on all channels" (WebSocket
 * Endpoints, Public: "-USDC product IDs other than USDT-USDC and EURC-USDC return the same data as
 * the matching -USD product"). That data comes under the -USD product id (Coinbase developer
 * forum, "The mess of -USD and -USDC pairs", acknowledged by Coinbase staff), which the adapter
 * does not take for the -USDC symbol: such a symbol was subscribed and never published anything,
 * without a word. A feed is refused at start instead, naming the symbol and the fix.
 */
const usdc = (symbol: string): Instrument => ({ symbol, assetClass: 'crypto', currency: symbol.split('-')[1]!, pricePrecision: 2, providers: [] });
const registry = new InstrumentRegistry([...DEFAULT_INSTRUMENTS, usdc('BTC-USDC'), usdc('USDT-USDC'), usdc('EURC-USDC'), usdc('BTC-EURC')]);
const config = loadConfig({ env: {} });
const build = (entry: Record<string, unknown>) =>
  createFeed('coinbase', { config, registry, env: {}, feedsFile: parseFeedsFile({ feeds: { coinbase: entry } }, 'feeds.yaml') });

describe('coinbase -USDC products', () => {
  it('refuses a symbol whose Coinbase product is a -USDC product other than USDT-USDC and EURC-USDC, naming the -USD product', () => {
    expect(() => build({ symbols: ['BTC-USDC'] })).toThrow(ConfigError);
    expect(() => build({ symbols: ['BTC-USDC'] })).toThrow(
      /feeds\.coinbase\.symbols: "BTC-USDC" is Coinbase product BTC-USDC, .*only on the user channel.*BTC-USD.*symbolMap: \{ BTC-USDC: BTC-USD \}/,
    );
    // mapped there by symbolMap, too (the product id is what counts), and in any case
    expect(() => build({ symbols: ['ETH-USD'], symbolMap: { 'ETH-USD': 'eth-usdc' } })).toThrow(/"ETH-USD" is Coinbase product eth-usdc/);
  });

  it('with the -USD product already served by the feed, says to remove the -USDC symbol instead', () => {
    expect(() => build({ symbols: ['BTC-USD', 'BTC-USDC'] })).toThrow(/"BTC-USDC" .*this feed serves BTC-USD already: remove BTC-USDC/);
  });

  it('refuses two symbols on one Coinbase product (a -USDC symbol mapped to the -USD product the feed serves too)', () => {
    expect(() => build({ symbols: ['BTC-USD', 'BTC-USDC'], symbolMap: { 'BTC-USDC': 'BTC-USD' } })).toThrow(
      /feeds\.coinbase\.symbolMap: "BTC-USD" and "BTC-USDC" are both Coinbase product BTC-USD/,
    );
  });

  it('accepts USDT-USDC and EURC-USDC, the -USDC products every channel serves, other quote currencies, and a -USDC symbol mapped to its -USD product', () => {
    expect(build({ symbols: ['USDT-USDC', 'EURC-USDC', 'BTC-EURC'] }).id).toBe('coinbase');
    expect(build({ symbols: ['BTC-USDC'], symbolMap: { 'BTC-USDC': 'BTC-USD' } }).id).toBe('coinbase');
  });
});
