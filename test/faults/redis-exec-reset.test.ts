import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { decodeLiveExecution, ExecutionRouter } from '../../src/executions/execution-router.js';
import { RedisEventLog } from '../../src/executions/redis-event-log.js';
import type { AppendResult } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { redisForFile } from '../helpers/redis-file.js';
import { startRedis } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The embedded engine's execution log in Redis (REDIS_URL) when Redis loses what it held while
 * tickwire runs: redis-server killed and restarted without persistence (or from a snapshot older
 * than the last executions, or a Sentinel failover with redis.ackReplicas 0 that loses the last
 * writes). The per-user counter then starts again below the sequences already delivered. Before
 * the fix the next execution was stored and acknowledged as seq 1: the gateway's live feed had
 * passed seq 3 and dropped it, a client resuming with `since: 3` got nothing, and the SDK drops an
 * item whose seq it already has: an accepted execution that reached no one.
 */
const file = redisForFile();
const cleanup = file.cleanup;

function execution(i: number): ExecutionPayload {
  return { id: `rs-${i}`, order: `o-${i}`, sym: 'AAPL', side: 'buy', qty: i, p: 100 + i, t: 1_700_000_000_000 + i };
}

/** An order system's retries with the same id until one append is accepted. */
async function appendAccepted(log: RedisEventLog, user: string, e: ExecutionPayload): Promise<AppendResult> {
  let result: AppendResult | undefined;
  let inflight = false;
  return waitFor(
    () => {
      if (result) return result;
      if (!inflight) {
        inflight = true;
        log.append(user, e).then(
          (r) => (result = r),
          () => (inflight = false),
        );
      }
      return undefined;
    },
    { what: `an append of ${e.id} accepted`, timeout: 15_000, interval: 100 },
  );
}

describe('the Redis execution log after Redis lost its data under a running engine', () => {
  it('never numbers an execution at or below one already stored, and the live feed delivers it', async () => {
    const log = new RedisEventLog({ url: file.server.url, keyPrefix: 'reset:exec:', maxPerUser: 1000, retentionMs: 3_600_000 });
    cleanup.push(() => log.close());
    const router = new ExecutionRouter({ log, snapshotEvents: 20, reconcileMs: 0 });
    cleanup.push(() => router.close());
    const live: number[] = [];
    router.subscribe('ann', (bytes) => live.push(decodeLiveExecution(bytes).seq!));
    await waitFor(() => log.ready, { what: 'the execution log connected', timeout: 10_000 });
    for (let i = 1; i <= 3; i++) expect(await log.append('ann', execution(i))).toEqual({ seq: i, duplicate: false });
    await waitFor(() => live.length === 3, { what: 'seq 1 to 3 on the live feed', timeout: 5000 });

    // redis-server SIGTERMed and started again on the same port: no persistence, so it is empty
    await file.server.stop();
    await file.server.start();

    const r = await appendAccepted(log, 'ann', execution(4));
    expect(r.duplicate).toBe(false);
    expect(r.seq).toBeGreaterThan(3);
    await waitFor(() => live.length === 4, { what: 'the execution after the reset on the live feed', timeout: 5000 });
    expect(live).toEqual([1, 2, 3, r.seq]);
    // a client that had seq 3 resumes with since 3 and gets it
    expect((await log.read('ann', 3, 100)).map((e) => e.d.id)).toEqual(['rs-4']);
    expect(await log.head('ann')).toBe(r.seq);
    // the next one continues from there
    expect((await log.append('ann', execution(5))).seq).toBe(r.seq + 1);
  }, 60_000);

  it('counts on from the stream when the counter alone is gone (evicted), in a new process too', async () => {
    const first = new RedisEventLog({ url: file.server.url, keyPrefix: 'evict:exec:', maxPerUser: 1000, retentionMs: 3_600_000 });
    cleanup.push(() => first.close());
    await waitFor(() => first.ready, { what: 'the execution log connected', timeout: 10_000 });
    for (let i = 1; i <= 2; i++) expect((await first.append('bo', execution(i))).seq).toBe(i);
    await first.close();
    // the counter has no TTL, the stream has one: an allkeys-* maxmemory policy may evict the counter alone
    const direct = new Redis(file.server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    cleanup.push(() => direct.disconnect());
    await direct.connect();
    expect(await direct.del('evict:exec:bo:seq')).toBe(1);
    // a restarted engine: nothing remembered in process
    const log = new RedisEventLog({ url: file.server.url, keyPrefix: 'evict:exec:', maxPerUser: 1000, retentionMs: 3_600_000 });
    cleanup.push(() => log.close());
    await waitFor(() => log.ready, { what: 'the execution log connected', timeout: 10_000 });
    expect(await log.append('bo', execution(3))).toEqual({ seq: 3, duplicate: false });
    expect((await log.read('bo', 0, 10)).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(await log.head('bo')).toBe(3);
  }, 30_000);

  it('gives a seq whose replication was not confirmed (redis.ackReplicas) again after it was lost: no hole', async () => {
    const replica = await startRedis();
    cleanup.push(() => replica.destroy());
    const attach = async (): Promise<void> => {
      const r = new Redis(replica.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
      await r.connect();
      await r.replicaof('127.0.0.1', file.server.port);
      await waitFor(async () => /master_link_status:up/.test(await r.info('replication')), { what: 'the replica linked', timeout: 10_000 });
      r.disconnect();
    };
    await attach();
    const log = new RedisEventLog({
      url: file.server.url,
      keyPrefix: 'ack:exec:',
      maxPerUser: 1000,
      retentionMs: 3_600_000,
      ackReplicas: 1,
      ackTimeoutMs: 2000,
    });
    cleanup.push(() => log.close());
    const live: number[] = [];
    cleanup.push(log.follow((_u, ev) => live.push(ev.seq)));
    await waitFor(() => log.ready, { what: 'the execution log connected', timeout: 10_000 });
    for (let i = 1; i <= 3; i++) expect(await log.append('cy', execution(i))).toEqual({ seq: i, duplicate: false });
    // the replica goes away: seq 4 is stored on the primary only, and refused (503 to the caller)
    await replica.stop();
    await expect(log.append('cy', execution(4))).rejects.toThrow(/replicas confirmed/);
    // a failover to a replica that never had it: the primary's state as of seq 3
    const direct = new Redis(file.server.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    cleanup.push(() => direct.disconnect());
    await direct.connect();
    // (rebuilt: XDEL would keep the stream's last id at 4, which a replica that never had it does not)
    const kept = (await direct.xrange('ack:exec:cy:log', '-', '+')).filter(([id]) => id !== '4-0');
    await direct.del('ack:exec:cy:log');
    for (const [id, fields] of kept) await direct.xadd('ack:exec:cy:log', id, ...fields);
    await direct.set('ack:exec:cy:seq', 3);
    await direct.zrem('ack:exec:cy:ids', 'rs-4');
    await replica.start();
    await attach();
    // the order system's retry: seq 4 was never delivered, so it is given again, without a hole
    expect(await appendAccepted(log, 'cy', execution(4))).toEqual({ seq: 4, duplicate: false });
    expect(live).toEqual([1, 2, 3, 4]);
  }, 60_000);
});
