import { expect } from 'vitest';
import { LocalBook } from '../../src/protocol/book.js';
import { TestClient } from './ws-client.js';
import type { Frame } from './ws-client.js';
import { waitFor } from './wait.js';

/** A `data` frame of the book channel `ch` (default `book:BTC-USD`). */
export const isBookOf =
  (ch: string) =>
  (f: Frame): boolean =>
    f.op === 'data' && f.ch === ch;

export const isBook = isBookOf('book:BTC-USD');

/**
 * Rebuild a client's book as its frames arrive: every item of `ch` goes through a LocalBook, and
 * each one that does not follow on or whose checksum does not match is listed in `failures`.
 */
export function followBook(c: TestClient, ch = 'book:BTC-USD'): { book: LocalBook; items: Frame[]; failures: string[] } {
  const st = { book: new LocalBook(), items: [] as Frame[], failures: [] as string[] };
  const mine = isBookOf(ch);
  let seen = 0;
  const pump = (): void => {
    const all = c.frames.filter(mine);
    for (; seen < all.length; seen++) {
      const f = all[seen]!;
      st.items.push(f);
      if (!st.book.apply(f as { seq: number; d: unknown; snapshot?: boolean })) st.failures.push(`seq ${f.seq}: ${st.book.checksum()} != ${f.d.cs}`);
    }
  };
  c.ws.on('message', () => setImmediate(pump));
  return st;
}

export type BookFollower = ReturnType<typeof followBook>;
export interface BookSides {
  bids: unknown[];
  asks: unknown[];
}

/**
 * The e2e book tests' two clients of `book:BTC-USD`: `a` (MessagePack) at depth 25 unthrottled,
 * `b` (JSON) at depth 10 and throttle 100 ms, each followed by a LocalBook.
 */
export async function twoBookClients(port: number): Promise<{ a: TestClient; b: TestClient; sa: BookFollower; sb: BookFollower }> {
  const url = `ws://127.0.0.1:${port}/v1/stream`;
  const a = await TestClient.connect(url, { encoding: 'msgpack' });
  const b = await TestClient.connect(url, { encoding: 'json' });
  const sa = followBook(a);
  const sb = followBook(b);
  await a.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 25, throttle: 0 });
  await b.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD'], depth: 10, throttle: 100 });
  return { a, b, sa, sb };
}

/**
 * Each follower's book is the exchange's top `depth` levels (`truth(depth)`, read once the
 * exchange is paused), every item checked out, the first one the snapshot, `seq` contiguous.
 * Waits up to 5 s for the last items to arrive; the assertions then show any difference.
 */
export async function expectBooksAre(followers: readonly (readonly [BookFollower, number])[], truth: (depth: number) => BookSides): Promise<void> {
  const held = (st: BookFollower): BookSides => ({ bids: st.book.bids(), asks: st.book.asks() });
  await waitFor(() => followers.every(([st, d]) => JSON.stringify(held(st)) === JSON.stringify(truth(d))), {
    what: 'every client book equal to the exchange book',
    timeout: 5000,
    interval: 20,
  }).catch(() => undefined);
  for (const [st, d] of followers) {
    expect(st.failures).toEqual([]);
    expect(held(st)).toEqual(truth(d));
    expect(st.items[0]!.snapshot).toBe(true);
    for (let i = 1; i < st.items.length; i++) expect(st.items[i]!.seq).toBe(st.items[i - 1]!.seq + 1);
  }
}
