/**
 * Cost of keeping a Kraken `book` subscription: one update message applied to the local book
 * (truncated to the depth) and its CRC32 checksum verified, per subscribed depth. Prints
 * microseconds per message and messages/s per core, with the machine load next to them.
 *
 *   npx tsx bench/kraken-book.ts [messages=100000]
 */
import { loadavg } from 'node:os';
import { KrakenBook } from '../feeds/kraken/book.js';
import type { Level } from '../feeds/kraken/book.js';

const N = Number(process.argv[2] ?? 100_000);
const PRECISION = { price: 1, qty: 8 };

function run(depth: number, n: number): number {
  const book = new KrakenBook(depth);
  const bids: Level[] = Array.from({ length: depth }, (_, i) => [Number((50_000 - i * 0.2).toFixed(1)), 0.1 + (i % 7) * 0.12345678]);
  const asks: Level[] = Array.from({ length: depth }, (_, i) => [Number((50_000.1 + i * 0.2).toFixed(1)), 0.1 + (i % 5) * 0.2345678]);
  book.snapshot(bids, asks);
  let x = 12345;
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    // a change near the top (where most book traffic is): a new size, a removal, or a new level between two
    x = (x * 1103515245 + 12345) % 2147483648;
    const at = Math.floor((x / 2147483648) * Math.min(depth, 50)) * 0.1;
    const side = x % 2 === 0;
    const p = Number((side ? 50_000 - at : 50_000.1 + at).toFixed(1));
    const q = x % 5 === 0 ? 0 : Number((0.001 + (x % 1000) / 100).toFixed(8));
    if (side) book.update([[p, q]], []);
    else book.update([], [[p, q]]);
    book.checksum(PRECISION);
  }
  return Number(process.hrtime.bigint() - start) / 1e3 / n;
}

console.log(
  `load average (1, 5, 15 min): ${loadavg()
    .map((l) => l.toFixed(2))
    .join(', ')}; ${N} messages per depth`,
);
for (const depth of [10, 25, 100, 1000]) {
  run(depth, Math.min(N, 10_000)); // warm up
  const us = Math.min(run(depth, N), run(depth, N));
  console.log(
    `depth ${String(depth).padStart(4)}: ${us.toFixed(2)} us per update + checksum (${Math.round(1e6 / us).toLocaleString('en')} messages/s per core)`,
  );
}
