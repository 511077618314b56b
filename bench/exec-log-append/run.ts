/**
 * What an append to the Redis execution log (embedded mode with REDIS_URL) costs.
 *
 *   node --import tsx bench/exec-log-append/run.ts [--appends 20000] [--concurrency 32] [--users 100]
 *
 * Starts redis-server on loopback (test/helpers/servers.ts, no persistence) and appends
 * `--appends` executions spread over `--users` users: once one at a time (latency of one
 * round trip plus the script) and once with `--concurrency` appends in flight (throughput).
 * Prints appends per second and the mean/p99 latency, with the machine load before and after.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { RedisEventLog } from '../../src/executions/redis-event-log.js';
import { startRedis } from '../../test/helpers/servers.js';
import { waitFor } from '../../test/helpers/wait.js';

const { values } = parseArgs({
  options: { appends: { type: 'string', default: '20000' }, concurrency: { type: 'string', default: '32' }, users: { type: 'string', default: '100' } },
});
const appends = Number(values.appends);
const concurrency = Number(values.concurrency);
const users = Number(values.users);
const load = (): string =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

console.log(`load before: ${load()}`);
const redis = await startRedis();
try {
  for (const [label, inFlight] of [
    ['sequential', 1],
    [`${concurrency} in flight`, concurrency],
  ] as const) {
    const log = new RedisEventLog({ url: redis.url, keyPrefix: `bench:${inFlight}:`, maxPerUser: 10_000, retentionMs: 3_600_000 });
    await waitFor(() => log.ready, { what: 'the log connected', timeout: 10_000 });
    const lat: number[] = [];
    let next = 0;
    const t0 = performance.now();
    const worker = async (): Promise<void> => {
      while (next < appends) {
        const i = next++;
        const s = performance.now();
        await log.append(`u${i % users}`, { id: `x-${i}`, order: `o-${i}`, sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: 1_700_000_000_000 + i });
        lat.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: inFlight }, worker));
    const ms = performance.now() - t0;
    lat.sort((a, b) => a - b);
    const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
    console.log(
      `${label}: ${appends} appends in ${ms.toFixed(0)} ms = ${Math.round((appends / ms) * 1000)}/s; latency mean ${mean.toFixed(3)} ms, p99 ${lat[Math.floor(lat.length * 0.99)]!.toFixed(3)} ms`,
    );
    await log.close();
  }
} finally {
  await redis.destroy();
}
console.log(`load after: ${load()}`);
