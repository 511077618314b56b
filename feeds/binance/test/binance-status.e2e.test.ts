import { afterAll, beforeAll, describe, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { expectStatusRoundTrip } from '../../../test/helpers/status-e2e.js';
import { startBinanceFake } from '../fake-server.js';
import type { BinanceFakeServer } from '../fake-server.js';

/**
 * End to end against the Binance fake: a symbol's exchangeInfo `status` -> adapter (polled every
 * 5 s here) -> publisher -> gateway: `status:BTC-USD` carries it and the ticker's `status` follows.
 */
let fake: BinanceFakeServer;
let engine: Engine;
beforeAll(async () => {
  fake = await startBinanceFake({ replayFixtures: false, pumpMs: 20, symbolStatus: { BTCUSDT: 'HALT' } });
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], throttle: { tiers: [0, 100, 250], minMs: 0 } },
    {
      env: {},
      feedsFile: {
        feeds: {
          binance: {
            url: fake.url,
            restUrl: fake.restUrl,
            symbols: ['BTC-USD'],
            symbolMap: { 'BTC-USD': 'BTCUSDT' },
            statusPollMs: 5000,
            backoff: { initialMs: 20, maxMs: 200 },
          },
        },
        run: ['binance'],
      },
    },
  );
});
afterAll(async () => {
  await engine?.close();
  await fake?.close();
});

describe('Binance symbol status end to end', () => {
  it('HALT is halted on status:BTC-USD and on its ticker; TRADING at the next poll makes it trading again', async () => {
    // the fake starts with BTCUSDT in HALT
    await expectStatusRoundTrip(engine.port, 'BTC-USD', {
      halted: { code: 'HALT', reason: 'Binance symbol status HALT', src: 'binance' },
      resume: () => fake.setSymbolStatus('BTCUSDT', 'TRADING'),
      tradingCode: 'TRADING',
    });
  });
});
