/**
 * Start of the portfolio service with many stored books (docs/private-streams.md, "Portfolio"):
 * how long `start()` takes, then until the first queued work is done, and the heap and books held
 * afterwards. Books are read on first use, so none of it should grow with the books stored.
 * Positions in a real redis-server (started on a loopback port, needs redis-server on PATH).
 *
 *   node --expose-gc --import tsx bench/portfolio-start.ts [books=100000]
 */
import { loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { MemoryBus } from '../src/bus/memory-bus.js';
import { defaultRegistry } from '../src/core/instruments.js';
import { MemoryEventLog } from '../src/executions/event-log.js';
import { PortfolioService } from '../src/portfolio/portfolio-service.js';
import { RedisPositionStore } from '../src/portfolio/position-store.js';
import { startRedis } from '../test/helpers/servers.js';

const BOOKS = Number(process.argv[2] ?? 100_000);

const redis = await startRedis();
try {
  const r = new Redis(redis.url);
  for (let i = 0; i < BOOKS; i += 1000) {
    const fields: Record<string, string> = {};
    for (let j = i; j < Math.min(BOOKS, i + 1000); j++) {
      const positions = {
        AAPL: { qty: 3, cost: 300, dayQty0: 3, dayFlow: 0, realized: 0, day: 0 },
        'BTC-USD': { qty: 1, cost: 60_000, dayQty0: 1, dayFlow: 0, realized: 0, day: 0 },
      };
      fields[`u${j}`] = JSON.stringify({ user: `u${j}`, ccy: 'USD', seq: 3, day: 0, updatedAt: 0, positions });
    }
    await r.hset('bench.pf.books', fields);
  }
  r.disconnect();
  const store = new RedisPositionStore(redis.url, 'bench.pf.');
  const svc = new PortfolioService({
    bus: new MemoryBus(),
    registry: defaultRegistry(),
    store,
    events: new MemoryEventLog({ maxPerUser: 10, retentionMs: 86_400_000 }),
    config: { baseCurrency: 'USD', publishMs: 250, requestTimeoutMs: 1000, redisKeyPrefix: 'bench.pf.' },
  });
  global.gc?.();
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = performance.now();
  await svc.start();
  const t1 = performance.now();
  await svc.settled();
  const t2 = performance.now();
  global.gc?.();
  const heap = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  console.log(
    `books stored ${BOOKS}: start() ${(t1 - t0).toFixed(0)} ms, then settled ${(t2 - t1).toFixed(0)} ms; books held ${svc.heldBooks}, heap +${heap.toFixed(1)} MiB; load ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  await svc.close();
  await store.close();
} finally {
  await redis.destroy();
}
