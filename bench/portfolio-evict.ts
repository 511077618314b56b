/**
 * Memory of the portfolio service as users come and go (docs/private-streams.md, "Portfolio",
 * idle books): waves of new users each record a few executions and leave. With eviction
 * (`portfolio.idleMs`, here short) the books held, and the heap, stay at about one wave; without
 * it (idleMs longer than the run) they grow with every user ever seen. Positions go to a real
 * redis-server (started on a loopback port, needs redis-server on PATH); the execution log is a
 * pass-through that keeps nothing, so the figures are the portfolio service's own.
 *
 *   node --expose-gc --import tsx bench/portfolio-evict.ts [waves=8] [usersPerWave=10000]
 */
import { loadavg } from 'node:os';
import { MemoryBus } from '../src/bus/memory-bus.js';
import { defaultRegistry } from '../src/core/instruments.js';
import { Listeners } from '../src/executions/event-log.js';
import type { AppendResult, EventListener, EventLog, StoredEvent } from '../src/executions/event-log.js';
import type { ExecutionPayload } from '../src/executions/schemas.js';
import { PortfolioService } from '../src/portfolio/portfolio-service.js';
import { RedisPositionStore } from '../src/portfolio/position-store.js';
import { startRedis } from '../test/helpers/servers.js';
import { waitFor } from '../test/helpers/wait.js';

const WAVES = Number(process.argv[2] ?? 8);
const PER_WAVE = Number(process.argv[3] ?? 10_000);
const EXECUTIONS_PER_USER = 3;
const SYMBOLS = ['AAPL', 'MSFT', 'BTC-USD'];

/** Numbers each user's executions 1, 2, 3, ... and hands them to the follower; stores nothing. */
class PassThroughLog implements EventLog {
  readonly kind = 'memory' as const;
  readonly ready = true;
  readonly #seq = new Map<string, number>();
  readonly #listeners = new Listeners();
  async append(user: string, d: ExecutionPayload): Promise<AppendResult> {
    const seq = (this.#seq.get(user) ?? 0) + 1;
    this.#seq.set(user, seq);
    this.#listeners.emit(user, { seq, d });
    return { seq, duplicate: false };
  }
  forget(user: string): void {
    this.#seq.delete(user);
  }
  async read(): Promise<StoredEvent[]> {
    return [];
  }
  async tail(): Promise<StoredEvent[]> {
    return [];
  }
  async head(user: string): Promise<number> {
    return this.#seq.get(user) ?? 0;
  }
  follow(listener: EventListener) {
    return this.#listeners.add(listener);
  }
  async close(): Promise<void> {}
}

/** the helpers' waitFor, with this bench's longer default timeout */
const until = (cond: () => boolean | Promise<boolean>, what: string, timeout = 120_000): Promise<unknown> => waitFor(cond, { what, timeout, interval: 20 });

const heapMiB = (): number => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

interface Row {
  wave: number;
  seen: number;
  held: number;
  heap: number;
}

async function run(url: string, label: string, idleMs: number): Promise<Row[]> {
  const store = new RedisPositionStore(url, `bench:${label}:`);
  await until(() => store.ready, 'redis');
  const events = new PassThroughLog();
  const config = { baseCurrency: 'USD', publishMs: 250, requestTimeoutMs: 1000, redisKeyPrefix: '', idleMs };
  const svc = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
  await svc.start();
  const base = heapMiB();
  const rows: Row[] = [];
  let n = 0;
  for (let w = 0; w < WAVES; w++) {
    for (let u = 0; u < PER_WAVE; u++) {
      const user = `w${w}-u${u}`;
      for (let e = 0; e < EXECUTIONS_PER_USER; e++) {
        const sym = SYMBOLS[(u + e) % SYMBOLS.length]!;
        await events.append(user, { id: `x${++n}`, order: 'o', sym, side: 'buy', qty: 1 + e, p: 100 + e, t: Date.now() } as ExecutionPayload);
      }
      events.forget(user); // the user leaves (the bench's log keeps nothing either)
    }
    await svc.settled();
    await until(() => svc.unsavedUsers === 0, 'the books saved');
    // the wave leaves: its users idle past idleMs (eviction runs every idleMs / 4)
    if (idleMs < 60_000) await until(() => svc.heldBooks === 0, 'the idle books evicted');
    rows.push({ wave: w + 1, seen: (w + 1) * PER_WAVE, held: svc.heldBooks, heap: heapMiB() - base });
  }
  await svc.close();
  await store.close();
  return rows;
}

const redis = await startRedis();
try {
  const url = redis.url;
  const evicting = await run(url, 'evict', 400);
  const keeping = await run(url, 'keep', 86_400_000);
  const load = loadavg().map((x) => x.toFixed(2));
  console.log(
    `portfolio service memory, ${WAVES} waves of ${PER_WAVE} users (${EXECUTIONS_PER_USER} executions each, then idle); load (1/5/15 min) ${load.join(' / ')}`,
  );
  console.log('| wave | users seen | books held once idle, idleMs 400 | heap growth | books held, no eviction | heap growth |');
  console.log('|---|---|---|---|---|---|');
  for (let i = 0; i < evicting.length; i++) {
    const a = evicting[i]!;
    const b = keeping[i]!;
    console.log(`| ${a.wave} | ${a.seen} | ${a.held} | ${a.heap.toFixed(1)} MiB | ${b.held} | ${b.heap.toFixed(1)} MiB |`);
  }
} finally {
  await redis.destroy();
}
