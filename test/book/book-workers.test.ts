import { describe, expect, it } from 'vitest';
import { LocalBook } from '../../src/protocol/book.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';

/**
 * `book:SYM` with `gateway.workers: 2` (embedded): each worker keeps its own shared book, started
 * from the book the main thread's publisher stores (read through the worker's remote store) and
 * the bus; clients on either worker rebuild a book whose every item checks out.
 */
describe('book:SYMBOL on gateway workers', () => {
  const gw = embeddedWorkers({ synthetic: { rate: 2000 }, book: { snapshotMs: 50 } });

  it('serves every client, on both workers, a book that checks out item by item', async () => {
    const clients = await Promise.all(Array.from({ length: 8 }, () => TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`, { encoding: 'json' })));
    const stats = await waitFor(async () => {
      const s = (await (await fetch(`http://127.0.0.1:${gw.port}/v1/stats`)).json()) as { connections: number; workers: { connections: number }[] };
      return s.connections === 8 ? s : undefined;
    }, 'the 8 connections counted');
    const onBoth = stats.workers.every((w) => w.connections > 0);
    for (const [i, c] of clients.entries()) c.send({ op: 'subscribe', id: i, channels: ['book:BTC-USD'], depth: 10, throttle: i % 2 ? 100 : 0 });
    const isBook = (f: Frame): boolean => f.op === 'data' && f.ch === 'book:BTC-USD';
    for (const c of clients) await c.waitForCount(isBook, 6, 20_000);
    for (const c of clients) {
      const book = new LocalBook();
      const items = c.frames.filter(isBook);
      expect(items[0]!.snapshot).toBe(true);
      for (const f of items) expect(book.apply(f as { seq: number; d: unknown; snapshot?: boolean }), `seq ${f.seq}`).toBe(true);
      expect(book.bids().length).toBeGreaterThan(0);
      expect(book.asks().length).toBeGreaterThan(0);
      c.close();
    }
    // the kernel spreads connections by address hash: with 8 of them both workers almost always serve some
    if (!onBoth) console.warn('book workers test: all 8 connections landed on one worker');
  }, 60_000);
});
