import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../../src/app/engine.js';
import type { Engine } from '../../../src/app/engine.js';
import { LocalBook } from '../../../src/protocol/book.js';
import { TestClient } from '../../../test/helpers/ws-client.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { startKrakenFake } from '../fake-server.js';
import type { KrakenFakeServer } from '../fake-server.js';
import { followBook, isBook } from '../../../test/helpers/book-follow.js';

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
    const url = `ws://127.0.0.1:${engine.port}/v1/stream`;
    const a = await TestClient.connect(url, { encoding: 'msgpack' });
    const b = await TestClient.connect(url, { encoding: 'json' });
    const sa = followBook(a);
    const sb = followBook(b);
    await a.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 25, throttle: 0 });
    await b.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 10, throttle: 100 });
    await a.waitForCount(isBook, 30, 15_000);
    fake.corruptChecksum('BTC/USD');
    await a.waitForCount(isBook, 80, 15_000);
    await b.waitForCount(isBook, 10, 15_000);
    const health = engine.feeds!.health().find((f) => f.id === 'kraken')!;
    expect(health.lastError ?? '').toMatch(/checksum/);

    fake.pause();
    const view = (d: number) => {
      const full = fake.fullBook('BTC/USD');
      return { bids: full.bids.slice(0, d), asks: full.asks.slice(0, d) };
    };
    const same = (st: { book: LocalBook }, d: number): boolean => JSON.stringify({ bids: st.book.bids(), asks: st.book.asks() }) === JSON.stringify(view(d));
    await waitFor(() => same(sa, 25) && same(sb, 10), { what: 'both clients hold the exchange book', timeout: 5000 }).catch(() => undefined); // compared below, with the difference shown
    for (const [st, d] of [
      [sa, 25],
      [sb, 10],
    ] as const) {
      expect(st.failures).toEqual([]);
      expect({ bids: st.book.bids(), asks: st.book.asks() }).toEqual(view(d));
      expect(st.items[0]!.snapshot).toBe(true);
      for (let i = 1; i < st.items.length; i++) expect(st.items[i]!.seq).toBe(st.items[i - 1]!.seq + 1);
    }
    a.close();
    b.close();
  });
});
