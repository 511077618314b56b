import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { msToNs } from '../../src/core/time.js';
import { SECRET, token } from '../auth/helpers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { startRedis } from '../helpers/servers.js';

/**
 * A delayed user sees nothing newer than `auth.delayMs`, in history too: a closed bar revised by
 * a trade correction, a cancel (the bar left `empty`) or a late trade (a bar for an interval that
 * had none) less than the delay ago is served to a delayed user, by GET /v1/bars and by `history`
 * on subscribe, as it was the delay ago (no bar when it did not exist then), and revised once the
 * delay has passed. Before, the bar store kept only the newest version of each bar, so a delayed
 * page carried the revision at once (real time). The gateway has no injectable clock: real time,
 * with a short delay. Both bar stores: memory (embedded) and Redis.
 */
const DELAY = 1500;
const MIN = 60_000;
const M0 = Math.floor(Date.now() / MIN) * MIN - 10 * MIN;
let redis: Awaited<ReturnType<typeof startRedis>>;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(() => redis?.destroy());

// Each test waits out the delay (twice DELAY) on a symbol of its own, each store on an engine of
// its own: the four run at the same time.
describe.concurrent.each(['memory', 'redis'])('delayed history and bars revised within the delay (%s store)', (store) => {
  let engine: Engine;
  let base = '';
  let rtToken = '';

  beforeAll(async () => {
    // the synthetic feed runs (the publisher comes with a feed) on one symbol this test does not read
    engine = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        synthetic: { rate: 1, symbols: ['ETH-USD'], bookLevels: 0 },
        ...(store === 'redis' ? { redisUrl: redis.url, history: { redisKeyPrefix: `t${Date.now()}:bars:` } } : {}),
        auth: { mode: 'optional', jwtSecret: SECRET, delayMs: DELAY, anonymousEntitlement: 'delayed' },
      },
      { roles: { feeds: ['synthetic'] }, env: {} },
    );
    base = `http://127.0.0.1:${engine.port}`;
    rtToken = await token({ sub: 'rt', claims: { ent: { classes: ['stock'] } } });
  });
  afterAll(() => engine?.close());

  const publish = (tick: Record<string, unknown>): void => void engine.publisher!.publish('synthetic', tick as never);
  const trade = (sym: string, id: string, ms: number, p: number, s = 1): void => publish({ k: 'trade', sym, id, p, s, ts: msToNs(ms) });

  type Bar = { t: number; o: number; c: number; v: number; n: number; corrected?: true; empty?: true; delayed?: number };
  async function page(sym: string, auth?: string): Promise<Bar[]> {
    const res = await fetch(`${base}/v1/bars?symbol=${sym}&interval=1m`, auth ? { headers: { authorization: `Bearer ${auth}` } } : {});
    expect(res.status).toBe(200);
    return ((await res.json()) as { bars: Bar[] }).bars;
  }
  const view = (bars: Bar[]): unknown[] => bars.map((b) => [b.t - M0, b.o, b.c, b.v, b.corrected ?? false, b.empty ?? false]);

  it('GET /v1/bars: a delayed user gets each bar as it was the delay ago, the revision once the delay has passed', async ({ expect }) => {
    trade('AAPL', 'a', M0 + 1000, 10);
    trade('AAPL', 'c', M0 + 2 * MIN + 1000, 12);
    trade('AAPL', 'd', M0 + 3 * MIN + 1000, 13);
    trade('AAPL', 'e', M0 + 4 * MIN + 1000, 14); // bars M0, M0+2m, M0+3m closed; M0+1m has no trade
    const before = [
      [0, 10, 10, 1, false, false],
      [2 * MIN, 12, 12, 1, false, false],
      [3 * MIN, 13, 13, 1, false, false],
    ];
    await waitFor(async () => JSON.stringify(view(await page('AAPL'))) === JSON.stringify(before), { timeout: 10_000, what: 'the bars, delayed' });

    // revisions: a correction, a late trade in the empty minute, a cancel that empties a bar
    publish({ k: 'correction', sym: 'AAPL', ref: 'a', id: 'a2', p: 9, s: 2, ts: msToNs(Date.now()) });
    trade('AAPL', 'b', M0 + MIN + 1000, 11);
    publish({ k: 'cancel', sym: 'AAPL', ref: 'c', ts: msToNs(Date.now()) });
    const revisedAt = Date.now();
    const after = [
      [0, 9, 9, 2, true, false],
      [MIN, 11, 11, 1, false, false], // a bar for an interval that had none: a new bar
      [2 * MIN, 12, 12, 0, true, true],
      [3 * MIN, 13, 13, 1, false, false],
    ];
    expect(view(await page('AAPL', rtToken))).toEqual(after); // real time: at once

    const delayed = await page('AAPL');
    expect(Date.now() - revisedAt).toBeLessThan(DELAY); // (read within the delay)
    expect(view(delayed)).toEqual(before);
    for (const b of delayed) expect(b.delayed).toBe(DELAY);

    // the delay has passed: the revisions
    await waitFor(() => Date.now() - revisedAt > DELAY + 50, { timeout: 5000, what: 'the delay' });
    const later = await page('AAPL');
    expect(view(later)).toEqual(after);
    for (const b of later) expect(b.delayed).toBe(DELAY);
  });

  it("`history` on subscribe: a delayed subscriber's history is the store as it was the delay before its first value", async ({ expect }) => {
    trade('MSFT', 'a', M0 + 1000, 20);
    trade('MSFT', 'c', M0 + 2 * MIN + 1000, 22);
    trade('MSFT', 'd', M0 + 3 * MIN + 1000, 23); // bars M0, M0+2m closed, M0+3m open
    await waitFor(async () => (await page('MSFT')).length === 2, { timeout: 10_000, what: 'the bars, delayed' });

    // revised, then a delayed subscriber arrives within the delay
    publish({ k: 'correction', sym: 'MSFT', ref: 'a', id: 'a2', p: 19, s: 3, ts: msToNs(Date.now()) });
    trade('MSFT', 'b', M0 + MIN + 1000, 21);
    publish({ k: 'cancel', sym: 'MSFT', ref: 'c', ts: msToNs(Date.now()) });
    const revisedAt = Date.now();
    const dl = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    await dl.request({ op: 'subscribe', id: 1, channels: ['bar.1m:MSFT'], throttle: 0, history: 10 });
    trade('MSFT', 'e', M0 + 3 * MIN + 2000, 24); // the delay line's first value, the delay from now
    expect(Date.now() - revisedAt).toBeLessThan(DELAY); // (subscribed within the delay)

    const snap = await dl.waitFor((f: Frame) => f.op === 'data' && f.ch === 'bar.1m:MSFT' && f.snapshot === true, 10_000);
    expect(snap.d).toMatchObject({ t: M0 + 3 * MIN, c: 24, delayed: DELAY });
    expect(view(snap.history as Bar[])).toEqual([
      [0, 20, 20, 1, false, false],
      [2 * MIN, 22, 22, 1, false, false],
    ]);
    // a subscriber after the delay gets the revisions in its history
    await waitFor(() => Date.now() - revisedAt > DELAY + 50, { timeout: 5000, what: 'the delay' });
    const dl2 = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    await dl2.request({ op: 'subscribe', id: 1, channels: ['bar.1m:MSFT'], throttle: 0, history: 10 });
    trade('MSFT', 'f', M0 + 3 * MIN + 3000, 25);
    const snap2 = await dl2.waitFor((f: Frame) => f.op === 'data' && f.ch === 'bar.1m:MSFT' && f.snapshot === true, 10_000);
    expect(view(snap2.history as Bar[])).toEqual([
      [0, 19, 19, 3, true, false],
      [MIN, 21, 21, 1, false, false],
      [2 * MIN, 22, 22, 0, true, true],
    ]);
    dl.close();
    dl2.close();
  });
});
