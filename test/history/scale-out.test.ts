import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats, startRedis } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

type Server = Awaited<ReturnType<typeof startNats>>;

/**
 * Bar history in scale-out: a feed role writes closed bars to Redis, and two gateways (one
 * started after the bars closed) serve the same history on subscribe and on GET /v1/bars.
 */
describe('bar history over NATS and Redis', { timeout: 90_000 }, () => {
  let nats: Server;
  let redis: Server;
  const engines: Engine[] = [];
  const common = (): Record<string, unknown> => ({
    natsUrl: nats.url,
    redisUrl: redis.url,
    host: '127.0.0.1',
    log: { level: 'silent' },
    redis: { keyPrefix: 'hist:' },
    history: { redisKeyPrefix: 'hist:bars:' },
    ops: { statsLogSec: 0 },
  });
  const gateway = async (): Promise<Engine> => {
    const e = await startEngine({ ...common(), port: 0 }, { env: {}, roles: { gateway: true, feeds: [] } });
    engines.push(e);
    return e;
  };
  const bars = async (e: Engine, q: string): Promise<Frame[]> => {
    const res = await fetch(`http://127.0.0.1:${e.port}/v1/bars?${q}`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { bars: Frame[] }).bars;
  };

  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
    engines.push(
      await startEngine(
        { ...common(), synthetic: { seed: 5, rate: 2000, symbols: ['BTC-USD', 'AAPL'] } },
        { env: {}, roles: { gateway: false, feeds: ['synthetic'] } },
      ),
    );
  });
  afterAll(async () => {
    for (const e of engines.reverse()) await e.close();
    await Promise.all([nats?.destroy(), redis?.destroy()]);
  });

  it('every gateway serves the bars the feed process closed, on subscribe and over HTTP', async () => {
    const early = await gateway();
    await waitFor(async () => (await bars(early, 'symbol=BTC-USD&interval=1s')).length >= 4, {
      timeout: 20_000,
      interval: 100,
      what: 'four closed 1s bars in Redis',
    });
    const late = await gateway();
    const viaEarly = await bars(early, 'symbol=BTC-USD&interval=1s&limit=3');
    const viaLate = await bars(late, `symbol=BTC-USD&interval=1s&limit=3&to=${viaEarly.at(-1)!.t + 1}`);
    expect(viaLate).toEqual(viaEarly);

    const c = await TestClient.connect(`ws://127.0.0.1:${late.port}/v1/stream`, { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['bar.1s:BTC-USD'], history: 4 });
    const snap = await c.waitFor((f) => f.op === 'data' && f.ch === 'bar.1s:BTC-USD', 10_000);
    expect(snap.snapshot).toBe(true);
    const history = snap.history as Frame[];
    expect(history.length).toBe(4);
    for (let i = 1; i < history.length; i++) expect(history[i]!.t).toBeGreaterThan(history[i - 1]!.t);
    expect(history.at(-1)!.t).toBeLessThan(snap.d.t);
    // the next closed bar comes live
    const next = await c.waitFor((f) => f.op === 'data' && f.ch === 'bar.1s:BTC-USD' && f.d.closed === true && f.snapshot !== true, 10_000);
    expect(next.d.t).toBeGreaterThanOrEqual(snap.d.t);
    // the history is exactly what the store holds before the snapshot's bar: nothing skipped
    const stored = await bars(late, `symbol=BTC-USD&interval=1s&from=${history[0]!.t}&to=${snap.d.t}`);
    expect(stored).toEqual(history);
    c.close();
  });
});
