import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { RedisPositionStore } from '../../src/portfolio/position-store.js';
import { startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * NATS mode (JetStream log, Redis position store): a book the position store lost, or holds from an
 * older snapshot, while the stored checkpoint is past the user's executions. JetStream replays from
 * the checkpoint only, so before the fix the service never read those executions again: a GET
 * answered 404 (or the old book) and a new `portfolio` subscriber got an empty portfolio (or the
 * old one) until the user's next execution. And when the log no longer held the user's first
 * executions (retention), the book was built from the ones left and shown as if complete.
 */
let nats: TestServer & { destroy(): Promise<void> };
let redis: TestServer & { destroy(): Promise<void> };
let nc: NatsConnection;
let admin: Redis;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  nc = await connect({ servers: nats.url });
  admin = new Redis(redis.url);
}, 30_000);

afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
  await admin?.quit();
  await nc?.close();
  await Promise.all([nats?.destroy(), redis?.destroy()]);
});

let streams = 0;
let ids = 0;
const trade = (side: 'buy' | 'sell', qty: number, p: number): ExecutionPayload => ({ id: `x${++ids}`, order: 'o', sym: 'AAPL', side, qty, p, t: Date.now() });
const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000 };

async function openLog(maxPerUser = 1000): Promise<JetStreamEventLog> {
  const n = ++streams;
  const log = await JetStreamEventLog.open(nc, {
    maxPerUser,
    retentionMs: 3_600_000,
    stream: `LOST_${n}`,
    inboundStream: `LOST_IN_${n}`,
    logPrefix: `lost${n}.log.`,
    inPrefix: `lost${n}.in.`,
    dedupWindowMs: 60_000,
    replicas: 1,
  });
  cleanup.push(() => log.close());
  return log;
}

function service(log: JetStreamEventLog, prefix: string): { svc: PortfolioService; store: RedisPositionStore } {
  const store = new RedisPositionStore(redis.url, prefix);
  const svc = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events: log, config: { ...config, redisKeyPrefix: prefix } });
  cleanup.push(() => store.close());
  return { svc, store };
}

/** A first service applies `trades` for `user`, saves and stops; the stored checkpoint is past them. */
async function applied(log: JetStreamEventLog, prefix: string, user: string, trades: ExecutionPayload[], snapshotAfter = 0): Promise<string | undefined> {
  const { svc } = service(log, prefix);
  await svc.start();
  let snapshot: string | undefined;
  for (const [i, t] of trades.entries()) {
    await log.append(user, t);
    await waitFor(async () => (await svc.getPositions(user))?.seq === i + 1, `execution ${i + 1} applied`);
    if (i + 1 === snapshotAfter) {
      await waitFor(async () => JSON.parse((await admin.hget(prefix + 'books', user)) ?? '{"seq":0}').seq === i + 1, 'the book saved');
      snapshot = (await admin.hget(prefix + 'books', user)) ?? undefined;
    }
  }
  await waitFor(async () => Number(await admin.get(prefix + 'checkpoint')) >= trades.length, 'the checkpoint stored past the executions');
  await svc.close();
  return snapshot;
}

describe('portfolio (JetStream log): a book the position store lost or holds from an older snapshot', () => {
  it('a lost book is rebuilt from the log on first use (GET, a subscriber), then continued', async () => {
    const log = await openLog();
    await applied(log, 'lost1:', 'amy', [trade('buy', 10, 100), trade('buy', 5, 110), trade('sell', 3, 120)]);
    await admin.hdel('lost1:books', 'amy'); // the store dropped the key

    const { svc } = service(log, 'lost1:');
    await svc.start();
    cleanup.push(() => svc.close());
    // average cost 1550 / 15; selling 3 leaves 12 at that average: cost 1240
    expect(await svc.getPositions('amy')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 12, cost: 1240 }] });
    svc.kick('amy'); // a gateway's new subscriber
    await waitFor(() => svc.heldBooks === 1, 'the book read back');
    await svc.settled();
    expect(svc.valuation('amy')).toMatchObject({ positions: [{ sym: 'AAPL', qty: 12, cost: 1240 }] });
    expect(svc.valuation('amy').incomplete).toBeUndefined();
    await log.append('amy', trade('buy', 1, 100));
    await waitFor(async () => (await svc.getPositions('amy'))?.seq === 4, 'execution 4 applied');
    expect(await svc.getPositions('amy')).toMatchObject({ seq: 4, positions: [{ sym: 'AAPL', qty: 13, cost: 1340 }] });
    // a user with no executions at all still has none
    expect(await svc.getPositions('nobody')).toBeUndefined();
  }, 30_000);

  it('a book restored from an older snapshot reads the executions after it from the log', async () => {
    const log = await openLog();
    const old = await applied(log, 'lost2:', 'ben', [trade('buy', 10, 100), trade('buy', 5, 110), trade('sell', 3, 120)], 1);
    await admin.hset('lost2:books', 'ben', old!); // the books restored, the checkpoint newer

    const { svc } = service(log, 'lost2:');
    await svc.start();
    cleanup.push(() => svc.close());
    expect(await svc.getPositions('ben')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 12, cost: 1240 }] });
    svc.kick('ben');
    await waitFor(() => svc.heldBooks === 1, 'the book read back');
    await svc.settled();
    expect(svc.valuation('ben')).toMatchObject({ positions: [{ sym: 'AAPL', qty: 12, cost: 1240 }] });
    await log.append('ben', trade('buy', 1, 100));
    await waitFor(async () => (await svc.getPositions('ben'))?.seq === 4, 'execution 4 applied');
    expect(await svc.getPositions('ben')).toMatchObject({ seq: 4, positions: [{ sym: 'AAPL', qty: 13, cost: 1340 }] });
  }, 30_000);

  it('when the log no longer holds the first executions, the book is incomplete: 409 and a flag, never a silently wrong book, until a PUT', async () => {
    const log = await openLog(2); // two executions kept per user
    await applied(log, 'lost3:', 'cyd', [trade('buy', 10, 100), trade('buy', 5, 110), trade('sell', 3, 120)]);
    await admin.hdel('lost3:books', 'cyd');

    const { svc, store } = service(log, 'lost3:');
    await svc.start();
    cleanup.push(() => svc.close());
    const incomplete = { status: 409, code: 'INCOMPLETE' };
    await expect(svc.getPositions('cyd')).rejects.toMatchObject(incomplete);
    svc.kick('cyd');
    await waitFor(() => svc.heldBooks === 1, 'the book read back');
    await svc.settled();
    expect(svc.valuation('cyd').incomplete).toEqual({ from: 1, to: 1 });
    // the next execution does not make it whole: still refused, still flagged (also once saved and read back)
    await log.append('cyd', trade('buy', 1, 100));
    await waitFor(async () => (await store.get('cyd'))?.seq === 4, 'execution 4 applied and saved');
    await expect(svc.getPositions('cyd')).rejects.toMatchObject(incomplete);
    expect(svc.valuation('cyd').incomplete).toEqual({ from: 1, to: 1 });
    expect((await store.get('cyd'))?.incomplete).toEqual({ from: 1, to: 1 });
    // the operator sets the book: complete again
    await svc.putPositions('cyd', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 13, cost: 1340 }] });
    expect(await svc.getPositions('cyd')).toMatchObject({ seq: 4, positions: [{ sym: 'AAPL', qty: 13, cost: 1340 }] });
    await svc.settled();
    expect(svc.valuation('cyd').incomplete).toBeUndefined();
  }, 30_000);
});
