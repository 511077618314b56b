import { afterAll, beforeAll, describe, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { expectStatusRoundTrip } from '../../../test/helpers/status-e2e.js';
import { startCoinbaseFake } from '../fake-server.js';
import type { CoinbaseFakeServer } from '../fake-server.js';

/**
 * End to end against the Coinbase fake: a product's `status` on the status channel -> adapter ->
 * publisher -> gateway: `status:BTC-USD` carries it and the ticker's `status` follows.
 */
let fake: CoinbaseFakeServer;
let engine: Engine;
beforeAll(async () => {
  fake = await startCoinbaseFake({ replayFixtures: false, pumpMs: 20 });
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], throttle: { tiers: [0, 100, 250], minMs: 0 } },
    { env: {}, feedsFile: { feeds: { coinbase: { url: fake.url, symbols: ['BTC-USD'], backoff: { initialMs: 20, maxMs: 200 } } }, run: ['coinbase'] } },
  );
});
afterAll(async () => {
  await engine?.close();
  await fake?.close();
});

describe('Coinbase product status end to end', () => {
  it('a product going offline is halted on status:BTC-USD and on its ticker; online makes it trading again', async () => {
    await expectStatusRoundTrip(engine.port, 'BTC-USD', {
      halt: () => fake.setProductStatus('BTC-USD', 'offline', 'Trading is temporarily disabled'),
      halted: { code: 'offline', reason: 'Trading is temporarily disabled', src: 'coinbase' },
      resume: () => fake.setProductStatus('BTC-USD', 'online'),
      tradingCode: 'online',
    });
  });
});
