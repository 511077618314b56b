import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startBinanceFake } from '../../feeds/binance/fake-server.js';
import type { BinanceFakeServer } from '../../feeds/binance/fake-server.js';
import { TestClient } from '../helpers/ws-client.js';
import { expectBooksAre, followBook, isBook, twoBookClients } from '../helpers/book-follow.js';

/**
 * End to end against the Binance fake: exchange depth stream + REST snapshot -> adapter (sync
 * procedure) -> publisher -> bus -> gateway shared book -> throttled, depth-limited views ->
 * clients. Each client's rebuilt book must check out on every item, and once the exchange is
 * quiet it must be the exchange's own top levels, also for a client that joined mid-stream and
 * across a provider-side gap that made the adapter sync again.
 */
let fake: BinanceFakeServer;
let engine: Engine;
beforeAll(async () => {
  fake = await startBinanceFake({ replayFixtures: false, depthMs: 5, snapshotDelayMs: 20 });
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], throttle: { tiers: [0, 100, 250], minMs: 0 }, book: { snapshotMs: 50 } },
    {
      env: {},
      feedsFile: {
        feeds: {
          binance: {
            url: fake.url,
            restUrl: fake.restUrl,
            symbols: ['BTC-USD'],
            symbolMap: { 'BTC-USD': 'BTCUSDT' },
            streams: ['depth'],
            depthRetryMs: 20,
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

describe('book:BTC-USD from the Binance fake, throttled', () => {
  it('every client rebuilds the exchange book exactly (throttle 0 and 100 ms, a late joiner, a provider gap)', async () => {
    const { a, b, sa, sb } = await twoBookClients(engine.port);
    await a.waitForCount(isBook, 50, 15_000);
    // the exchange loses updates: the adapter syncs again from a new snapshot (a reset on the bus)
    fake.loseDepthUpdates('BTCUSDT', 2);
    // a client joining while updates flow (another tier: a new view of the shared book)
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    const sc = followBook(c);
    await c.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 100, throttle: 250 });
    await c.waitForCount(isBook, 5, 15_000);
    await b.waitForCount(isBook, 20, 15_000);
    expect(engine.feeds!.health()[0]).toMatchObject({ id: 'binance' });

    fake.pause();
    await expectBooksAre(
      [
        [sa, 25],
        [sb, 10],
        [sc, 100],
      ],
      (d) => fake.depth('BTCUSDT')!.view(d),
    );
    // throttled: updates merged per level within each window
    expect(sb.items.slice(1).some((f) => (f.coalesced ?? 1) > 1)).toBe(true);
    expect(sa.book.bids().length).toBe(25);
    a.close();
    b.close();
    c.close();
  });
});
