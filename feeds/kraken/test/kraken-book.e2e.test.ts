import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { startKrakenFake } from '../fake-server.js';
import type { KrakenFakeServer } from '../fake-server.js';
import { expectBooksAre, isBook, twoBookClients } from '../../../test/helpers/book-follow.js';

/**
 * End to end against the Kraken fake: `book` channel (instrument precision, checksum on every
 * message, truncation to the depth) -> adapter -> publisher -> bus -> gateway book -> clients.
 * A corrupted checksum makes the adapter resubscribe; its new snapshot resets the engine's book,
 * and every client's rebuilt book must still check out and end equal to the exchange's top levels.
 */
let fake: KrakenFakeServer;
let engine: Engine;
beforeAll(async () => {
  fake = await startKrakenFake({ replayFixtures: false, pumpMs: 5 });
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], throttle: { tiers: [0, 100, 250], minMs: 0 }, book: { snapshotMs: 50 } },
    {
      env: {},
      feedsFile: {
        feeds: { kraken: { url: fake.url, symbols: ['BTC-USD'], channels: ['ticker'], book: true, bookDepth: 25, backoff: { initialMs: 20, maxMs: 200 } } },
        run: ['kraken'],
      },
    },
  );
});
afterAll(async () => {
  await engine?.close();
  await fake?.close();
});

describe('book:BTC-USD from the Kraken fake', () => {
  it('clients rebuild the exchange book exactly, across a checksum mismatch and its resync', async () => {
    const { a, b, sa, sb } = await twoBookClients(engine.port);
    await a.waitForCount(isBook, 30, 15_000);
    fake.corruptChecksum('BTC/USD');
    await a.waitForCount(isBook, 80, 15_000);
    await b.waitForCount(isBook, 10, 15_000);
    const health = engine.feeds!.health().find((f) => f.id === 'kraken')!;
    expect(health.lastError ?? '').toMatch(/checksum/);

    fake.pause();
    await expectBooksAre(
      [
        [sa, 25],
        [sb, 10],
      ],
      (d) => {
        const full = fake.fullBook('BTC/USD');
        return { bids: full.bids.slice(0, d), asks: full.asks.slice(0, d) };
      },
    );
    a.close();
    b.close();
  });
});
