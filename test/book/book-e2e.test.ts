import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { LocalBook } from '../../src/protocol/book.js';
import { TestClient } from '../helpers/ws-client.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import type { Frame } from '../helpers/ws-client.js';
import { scrape, series } from '../ops/prom-text.js';

let engine: Engine;
beforeAll(async () => {
  engine = await startEngine({
    host: '127.0.0.1',
    port: 0,
    log: { level: 'silent' },
    synthetic: { seed: 5, rate: 3000 },
    throttle: { tiers: [0, 100, 1000], minMs: 0 },
    book: { snapshotMs: 50 },
  });
});
afterAll(async () => {
  await engine.close();
});

const url = (): string => `ws://127.0.0.1:${engine.port}/v1/stream`;
const book = (ch: string) => (f: Frame) => f.op === 'data' && f.ch === ch;

/** Applies every book item of a client as it arrives; records any seq or checksum failure. */
function follow(c: TestClient, ch: string): { book: LocalBook; items: Frame[]; failures: string[] } {
  const state = { book: new LocalBook(), items: [] as Frame[], failures: [] as string[] };
  let seen = 0;
  const pump = (): void => {
    const all = c.frames.filter(book(ch));
    for (; seen < all.length; seen++) {
      const f = all[seen]!;
      state.items.push(f);
      if (!state.book.apply(f as { seq: number; d: unknown; snapshot?: boolean }))
        state.failures.push(`seq ${f.seq}${f.snapshot ? ' (snapshot)' : ''}: ${state.book.checksum()} != ${f.d.cs}`);
    }
  };
  c.ws.on('message', () => setImmediate(pump));
  pump();
  return state;
}

// (before the suite below: its last test stops the feeds)
describe('book metrics', () => {
  it('counts books held, changes applied and updates emitted on /metrics', async () => {
    const c = await TestClient.connect(url(), { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['book:SOL-USD'], depth: 10 });
    await c.waitForCount(book('book:SOL-USD'), 5, 15_000);
    const m = await waitFor(async () => {
      const { metrics } = await scrape(`http://127.0.0.1:${engine.port}/metrics`);
      return series(metrics, 'tickwire_book_emissions_total') >= 4 ? metrics : undefined;
    }, 'book emissions on /metrics');
    expect(series(m, 'tickwire_books')).toBeGreaterThanOrEqual(1);
    expect(series(m, 'tickwire_book_updates_applied_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_book_resyncs_total')).toBeGreaterThanOrEqual(0);
    c.close();
  });
});

describe('book:SYMBOL through the gateway (synthetic feed)', () => {
  it('refuses bad depths with a protocol error and keeps the connection', async () => {
    const c = await TestClient.connect(url(), { encoding: 'json' });
    for (const depth of [-1, 0, 2.5, 'ten', 100_000]) {
      const err = await c.request({ op: 'subscribe', id: `d${String(depth)}`, channels: ['book:BTC-USD'], depth });
      expect(err).toMatchObject({ op: 'error', code: 'BAD_REQUEST' });
      expect(err.message).toMatch(/depth/);
    }
    const ack = await c.request({ op: 'subscribe', id: 2, channels: ['book:BTC-USD', 'book:NOPE'], depth: 500 });
    expect(ack.subscribed).toEqual([]);
    expect(ack.rejected).toEqual([
      { channel: 'book:BTC-USD', code: 'BAD_REQUEST', reason: expect.stringMatching(/depth 500 is over the largest book depth 100/) },
      { channel: 'book:NOPE', code: 'UNKNOWN_CHANNEL', reason: 'unknown symbol "NOPE"' },
    ]);
    const ok = await c.request({ op: 'subscribe', id: 3, channels: ['book:ETH-USD'], depth: 7 });
    expect(ok.subscribed).toEqual(['book:ETH-USD']);
    const snap = await c.waitFor((f) => book('book:ETH-USD')(f) && f.snapshot === true);
    expect(snap.d.depth).toBe(10); // 7 rounds up to the next configured depth
    c.close();
  });

  it('visibility: a hidden page pauses the book, off screen it moves to the slow tier, and each return is a fresh snapshot', async () => {
    const c = await TestClient.connect(url(), { encoding: 'json' });
    const st = follow(c, 'book:SOL-USD');
    await c.request({ op: 'subscribe', id: 1, channels: ['book:SOL-USD'], depth: 10, throttle: 0 });
    await c.waitForCount(book('book:SOL-USD'), 5, 15_000);
    await c.request({ op: 'visibility', id: 2, page: 'hidden' });
    const paused = c.frames.filter(book('book:SOL-USD')).length;
    await quietFor(400, 'a hidden page gets no book items');
    expect(c.frames.filter(book('book:SOL-USD')).length).toBe(paused);
    // (marked before the request: the ack and the snapshot may arrive in one read)
    const shown = c.frames.length;
    await c.request({ op: 'visibility', id: 3, page: 'visible' });
    const back = await c.waitFor((f) => book('book:SOL-USD')(f) && f.snapshot === true, 10_000, shown);
    expect(back.d.depth).toBe(10);
    // off screen: the 1000 ms tier, entered with a snapshot of its own
    const before = c.frames.length;
    await c.request({ op: 'visibility', id: 4, channels: ['book:SOL-USD'], visible: false });
    await c.waitFor((f) => book('book:SOL-USD')(f) && f.snapshot === true, 10_000, before);
    await c.waitForCount((f) => book('book:SOL-USD')(f) && c.frames.indexOf(f) > before && f.snapshot !== true, 2, 10_000);
    const slow = c.frames.slice(before).filter((f) => book('book:SOL-USD')(f) && f.snapshot !== true);
    expect(slow.every((f) => (f.coalesced ?? 1) >= 1)).toBe(true);
    expect(slow.some((f) => (f.coalesced ?? 1) > 1)).toBe(true); // merged per level over the slow window
    await waitFor(() => st.items.length === c.frames.filter(book('book:SOL-USD')).length, 'every item applied');
    expect(st.failures).toEqual([]);
    c.close();
  });

  it('rebuilds the server book exactly: every item checks out, and the quiet book equals the publisher book', async () => {
    const fast = await TestClient.connect(url(), { encoding: 'msgpack' });
    const slow = await TestClient.connect(url(), { encoding: 'json' });
    const f = follow(fast, 'book:BTC-USD');
    const s = follow(slow, 'book:BTC-USD');
    await fast.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 25, throttle: 0 });
    await slow.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 10, throttle: 100 });
    await fast.waitForCount(book('book:BTC-USD'), 60, 15_000);
    await slow.waitForCount(book('book:BTC-USD'), 15, 15_000);
    // freeze the market, let the last windows go out
    await engine.feeds!.stopAll();
    const pub = engine.publisher!.books.get('BTC-USD')!;
    const settled = async (st: { book: LocalBook }, depth: number): Promise<void> => {
      const want = JSON.stringify(pub.view(depth));
      // (on timeout the assertions below show the difference)
      await waitFor(() => JSON.stringify({ bids: st.book.bids(), asks: st.book.asks() }) === want, {
        what: 'the client book settled',
        timeout: 5000,
        interval: 20,
      }).catch(() => undefined);
    };
    await settled(f, 25);
    await settled(s, 10);
    expect(f.failures).toEqual([]);
    expect(s.failures).toEqual([]);
    expect({ bids: f.book.bids(), asks: f.book.asks() }).toEqual(pub.view(25));
    expect({ bids: s.book.bids(), asks: s.book.asks() }).toEqual(pub.view(10));
    expect(f.book.bids()).toHaveLength(25);
    // contiguous seq after the snapshot, and the throttled client got merged updates
    for (const st of [f, s]) {
      expect(st.items[0]!.snapshot).toBe(true);
      for (let i = 1; i < st.items.length; i++) expect(st.items[i]!.seq).toBe(st.items[i - 1]!.seq + 1);
    }
    expect(s.items.slice(1).some((x) => (x.coalesced ?? 1) > 1)).toBe(true);
    fast.close();
    slow.close();
  });
});
