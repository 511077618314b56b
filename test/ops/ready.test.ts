import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { RedisLastValueStore } from '../../src/store/redis-last-value-store.js';
import { freePort, startNats, startRedis } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { scrape, series } from './prom-text.js';

type Server = Awaited<ReturnType<typeof startNats>>;

/** A pino logger that keeps its JSON lines, to check that outages log no errors. */
function recordingLogger(): { log: pino.Logger; lines: { level: number; msg: string }[] } {
  const lines: { level: number; msg: string }[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

async function readyOf(url: string): Promise<{ status: number; body: { ready: boolean; checks: Record<string, boolean> } }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

async function waitReady(url: string, status: number, timeoutMs = 20_000): Promise<{ ready: boolean; checks: Record<string, boolean> }> {
  let last: Awaited<ReturnType<typeof readyOf>> | undefined;
  return waitFor(
    async () => {
      last = await readyOf(url);
      return last.status === status ? last.body : undefined;
    },
    { what: `${url} to answer ${status}`, timeout: timeoutMs, interval: 100 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last ${JSON.stringify(last)}`);
  });
}

describe('/ready follows NATS and Redis; live streams survive their restarts', () => {
  let nats: Server;
  let redis: Server;
  let gateway: Engine;
  let feed: Engine;
  let opsPort = 0;
  let client: TestClient;
  const logs = recordingLogger();

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
    opsPort = await freePort();
    const common = { natsUrl: nats.url, redisUrl: redis.url, host: '127.0.0.1', redis: { keyPrefix: 'rdy:' }, ops: { statsLogSec: 0 } };
    feed = await startEngine(
      { ...common, ops: { port: opsPort, statsLogSec: 0 }, synthetic: { seed: 5, rate: 300, symbols: ['AAPL', 'MSFT'] } },
      { env: {}, roles: { gateway: false, feeds: ['synthetic'] }, log: logs.log.child({ role: 'feed' }) },
    );
    gateway = await startEngine({ ...common, port: 0 }, { env: {}, roles: { gateway: true, feeds: [] }, log: logs.log.child({ role: 'gateway' }) });
    client = await TestClient.connect(`ws://127.0.0.1:${gateway.port}/v1/stream`);
    await client.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:AAPL'], throttle: 0 });
    await client.waitForCount((f) => f.op === 'data' && f.ch === 'quote:AAPL', 3, 20_000);
  });
  afterAll(async () => {
    client?.close();
    await Promise.allSettled([gateway?.close(), feed?.close()]);
    await Promise.allSettled([nats?.destroy(), redis?.destroy()]);
  });

  const gw = (): string => `http://127.0.0.1:${gateway.port}/ready`;
  const ops = (): string => `http://127.0.0.1:${opsPort}/ready`;
  const quotes = (): number => client.frames.filter((f) => f.op === 'data' && f.ch === 'quote:AAPL').length;

  it('is ready with both reachable, on the gateway and on the feed process ops port', async () => {
    expect(await readyOf(gw())).toEqual({ status: 200, body: { ready: true, checks: { bus: true, store: true, accepting: true } } });
    expect(await readyOf(ops())).toEqual({ status: 200, body: { ready: true, checks: { bus: true, store: true, accepting: true } } });
    expect((await fetch(`http://127.0.0.1:${opsPort}/health`)).status).toBe(200);
    const m = (await scrape(`http://127.0.0.1:${opsPort}/metrics`)).metrics;
    expect(series(m, 'tickwire_ticks_published_total')).toBeGreaterThan(0);
    expect(series(m, 'tickwire_store_writes_total')).toBeGreaterThan(0);
  });

  it('answers 503 while NATS is down and 200 again after it restarts; the stream resumes', async () => {
    await nats.stop();
    expect((await waitReady(gw(), 503)).checks).toMatchObject({ bus: false, store: true });
    expect((await waitReady(ops(), 503)).checks).toMatchObject({ bus: false, store: true });
    await nats.start();
    expect((await waitReady(gw(), 200)).checks).toMatchObject({ bus: true, store: true });
    await waitReady(ops(), 200);
    const before = quotes();
    await client.waitForCount((f) => f.op === 'data' && f.ch === 'quote:AAPL', before + 3, 20_000);
  });

  it('answers 503 while Redis is down; live data keeps flowing; writes resume after the restart', async () => {
    await redis.stop();
    expect((await waitReady(gw(), 503)).checks).toMatchObject({ bus: true, store: false });
    expect((await waitReady(ops(), 503)).checks).toMatchObject({ bus: true, store: false });
    // the stream does not depend on Redis
    const before = quotes();
    await client.waitForCount((f) => f.op === 'data' && f.ch === 'quote:AAPL', before + 5, 20_000);
    const store = feed.store as RedisLastValueStore;
    expect(store).toBeInstanceOf(RedisLastValueStore);
    expect(store.pendingKeys).toBeGreaterThan(0); // held, latest per key, until Redis is back

    await redis.start(); // empty: no persistence
    await waitReady(gw(), 200);
    await waitReady(ops(), 200);
    const probe = new Redis(redis.url);
    try {
      await waitFor(async () => (await probe.getBuffer('rdy:quote:AAPL')) !== null, {
        what: 'the held last value written to Redis',
        timeout: 10_000,
        interval: 100,
      });
    } finally {
      probe.disconnect();
    }
    // a new subscriber gets its snapshot again
    const fresh = await TestClient.connect(`ws://127.0.0.1:${gateway.port}/v1/stream`);
    try {
      await fresh.request({ op: 'subscribe', id: 1, channels: ['quote:MSFT'] });
      await fresh.waitFor((f) => f.op === 'data' && f.ch === 'quote:MSFT' && f.snapshot === true, 20_000);
    } finally {
      fresh.close();
    }
    const m = (await scrape(`http://127.0.0.1:${opsPort}/metrics`)).metrics;
    expect(series(m, 'tickwire_store_ready')).toBe(1);
    expect(series(m, 'tickwire_store_writes_dropped_total')).toBeGreaterThanOrEqual(0);
  });

  it('logged the outages as warnings, never as errors', () => {
    expect(logs.lines.filter((l) => l.level >= 50)).toEqual([]);
    expect(logs.lines.some((l) => /redis last-value store disconnected/.test(l.msg))).toBe(true);
    expect(logs.lines.some((l) => l.msg === 'nats connection')).toBe(true);
  });
});
