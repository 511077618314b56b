/**
 * What the Redis bar store's writes cost Redis: `rounds` flushes, each writing the bar that has
 * just closed on each of `channels` channels (a minute's close across a feed's symbols), through
 * `RedisBarStore` against its own redis-server on a loopback port (test/helpers/servers.ts; needs
 * redis-server on PATH). Prints, per bar write, the bytes Redis received (`total_net_input_bytes`),
 * Redis's CPU (`used_cpu_user` + `used_cpu_sys`) and the wall time of a flush, with and without
 * kept versions (`keepRevisionsMs`), and the box's load average.
 *
 *   node --import tsx bench/redis-bar-writes.ts [channels=2500] [rounds=200]
 */
import { loadavg } from 'node:os';
import { RedisBarStore } from '../src/history/redis-bar-store.js';
import { startRedis } from '../test/helpers/servers.js';

const CHANNELS = Number(process.argv[2] ?? 2500);
const ROUNDS = Number(process.argv[3] ?? 200);
const T0 = Date.UTC(2026, 11, 1, 15);

function field(info: string, name: string): number {
  const m = new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info);
  if (!m) throw new Error(`INFO has no ${name}`);
  return Number(m[1]);
}

const server = await startRedis(); // its own redis-server on a loopback port, no persistence
const rows: string[] = [];
try {
  for (const keep of [0, 900_000]) {
    const clock = { now: T0 };
    const store = new RedisBarStore({
      url: server.url,
      windowBars: 1000,
      keepRevisionsMs: keep,
      keyPrefix: `k${keep}:`,
      flushMs: 1_000_000,
      now: () => clock.now,
    });
    for (let i = 0; i < 200 && !(await store.waitReady(100)); i++);
    const channels = Array.from({ length: CHANNELS }, (_, i) => `bar.1m:S${i}`);
    const round = async (r: number): Promise<void> => {
      clock.now += 60_000;
      const t = T0 + r * 60_000;
      for (const ch of channels) store.put(ch, { t, iv: 60_000, closed: true, o: 100, h: 100 + (r % 7) / 100, l: 99.5, c: 100 + (r % 5) / 100, v: 10 * r + 1 });
      await store.flush();
    };
    for (let r = 0; r < 20; r++) await round(r); // warm-up: connection, JIT, keys
    const before = await store.redis.info();
    const started = performance.now();
    for (let r = 20; r < 20 + ROUNDS; r++) await round(r);
    const wall = performance.now() - started;
    const after = await store.redis.info();
    const writes = CHANNELS * ROUNDS;
    const bytes = field(after, 'total_net_input_bytes') - field(before, 'total_net_input_bytes');
    const cpu = field(after, 'used_cpu_user') + field(after, 'used_cpu_sys') - field(before, 'used_cpu_user') - field(before, 'used_cpu_sys');
    rows.push(
      `| ${keep / 1000} s | ${writes.toLocaleString('en-US')} | ${(bytes / writes).toFixed(0)} | ${((cpu * 1e6) / writes).toFixed(2)} | ${((wall * 1000) / writes).toFixed(2)} |`,
    );
    await store.close();
  }
} finally {
  await server.destroy();
}
console.log(
  `redis bar writes: ${CHANNELS} channels x ${ROUNDS} flushes, load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
console.log('| versions kept for | bar writes | bytes to Redis per write | Redis CPU µs per write | flush wall µs per write |');
console.log('|---|---:|---:|---:|---:|');
for (const r of rows) console.log(r);
