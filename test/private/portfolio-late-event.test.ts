import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { StoredEvent } from '../../src/executions/event-log.js';
import { RedisEventLog } from '../../src/executions/redis-event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import { redisForFile } from '../helpers/redis-file.js';
import { waitFor } from '../helpers/wait.js';

/**
 * An execution announced after a later one of the same user. The Redis execution log (embedded
 * with REDIS_URL) announces an append once it is confirmed; an append whose reply was lost (Redis
 * stalled past `redis.commandTimeoutMs`, or replicas short of `redis.ackReplicas`) was stored
 * all the same and is announced only when the order system retries it, after the user's next
 * executions. Before the fix the portfolio service took the later `seq` as applied up to it and
 * skipped the late one as already applied: a fill in the log, acknowledged to the order system,
 * never in the positions (11 held instead of 16).
 */
const file = redisForFile();
const cleanup = file.cleanup;

const T0 = Date.now();
const buy = (id: string, qty: number): ExecutionPayload => ({ id, order: 'o-1', sym: 'AAPL', side: 'buy', qty, p: 100, t: T0 });
const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };

/** Redis busy with another client's script for `ms` (as a fork or a slow command stalls it). */
async function stall(admin: Redis, ms: number): Promise<void> {
  const lua = `local s = redis.call('TIME') while true do local n = redis.call('TIME') if (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > tonumber(ARGV[1]) then break end end return 1`;
  await admin.eval(lua, 0, String(ms * 1000));
}

describe('portfolio: an execution announced after a later one', () => {
  it('is applied, not skipped (Redis log, a reply lost to a stalled Redis, then the retry)', async () => {
    const log = new RedisEventLog({ url: file.server.url, keyPrefix: 'late:exec:', maxPerUser: 1000, retentionMs: 3_600_000, commandTimeoutMs: 150 });
    cleanup.push(() => log.close());
    const admin = new Redis(file.server.url);
    cleanup.push(() => admin.quit());
    const seen: number[] = [];
    log.follow((_u, ev: StoredEvent) => seen.push(ev.seq));
    const svc = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store: new MemoryPositionStore(), events: log, config });
    await svc.start();
    cleanup.push(() => svc.close());
    await waitFor(() => log.ready, { what: 'the execution log connected', timeout: 10_000 });

    expect(await log.append('amy', buy('ex-1', 10))).toEqual({ seq: 1, duplicate: false });
    await svc.settled();

    // Redis stalls longer than the command timeout while ex-2 is sent: the append fails, the
    // order system is told to retry, but Redis runs the script once it is free: ex-2 is seq 2
    await admin.ping(); // connected: the stalling script is sent at once
    const stalled = stall(admin, 600);
    // (a short head start for the script to reach Redis before ex-2: Redis cannot be asked while it runs)
    await new Promise((r) => setTimeout(r, 50));
    await expect(log.append('amy', buy('ex-2', 5))).rejects.toThrow();
    await stalled;
    await waitFor(async () => (await admin.zscore('late:exec:amy:ids', 'ex-2')) === '2', { what: 'ex-2 stored as seq 2', timeout: 5000 });

    // the next execution comes first, then the retry of ex-2 (a duplicate, announced now)
    await waitFor(() => log.ready, { what: 'the log reconnected', timeout: 10_000 });
    expect(await log.append('amy', buy('ex-3', 1))).toEqual({ seq: 3, duplicate: false });
    expect(await log.append('amy', buy('ex-2', 5))).toEqual({ seq: 2, duplicate: true });
    expect(seen).toEqual([1, 3, 2]);
    await svc.settled();

    expect(await svc.getPositions('amy')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 16, cost: 1600 }] });
  }, 30_000);
});
