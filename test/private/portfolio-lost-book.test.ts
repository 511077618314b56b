import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { portfolioSubject } from '../../src/bus/private-subjects.js';
import { decodeBusMessage } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BusRequests, Unsubscribe } from '../../src/bus/bus.js';
import type { AppendResult, EventListener, EventLog, FollowOptions, StoredEvent } from '../../src/executions/event-log.js';
import type { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { testLog } from '../helpers/nats-client.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { BusPortfolioClient, servePortfolioRpc } from '../../src/portfolio/portfolio-api.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { RedisPositionStore } from '../../src/portfolio/position-store.js';
import type { PortfolioPayload } from '../../src/portfolio/valuation.js';
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
  const log = await testLog(nc, `LOST_${n}`, { maxPerUser, logPrefix: `lost${n}.log.`, inPrefix: `lost${n}.in.` });
  cleanup.push(() => log.close());
  return log;
}

/** The JetStream log, whose reads fail while `failing` (a request timing out in a leader election). */
class FlakyReads implements EventLog {
  readonly kind = 'jetstream' as const;
  failing = false;
  failed = 0;
  constructor(readonly inner: JetStreamEventLog) {}
  get ready(): boolean {
    return this.inner.ready;
  }
  append(user: string, d: ExecutionPayload): Promise<AppendResult> {
    return this.inner.append(user, d);
  }
  read(user: string, after: number, limit: number): Promise<StoredEvent[]> {
    if (!this.failing) return this.inner.read(user, after, limit);
    this.failed++;
    return Promise.reject(Object.assign(new Error('TIMEOUT'), { name: 'TimeoutError' }));
  }
  tail(user: string, count: number): Promise<StoredEvent[]> {
    return this.inner.tail(user, count);
  }
  head(user: string): Promise<number> {
    return this.inner.head(user);
  }
  headHint(user: string): Promise<number> {
    return this.inner.headHint(user);
  }
  /** a delivery the follower misses (the event stays in the log) */
  miss: number | undefined;
  follow(listener: EventListener, opts?: FollowOptions): Unsubscribe {
    return this.inner.follow((u, ev, pos) => (ev.seq === this.miss ? undefined : listener(u, ev, pos)), opts);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function service(log: EventLog, prefix: string): { svc: PortfolioService; store: RedisPositionStore; bus: MemoryBus } {
  const store = new RedisPositionStore(redis.url, prefix);
  const bus = new MemoryBus();
  const svc = new PortfolioService({ bus, registry: defaultRegistry(), store, events: log, config: { ...config, redisKeyPrefix: prefix } });
  cleanup.push(() => store.close());
  return { svc, store, bus };
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
    // as the gateways ask it (pf.rpc over NATS): the same 409 reaches the service API
    const requests: BusRequests = {
      serve: (subject, queue, handler) => {
        const sub = nc.subscribe(subject, { queue, callback: (_e, m) => void handler(m.data).then((r) => m.respond(r)) });
        return () => sub.unsubscribe();
      },
      request: async (subject, payload, timeout) => (await nc.request(subject, payload, { timeout })).data,
    };
    const stop = servePortfolioRpc(requests, svc);
    cleanup.push(stop);
    await expect(new BusPortfolioClient(requests, 2000).getPositions('cyd')).rejects.toMatchObject({
      ...incomplete,
      message: expect.stringContaining('execution 1,'),
    });
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

  it('a store emptied, checkpoint too (a Redis flushed): the replay from the log start rebuilds whole books, and marks those whose first executions left the log', async () => {
    const log = await openLog(2);
    await applied(log, 'lost7:', 'gus', [trade('buy', 10, 100), trade('buy', 5, 110), trade('sell', 3, 120)]);
    await log.append('hal', trade('buy', 4, 100));
    await log.append('hal', trade('buy', 1, 100));
    await admin.del('lost7:books', 'lost7:checkpoint');

    const { svc } = service(log, 'lost7:');
    await svc.start();
    cleanup.push(() => svc.close());
    await waitFor(() => svc.heldBooks === 2, 'the replayed books');
    await svc.settled();
    expect(await svc.getPositions('hal')).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 5, cost: 500 }] });
    await expect(svc.getPositions('gus')).rejects.toMatchObject({ status: 409, code: 'INCOMPLETE' });
    expect(svc.valuation('gus').incomplete).toEqual({ from: 1, to: 1 });
  }, 30_000);

  it.each([
    ['an execution comes first', 'lost4:', 'dan', false],
    ['a subscriber comes first', 'lost5:', 'eve', true],
  ])(
    'a book whose executions cannot be read from the log now (a read times out) waits and is caught up once they can, never shown behind (%s)',
    async (_what, prefix, user, kickFirst) => {
      const log = await openLog();
      const old = await applied(log, prefix, user, [trade('buy', 10, 100), trade('buy', 5, 110), trade('sell', 3, 120)], 1);
      await admin.hset(prefix + 'books', user, old!);

      const flaky = new FlakyReads(log);
      const { svc } = service(flaky, prefix);
      await svc.start();
      cleanup.push(() => svc.close());
      flaky.failing = true;
      if (kickFirst) {
        svc.kick(user);
        await waitFor(() => flaky.failed >= 1, 'the read of executions 2 and 3 failed');
        expect(svc.heldBooks).toBe(0); // not taken into memory behind the log
      }
      await log.append(user, trade('buy', 1, 100));
      await waitFor(() => flaky.failed >= 2, 'the reads of executions 2 and 3 failed');
      // meanwhile the book is not shown as if it were whole
      await expect(svc.getPositions(user)).rejects.toMatchObject({ status: 503 });
      flaky.failing = false;
      await waitFor(async () => (await svc.getPositions(user).catch(() => undefined))?.seq === 4, { what: 'executions 2 to 4 applied', timeout: 10_000 });
      expect(await svc.getPositions(user)).toMatchObject({ seq: 4, positions: [{ sym: 'AAPL', qty: 13, cost: 1340 }] });
      expect(svc.valuation(user)).toMatchObject({ positions: [{ sym: 'AAPL', qty: 13, cost: 1340 }] });
      await waitFor(async () => (await admin.hget(prefix + 'books', user))?.includes('"seq":4'), 'saved');
    },
    30_000,
  );

  it('an execution after a hole in a book in memory, while the log cannot be read, waits and is applied after the hole is read, never dropped', async () => {
    const log = await openLog();
    const flaky = new FlakyReads(log);
    const { svc, bus } = service(flaky, 'lost6:');
    await svc.start();
    cleanup.push(() => svc.close());
    await log.append('fay', trade('buy', 10, 100));
    await waitFor(async () => (await svc.getPositions('fay'))?.seq === 1, 'execution 1 applied');
    flaky.miss = 2; // stored, not delivered: the next one finds the hole and reads it from the log
    await log.append('fay', trade('buy', 5, 110));
    flaky.failing = true;
    await log.append('fay', trade('sell', 3, 120));
    await waitFor(() => flaky.failed >= 1, 'the read of execution 2 failed');
    await expect(svc.getPositions('fay')).rejects.toMatchObject({ status: 503 });
    // a new subscriber meanwhile gets its valuation once the book caught up, not the book behind
    const sent: PortfolioPayload[] = [];
    bus.subscribe(portfolioSubject('fay'), (_s, payload) => sent.push(decodeBusMessage<PortfolioPayload>(payload)));
    svc.kick('fay');
    flaky.failing = false;
    await waitFor(async () => (await svc.getPositions('fay').catch(() => undefined))?.seq === 3, { what: 'executions 2 and 3 applied', timeout: 10_000 });
    expect(await svc.getPositions('fay')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 12, cost: 1240 }] });
    await waitFor(() => sent.length > 0, 'the valuation published');
    expect(sent.map((v) => v.positions.map((l) => l.qty))).toEqual(sent.map(() => [12]));
    expect(svc.valuation('fay').incomplete).toBeUndefined();
  }, 30_000);
});
