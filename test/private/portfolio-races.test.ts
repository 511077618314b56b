import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { testLog } from '../helpers/nats-client.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { RedisPositionStore } from '../../src/portfolio/position-store.js';
import { JetStreamPutRecords } from '../../src/portfolio/put-records.js';
import { Redis } from 'ioredis';
import { startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Paths on which a book could drift from the log without a word, run against a real nats-server
 * (JetStream log) and redis-server (position store): a PUT racing the user's executions, books
 * evicted and read back while executions and saves are in flight, and a service stopped while its
 * saves are under way and started again. Each ends by comparing every book (in memory, in the
 * store, and as a new service reads it) with the log.
 */
let nats: TestServer & { destroy(): Promise<void> };
let redis: TestServer & { destroy(): Promise<void> };
let nc: NatsConnection;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  nc = await connect({ servers: nats.url });
}, 30_000);

afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
  await nc?.close();
  await Promise.all([nats?.destroy(), redis?.destroy()]);
});

let streams = 0;
let ids = 0;
const buy = (qty = 1, p = 100): ExecutionPayload => ({ id: `r${++ids}`, order: 'o', sym: 'AAPL', side: 'buy', qty, p, t: Date.now() });

/** each log with its PUT records (a stream of their own, as src/app/private.ts opens them) */
const records = new Map<JetStreamEventLog, JetStreamPutRecords>();

async function openLog(): Promise<JetStreamEventLog> {
  const n = ++streams;
  const log = await testLog(nc, `RACE_${n}`, { maxPerUser: 100_000, logPrefix: `race${n}.log.`, inPrefix: `race${n}.in.` });
  cleanup.push(() => log.close());
  records.set(log, await JetStreamPutRecords.open(log.manager, log.client, { stream: `RACE_${n}_PUT`, replicas: 1, prefix: `race${n}.put.` }));
  return log;
}

function service(log: JetStreamEventLog, prefix: string, idleMs?: number): { svc: PortfolioService; store: RedisPositionStore } {
  const store = new RedisPositionStore(redis.url, prefix);
  const svc = new PortfolioService({
    bus: new MemoryBus(),
    registry: defaultRegistry(),
    store,
    events: log,
    puts: records.get(log)!,
    config: { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: prefix, ...(idleMs ? { idleMs } : {}) },
  });
  cleanup.push(() => store.close());
  return { svc, store };
}

describe('portfolio (JetStream log, Redis store): races that must not make a book drift from the log', () => {
  it('a PUT racing the user’s executions: the book is the PUT plus exactly the executions after its seq, in memory, stored and after a restart', async () => {
    const log = await openLog();
    const { svc, store } = service(log, 'race1:');
    await svc.start();
    const appended: number[] = [];
    let put: Promise<{ seq: number }> | undefined;
    for (let i = 0; i < 40; i++) {
      if (i === 20) put = svc.putPositions('pia', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 1000, cost: 50_000 }] });
      appended.push((await log.append('pia', buy())).seq);
    }
    const { seq } = await put!;
    expect(seq).toBeGreaterThanOrEqual(20);
    const after = appended.filter((s) => s > seq).length;
    const want = { seq: 40, positions: [{ sym: 'AAPL', qty: 1000 + after, cost: 50_000 + 100 * after }] };
    await waitFor(async () => (await svc.getPositions('pia'))?.seq === 40, 'every execution seen');
    expect(await svc.getPositions('pia')).toMatchObject(want);
    // (a save under way when it stops is not waited for: the checkpoint stays below it, replayed at the next start)
    await svc.close();

    const { svc: again } = service(log, 'race1:');
    await again.start();
    cleanup.push(() => again.close());
    expect(await again.getPositions('pia')).toMatchObject(want);
    again.kick('pia');
    await waitFor(async () => (await store.get('pia'))?.seq === 40, 'the book saved');
    expect((await store.get('pia'))?.positions.AAPL).toMatchObject({ qty: 1000 + after, cost: 50_000 + 100 * after });
  }, 30_000);

  it('PUTs racing the user’s executions, then the stored book lost: rebuilt as the last PUT plus exactly the executions after its seq', async () => {
    const log = await openLog();
    const admin = new Redis(redis.url);
    cleanup.push(() => admin.quit());
    const { svc } = service(log, 'race4:');
    await svc.start();
    const appended: number[] = [];
    const puts: Promise<{ seq: number }>[] = [];
    for (let i = 0; i < 60; i++) {
      // two PUTs, each racing executions: the second replaces the first
      if (i === 15) puts.push(svc.putPositions('quin', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 500, cost: 25_000 }] }));
      if (i === 35) puts.push(svc.putPositions('quin', { ccy: 'EUR', positions: [{ sym: 'AAPL', qty: 1000, cost: 50_000 }] }));
      appended.push((await log.append('quin', buy())).seq);
    }
    const [first, second] = await Promise.all(puts);
    expect(second!.seq).toBeGreaterThan(first!.seq);
    const after = appended.filter((s) => s > second!.seq).length;
    const want = { ccy: 'EUR', seq: 60, positions: [{ sym: 'AAPL', qty: 1000 + after, cost: 50_000 + 100 * after }] };
    await waitFor(async () => (await svc.getPositions('quin'))?.seq === 60, 'every execution seen');
    expect(await svc.getPositions('quin')).toMatchObject(want);
    await waitFor(async () => (await admin.hget('race4:books', 'quin'))?.includes('"seq":60'), 'the book saved');
    await svc.close();

    // the store loses the book (the checkpoint is past every execution): a new service reads it back
    await admin.hdel('race4:books', 'quin');
    const { svc: again, store } = service(log, 'race4:');
    await again.start();
    cleanup.push(() => again.close());
    expect(await again.getPositions('quin')).toMatchObject(want);
    again.kick('quin');
    await waitFor(async () => (await store.get('quin'))?.seq === 60, 'the rebuilt book saved');
    expect(await store.get('quin')).toMatchObject({ ccy: 'EUR', positions: { AAPL: { qty: 1000 + after, cost: 50_000 + 100 * after } } });
    expect(await store.get('quin')).not.toHaveProperty('incomplete');
  }, 30_000);

  it('books evicted and read back while executions and saves are in flight: each execution applied once', async () => {
    const log = await openLog();
    const { svc, store } = service(log, 'race2:', 30);
    await svc.start();
    cleanup.push(() => svc.close());
    const users = ['e1', 'e2', 'e3', 'e4'];
    const count = new Map(users.map((u) => [u, 0]));
    for (let round = 0; round < 12; round++) {
      await Promise.all(users.map(async (u) => log.append(u, buy()).then(() => count.set(u, count.get(u)! + 1))));
      // idle long enough for some books to be evicted before the next round reads them back
      await new Promise((r) => setTimeout(r, round % 3 === 0 ? 80 : 5));
    }
    await waitFor(async () => {
      for (const u of users) if ((await svc.getPositions(u))?.seq !== count.get(u)) return false;
      return true;
    }, 'every execution applied');
    expect(svc.stats.evicted).toBeGreaterThan(0);
    for (const u of users) {
      const n = count.get(u)!;
      expect(await svc.getPositions(u)).toMatchObject({ seq: n, positions: [{ sym: 'AAPL', qty: n, cost: 100 * n }] });
      await waitFor(async () => (await store.get(u))?.seq === n, `the book of ${u} saved`);
      expect((await store.get(u))?.positions.AAPL).toMatchObject({ qty: n, cost: 100 * n });
    }
  }, 30_000);

  it('stopped while saves are under way and started again: every book equals the log', async () => {
    const log = await openLog();
    const { svc } = service(log, 'race3:');
    await svc.start();
    const users = Array.from({ length: 300 }, (_, i) => `s${i}`);
    await Promise.all(users.map(async (u) => log.append(u, buy())));
    await waitFor(async () => (await svc.getPositions('s299'))?.seq === 1, 'the first round applied');
    // a second round, and the service stops while its books are being saved
    await Promise.all(users.map(async (u) => log.append(u, buy(2, 110))));
    await waitFor(() => svc.stats.applied >= 600, 'the second round applied');
    await svc.close();

    const { svc: again } = service(log, 'race3:');
    await again.start();
    cleanup.push(() => again.close());
    for (const u of users) {
      await waitFor(async () => (await again.getPositions(u))?.seq === 2, `the book of ${u}`);
      expect(await again.getPositions(u)).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 3, cost: 320 }] });
    }
    await again.settled();
    expect(again.stats.applied).toBeLessThanOrEqual(600);
  }, 60_000);
});
