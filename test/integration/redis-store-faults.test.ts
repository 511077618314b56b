import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { RedisAlertStore } from '../../src/alerts/alert-store.js';
import { RedisBarStore } from '../../src/history/redis-bar-store.js';
import { RedisPositionStore } from '../../src/portfolio/position-store.js';
import type { StoredBar } from '../../src/history/bar-store.js';
import { RedisLastValueStore } from '../../src/store/redis-last-value-store.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { RedisEventLog } from '../../src/executions/redis-event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { TcpProxy } from '../faults/tcp-proxy.js';
import { startRedis } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The Redis stores of last values and bars against a Redis that misbehaves: one that stops
 * answering (hung, or a dead network path: the socket stays open) and one restarted empty (the
 * documented deployment runs Redis without persistence).
 */
type RedisServer = Awaited<ReturnType<typeof startRedis>>;

let redis: RedisServer;
const cleanups: (() => Promise<unknown>)[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((f) => f()));
});
afterAll(async () => {
  await redis?.destroy();
});

/** short store times (config redis.commandTimeoutMs, redis.pingIntervalMs; production 5 s and 2 s), so a hang is noticed quickly */
const TIMES = { commandTimeoutMs: 500, pingIntervalMs: 200 };

const prefix = (): string => `f:${randomBytes(4).toString('hex')}:`;
const bar = (t: number): StoredBar => ({ t, iv: 60_000, o: 1, h: 2, l: 0.5, c: 1.5, v: 10, n: 3, closed: true });

/** how `p` settled; fails when it has not settled in 20 s (a command waiting on a Redis that does not answer) */
async function outcome(p: Promise<unknown>): Promise<'resolved' | 'rejected'> {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await waitFor(() => state !== 'pending', { what: 'the command to settle (it must not wait forever on a Redis that does not answer)', timeout: 20_000 });
  return state as 'resolved' | 'rejected';
}

describe('a Redis that stops answering (socket open, no replies)', { timeout: 60_000 }, () => {
  it('last values: a snapshot read fails instead of waiting forever, the store reports not ready, and resumes when Redis answers again', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisLastValueStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix(), flushMs: 20, ...TIMES });
    cleanups.push(
      () => store.close(),
      () => proxy.close(),
    );
    expect(await store.waitReady(5000)).toBe(true);
    store.put('quote:A', Uint8Array.of(1));
    await store.flush();
    expect(store.stats.written).toBe(1);

    proxy.mode = 'stall';
    expect(await outcome(store.getMany(['quote:A']))).toBe('rejected');
    // the dead connection is given up (and retried): /ready must not say the store is fine
    await waitFor(() => !store.ready, { what: 'the store to report not ready', timeout: 20_000 });

    store.put('quote:A', Uint8Array.of(2));
    proxy.mode = 'pass';
    proxy.drop(); // the stalled connections are dead; new ones pass
    await waitFor(() => store.ready, { what: 'the store to reconnect', timeout: 20_000 });
    const v = await waitFor(
      async () => {
        const [x] = await store.redis.mgetBuffer(store.keyPrefix + 'quote:A');
        return x?.[0] === 2 ? x : undefined;
      },
      { what: 'the value put while Redis hung to be written', timeout: 20_000 },
    );
    expect([...v]).toEqual([2]);
  });

  it('the stores take their Redis times from their options (config redis.commandTimeoutMs); unset, the production 5 s', async () => {
    const lv = new RedisLastValueStore({ url: redis.url, keyPrefix: prefix(), ...TIMES });
    const bars = new RedisBarStore({ url: redis.url, windowBars: 10, keyPrefix: prefix(), ...TIMES });
    const plain = new RedisLastValueStore({ url: redis.url, keyPrefix: prefix() });
    cleanups.push(
      () => lv.close(),
      () => bars.close(),
      () => plain.close(),
    );
    for (const r of [lv.redis, bars.redis]) expect(r.options).toMatchObject({ commandTimeout: 500, socketTimeout: 500 });
    expect(plain.redis.options).toMatchObject({ commandTimeout: 5000, socketTimeout: 5000 });
  });

  it('last values read by a gateway only (no writes, no reads): the store still notices and reports not ready (/ready)', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisLastValueStore({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix(), flushMs: 20, ...TIMES });
    cleanups.push(
      () => store.close(),
      () => proxy.close(),
    );
    expect(await store.waitReady(5000)).toBe(true);
    proxy.mode = 'stall';
    await waitFor(() => !store.ready, { what: 'the idle store to report not ready', timeout: 20_000 });
    proxy.mode = 'pass';
    proxy.drop();
    await waitFor(() => store.ready, { what: 'the store to reconnect', timeout: 20_000 });
  });

  it('bars: a `history` read fails instead of waiting forever (the subscriber then gets what the hub has seen)', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisBarStore({ url: `redis://127.0.0.1:${proxy.port}`, windowBars: 10, keyPrefix: prefix(), flushMs: 20, ...TIMES });
    cleanups.push(
      () => store.close(),
      () => proxy.close(),
    );
    expect(await store.waitReady(5000)).toBe(true);
    store.put('bar.1m:A', bar(60_000));
    await store.flush();
    proxy.mode = 'stall';
    expect(await outcome(store.range('bar.1m:A', { limit: 5 }))).toBe('rejected');
    await waitFor(() => !store.ready, { what: 'the bar store to report not ready', timeout: 20_000 });
  });

  it('alert rules: a commit fails instead of waiting forever (the alert service keeps the batch and retries it), and the store reports not ready', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisAlertStore(`redis://127.0.0.1:${proxy.port}`, prefix(), TIMES);
    cleanups.push(
      () => store.close(),
      () => proxy.close(),
    );
    await waitFor(() => store.ready, { what: 'the alert store to connect', timeout: 5000 });
    await store.commit({ deletes: [], upserts: [], marks: [{ stream: 'A|trade', value: 1 }], firings: [] });
    proxy.mode = 'stall';
    expect(await outcome(store.commit({ deletes: [], upserts: [], marks: [{ stream: 'A|trade', value: 2 }], firings: [] }))).toBe('rejected');
    await waitFor(() => !store.ready, { what: 'the alert store to report not ready', timeout: 20_000 });
    proxy.mode = 'pass';
    proxy.drop();
    await waitFor(() => store.ready, { what: 'the alert store to reconnect', timeout: 20_000 });
    await store.commit({ deletes: [], upserts: [], marks: [{ stream: 'A|trade', value: 3 }], firings: [] });
    expect((await store.load()).marks).toEqual([{ stream: 'A|trade', value: 3 }]);
  });

  it('positions: a save fails instead of waiting forever (the portfolio queue would stall for every user)', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisPositionStore(`redis://127.0.0.1:${proxy.port}`, prefix(), TIMES);
    cleanups.push(
      () => store.close(),
      () => proxy.close(),
    );
    await waitFor(() => store.ready, { what: 'the position store to connect', timeout: 5000 });
    const book = { user: 'u', ccy: 'USD', seq: 1, day: 0, positions: {}, updatedAt: 0 };
    await store.save(book);
    proxy.mode = 'stall';
    expect(await outcome(store.save({ ...book, seq: 2 }))).toBe('rejected');
    await waitFor(() => !store.ready, { what: 'the position store to report not ready', timeout: 20_000 });
  });
});

/**
 * Issues `send()` against a stalled Redis with the command timers under a fake clock, and answers
 * whether it was still waiting 1 ms before `ms` and how it had settled at `ms`: the store's
 * commands fail at the configured time, to the millisecond, with no wall-clock assertion.
 */
async function settledAt(ms: number, send: () => Promise<unknown>): Promise<{ before: string; at: string }> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    let state = 'pending';
    send().then(
      () => (state = 'resolved'),
      (err: unknown) => (state = `rejected: ${err instanceof Error ? err.message : String(err)}`),
    );
    // the command is written (and its timer armed) once the client's own promises have run
    for (let i = 0; i < 50 && vi.getTimerCount() === 0; i++) await new Promise((r) => setImmediate(r));
    await vi.advanceTimersByTimeAsync(ms - 1);
    const before = state;
    await vi.advanceTimersByTimeAsync(1);
    const at = state;
    await vi.advanceTimersByTimeAsync(10_000); // lets a command of a store that ignored its time settle too
    return { before, at };
  } finally {
    vi.useRealTimers();
  }
}

describe('the alert and position stores follow redis.commandTimeoutMs', { timeout: 60_000 }, () => {
  const times = { commandTimeoutMs: 300, pingIntervalMs: 60_000 };

  it('alert rules: a commit to a stalled Redis fails at commandTimeoutMs, not at a fixed 5 s', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisAlertStore(`redis://127.0.0.1:${proxy.port}`, prefix(), times);
    cleanups.push(
      () => store.close(),
      () => proxy.close(),
    );
    await waitFor(() => store.ready, { what: 'the alert store to connect', timeout: 5000 });
    proxy.mode = 'stall';
    const r = await settledAt(300, () => store.commit({ deletes: [], upserts: [], marks: [{ stream: 'A|trade', value: 2 }], firings: [] }));
    expect(r.before).toBe('pending');
    expect(r.at).toMatch(/^rejected: .*timed out/i);
  });

  it('positions: a save to a stalled Redis fails at commandTimeoutMs, not at a fixed 5 s', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisPositionStore(`redis://127.0.0.1:${proxy.port}`, prefix(), times);
    cleanups.push(
      () => store.close(),
      () => proxy.close(),
    );
    await waitFor(() => store.ready, { what: 'the position store to connect', timeout: 5000 });
    proxy.mode = 'stall';
    const r = await settledAt(300, () => store.save({ user: 'u', ccy: 'USD', seq: 1, day: 0, positions: {}, updatedAt: 0 }));
    expect(r.before).toBe('pending');
    expect(r.at).toMatch(/^rejected: .*timed out/i);
  });

  it('executions (and notifications) log: an append to a stalled Redis fails at commandTimeoutMs instead of waiting forever', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const log = new RedisEventLog({ url: `redis://127.0.0.1:${proxy.port}`, keyPrefix: prefix(), maxPerUser: 100, retentionMs: 60_000, ...times });
    cleanups.push(
      () => log.close(),
      () => proxy.close(),
    );
    await waitFor(() => log.ready, { what: 'the log to connect', timeout: 5000 });
    const exec = (id: string) => ({ id, order: 'o', sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: 1 }) as ExecutionPayload;
    expect((await log.append('u', exec('e1'))).seq).toBe(1);
    proxy.mode = 'stall';
    const r = await settledAt(300, () => log.append('u', exec('e2')));
    expect(r.before).toBe('pending');
    expect(r.at).toMatch(/^rejected: .*timed out/i);
  });

  it('an idle alert or position store notices a stalled Redis by its PING (redis.pingIntervalMs) and reports not ready', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const quick = { commandTimeoutMs: 300, pingIntervalMs: 100 };
    const alerts = new RedisAlertStore(`redis://127.0.0.1:${proxy.port}`, prefix(), quick);
    const positions = new RedisPositionStore(`redis://127.0.0.1:${proxy.port}`, prefix(), quick);
    cleanups.push(
      () => alerts.close(),
      () => positions.close(),
      () => proxy.close(),
    );
    await waitFor(() => alerts.ready && positions.ready, { what: 'the stores to connect', timeout: 5000 });
    proxy.mode = 'stall';
    await waitFor(() => !alerts.ready && !positions.ready, { what: 'the idle stores to report not ready', timeout: 20_000 });
    proxy.mode = 'pass';
    proxy.drop();
    await waitFor(() => alerts.ready && positions.ready, { what: 'the stores to reconnect', timeout: 20_000 });
  });
});

describe('portfolio PUT while the position store has lost Redis', { timeout: 60_000 }, () => {
  it('is refused with 503 at once (no wait for a command timeout), and accepted again once Redis is back', async () => {
    const proxy = await TcpProxy.start(redis.port);
    const store = new RedisPositionStore(`redis://127.0.0.1:${proxy.port}`, prefix(), { commandTimeoutMs: 1000, pingIntervalMs: 100 });
    const svc = new PortfolioService({
      bus: new MemoryBus(),
      registry: defaultRegistry(),
      store,
      events: new MemoryEventLog({ maxPerUser: 100, retentionMs: 86_400_000 }),
      config: { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' },
    });
    cleanups.push(
      () => svc.close(),
      () => store.close(),
      () => proxy.close(),
    );
    await waitFor(() => store.ready, { what: 'the position store to connect', timeout: 5000 });
    await svc.start();
    const input = { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 1, cost: 100 }] };
    expect((await svc.putPositions('u', input)).positions).toHaveLength(1);

    // Redis stops answering: the idle store's PING notices (pingIntervalMs + its answer time) and
    // drops the connection; the new ones are stalled too
    proxy.mode = 'stall';
    await waitFor(() => !store.ready, { what: 'the store to see Redis gone', timeout: 20_000 });
    // the clock of the client's timers stands still: a PUT that waited for a command timeout (or a
    // reconnection) would stay pending
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    let state = 'pending';
    try {
      svc.putPositions('u', { ...input, positions: [{ sym: 'AAPL', qty: 2, cost: 200 }] }).then(
        () => (state = 'resolved'),
        (err: { status?: number }) => (state = `rejected ${err.status}`),
      );
      for (let i = 0; i < 100 && state === 'pending'; i++) await new Promise((r) => setImmediate(r));
    } finally {
      vi.useRealTimers();
    }
    expect(state).toBe('rejected 503');

    proxy.mode = 'pass';
    proxy.drop();
    await waitFor(() => store.ready, { what: 'the store to reconnect', timeout: 20_000 });
    expect((await svc.putPositions('u', { ...input, positions: [{ sym: 'AAPL', qty: 3, cost: 300 }] })).positions).toMatchObject([{ sym: 'AAPL', qty: 3 }]);
  });
});

describe('Redis restarted empty (no persistence, as docker-compose.yml runs it)', { timeout: 60_000 }, () => {
  it('every last value this process wrote is written again once Redis is back, not only the keys that tick again', async () => {
    const store = new RedisLastValueStore({ url: redis.url, keyPrefix: prefix(), flushMs: 20 });
    cleanups.push(() => store.close());
    expect(await store.waitReady(5000)).toBe(true);
    // a status changes rarely (once a session), a daily bar once a day
    store.put('status:A', Uint8Array.of(1));
    store.put('bar.1d:A', Uint8Array.of(2));
    store.put('quote:A', Uint8Array.of(3));
    await store.flush();
    expect(store.stats.written).toBe(3);

    await redis.stop();
    await waitFor(() => !store.ready, { timeout: 15_000 });
    await redis.start(); // empty
    await waitFor(() => store.ready, { timeout: 15_000 });
    store.put('quote:A', Uint8Array.of(4)); // only the quote ticks again

    const reader = new RedisLastValueStore({ url: redis.url, keyPrefix: store.keyPrefix });
    cleanups.push(() => reader.close());
    expect(await reader.waitReady(5000)).toBe(true);
    const got = await waitFor(
      async () => {
        const v = await reader.getMany(['status:A', 'bar.1d:A', 'quote:A']);
        return v.every((x) => x !== undefined) && v[2]![0] === 4 ? v : undefined;
      },
      { what: 'every key written again to the restarted Redis', timeout: 15_000 },
    );
    expect(got.map((x) => [...x!])).toEqual([[1], [2], [4]]);
    expect(store.stats.rewrites).toBeGreaterThanOrEqual(1);
    expect(store.stats.dropped).toBe(0);
  });
});

describe('a write Redis refuses (OOM at maxmemory, READONLY, ...)', { timeout: 60_000 }, () => {
  /** Redis refuses writes while this runs: maxmemory below what it uses, policy noeviction */
  async function refusingWrites<T>(store: { redis: RedisLastValueStore['redis'] }, during: () => Promise<T>): Promise<T> {
    await store.redis.config('SET', 'maxmemory-policy', 'noeviction');
    await store.redis.config('SET', 'maxmemory', '1');
    try {
      return await during();
    } finally {
      await store.redis.config('SET', 'maxmemory', '0');
    }
  }

  it('last values: the failed batch is written with the next flush, and a newer value put meanwhile wins', async () => {
    const store = new RedisLastValueStore({ url: redis.url, keyPrefix: prefix(), flushMs: 60_000 });
    cleanups.push(() => store.close());
    expect(await store.waitReady(5000)).toBe(true);
    store.put('status:A', Uint8Array.of(1));
    store.put('quote:A', Uint8Array.of(1));
    await refusingWrites(store, async () => {
      await store.flush();
      expect(store.stats.errors).toBe(1);
      store.put('quote:A', Uint8Array.of(2)); // newer than the failed batch's
    });
    await store.flush();
    const [status, quote] = await store.redis.mgetBuffer(store.keyPrefix + 'status:A', store.keyPrefix + 'quote:A');
    expect([status?.[0], quote?.[0]]).toEqual([1, 2]);
    expect(store.stats.dropped).toBe(0);
  });

  it('bars: the failed batch is written with the next flush (a closed bar is put only once), a corrected bar put meanwhile wins', async () => {
    const store = new RedisBarStore({ url: redis.url, windowBars: 10, keyPrefix: prefix(), flushMs: 60_000 });
    cleanups.push(() => store.close());
    expect(await store.waitReady(5000)).toBe(true);
    store.put('bar.1m:A', bar(60_000));
    store.put('bar.1m:A', bar(120_000));
    await refusingWrites(store, async () => {
      await store.flush();
      expect(store.stats.errors).toBe(1);
      store.put('bar.1m:A', { ...bar(120_000), c: 9, corrected: true });
    });
    await store.flush();
    const reader = new RedisBarStore({ url: redis.url, windowBars: 10, keyPrefix: store.keyPrefix });
    cleanups.push(() => reader.close());
    expect(await reader.waitReady(5000)).toBe(true);
    const bars = await reader.range('bar.1m:A', { limit: 10 });
    expect(bars.map((b) => [b.t, b.c])).toEqual([
      [60_000, 1.5],
      [120_000, 9],
    ]);
    expect(store.stats.dropped).toBe(0);
  });
});

describe('bars waiting for a flush', { timeout: 60_000 }, () => {
  it('pending bars are bounded by maxPendingBars across all channels, the new ones over it dropped and counted', async () => {
    const store = new RedisBarStore({ url: redis.url, windowBars: 1000, keyPrefix: prefix(), flushMs: 60_000, maxPendingBars: 5 });
    cleanups.push(() => store.close());
    expect(await store.waitReady(5000)).toBe(true);
    // one busy channel (a 1 s bar per second for the whole outage) and a second one
    for (let i = 1; i <= 20; i++) store.put('bar.1s:A', bar(i * 1000));
    store.put('bar.1s:B', bar(1000));
    store.put('bar.1s:A', { ...bar(3000), c: 7, corrected: true }); // replaces a held bar: always taken
    expect(store.stats.dropped).toBe(16);
    const held = await store.range('bar.1s:A', { limit: 100 });
    expect(held.map((b) => [b.t, b.c])).toEqual([
      [1000, 1.5],
      [2000, 1.5],
      [3000, 7],
      [4000, 1.5],
      [5000, 1.5],
    ]);
  });
});
