import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { TestClient } from '../../../test/helpers/ws-client.js';
import type { Frame } from '../../../test/helpers/ws-client.js';
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

const on = (ch: string, pred: (d: Record<string, any>) => boolean) => (f: Frame) => f.op === 'data' && f.ch === ch && pred(f.d);

describe('Coinbase product status end to end', () => {
  it('a product going offline is halted on status:BTC-USD and on its ticker; online makes it trading again', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['ticker:BTC-USD', 'status:BTC-USD'], throttle: 0 });
    await c.waitFor(
      on('ticker:BTC-USD', () => true),
      15_000,
    );
    fake.setProductStatus('BTC-USD', 'offline', 'Trading is temporarily disabled');
    const halted = await c.waitFor(
      on('status:BTC-USD', (d) => d.status === 'halted'),
      15_000,
    );
    expect(halted.d).toMatchObject({ status: 'halted', code: 'offline', reason: 'Trading is temporarily disabled', src: 'coinbase' });
    await c.waitFor(
      on('ticker:BTC-USD', (d) => d.status === 'halted'),
      15_000,
    );
    const from = c.frames.length;
    fake.setProductStatus('BTC-USD', 'online');
    await c.waitFor(
      on('status:BTC-USD', (d) => d.status === 'trading' && d.code === 'online'),
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
