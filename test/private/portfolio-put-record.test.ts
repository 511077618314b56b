import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { EventLog } from '../../src/executions/event-log.js';
import type { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import { RedisEventLog } from '../../src/executions/redis-event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore, RedisPositionStore } from '../../src/portfolio/position-store.js';
import type { PositionStore } from '../../src/portfolio/position-store.js';
import { JetStreamPutRecords, MemoryPutRecords, RedisPutRecords } from '../../src/portfolio/put-records.js';
import type { PutRecord, PutRecords } from '../../src/portfolio/put-records.js';
import { natsClient, testLog } from '../helpers/nats-client.js';
import { redisForFile } from '../helpers/redis-file.js';
import { waitFor } from '../helpers/wait.js';
import { OutageStore } from './portfolio-seams.js';

/**
 * A book set by a PUT, then executions, then the stored book lost (a key dropped, a Redis restored
 * from a snapshot taken before the PUT, memory positions over a restart): the book read back must
 * be the PUT plus the executions after it (docs/private-streams.md, "A book the position store
 * lost"). Before the PUT record, the log held the executions only, and the book was rebuilt from
 * them alone: the PUT's quantities gone, and no `incomplete` mark. Real nats-server and
 * redis-server.
 */
const nats = natsClient();
const redis = redisForFile();

let ids = 0;
const trade = (side: 'buy' | 'sell', qty: number, p: number): ExecutionPayload => ({ id: `p${++ids}`, order: 'o', sym: 'AAPL', side, qty, p, t: Date.now() });
const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000 };
const PUT = { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 100, cost: 9000 }] };

let n = 0;
interface Mode {
  log: EventLog;
  puts: PutRecords;
  store: () => PositionStore;
  /** drop the user's stored book */
  lose: (user: string) => Promise<void>;
  admin?: Redis;
  prefix: string;
}

async function jetstreamMode(maxPerUser = 1000): Promise<Mode & { log: JetStreamEventLog }> {
  const k = ++n;
  const log = await testLog(nats.nc, `PUTREC_${k}`, { maxPerUser, logPrefix: `putrec${k}.log.`, inPrefix: `putrec${k}.in.` });
  const puts = await JetStreamPutRecords.open(log.manager, log.client, { stream: `PUTREC_${k}_PUT`, replicas: 1, prefix: `putrec${k}.put.` });
  const admin = new Redis(redis.server.url);
  const prefix = `jsput${k}:`;
  redis.cleanup.push(
    () => log.close(),
    () => admin.quit(),
  );
  return {
    log,
    puts,
    admin,
    prefix,
    store: () => {
      const s = new RedisPositionStore(redis.server.url, prefix);
      redis.cleanup.push(() => s.close());
      return s;
    },
    lose: async (user) => void (await admin.hdel(prefix + 'books', user)),
  };
}

/** Embedded with Redis: the Redis log, its PUT records beside it and the Redis position store, under a prefix of their own. */
function redisMode(tag: string, retentionMs: number): Mode & { admin: Redis } {
  const prefix = `${tag}${++n}:`;
  const log = new RedisEventLog({ url: redis.server.url, keyPrefix: `${prefix}exec:`, maxPerUser: 1000, retentionMs });
  const puts = new RedisPutRecords({ url: redis.server.url, keyPrefix: `${prefix}exec:` });
  const admin = new Redis(redis.server.url);
  redis.cleanup.push(
    () => log.close(),
    () => puts.close(),
    () => admin.quit(),
  );
  return {
    log,
    puts,
    admin,
    prefix,
    store: () => {
      const s = new RedisPositionStore(redis.server.url, `${prefix}pf:`);
      redis.cleanup.push(() => s.close());
      return s;
    },
    lose: async (user) => void (await admin.hdel(`${prefix}pf:books`, user)),
  };
}

/** A position store that is `inner` with some of its methods replaced (a fault, a loss). */
function storeOver(inner: MemoryPositionStore, over: Partial<PositionStore>): PositionStore {
  return {
    kind: 'memory',
    load: () => inner.load(),
    get: (u) => inner.get(u),
    save: (b) => inner.save(b),
    checkpoint: () => inner.checkpoint(),
    setCheckpoint: (p) => inner.setCheckpoint(p),
    close: () => inner.close(),
    ...over,
  };
}

function service(m: Mode, store = m.store()): PortfolioService {
  const svc = new PortfolioService({
    bus: new MemoryBus(),
    registry: defaultRegistry(),
    store,
    events: m.log,
    puts: m.puts,
    config: { ...config, redisKeyPrefix: m.prefix },
  });
  redis.cleanup.push(() => svc.close());
  return svc;
}

/** PUT at seq 2 (after two buys), then a buy of 5 at 110 and a sell of 3 at 120 (seqs 3 and 4). */
async function putThenTrade(m: Mode, svc: PortfolioService, user: string): Promise<void> {
  await m.log.append(user, trade('buy', 1, 50));
  await m.log.append(user, trade('buy', 1, 50));
  await waitFor(async () => (await svc.getPositions(user))?.seq === 2, 'the first executions applied');
  expect(await svc.putPositions(user, PUT)).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 100, cost: 9000 }] });
  await m.log.append(user, trade('buy', 5, 110));
  await m.log.append(user, trade('sell', 3, 120));
  await waitFor(async () => (await svc.getPositions(user))?.seq === 4, 'the executions after the PUT applied');
}

// 100 at cost 9000, buy 5 at 110: 105 at 9550; sell 3 keeps the average (9550 / 105): 102 at 9277.142857...
const AFTER = { seq: 4, positions: [{ sym: 'AAPL', qty: 102, cost: expect.closeTo((9550 * 102) / 105, 6) }] };

describe('a book set by a PUT and lost by the position store is rebuilt as the PUT plus the executions after it', () => {
  it('NATS mode (JetStream log, Redis store): the stored book dropped, checkpoint kept', async () => {
    const m = await jetstreamMode();
    const a = service(m);
    await a.start();
    await putThenTrade(m, a, 'ann');
    await waitFor(async () => Number(await m.admin!.get(m.prefix + 'checkpoint')) >= 4, 'the checkpoint stored past the executions');
    await a.close();
    await m.lose('ann');
    // the PUT is not in the log: what the executions channel replays is numbered without a hole
    expect((await m.log.read('ann', 0, 100)).map((e) => [e.seq, e.d.side, e.d.qty])).toEqual([
      [1, 'buy', 1],
      [2, 'buy', 1],
      [3, 'buy', 5],
      [4, 'sell', 3],
    ]);

    const b = service(m);
    await b.start();
    expect(await b.getPositions('ann')).toMatchObject(AFTER);
    b.kick('ann'); // a gateway's new subscriber
    await waitFor(() => b.heldBooks === 1, 'the book read back');
    await b.settled();
    expect(b.valuation('ann')).toMatchObject({ positions: [{ sym: 'AAPL', qty: 102 }] });
    expect(b.valuation('ann').incomplete).toBeUndefined();
    expect(b.stats.rebuiltFromPut).toBe(1);
    // the store is repaired, and the book goes on
    await waitFor(async () => (await m.store().get('ann'))?.positions.AAPL?.qty === 102, 'the rebuilt book saved');
    await m.log.append('ann', trade('buy', 1, 100));
    await waitFor(async () => (await b.getPositions('ann'))?.seq === 5, 'execution 5 applied');
    expect((await b.getPositions('ann'))?.positions).toMatchObject([{ sym: 'AAPL', qty: 103 }]);
  }, 30_000);

  it('NATS mode: the books restored from a snapshot taken before the PUT', async () => {
    const m = await jetstreamMode();
    const a = service(m);
    await a.start();
    await m.log.append('bo', trade('buy', 1, 50));
    await m.log.append('bo', trade('buy', 1, 50));
    await waitFor(async () => (await m.admin!.hget(m.prefix + 'books', 'bo'))?.includes('"seq":2'), 'the book before the PUT saved');
    const snapshot = (await m.admin!.hget(m.prefix + 'books', 'bo'))!;
    expect(await a.putPositions('bo', PUT)).toMatchObject({ seq: 2 });
    await m.log.append('bo', trade('buy', 5, 110));
    await m.log.append('bo', trade('sell', 3, 120));
    await waitFor(async () => (await a.getPositions('bo'))?.seq === 4, 'the executions after the PUT applied');
    await waitFor(async () => Number(await m.admin!.get(m.prefix + 'checkpoint')) >= 4, 'the checkpoint stored past the executions');
    await a.close();
    await m.admin!.hset(m.prefix + 'books', 'bo', snapshot); // 2 AAPL at seq 2: older than the PUT, same seq

    const b = service(m);
    await b.start();
    expect(await b.getPositions('bo')).toMatchObject(AFTER);
  }, 30_000);

  it('NATS mode with memory positions: a restart keeps the PUT', async () => {
    const m = await jetstreamMode();
    const a = service(m, new MemoryPositionStore());
    await a.start();
    await putThenTrade(m, a, 'cy');
    await a.close();

    const b = service(m, new MemoryPositionStore());
    await b.start();
    expect(await b.getPositions('cy')).toMatchObject(AFTER);
  }, 30_000);

  it('embedded with Redis (Redis log and store): the stored book dropped', async () => {
    const m = redisMode('rput', 3_600_000);
    const { admin, prefix } = m;
    const a = service(m);
    await a.start();
    await putThenTrade(m, a, 'dee');
    await waitFor(async () => (await admin.hget(`${prefix}pf:books`, 'dee'))?.includes('"seq":4'), 'the book saved');
    await a.close();
    await m.lose('dee');
    // the record sits beside the log's keys, with no expiry
    expect(await admin.ttl(`${prefix}exec:dee:put`)).toBe(-1);

    const b = service(m);
    await b.start();
    expect(await b.getPositions('dee')).toMatchObject(AFTER);
  }, 30_000);

  it('embedded (memory log and store): a book evicted and lost is read back as the PUT plus the executions', async () => {
    const log = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 3_600_000 });
    const inner = new MemoryPositionStore();
    // a store that loses what it held once `lost` is set (as a Redis flushed of the books)
    let lost = false;
    const store = storeOver(inner, { get: async (u) => (lost ? undefined : inner.get(u)) });
    const m: Mode = { log, puts: new MemoryPutRecords(), prefix: 'mem:', store: () => store, lose: async () => void (lost = true) };
    const a = service(m, store);
    await a.start();
    await putThenTrade(m, a, 'eli');
    await a.close();
    await m.lose('eli');
    const b = service(m, store);
    await b.start();
    expect(await b.getPositions('eli')).toMatchObject(AFTER);
  }, 30_000);

  it('when the log no longer holds executions after the PUT, the rebuilt book is incomplete (409) from the PUT on, not from the log start', async () => {
    const m = await jetstreamMode(3); // three executions kept per user
    const a = service(m);
    await a.start();
    await putThenTrade(m, a, 'fin'); // PUT at 2, executions 3 and 4
    for (let i = 0; i < 3; i++) await m.log.append('fin', trade('buy', 1, 100)); // 5 to 7: the log keeps 5 to 7
    await waitFor(async () => (await a.getPositions('fin'))?.seq === 7, 'executions applied');
    await waitFor(async () => Number(await m.admin!.get(m.prefix + 'checkpoint')) >= 7, 'the checkpoint stored past the executions');
    await a.close();
    await m.lose('fin');

    const b = service(m);
    await b.start();
    await expect(b.getPositions('fin')).rejects.toMatchObject({ status: 409, code: 'INCOMPLETE', message: expect.stringContaining('executions 3 to 4') });
    b.kick('fin');
    await waitFor(() => b.heldBooks === 1, 'the book read back');
    await b.settled();
    expect(b.valuation('fin').incomplete).toEqual({ from: 3, to: 4 });
    // built on the PUT all the same: 100 + 3
    expect(b.valuation('fin').positions).toMatchObject([{ sym: 'AAPL', qty: 103 }]);
  }, 30_000);

  it('Redis log: executions after the PUT all expired (a quiet user past executions.retentionSec): incomplete, not the PUT alone', async () => {
    // retention 1 s: the user's stream and id set expire a second after the last execution (the counter stays)
    const m = redisMode('xput', 1000);
    const { admin, prefix } = m;
    const a = service(m);
    await a.start();
    await putThenTrade(m, a, 'jo');
    await waitFor(async () => (await admin.hget(`${prefix}pf:books`, 'jo'))?.includes('"seq":4'), 'the book saved');
    await a.close();
    await m.lose('jo');
    await waitFor(async () => (await admin.exists(`${prefix}exec:jo:log`)) === 0, { what: 'the executions expired', timeout: 5000 });

    const b = service(m);
    await b.start();
    await expect(b.getPositions('jo')).rejects.toMatchObject({ status: 409, code: 'INCOMPLETE', message: expect.stringContaining('executions 3 to 4') });
  }, 30_000);

  it('a stored book built on a later PUT than the record (the records restored from an older snapshot) is kept', async () => {
    const log = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 3_600_000 });
    const store = new MemoryPositionStore();
    const puts = new MemoryPutRecords();
    const m: Mode = { log, puts, prefix: 'newer:', store: () => store, lose: async () => undefined };
    const a = service(m, store);
    await a.start();
    await a.putPositions('kit', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 7, cost: 700 }] });
    const older = await puts.last('kit');
    await putThenTrade(m, a, 'kit'); // a second PUT (at seq 2), then executions 3 and 4
    await waitFor(async () => (await store.get('kit'))?.seq === 4, 'the book saved');
    await a.close();
    await puts.restore('kit', older); // the record of the first PUT again

    const b = service(m, store);
    await b.start();
    expect(await b.getPositions('kit')).toMatchObject(AFTER);
  }, 30_000);

  it('a PUT whose book could not be saved is refused with 503 and changes nothing, not even a book rebuilt later', async () => {
    const log = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 3_600_000 });
    const store = new OutageStore();
    const puts = new MemoryPutRecords();
    const m: Mode = { log, puts, prefix: 'out:', store: () => store, lose: async () => undefined };
    const a = service(m, store);
    await a.start();
    await putThenTrade(m, a, 'gil');
    const before = await puts.last('gil');
    await waitFor(async () => (await store.inner.get('gil'))?.seq === 4, 'the book saved');
    store.down('save');
    const put = a.putPositions('gil', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 1, cost: 100 }] });
    setTimeout(() => store.up(), 50); // the save times out
    await expect(put).rejects.toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(await puts.last('gil')).toEqual(before);
    expect(await a.getPositions('gil')).toMatchObject(AFTER);
    await a.close();
    // rebuilt from the record and the log: the refused PUT is not in it
    const b = service(m, new MemoryPositionStore());
    await b.start();
    expect(await b.getPositions('gil')).toMatchObject(AFTER);
  }, 30_000);

  it('a book read back while a PUT is refused never takes the refused PUT’s record (read between its write and its taking back)', async () => {
    const log = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 3_600_000 });
    const inner = new MemoryPositionStore();
    let failSaves = false;
    const store = storeOver(inner, { save: (b) => (failSaves ? Promise.reject(new Error('Command timed out')) : inner.save(structuredClone(b))) });
    const records = new MemoryPutRecords();
    // once `holdNext` is set, the next look at the record is answered with what is stored right
    // after the next PUT's record is written (a read-back reading between a PUT's write and its take-back)
    let holdNext = false;
    let answer: ((r: Promise<PutRecord | undefined>) => void) | undefined;
    const puts: PutRecords = {
      kind: 'memory',
      last: (u) => {
        if (!holdNext) return records.last(u);
        holdNext = false;
        return new Promise<PutRecord | undefined>((resolve) => (answer = resolve));
      },
      put: async (u, r) => {
        await records.put(u, r);
        answer?.(records.last(u));
        answer = undefined;
      },
      restore: (u, p) => records.restore(u, p),
      close: async () => undefined,
    };
    const m: Mode = { log, puts, prefix: 'rb:', store: () => store, lose: async () => undefined };
    const a = service(m, store);
    await a.start();
    await putThenTrade(m, a, 'ivy');
    await waitFor(async () => (await inner.get('ivy'))?.seq === 4, 'the book saved');
    await a.close();

    const b = service(m, store);
    await b.start();
    holdNext = true;
    b.kick('ivy'); // read back: its look at the record waits
    failSaves = true;
    await expect(b.putPositions('ivy', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 1, cost: 100 }] })).rejects.toMatchObject({ status: 503 });
    failSaves = false;
    await b.settled();
    expect(b.valuation('ivy').positions).toMatchObject([{ sym: 'AAPL', qty: 102 }]);
    expect(await b.getPositions('ivy')).toMatchObject(AFTER);
    await b.close();

    // the same for a GET of a book not in memory (read, not kept)
    const c = service(m, store);
    await c.start();
    holdNext = true;
    const got = c.getPositions('ivy');
    failSaves = true;
    await expect(c.putPositions('ivy', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 1, cost: 100 }] })).rejects.toMatchObject({ status: 503 });
    failSaves = false;
    expect(await got).toMatchObject(AFTER);
  }, 30_000);

  it('a PUT whose record cannot be stored is refused with 503 and changes nothing', async () => {
    const m = await jetstreamMode();
    const failing: PutRecords = {
      kind: 'jetstream',
      last: (u) => m.puts.last(u),
      put: () => Promise.reject(new Error('TIMEOUT')),
      restore: (u, p) => m.puts.restore(u, p),
      close: async () => undefined,
    };
    const a = service({ ...m, puts: failing });
    await a.start();
    await m.log.append('hu', trade('buy', 2, 50));
    await waitFor(async () => (await a.getPositions('hu'))?.seq === 1, 'execution 1 applied');
    await expect(a.putPositions('hu', PUT)).rejects.toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(await a.getPositions('hu')).toMatchObject({ seq: 1, positions: [{ sym: 'AAPL', qty: 2, cost: 100 }] });
    await waitFor(async () => (await m.store().get('hu'))?.seq === 1, 'the book saved');
    expect((await m.store().get('hu'))?.positions.AAPL?.qty).toBe(2);
  }, 30_000);
});
