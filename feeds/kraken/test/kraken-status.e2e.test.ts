import { afterAll, beforeAll, describe, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { expectStatusRoundTrip } from '../../../test/helpers/status-e2e.js';
import { startKrakenFake } from '../fake-server.js';
import type { KrakenFakeServer } from '../fake-server.js';

/**
 * End to end against the Kraken fake: a pair's own state on the `instrument` channel -> adapter
 * -> publisher -> gateway: `status:BTC-USD` carries it and the ticker's `status` follows.
 */
let fake: KrakenFakeServer;
let engine: Engine;
beforeAll(async () => {
  fake = await startKrakenFake({ replayFixtures: false, pumpMs: 20 });
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], throttle: { tiers: [0, 100, 250], minMs: 0 } },
    { env: {}, feedsFile: { feeds: { kraken: { url: fake.url, symbols: ['BTC-USD'], backoff: { initialMs: 20, maxMs: 200 } } }, run: ['kraken'] } },
  );
});
afterAll(async () => {
  await engine?.close();
  await fake?.close();
});

describe('Kraken pair state end to end', () => {
  it('cancel_only halts BTC-USD on status:BTC-USD and on its ticker; online makes it trading again', async () => {
    await expectStatusRoundTrip(engine.port, 'BTC-USD', {
      halt: () => fake.setPairStatus('BTC/USD', 'cancel_only'),
      halted: { code: 'cancel_only', reason: 'Kraken pair cancel only: no new orders, no order matching', src: 'kraken' },
      resume: () => fake.setPairStatus('BTC/USD', 'online'),
      tradingCode: 'online',
    });
  });
});
