import { LocalBook } from '../../src/protocol/book.js';
import type { Frame, TestClient } from './ws-client.js';

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
