import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { startCoinbaseFake } from '../fake-server.js';
import type { CoinbaseFakeServer } from '../fake-server.js';
import { expectBooksAre, followBook, isBook } from '../../../test/helpers/book-follow.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { TestClient } from '../../../test/helpers/ws-client.js';

/**
 * A move past the kept levels: the engine keeps 10 levels a side of the fake's 40, then the best 8
 * bids go at once. The 2 kept bids are all the engine knows (levels beyond its worst kept price
 * were dropped); the adapter sees the side short, resubscribes level2, and the new snapshot gives
 * every client the exchange's whole top again, never a hole.
 */
let fake: CoinbaseFakeServer;
let engine: Engine;
beforeAll(async () => {
  fake = await startCoinbaseFake({ replayFixtures: false, pumpMs: 5 });
  engine = await startEngine(
    {
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      feeds: [],
      throttle: { tiers: [0, 100, 250], minMs: 0 },
      book: { snapshotMs: 50, maxLevels: 10, depths: [5, 10] },
    },
    {
      env: {},
      feedsFile: {
        feeds: {
          coinbase: { url: fake.url, symbols: ['BTC-USD'], channels: ['ticker'], book: true, bookLevels: 10, backoff: { initialMs: 20, maxMs: 200 } },
        },
        run: ['coinbase'],
      },
    },
  );
});
afterAll(async () => {
  await engine?.close();
  await fake?.close();
});

describe('book:BTC-USD from the Coinbase fake, kept to 10 levels', () => {
  it('a move past the kept levels refreshes the book: clients see the exchange top 10 again', async () => {
    const url = `ws://127.0.0.1:${engine.port}/v1/stream`;
    const a = await TestClient.connect(url, { encoding: 'msgpack' });
    const b = await TestClient.connect(url, { encoding: 'json' });
    const sa = followBook(a);
    const sb = followBook(b);
    await a.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 10, throttle: 0 });
    await b.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 5, throttle: 100 });
    await a.waitForCount(isBook, 20, 15_000);
    fake.pause();
    const requests = fake.requestTimes().length;
    fake.sweep('BTC-USD', 'bids', 8);
    // the adapter resubscribes level2 (an unsubscribe and a subscribe)
    await waitFor(() => fake.requestTimes().length >= requests + 2, { what: 'the level2 resubscription', timeout: 5000 });
    const top = (d: number) => {
      const full = fake.fullBook('BTC-USD');
      return { bids: full.bids.slice(0, d), asks: full.asks.slice(0, d) };
    };
    await expectBooksAre(
      [
        [sa, 10],
        [sb, 5],
      ],
      top,
    );
    expect(top(10).bids).toHaveLength(10);
    a.close();
    b.close();
  });
});
