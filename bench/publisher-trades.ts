/**
 * Ingest cost per trade: trades through TickPublisher (derived ticker, 1s and 1m bars, and the
 * per-symbol trade log that corrections and cancels need) on an in-process bus with no
 * subscribers. Prints trades/s and the trade log's heap cost at its bound.
 *
 *   npx tsx bench/publisher-trades.ts [trades=300000] [symbols=10]
 */
import { loadavg } from 'node:os';
import { MemoryBus } from '../src/bus/memory-bus.js';
import { defaultRegistry } from '../src/core/instruments.js';
import { TickPublisher } from '../src/ingest/tick-publisher.js';

const N = Number(process.argv[2] ?? 300_000);
const SYMS = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'AMZN', 'GOOGL', 'META', 'SPY', 'QQQ', 'BRK.B'].slice(0, Number(process.argv[3] ?? 10));
const T0 = Date.UTC(2026, 10, 20, 14, 30, 0);

function run(n: number): number {
  const pub = new TickPublisher({ bus: new MemoryBus(), registry: defaultRegistry(), barSweepMs: 0 });
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const ms = T0 + Math.floor(i / 20); // 20 trades per ms across the symbols
    pub.publish('bench', { k: 'trade', sym: SYMS[i % SYMS.length]!, id: String(i), p: 100 + (i % 50) / 100, s: 1 + (i % 7), ts: BigInt(ms) * 1_000_000n });
  }
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  pub.close();
  return n / s;
}

run(20_000); // warm up
const rates = [run(N), run(N), run(N)];
globalThis.gc?.();
const before = process.memoryUsage().heapUsed;
const pub = new TickPublisher({ bus: new MemoryBus(), registry: defaultRegistry(), barSweepMs: 0 });
for (let i = 0; i < 20_000 * SYMS.length; i++) {
  pub.publish('bench', { k: 'trade', sym: SYMS[i % SYMS.length]!, id: String(i), p: 100, s: 1, ts: BigInt(T0 + Math.floor(i / 20)) * 1_000_000n });
}
globalThis.gc?.();
const heap = process.memoryUsage().heapUsed - before;
pub.close(); // keeps the publisher (and its logs) alive until here
console.log(`| trades | symbols | trades/s (3 runs) | heap with full trade logs (20,000 x ${SYMS.length}) | load (1/5/15 min) |`);
console.log('|---|---|---|---|---|');
console.log(
  `| ${N} | ${SYMS.length} | ${rates.map((r) => Math.round(r).toLocaleString('en-US')).join(' / ')} | ${(heap / 1024 / 1024).toFixed(1)} MiB | ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ')} |`,
);
