/**
 * What the Redis last-value store of a feed process costs for holding the latest value of every
 * channel it publishes (written again after each reconnection, docs/operations.md "Last values in
 * Redis"): memory per key held, and how long the rewrite of every key takes after a reconnection.
 * Values are real bus payloads (encodeTick of a status tick), written at different times as a
 * live feed writes them, so each was packed into the encoder's shared buffer among others.
 * Starts its own redis-server on a loopback port (needs redis-server on PATH).
 *
 *   node --expose-gc --import tsx bench/store-held-values.ts [keys=100000]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeTick } from '../src/codec/tick-codec.js';
import { RedisLastValueStore } from '../src/store/redis-last-value-store.js';

const KEYS = Number(process.argv[2] ?? 100_000);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const gc = (): void => {
  globalThis.gc?.();
  globalThis.gc?.();
};
const used = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'tw-bench-redis-'));
const redis = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
try {
  const store = new RedisLastValueStore({ url: `redis://127.0.0.1:${port}`, keyPrefix: 'bench:', flushMs: 50 });
  await until(() => store.waitReady(1000), 'redis');
  gc();
  const before = used();
  // between two flushes, other ticks fill the encoder's buffer: most of a held value's buffer is other payloads
  for (let i = 0; i < KEYS; i++) {
    const tick = { k: 'status', sym: `S${i}`, src: 'bench', seq: 1, ep: 1, ts: 1n, rt: 1n, status: 'trading' } as const;
    store.put(`status:S${i}`, encodeTick(tick as never));
    for (let j = 0; j < 20; j++) encodeTick({ ...tick, seq: j } as never); // the ticks of other channels
    if (i % 1000 === 999) await store.flush();
  }
  await store.flush();
  gc();
  const held = used() - before;

  // a reconnection: every key is written again
  const written = store.stats.written;
  const t0 = process.hrtime.bigint();
  store.redis.disconnect(true);
  await until(() => store.stats.written >= written + KEYS, 'the rewrite');
  const rewriteMs = Number(process.hrtime.bigint() - t0) / 1e6;
  await store.close();

  const load = loadavg().map((x) => x.toFixed(2));
  console.log('| keys held | memory held (heap + array buffers) | per key | rewrite after a reconnection (reconnect included) | load (1/5/15 min) |');
  console.log('|---|---|---|---|---|');
  console.log(`| ${KEYS} | ${(held / 2 ** 20).toFixed(1)} MiB | ${Math.round(held / KEYS)} B | ${rewriteMs.toFixed(0)} ms | ${load.join(' / ')} |`);
} finally {
  redis.kill('SIGTERM');
  await new Promise((r) => redis.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
