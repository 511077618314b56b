import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { TestClient } from '../../../test/helpers/ws-client.js';
import type { Frame } from '../../../test/helpers/ws-client.js';
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

const on = (ch: string, pred: (d: Record<string, any>) => boolean) => (f: Frame) => f.op === 'data' && f.ch === ch && pred(f.d);

describe('Kraken pair state end to end', () => {
  it('cancel_only halts BTC-USD on status:BTC-USD and on its ticker; online makes it trading again', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['ticker:BTC-USD', 'status:BTC-USD'], throttle: 0 });
    await c.waitFor(
      on('ticker:BTC-USD', () => true),
      15_000,
    );
    fake.setPairStatus('BTC/USD', 'cancel_only');
    const halted = await c.waitFor(
      on('status:BTC-USD', (d) => d.status === 'halted'),
      15_000,
    );
    expect(halted.d).toMatchObject({
      status: 'halted',
      code: 'cancel_only',
      reason: 'Kraken pair cancel only: no new orders, no order matching',
      src: 'kraken',
    });
    await c.waitFor(
      on('ticker:BTC-USD', (d) => d.status === 'halted'),
      15_000,
    );
    const from = c.frames.length;
    fake.setPairStatus('BTC/USD', 'online');
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
