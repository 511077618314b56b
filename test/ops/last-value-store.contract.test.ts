import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LastValueStore } from '../../src/store/last-value-store.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { RedisLastValueStore } from '../../src/store/redis-last-value-store.js';
import { startRedis } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

type RedisServer = Awaited<ReturnType<typeof startRedis>>;

interface Impl {
  name: string;
  /** a fresh, connected store isolated from the others */
  create(): Promise<LastValueStore>;
  /** a second instance over the same data (another process), if the store is shared */
  peer?(of: LastValueStore): Promise<LastValueStore>;
}

let redis: RedisServer;
const opened: LastValueStore[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.allSettled(opened.map((s) => s.close()));
  await redis?.destroy();
});

const impls: Impl[] = [
  {
    name: 'memory',
    async create() {
      const s = new MemoryLastValueStore();
      opened.push(s);
      return s;
    },
  },
  {
    name: 'redis',
    async create() {
      const s = new RedisLastValueStore({ url: redis.url, keyPrefix: `t:${randomBytes(4).toString('hex')}:`, flushMs: 20 });
      opened.push(s);
      expect(await s.waitReady(5000)).toBe(true);
      return s;
    },
    async peer(of) {
      const s = new RedisLastValueStore({ url: redis.url, keyPrefix: (of as RedisLastValueStore).keyPrefix, flushMs: 20 });
      opened.push(s);
      expect(await s.waitReady(5000)).toBe(true);
      return s;
    },
  },
];

const bytes = (...xs: number[]): Uint8Array => Uint8Array.from(xs);

describe.each(impls)('LastValueStore contract: $name', (impl) => {
  it('is ready once connected', async () => {
    const s = await impl.create();
    expect(s.ready).toBe(true);
  });

  it('returns the latest value per key, undefined for unknown keys, in request order', async () => {
    const s = await impl.create();
    s.put('quote:AAPL', bytes(1));
    s.put('quote:AAPL', bytes(2));
    s.put('trade:MSFT', bytes(3));
    expect(await s.getMany(['trade:MSFT', 'quote:NOPE', 'quote:AAPL'])).toEqual([bytes(3), undefined, bytes(2)]);
    expect(await s.getMany([])).toEqual([]);
  });

  it('keeps binary payloads byte for byte (every byte value, empty and large)', async () => {
    const s = await impl.create();
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const big = new Uint8Array(randomBytes(200_000));
    // a view into a larger buffer must store only its own bytes
    const view = new Uint8Array(Uint8Array.from([9, 9, 7, 8, 9, 9]).buffer, 2, 2);
    s.put('a', all);
    s.put('b', big);
    s.put('c', view);
    s.put('d', new Uint8Array(0));
    const [a, b, c, d] = await s.getMany(['a', 'b', 'c', 'd']);
    expect(Buffer.from(a!).equals(Buffer.from(all))).toBe(true);
    expect(Buffer.from(b!).equals(Buffer.from(big))).toBe(true);
    expect([...c!]).toEqual([7, 8]);
    expect(d === undefined || d.byteLength === 0).toBe(true);
  });

  it('handles many keys in one read', async () => {
    const s = await impl.create();
    const keys = Array.from({ length: 3000 }, (_, i) => `quote:S${i}`);
    keys.forEach((k, i) => s.put(k, bytes(i % 256, (i >> 8) % 256)));
    const got = await s.getMany(keys);
    expect(got.every((v, i) => v !== undefined && v[0] === i % 256 && v[1] === (i >> 8) % 256)).toBe(true);
  });

  it('makes values visible to other instances over the same data, after the batched flush', async () => {
    const writer = await impl.create();
    if (!impl.peer) return; // memory: one process only
    const reader = await impl.peer(writer);
    writer.put('ticker:BTC-USD', bytes(4, 2));
    const got = await waitFor(
      async () => {
        const v = await reader.getMany(['ticker:BTC-USD']);
        return v[0] !== undefined ? v : undefined;
      },
      { what: 'the value visible to the other instance', timeout: 5000 },
    );
    expect(got[0] && [...got[0]]).toEqual([4, 2]);
  });

  it('flushes pending writes on close', async () => {
    const writer = await impl.create();
    if (!impl.peer) return;
    const reader = await impl.peer(writer);
    writer.put('bar.1s:ETH-USD', bytes(5));
    await writer.close();
    expect(await reader.getMany(['bar.1s:ETH-USD'])).toEqual([Buffer.from([5])]);
  });
});

describe('RedisLastValueStore specifics', () => {
  it('batches writes: many puts to few keys become few MSETs with the latest values', async () => {
    const s = new RedisLastValueStore({ url: redis.url, keyPrefix: `b:${randomBytes(4).toString('hex')}:`, flushMs: 50 });
    opened.push(s);
    expect(await s.waitReady(5000)).toBe(true);
    for (let i = 0; i < 10_000; i++) s.put(`quote:K${i % 10}`, bytes(i % 256));
    await s.flush();
    expect(s.stats.puts).toBe(10_000);
    expect(s.stats.written).toBeLessThanOrEqual(20);
    expect(s.stats.coalesced).toBeGreaterThanOrEqual(10_000 - 20);
    const peer = new RedisLastValueStore({ url: redis.url, keyPrefix: s.keyPrefix });
    opened.push(peer);
    await peer.waitReady(5000);
    const got = await peer.getMany(['quote:K9']);
    expect([...got[0]!]).toEqual([9999 % 256]);
  });

  it('bounds pending keys: new keys over the limit are dropped and counted', async () => {
    const s = new RedisLastValueStore({ url: redis.url, keyPrefix: `m:${randomBytes(4).toString('hex')}:`, flushMs: 60_000, maxPendingKeys: 5 });
    opened.push(s);
    for (let i = 0; i < 8; i++) s.put(`k${i}`, bytes(i));
    s.put('k0', bytes(42)); // an existing key still takes its newest value
    expect(s.pendingKeys).toBe(5);
    expect(s.stats.dropped).toBe(3);
    expect(await s.getMany(['k0'])).toEqual([bytes(42)]);
  });

  it('uses the key prefix in Redis', async () => {
    const prefix = `p:${randomBytes(4).toString('hex')}:`;
    const s = new RedisLastValueStore({ url: redis.url, keyPrefix: prefix, flushMs: 10 });
    opened.push(s);
    await s.waitReady(5000);
    s.put('quote:AAPL', bytes(1, 2, 3));
    await s.flush();
    const raw = await s.redis.getBuffer(`${prefix}quote:AAPL`);
    expect([...raw!]).toEqual([1, 2, 3]);
  });
});
