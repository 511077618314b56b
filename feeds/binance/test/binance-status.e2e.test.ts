import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { TestClient } from '../../../test/helpers/ws-client.js';
import type { Frame } from '../../../test/helpers/ws-client.js';
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

const on = (ch: string, pred: (d: Record<string, any>) => boolean) => (f: Frame) => f.op === 'data' && f.ch === ch && pred(f.d);

describe('Binance symbol status end to end', () => {
  it('HALT is halted on status:BTC-USD and on its ticker; TRADING at the next poll makes it trading again', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['ticker:BTC-USD', 'status:BTC-USD'], throttle: 0 });
    const halted = await c.waitFor(
      on('status:BTC-USD', (d) => d.status === 'halted'),
      15_000,
    );
    expect(halted.d).toMatchObject({ status: 'halted', code: 'HALT', reason: 'Binance symbol status HALT', src: 'binance' });
    await c.waitFor(
      on('ticker:BTC-USD', (d) => d.status === 'halted'),
      15_000,
    );
    const from = c.frames.length;
    fake.setSymbolStatus('BTCUSDT', 'TRADING');
    await c.waitFor(
      on('status:BTC-USD', (d) => d.status === 'trading' && d.code === 'TRADING'),
      15_000,
      from,
    );
    await c.waitFor(
      on('ticker:BTC-USD', (d) => d.status === 'trading'),
      15_000,
      from,
    );
    c.close();
  });
});
