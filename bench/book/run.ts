/**
 * Order book benchmark (issue #15): clients x books of symbols at a book update rate, through a
 * real gateway, next to the same load on quotes. Prints per scenario: delivered items/s, gateway
 * CPU per delivered update (the process's CPU with clients, less its CPU with the same input and
 * no clients, which is the generator, publisher and bus), the merged-update ratio (book updates
 * into the gateway's book channels per update sent to a (channel, tier)), memory per book, and
 * the machine load (uptime) next to the figures.
 *
 *   npm run bench:book                 1,000 clients x 5 books of 50 symbols, 20,000 updates/s, 100 ms
 *   npm run bench:book -- --quick      200 clients, 5,000 updates/s
 *   options: --clients N --per-client K --symbols M --rate R --throttle MS --depth D --seconds S
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { OrderBook } from '../../src/book/order-book.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    clients: { type: 'string' },
    'per-client': { type: 'string' },
    symbols: { type: 'string' },
    rate: { type: 'string' },
    throttle: { type: 'string' },
    depth: { type: 'string' },
    seconds: { type: 'string' },
  },
});
const quick = values.quick!;
const cfg = {
  clients: Number(values.clients ?? (quick ? 200 : 1000)),
  perClient: Number(values['per-client'] ?? 5),
  symbols: Number(values.symbols ?? 50),
  rate: Number(values.rate ?? (quick ? 5000 : 20_000)),
  throttle: Number(values.throttle ?? 100),
  depth: Number(values.depth ?? 10),
  seconds: Number(values.seconds ?? (quick ? 6 : 10)),
};

const dir = mkdtempSync(join(tmpdir(), 'tw-bench-book-'));
const instruments = join(dir, 'instruments.json');
writeFileSync(
  instruments,
  JSON.stringify(
    Array.from({ length: cfg.symbols }, (_, i) => ({ symbol: `C${String(i).padStart(2, '0')}-USD`, assetClass: 'crypto', currency: 'USD', pricePrecision: 2 })),
  ),
);

const here = new URL('.', import.meta.url).pathname;
const spawn = (file: string, args: string[]): ChildProcess =>
  fork(join(here, file), args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
const next = <T>(p: ChildProcess, type: string): Promise<T> =>
  new Promise((resolve) => {
    const h = (m: { type: string }): void => {
      if (m.type !== type) return;
      p.off('message', h);
      resolve(m as T);
    };
    p.on('message', h);
  });
const ask = <T>(p: ChildProcess, type: string): Promise<T> => {
  const r = next<T>(p, type);
  p.send({ type });
  return r;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(', ');

interface Sample {
  cpuUs: number;
  wallMs: number;
  hub: { updatesIn: number; updatesOut: number; framesOut: number; bytesOut: number };
  published: number;
  rss: number;
  heap: number;
}
interface Result {
  kind: string;
  inputPerSec: number;
  itemsPerSec: number;
  cpuPct: number;
  basePct: number;
  usPerItem: number;
  merged: number;
  inPerSec: number;
  rssMb: number;
  load: string;
}

async function scenario(kind: 'book' | 'quote'): Promise<Result> {
  const server = spawn('server.ts', [kind, String(cfg.symbols), String(cfg.rate), instruments]);
  const { port } = await next<{ port: number }>(server, 'ready');
  await sleep(1500);
  await ask<Sample>(server, 'sample');
  await sleep(cfg.seconds * 500);
  const base = await ask<Sample>(server, 'sample'); // generator + publisher + bus, no subscribers
  const client = spawn('load.ts', [
    String(port),
    kind,
    String(cfg.clients),
    String(cfg.perClient),
    String(cfg.symbols),
    String(cfg.throttle),
    String(cfg.depth),
  ]);
  await next(client, 'ready');
  await sleep(2000);
  const s0 = await ask<Sample>(server, 'sample');
  const c0 = await ask<{ items: number }>(client, 'count');
  await sleep(cfg.seconds * 1000);
  const s1 = await ask<Sample>(server, 'sample');
  const c1 = await ask<{ items: number }>(client, 'count');
  const l = load();
  client.send({ type: 'stop' });
  server.send({ type: 'stop' });
  await Promise.all([new Promise((r) => client.once('exit', r)), new Promise((r) => server.once('exit', r))]);
  const secs = s1.wallMs / 1000;
  const items = c1.items - c0.items;
  const basePct = (base.cpuUs / 1000 / base.wallMs) * 100;
  const cpuPct = (s1.cpuUs / 1000 / s1.wallMs) * 100;
  const gatewayUs = s1.cpuUs - (base.cpuUs / base.wallMs) * s1.wallMs;
  void s0;
  return {
    kind,
    inputPerSec: (s1.published - s0.published) / secs,
    itemsPerSec: items / secs,
    cpuPct,
    basePct,
    usPerItem: gatewayUs / Math.max(1, items),
    merged: (s1.hub.updatesIn - s0.hub.updatesIn) / Math.max(1, s1.hub.updatesOut - s0.hub.updatesOut),
    inPerSec: (s1.hub.updatesIn - s0.hub.updatesIn) / secs,
    rssMb: s1.rss / 1048576,
    load: l,
  };
}

/** Heap per book: many books of L levels a side, measured with gc. */
function bookMemory(levels: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return NaN;
  const n = 500;
  gc();
  const before = process.memoryUsage().heapUsed;
  const books: OrderBook[] = [];
  for (let b = 0; b < n; b++) {
    const ob = new OrderBook(levels);
    for (let i = 1; i <= levels; i++) ob.apply([[100 - i * 0.01 - b * 1e-6, i]], [[100 + i * 0.01 + b * 1e-6, i]]);
    books.push(ob);
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  return books.length > 0 ? (after - before) / n : 0;
}

console.log(
  `tickwire book benchmark${quick ? ' (--quick)' : ''}: ${cfg.clients} clients x ${cfg.perClient} channels of ${cfg.symbols} symbols, ${cfg.rate} updates/s, throttle ${cfg.throttle} ms, depth ${cfg.depth}, ${cfg.seconds} s measured`,
);
console.log(`load before (uptime): ${load()}`);
const results: Result[] = [];
for (const kind of ['quote', 'book'] as const) results.push(await scenario(kind));
console.log('');
console.log(
  '| scenario | input updates/s (achieved) | delivered items/s | gateway CPU per delivered update | process CPU (with clients / input only) | updates in per emitted (merged ratio) | RSS | load (uptime) |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.kind} | ${Math.round(r.inputPerSec).toLocaleString('en-US')} | ${Math.round(r.itemsPerSec).toLocaleString('en-US')} | ${r.usPerItem.toFixed(2)} µs | ${r.cpuPct.toFixed(0)} % / ${r.basePct.toFixed(0)} % | ${r.merged.toFixed(2)} | ${r.rssMb.toFixed(0)} MB | ${r.load} |`,
  );
}
console.log('');
for (const levels of [50, 1000]) console.log(`memory per book, ${levels} levels a side: ${(bookMemory(levels) / 1024).toFixed(1)} KiB`);
console.log(`load after (uptime): ${load()}`);
