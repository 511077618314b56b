import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats, startRedis } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { quietFor, waitFor } from '../helpers/wait.js';

type Server = Awaited<ReturnType<typeof startNats>>;

/**
 * Scale-out: two gateway processes' worth of engines and a feed role over one nats-server and
 * one redis-server. Both gateways serve the same ticks; a gateway started later serves
 * snapshots straight from Redis. (User executions reaching every gateway is covered by the
 * private-streams tests.)
 */
describe('scale-out over NATS and Redis', () => {
  let nats: Server;
  let redis: Server;
  const engines: Engine[] = [];
  const clients: TestClient[] = [];
  let gwA: Engine;
  let gwB: Engine;
  let feed: Engine;
  let a: TestClient;
  let b: TestClient;

  const common = (): Record<string, unknown> => ({
    natsUrl: nats.url,
    redisUrl: redis.url,
    host: '127.0.0.1',
    log: { level: 'silent' },
    redis: { keyPrefix: 'scale:' },
    ops: { statsLogSec: 0 },
  });
  const gateway = async (): Promise<Engine> => {
    const e = await startEngine({ ...common(), port: 0 }, { env: {}, roles: { gateway: true, feeds: [] } });
    engines.push(e);
    return e;
  };
  const connect = async (e: Engine, encoding: 'msgpack' | 'json'): Promise<TestClient> => {
    const c = await TestClient.connect(`ws://127.0.0.1:${e.port}/v1/stream`, { encoding });
    clients.push(c);
    return c;
  };
  const data = (c: TestClient, ch: string): Frame[] => c.frames.filter((f) => f.op === 'data' && f.ch === ch);

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
    [gwA, gwB] = await Promise.all([gateway(), gateway()]);
    expect(gwA.port).not.toBe(gwB.port);
    a = await connect(gwA, 'msgpack');
    b = await connect(gwB, 'json');
    for (const c of [a, b]) {
      const ack = await c.request({ op: 'subscribe', id: 1, channels: ['trade:BTC-USD', 'quote:AAPL', 'ticker:AAPL'], throttle: 0 });
      expect(ack.subscribed).toHaveLength(3);
    }
    feed = await startEngine(
      { ...common(), synthetic: { seed: 11, rate: 400, symbols: ['AAPL', 'BTC-USD'] } },
      { env: {}, roles: { gateway: false, feeds: ['synthetic'] } },
    );
    engines.push(feed);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await Promise.allSettled(engines.map((e) => e.close()));
    await Promise.allSettled([nats?.destroy(), redis?.destroy()]);
  });

  it('runs the roles apart: gateways without feeds, a feed without a gateway, Redis for last values', () => {
    expect(gwA.mode).toBe('nats');
    expect(gwA.feeds).toBeUndefined();
    expect(feed.gateway).toBeUndefined();
    expect(feed.port).toBe(0);
    expect(gwA.store?.constructor.name).toBe('RedisLastValueStore');
  });

  it('clients on both gateways get the same trades, in the same order (same ids, epochs, prices)', async () => {
    await a.waitForCount((f) => f.op === 'data' && f.ch === 'trade:BTC-USD', 40, 30_000);
    await b.waitForCount((f) => f.op === 'data' && f.ch === 'trade:BTC-USD', 40, 30_000);
    const ta = data(a, 'trade:BTC-USD').map((f) => f.d);
    const tb = data(b, 'trade:BTC-USD').map((f) => f.d);
    // align on the first trade both saw (upstream interest registers independently per gateway)
    const idsA = ta.map((d) => d.id);
    const startB = tb.findIndex((d) => idsA.includes(d.id));
    expect(startB).toBeGreaterThanOrEqual(0);
    const startA = idsA.indexOf(tb[startB]!.id);
    const n = Math.min(ta.length - startA, tb.length - startB);
    expect(n).toBeGreaterThanOrEqual(30);
    expect(tb.slice(startB, startB + n)).toEqual(ta.slice(startA, startA + n));
    expect(new Set(idsA).size).toBe(idsA.length); // no duplicates
    // per-gateway frame seq is contiguous on each
    for (const c of [a, b]) {
      const seqs = data(c, 'trade:BTC-USD')
        .filter((f) => !f.snapshot)
        .map((f) => f.seq as number);
      seqs.forEach((s, i) => i > 0 && expect(s).toBe(seqs[i - 1]! + 1));
    }
  });

  it('after the feed stops both gateways hold the same last quote, and a fresh gateway serves it as a snapshot from Redis at once', async () => {
    await a.waitForCount((f) => f.op === 'data' && f.ch === 'quote:AAPL', 5, 30_000);
    await feed.close(); // flushes the pending last values to Redis
    // the messages in flight have landed: both gateways hold the same last values
    await waitFor(
      () => ['quote:AAPL', 'trade:BTC-USD', 'ticker:AAPL'].every((ch) => JSON.stringify(data(a, ch).at(-1)) === JSON.stringify(data(b, ch).at(-1))),
      'the same last values on both gateways',
    );
    const lastA = data(a, 'quote:AAPL').at(-1)!.d;
    const lastB = data(b, 'quote:AAPL').at(-1)!.d;
    expect(lastB).toEqual(lastA);
    const lastTradeA = data(a, 'trade:BTC-USD').at(-1)!.d;
    const lastTickerA = data(a, 'ticker:AAPL').at(-1)!.d;

    // no feed is running now: whatever the new gateway sends can only come from Redis
    const gwC = await gateway();
    const c = await connect(gwC, 'msgpack');
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:BTC-USD', 'ticker:AAPL'], throttle: 250 });
    expect(ack.subscribed).toHaveLength(3);
    const snap = (ch: string): Promise<Frame> => c.waitFor((f) => f.op === 'data' && f.ch === ch && f.snapshot === true, 10_000);
    const [q, t, k] = await Promise.all([snap('quote:AAPL'), snap('trade:BTC-USD'), snap('ticker:AAPL')]);
    expect(q.d).toEqual(lastA);
    expect(t.d).toEqual(lastTradeA);
    expect(k.d).toEqual(lastTickerA);
    // the snapshot comes before any live data (there is none) and only once per channel
    await quietFor(300, 'no second snapshot and no live data without a feed');
    expect(c.frames.filter((f) => f.op === 'data')).toHaveLength(3);
  });

  it('gateways report the health of the feed running in another process', async () => {
    const text = await (await fetch(`http://127.0.0.1:${gwA.port}/metrics`)).text();
    expect(text).toMatch(/^tickwire_feed_state\{feed="synthetic",state="(connected|stopped)"\} 1$/m);
    expect(text).toMatch(/^tickwire_feed_ticks_total\{feed="synthetic"\} [1-9]/m);
  });

  it('a gateway without feeds lists the feeds it sees on the bus in /health', async () => {
    const health = (await (await fetch(`http://127.0.0.1:${gwB.port}/health`)).json()) as { mode: string; feeds: { id: string; state: string }[] };
    expect(health.mode).toBe('nats');
    expect(health.feeds.map((f) => f.id)).toContain('synthetic');
    expect(health.feeds.find((f) => f.id === 'synthetic')?.state).toMatch(/^(connected|stopped)$/);
  });

  it('each gateway reports only its own connections', async () => {
    const stats = async (e: Engine): Promise<{ connections: number }> =>
      (await fetch(`http://127.0.0.1:${e.port}/v1/stats`)).json() as Promise<{ connections: number }>;
    expect((await stats(gwA)).connections).toBe(1);
    expect((await stats(gwB)).connections).toBe(1);
  });
});
