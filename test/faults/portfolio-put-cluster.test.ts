import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { RedisPositionStore } from '../../src/portfolio/position-store.js';
import { JetStreamPutRecords } from '../../src/portfolio/put-records.js';
import { NatsCluster } from '../helpers/ha-servers.js';
import { testLog } from '../helpers/nats-client.js';
import { startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * NATS mode on a three-node cluster (executions and PUT records with 3 replicas): a book set by a
 * PUT, then executions, then the node leading the PUT records' stream SIGKILLed and the stored
 * book lost. A new portfolio service rebuilds the book from the record (acknowledged by a quorum,
 * read from the new leader) and the executions after it (docs/private-streams.md, "A book the
 * position store lost").
 */
let cluster: NatsCluster;
let redis: TestServer & { destroy(): Promise<void> };
let nc: NatsConnection;
let admin: Redis;
let log: JetStreamEventLog;
let puts: JetStreamPutRecords;
const cleanup: (() => unknown)[] = [];

beforeAll(async () => {
  [cluster, redis] = await Promise.all([NatsCluster.start(3), startRedis()]);
  nc = await connect({ servers: cluster.nodes.map((x) => x.url), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  admin = new Redis(redis.url);
  log = await testLog(nc, 'PUTC', { replicas: 3 });
  puts = await JetStreamPutRecords.open(log.manager, log.client, { stream: 'PUTC_PUT', replicas: 3 });
  await cluster.waitStreamHealthy('PUTC', 3);
  await cluster.waitStreamHealthy('PUTC_PUT', 3);
}, 120_000);

afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
  await log?.close();
  await admin?.quit();
  await nc?.close().catch(() => undefined);
  await Promise.all([cluster?.destroy(), redis?.destroy()]);
});

let ids = 0;
const trade = (side: 'buy' | 'sell', qty: number, p: number): ExecutionPayload => ({ id: `c${++ids}`, order: 'o', sym: 'AAPL', side, qty, p, t: Date.now() });

function service(): PortfolioService {
  const store = new RedisPositionStore(redis.url, 'putc:');
  const svc = new PortfolioService({
    bus: new MemoryBus(),
    registry: defaultRegistry(),
    store,
    events: log,
    puts,
    config: { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: 'putc:' },
  });
  cleanup.push(
    () => svc.close(),
    () => store.close(),
  );
  return svc;
}

describe('PUT records on a 3-node NATS cluster', () => {
  it('survive the kill of their stream leader: a lost book is rebuilt as the PUT plus the executions after it', async () => {
    const a = service();
    await a.start();
    await log.append('kim', trade('buy', 1, 50));
    await waitFor(async () => (await a.getPositions('kim'))?.seq === 1, 'execution 1 applied');
    expect(await a.putPositions('kim', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 100, cost: 9000 }] })).toMatchObject({ seq: 1 });
    await log.append('kim', trade('buy', 5, 110));
    await log.append('kim', trade('sell', 3, 120));
    await waitFor(async () => (await a.getPositions('kim'))?.seq === 3, 'the executions after the PUT applied');
    await waitFor(async () => Number(await admin.get('putc:checkpoint')) >= 3, 'the checkpoint stored past the executions');
    await a.close();

    const leader = await cluster.streamLeader('PUTC_PUT');
    expect(leader).toBeDefined();
    await cluster.node(leader!).proc.kill('SIGKILL');
    await waitFor(
      async () => {
        const now = await cluster.streamLeader('PUTC_PUT');
        return now !== undefined && now !== leader;
      },
      { what: 'a new leader of the PUT records', timeout: 30_000 },
    );
    await admin.hdel('putc:books', 'kim');

    const b = service();
    await b.start();
    // 100 at 9000, buy 5 at 110: 105 at 9550, sell 3 at the average: 102
    const got = await waitFor(() => b.getPositions('kim'), { what: 'the book read back', timeout: 30_000 });
    expect(got).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 102, cost: expect.closeTo((9550 * 102) / 105, 6) }] });
    cluster.node(leader!).proc.start();
  }, 120_000);
});
