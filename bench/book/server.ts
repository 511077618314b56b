/**
 * Bench server process: a tickwire engine (gateway, embedded bus, memory store, no feeds) plus a
 * generator that publishes book updates (or quotes) for N symbols at R per second through the
 * engine's own TickPublisher path, as a feed would. Talks to run.ts over IPC:
 *   -> {type:'ready', port}
 *   <- {type:'sample'}  -> {type:'sample', cpuUs, wallMs, hub, books, rss, heap}
 *   <- {type:'stop'}
 */
import { startEngine } from '../../src/app/engine.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { nowNs } from '../../src/core/time.js';

const [kind, symbolsArg, rateArg, instrumentsFile] = process.argv.slice(2) as ['book' | 'quote', string, string, string];
const nSymbols = Number(symbolsArg);
const rate = Number(rateArg);

const engine = await startEngine(
  {
    host: '127.0.0.1',
    port: 0,
    feeds: [],
    log: { level: 'silent' },
    instrumentsFile,
    ops: { statsLogSec: 0 },
    limits: { connectionsPerIpPerSec: 0 },
    gateway: { maxConnections: 20_000 },
  },
  { env: {} },
);
const publisher = new TickPublisher({
  bus: engine.bus,
  registry: engine.registry,
  barSweepMs: 0,
  books: engine.config.book,
  ...(engine.store ? { lastValues: engine.store } : {}),
});
const syms = Array.from({ length: nSymbols }, (_, i) => `C${String(i).padStart(2, '0')}-USD`);

// a deterministic market per symbol: 50 levels a side around 100, 1-3 level changes per update
let seed = 12345;
const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
const mids = syms.map(() => 100);
for (const sym of syms) {
  const bids: [number, number][] = [];
  const asks: [number, number][] = [];
  for (let i = 1; i <= 50; i++) {
    bids.push([Math.round((100 - i * 0.01) * 100) / 100, 1 + i]);
    asks.push([Math.round((100 + i * 0.01) * 100) / 100, 1 + i]);
  }
  if (kind === 'book') publisher.publish('bench', { k: 'book', sym, reset: true, bids, asks, ts: nowNs() });
}
publisher.books.flush();

function next(i: number): void {
  const sym = syms[i]!;
  const ts = nowNs();
  if (kind === 'quote') {
    mids[i]! += (rnd() - 0.5) * 0.02;
    const m = Math.round(mids[i]! * 100) / 100;
    publisher.publish('bench', { k: 'quote', sym, bp: m - 0.01, ap: m + 0.01, bs: 1 + Math.floor(rnd() * 9), as: 1 + Math.floor(rnd() * 9), ts });
    return;
  }
  const n = 1 + Math.floor(rnd() * 3);
  const bids: [number, number][] = [];
  const asks: [number, number][] = [];
  for (let k = 0; k < n; k++) {
    const bid = rnd() < 0.5;
    const off = 1 + Math.floor(rnd() * (rnd() < 0.7 ? 12 : 50)); // most changes near the touch
    const px = Math.round((bid ? 100 - off * 0.01 : 100 + off * 0.01) * 100) / 100;
    const size = rnd() < 0.15 ? 0 : Math.round(rnd() * 500) / 10;
    (bid ? bids : asks).push([px, size]);
  }
  publisher.publish('bench', { k: 'book', sym, bids, asks, ts });
}

// paced against the clock in 5 ms steps
const started = performance.now();
let sent = 0;
let i = 0;
const timer = setInterval(() => {
  const due = Math.floor(((performance.now() - started) / 1000) * rate);
  if (due - sent > rate) sent = due - rate; // never catch up more than a second
  while (sent < due) {
    sent++;
    next(i);
    i = (i + 1) % syms.length;
  }
}, 5);

let lastCpu = process.cpuUsage();
let lastWall = performance.now();
process.on('message', (m: { type: string }) => {
  if (m.type === 'sample') {
    const cpu = process.cpuUsage();
    const now = performance.now();
    const hub = engine.gateway!.hub.stats;
    const mem = process.memoryUsage();
    process.send!({
      type: 'sample',
      cpuUs: cpu.user - lastCpu.user + cpu.system - lastCpu.system,
      wallMs: now - lastWall,
      hub: { updatesIn: hub.updatesIn, updatesOut: hub.updatesOut, framesOut: hub.framesOut, bytesOut: hub.bytesOut },
      published: sent,
      rss: mem.rss,
      heap: mem.heapUsed,
    });
    lastCpu = cpu;
    lastWall = now;
  } else if (m.type === 'stop') {
    clearInterval(timer);
    publisher.close();
    void engine.close().then(() => process.exit(0));
  }
});
process.send!({ type: 'ready', port: engine.port });
