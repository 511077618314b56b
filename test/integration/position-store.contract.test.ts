import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PositionStore } from '../../src/portfolio/position-store.js';
import { MemoryPositionStore, RedisPositionStore } from '../../src/portfolio/position-store.js';
import type { PositionBook } from '../../src/portfolio/positions.js';
import { startRedis } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/** One contract, both position stores: memory (embedded) and Redis (REDIS_URL). */
let redis: Awaited<ReturnType<typeof startRedis>>;
const opened: PositionStore[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.allSettled(opened.map((s) => s.close()));
  await redis?.destroy();
});

interface Impl {
  name: string;
  create(): Promise<PositionStore>;
  /** the same data seen by a new instance (a restarted portfolio service), when the store outlives it */
  reopen?(of: PositionStore): Promise<PositionStore>;
}

const prefixes = new WeakMap<PositionStore, string>();
async function redisStore(prefix: string): Promise<PositionStore> {
  const s = new RedisPositionStore(redis.url, prefix);
  opened.push(s);
  prefixes.set(s, prefix);
  await waitFor(() => s.ready, { what: 'the position store to connect', timeout: 5000 });
  return s;
}

const impls: Impl[] = [
  {
    name: 'memory',
    async create() {
      return new MemoryPositionStore();
    },
  },
  {
    name: 'redis',
    create: () => redisStore(`t:pf:${randomBytes(4).toString('hex')}:`),
    reopen: (of) => redisStore(prefixes.get(of)!),
  },
];

const book = (user: string, seq: number, extra: Partial<PositionBook> = {}): PositionBook => ({
  user,
  ccy: 'USD',
  seq,
  day: 20_000,
  positions: { AAPL: { qty: 10, cost: 1000.1 + seq, dayQty0: 0, dayFlow: 1000.1, realized: 0.1 + 0.2, day: 20_000 } },
  updatedAt: 1_700_000_000_123,
  ...extra,
});

const byUser = (books: PositionBook[]): PositionBook[] => [...books].sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));

describe.each(impls)('PositionStore contract: $name', (impl) => {
  it('starts empty: no books, no checkpoint', async () => {
    const s = await impl.create();
    expect(await s.load()).toEqual([]);
    expect(await s.checkpoint()).toBeUndefined();
  });

  it('keeps the latest book per user, numbers exact, and books of other users apart', async () => {
    const s = await impl.create();
    await s.save(book('alice', 1));
    await s.save(book('bob', 1, { ccy: 'EUR', closedRealized: { USD: -3.5 } }));
    await s.save(book('alice', 2));
    expect(byUser(await s.load())).toEqual([book('alice', 2), book('bob', 1, { ccy: 'EUR', closedRealized: { USD: -3.5 } })]);
  });

  it('reads one user back (an evicted book): the latest saved, undefined for a user without one', async () => {
    const s = await impl.create();
    await s.save(book('erin', 1));
    await s.save(book('erin', 4));
    await s.save(book('a:b', 2));
    expect(await s.get('erin')).toEqual(book('erin', 4));
    expect(await s.get('a:b')).toEqual(book('a:b', 2));
    expect(await s.get('a')).toBeUndefined();
    expect(await s.get('checkpoint')).toBeUndefined();
  });

  it('a saved book is a copy: changing the object afterwards changes nothing stored', async () => {
    const s = await impl.create();
    const b = book('carol', 1);
    await s.save(b);
    b.positions.AAPL!.qty = 99;
    b.seq = 7;
    expect(await s.load()).toEqual([book('carol', 1)]);
  });

  it('keeps user ids of any shape apart (separators, spaces, unicode, the store prefix itself)', async () => {
    const s = await impl.create();
    const users = ['a:b', 'a', 'a b', 'ü/ß', 'books', 'checkpoint', '*', 'x'.repeat(300)];
    for (const [i, u] of users.entries()) await s.save(book(u, i + 1));
    const got = byUser(await s.load());
    expect(got.map((b) => [b.user, b.seq])).toEqual(byUser(users.map((u, i) => book(u, i + 1))).map((b) => [b.user, b.seq]));
    expect(await s.checkpoint()).toBeUndefined(); // a user called "checkpoint" is not the checkpoint
  });

  it('keeps the checkpoint (the log position to resume from), the latest one set', async () => {
    const s = await impl.create();
    await s.setCheckpoint(5);
    await s.setCheckpoint(1_234_567_890_123);
    expect(await s.checkpoint()).toBe(1_234_567_890_123);
    await s.setCheckpoint(0);
    expect(await s.checkpoint()).toBe(0);
  });

  it('what was saved is there for the next instance (a restarted portfolio service)', async () => {
    const s = await impl.create();
    if (!impl.reopen) return; // memory: lives and dies with its process
    await s.save(book('dave', 3));
    await s.setCheckpoint(42);
    await s.close();
    const again = await impl.reopen(s);
    expect(await again.load()).toEqual([book('dave', 3)]);
    expect(await again.checkpoint()).toBe(42);
  });
});
