import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import type { AlertStore } from '../../src/alerts/alert-store.js';
import { MemoryAlertStore, RedisAlertStore } from '../../src/alerts/alert-store.js';
import { startRedis } from '../helpers/servers.js';
import { trade } from './ticks.js';

const registry = defaultRegistry();
let redis: Awaited<ReturnType<typeof startRedis>>;
let n = 0;

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.destroy();
});

const impls: [string, () => AlertStore][] = [
  ['memory', () => new MemoryAlertStore()],
  ['redis', () => new RedisAlertStore(redis.url, `test:alerts:${process.pid}:${++n}:`)],
];

describe.each(impls)('AlertStore contract: %s', (_name, make) => {
  it('starts empty', async () => {
    const s = make();
    expect(await s.load()).toEqual({ alerts: [], marks: [], outbox: [], windows: [] });
    expect(await s.readDelay()).toBeUndefined();
    await s.close();
  });

  it('keeps the delay its rules were accepted under', async () => {
    const s = make();
    await s.writeDelay(900_000);
    expect(await s.readDelay()).toBe(900_000);
    await s.writeDelay(0);
    expect(await s.readDelay()).toBe(0);
    await s.close();
  });

  it('keeps what the engine commits (rules, states, exact stream values, firings) and drops deleted rules', async () => {
    const s = make();
    const e = new AlertEngine({ registry });
    e.add({ id: 'a', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 100.1, mode: 'rearm', rearmBy: 0.3, cooldownMs: 5 }, 0);
    e.add({ id: 'b', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'below', level: 50 }, 0);
    e.add({ id: 'c', user: 'v', symbol: 'MSFT', kind: 'spread', threshold: 0.5, expiresAt: 9e12 }, 0);
    e.onTick(trade('AAPL', 100.05, 1000));
    e.onTick(trade('AAPL', 0.1 + 100.2, 2000));
    await s.commit(e.takeChanges());
    e.remove('b');
    await s.commit(e.takeChanges());
    const snap = await s.load();
    expect(snap.alerts.sort((x, y) => x.rule.id.localeCompare(y.rule.id))).toEqual(e.all().sort((x, y) => x.rule.id.localeCompare(y.rule.id)));
    expect(snap.marks).toEqual([{ stream: 'AAPL|trade', value: 0.1 + 100.2 }]);
    expect(snap.outbox.map((f) => f.id)).toEqual(['a:1']);
    expect(snap.outbox[0]).toEqual(
      expect.objectContaining({ ruleId: 'a', user: 'u', value: 0.1 + 100.2, previous: 100.05, tick: expect.objectContaining({ k: 'trade' }) }),
    );
    await s.close();
  });

  it('ack removes delivered firings from the outbox only', async () => {
    const s = make();
    const e = new AlertEngine({ registry });
    for (const id of ['x', 'y']) e.add({ id, user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 10 }, 0);
    e.onTick(trade('AAPL', 5, 1));
    e.onTick(trade('AAPL', 11, 2));
    await s.commit(e.takeChanges());
    await s.ack(['x:1', 'nope:1']);
    expect((await s.load()).outbox.map((f) => f.id)).toEqual(['y:1']);
    await s.ack([]);
    await s.close();
  });

  it('keeps the latest state of each percent-change window, exact, and drops a window without rules', async () => {
    const s = make();
    const e = new AlertEngine({ registry });
    e.add({ id: 'c', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'up', percent: 5, windowMs: 60_000 }, 0);
    e.add({ id: 'm', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'down', percent: 5, windowMs: 1000, source: 'mid' }, 0);
    e.onTick(trade('AAPL', 100.1, 1));
    await s.commit(e.takeChanges());
    e.onTick(trade('AAPL', 0.1 + 0.2, 2));
    await s.commit(e.takeChanges());
    // segments: each `[position of the first entry, t, v, ...]`; the min side's 100.1 (position 0)
    // was popped by 0.3, which took its position
    expect((await s.load()).windows).toEqual([
      {
        window: 'AAPL|change:trade:60000',
        head: { v: 2, lastT: 2, min: [0, 0], max: [0, 0] },
        segments: { 'min:0': [0, 2, 0.1 + 0.2], 'max:0': [0, 1, 100.1, 2, 0.1 + 0.2] },
      },
    ]);
    // restored: the window holds what it held
    const again = new AlertEngine({ registry });
    const snap = await s.load();
    again.restore(snap.alerts, snap.marks, 3, snap.windows);
    expect(again.takeChanges().windows).toEqual([]);
    const segmentHashes = async (): Promise<number> => {
      const raw = new Redis(redis.url);
      const keys = await raw.keys(`test:alerts:${process.pid}:${n}:window:*`);
      raw.disconnect();
      return keys.length;
    };
    const held = s instanceof RedisAlertStore ? await segmentHashes() : 1;
    expect(held).toBeGreaterThan(0);
    e.remove('c');
    e.onTick(trade('AAPL', 1, 3)); // the cleanup after the last rule of the window left
    await s.commit(e.takeChanges());
    expect((await s.load()).windows).toEqual([]);
    if (s instanceof RedisAlertStore) expect(await segmentHashes()).toBe(held - 1); // the window's segment hash went with it
    await s.close();
  });

  it('an empty commit is a no-op', async () => {
    const s = make();
    await s.commit({ upserts: [], deletes: [], marks: [], firings: [] });
    expect((await s.load()).alerts).toEqual([]);
    await s.close();
  });
});
