import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisLastValueStore } from '../../src/store/redis-last-value-store.js';
import { startRedis } from '../helpers/servers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

type Server = Awaited<ReturnType<typeof startRedis>>;

describe('RedisLastValueStore across a Redis outage', () => {
  let redis: Server;
  let store: RedisLastValueStore;
  const warnings: string[] = [];
  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisLastValueStore({
      url: redis.url,
      keyPrefix: 'out:',
      flushMs: 20,
      maxPendingKeys: 3,
      log: { info: () => undefined, warn: (_o, msg) => warnings.push(msg ?? '') },
    });
    expect(await store.waitReady(5000)).toBe(true);
  });
  afterAll(async () => {
    await store?.close();
    await redis?.destroy();
  });

  it('holds the latest value per key while down (bounded, overflow counted), reads fail fast, and writes them once back', async () => {
    store.put('quote:A', Uint8Array.of(1));
    await store.flush();
    expect(store.stats.written).toBe(1);

    await redis.stop();
    await waitFor(() => !store.ready, { timeout: 15_000 });
    // puts never throw nor wait
    for (let i = 0; i < 100; i++) store.put('quote:A', Uint8Array.of(i));
    store.put('quote:B', Uint8Array.of(7));
    store.put('quote:C', Uint8Array.of(8));
    store.put('quote:D', Uint8Array.of(9)); // a 4th key: over maxPendingKeys
    expect(store.pendingKeys).toBe(3);
    expect(store.stats.dropped).toBe(1);
    await quietFor(100, 'flush ticks pass while down and lose nothing from the pending map');
    expect(store.pendingKeys).toBe(3);
    // pending values are still served in this process; others fail fast instead of queueing
    expect(await store.getMany(['quote:A'])).toEqual([Uint8Array.of(99)]);
    await expect(store.getMany(['quote:Z'])).rejects.toThrow(); // rejected, not queued until Redis is back
    expect(warnings.some((w) => /disconnected/.test(w))).toBe(true);

    await redis.start(); // empty again: no persistence
    await waitFor(() => store.ready, { timeout: 15_000 });
    await waitFor(async () => (await store.redis.getBuffer('out:quote:C')) !== null, { timeout: 15_000 });
    const [a, b, c, d] = await store.redis.mgetBuffer('out:quote:A', 'out:quote:B', 'out:quote:C', 'out:quote:D');
    expect([a?.[0], b?.[0], c?.[0], d]).toEqual([99, 7, 8, null]);
    expect(store.pendingKeys).toBe(0);
  });

  it('counts what it could not flush when closed while Redis is down', async () => {
    const s = new RedisLastValueStore({ url: redis.url, keyPrefix: 'out2:', flushMs: 10_000 });
    expect(await s.waitReady(5000)).toBe(true);
    await redis.stop();
    await waitFor(() => !s.ready, { timeout: 15_000 });
    s.put('trade:X', Uint8Array.of(1));
    s.put('trade:Y', Uint8Array.of(2));
    await s.close();
    expect(s.stats.dropped).toBe(2);
    expect(s.ready).toBe(false);
    await redis.start();
  });
});
