/**
 * What keeping replaced bar versions for delayed reads costs (docs/protocol.md "Bar history",
 * delayed access): a simulated trading day, on a virtual clock, of `symbols` symbols each closing
 * a 1m bar every minute, and `corrections` per second across them, each revising the closed 1m and
 * 5m bars of one of the symbol's last 10 minutes (a correction, a cancel or a late trade). The
 * store keeps a replaced version for `keep` ms (the longest `auth.delayMs`, 15 minutes by
 * default). Prints, for the memory and the Redis store, the versions held at the end of the day,
 * the memory they take (heap for memory; Redis `used_memory` against a run that keeps none),
 * and the keys. Starts its own redis-server on a loopback port (needs redis-server on PATH).
 *
 *   node --expose-gc --import tsx bench/bar-revisions.ts [symbols=200] [corrections=5] [keep=900000]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BarStore, StoredBar } from '../src/history/bar-store.js';
import { MemoryBarStore } from '../src/history/bar-store.js';
import { RedisBarStore } from '../src/history/redis-bar-store.js';

const SYMBOLS = Number(process.argv[2] ?? 200);
const CORRECTIONS = Number(process.argv[3] ?? 5);
const KEEP = Number(process.argv[4] ?? 900_000);
const DAY_S = 86_400;
const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 1);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
const gc = (): void => {
  globalThis.gc?.();
  globalThis.gc?.();
};
const heap = (): number => process.memoryUsage().heapUsed;

const bar = (t: number, iv: number, c: number, corrected = false): StoredBar => ({
  t,
  iv,
  o: c,
  h: c + 0.5,
  l: c - 0.5,
  c,
  v: 1234.5,
  n: 42,
  closed: true,
  ...(corrected ? { corrected: true as const } : {}),
});

/** A day on the virtual clock `clock.now`; `tick` runs after each simulated second. */
async function day(store: BarStore, clock: { now: number }, tick: (s: number) => Promise<void>): Promise<number> {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let revised = 0;
  for (let s = 0; s < DAY_S; s++) {
    clock.now = T0 + s * 1000;
    if (s % 60 === 0 && s > 0) {
      for (let i = 0; i < SYMBOLS; i++) {
        store.put(`bar.1m:S${i}`, bar(clock.now - MIN, MIN, 100 + i));
        if (s % 300 === 0) store.put(`bar.5m:S${i}`, bar(clock.now - 5 * MIN, 5 * MIN, 100 + i));
      }
    }
    for (let k = 0; k < CORRECTIONS && s >= 600; k++) {
      const i = Math.floor(rnd() * SYMBOLS);
      const t = Math.floor((clock.now - (1 + Math.floor(rnd() * 10)) * MIN) / MIN) * MIN;
      store.put(`bar.1m:S${i}`, bar(t, MIN, 99 + rnd(), true));
      store.put(`bar.5m:S${i}`, bar(Math.floor((t - 5 * MIN) / (5 * MIN)) * 5 * MIN, 5 * MIN, 99 + rnd(), true));
      revised += 2;
    }
    await tick(s);
  }
  return revised;
}

const rows: string[] = [];
// memory
for (const keep of [0, KEEP]) {
  const clock = { now: T0 };
  gc();
  const before = heap();
  const store = new MemoryBarStore({ windowBars: 1000, keepRevisionsMs: keep, now: () => clock.now });
  const revised = await day(store, clock, async () => undefined);
  gc();
  const held = heap() - before;
  const { bars, revisions } = store.size();
  rows.push(`| memory | ${keep / 1000} s | ${revised} | ${bars} | ${revisions} | ${(held / 2 ** 20).toFixed(1)} MiB | — |`);
  await store.close();
}
// redis
const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-redis-'));
const server = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
try {
  for (const keep of [0, KEEP]) {
    const clock = { now: T0 };
    const store = new RedisBarStore({
      url: `redis://127.0.0.1:${port}`,
      windowBars: 1000,
      keepRevisionsMs: keep,
      keyPrefix: `k${keep}:`,
      flushMs: 1_000_000,
      now: () => clock.now,
    });
    for (let i = 0; i < 200 && !(await store.waitReady(100)); i++);
    await store.redis.flushall();
    const revised = await day(store, clock, async (s) => {
      if (s % 10 === 9) await store.flush();
    });
    await store.flush();
    const info = await store.redis.info('memory');
    const usedMemory = Number(/used_memory:(\d+)/.exec(info)![1]);
    const keys = await store.redis.dbsize();
    let revisions = 0;
    for (const key of await store.redis.keys(`k${keep}:rev:*`)) revisions += await store.redis.zcard(key);
    const revKeys = (await store.redis.keys(`k${keep}:rev:*`)).length;
    rows.push(
      `| redis | ${keep / 1000} s | ${revised} | — | ${revisions} | ${(usedMemory / 2 ** 20).toFixed(1)} MiB used_memory | ${keys} (${revKeys} of revisions) |`,
    );
    await store.close();
  }
} finally {
  server.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
console.log(
  `${SYMBOLS} symbols, ${CORRECTIONS} corrections/s (each revising a 1m and a 5m bar), one day; load ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ')}`,
);
console.log('| store | revisions kept for | bar versions replaced in the day | bars held | versions held at the end | memory | keys |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(r);
