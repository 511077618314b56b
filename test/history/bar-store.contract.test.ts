import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BarStore, StoredBar } from '../../src/history/bar-store.js';
import { MemoryBarStore } from '../../src/history/bar-store.js';
import { RedisBarStore } from '../../src/history/redis-bar-store.js';
import { Redis } from 'ioredis';
import { startRedis } from '../helpers/servers.js';

/** One contract, both bar stores: the embedded (memory) one and the scale-out (Redis) one. */
/** how long replaced versions are kept, and the store's clock */
interface Revisions {
  keepRevisionsMs: number;
  now: () => number;
}
type RedisServer = Awaited<ReturnType<typeof startRedis>>;

interface Impl {
  name: string;
  create(windowBars: number, opts?: Revisions): Promise<BarStore>;
  /** another process over the same data, after this one's writes are flushed */
  peer?(of: BarStore): Promise<BarStore>;
}

let redis: RedisServer;
const opened: BarStore[] = [];
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
    async create(windowBars, opts) {
      const s = new MemoryBarStore({ windowBars, ...opts });
      opened.push(s);
      return s;
    },
  },
  {
    name: 'redis',
    async create(windowBars, opts) {
      const s = new RedisBarStore({ url: redis.url, windowBars, keyPrefix: `t:${randomBytes(4).toString('hex')}:`, flushMs: 10, ...opts });
      opened.push(s);
      expect(await s.waitReady(5000)).toBe(true);
      return s;
    },
    async peer(of) {
      const o = of as RedisBarStore;
      await o.flush();
      const s = new RedisBarStore({ url: redis.url, windowBars: 1_000_000, keyPrefix: o.keyPrefix, flushMs: 10 });
      opened.push(s);
      expect(await s.waitReady(5000)).toBe(true);
      return s;
    },
  },
];

const bar = (t: number, c = 100, extra: Partial<StoredBar> = {}): StoredBar => ({
  t,
  iv: 60_000,
  o: c,
  h: c + 1,
  l: c - 1,
  c,
  v: 10,
  n: 3,
  closed: true,
  ...extra,
});
const starts = (bars: StoredBar[]): number[] => bars.map((b) => b.t);
const M = 60_000;

describe.each(impls)('BarStore contract: $name', (impl) => {
  it('answers the newest `limit` bars of [from, to), oldest first', async () => {
    const s = await impl.create(100);
    for (let i = 0; i < 10; i++) s.put('bar.1m:AAPL', bar(i * M, 100 + i));
    expect(starts(await s.range('bar.1m:AAPL', { limit: 3 }))).toEqual([7 * M, 8 * M, 9 * M]);
    expect(starts(await s.range('bar.1m:AAPL', { limit: 100, from: 2 * M, to: 5 * M }))).toEqual([2 * M, 3 * M, 4 * M]);
    expect(starts(await s.range('bar.1m:AAPL', { limit: 2, to: 5 * M }))).toEqual([3 * M, 4 * M]);
    expect(starts(await s.range('bar.1m:AAPL', { limit: 2, from: 8 * M }))).toEqual([8 * M, 9 * M]);
    expect(await s.range('bar.1m:AAPL', { limit: 5, from: 20 * M })).toEqual([]);
    expect(await s.range('bar.1m:MSFT', { limit: 5 })).toEqual([]);
    expect((await s.range('bar.1m:AAPL', { limit: 1 }))[0]).toEqual(bar(9 * M, 109));
  });

  it('keeps one bar per start: a corrected bar replaces the first one', async () => {
    const s = await impl.create(100);
    s.put('bar.1m:AAPL', bar(0, 100));
    s.put('bar.1m:AAPL', bar(M, 101));
    s.put('bar.1m:AAPL', bar(0, 99, { corrected: true }));
    const got = await s.range('bar.1m:AAPL', { limit: 10 });
    expect(got).toEqual([bar(0, 99, { corrected: true }), bar(M, 101)]);
    if (impl.peer) expect(await (await impl.peer(s)).range('bar.1m:AAPL', { limit: 10 })).toEqual(got);
  });

  it('keeps the newest windowBars bars per channel, and channels apart', async () => {
    const s = await impl.create(5);
    for (let i = 0; i < 12; i++) {
      s.put('bar.1s:BTC-USD', bar(i * 1000));
      s.put('bar.1d:BTC-USD', bar(i * 86_400_000));
    }
    s.put('bar.1s:BTC-USD', bar(3 * 1000)); // older than the window: not kept
    const expected = [7, 8, 9, 10, 11].map((i) => i * 1000);
    expect(starts(await s.range('bar.1s:BTC-USD', { limit: 100 }))).toEqual(expected);
    expect(starts(await s.range('bar.1d:BTC-USD', { limit: 100 }))).toEqual([7, 8, 9, 10, 11].map((i) => i * 86_400_000));
    if (impl.peer) expect(starts(await (await impl.peer(s)).range('bar.1s:BTC-USD', { limit: 100 }))).toEqual(expected);
  });

  it('accepts bars out of order and answers them sorted', async () => {
    const s = await impl.create(100);
    for (const i of [5, 1, 3, 2, 4]) s.put('bar.5m:EUR-USD', bar(i * 300_000, i));
    expect(starts(await s.range('bar.5m:EUR-USD', { limit: 10 }))).toEqual([1, 2, 3, 4, 5].map((i) => i * 300_000));
    if (impl.peer) expect(starts(await (await impl.peer(s)).range('bar.5m:EUR-USD', { limit: 10 }))).toEqual([1, 2, 3, 4, 5].map((i) => i * 300_000));
  });

  it('a limit of 0 answers nothing', async () => {
    const s = await impl.create(100);
    s.put('bar.1h:AAPL', bar(0));
    expect(await s.range('bar.1h:AAPL', { limit: 0 })).toEqual([]);
  });

  it('answers a read `asOf` a time with each bar as it was then, and none put after it', async () => {
    let now = 1000;
    const s = await impl.create(100, { keepRevisionsMs: 60_000, now: () => now });
    const ch = 'bar.1m:AAPL';
    const flush = async (): Promise<void> => void (await (s as Partial<RedisBarStore>).flush?.());
    s.put(ch, bar(0, 100));
    s.put(ch, bar(M, 101));
    await flush();
    now = 2000;
    s.put(ch, bar(0, 99, { corrected: true })); // a correction
    await flush();
    now = 3000;
    s.put(ch, bar(2 * M, 102)); // a late trade in a minute that had none: a new bar
    s.put(ch, bar(M, 101, { corrected: true, empty: true, v: 0, n: 0 })); // a cancel
    now = 4000;
    s.put(ch, bar(0, 98, { corrected: true })); // corrected again before a flush: both versions count
    const views = async (store: BarStore): Promise<unknown[]> =>
      Promise.all(
        [500, 1500, 2500, 3500, undefined].map(async (asOf) =>
          (await store.range(ch, { limit: 10, ...(asOf === undefined ? {} : { asOf }) })).map((b) => [b.t / M, b.c, b.empty ?? false]),
        ),
      );
    const expected = [
      [],
      [
        [0, 100, false],
        [1, 101, false],
      ],
      [
        [0, 99, false],
        [1, 101, false],
      ],
      [
        [0, 99, false],
        [1, 101, true],
        [2, 102, false],
      ],
      [
        [0, 98, false],
        [1, 101, true],
        [2, 102, false],
      ],
    ];
    expect(await views(s)).toEqual(expected);
    // `limit` counts the bars of then: one put later is left out and an older one read instead
    expect(starts(await s.range(ch, { limit: 2, asOf: 1500 }))).toEqual([0, M]);
    expect(starts(await s.range(ch, { limit: 1, asOf: 2500, to: 3 * M }))).toEqual([M]);
    // the bars served are the bars put, with nothing of the store's own
    expect((await s.range(ch, { limit: 1, asOf: 1500, to: M }))[0]).toEqual(bar(0, 100));
    if (impl.peer) expect(await views(await impl.peer(s))).toEqual(expected);
  });

  it('keeps a replaced version `keepRevisionsMs` after it was replaced, then never shows a later version in its place', async () => {
    let now = 1000;
    const s = await impl.create(100, { keepRevisionsMs: 10_000, now: () => now });
    const ch = 'bar.1s:BTC-USD';
    s.put(ch, bar(0, 100));
    now = 2000;
    s.put(ch, bar(0, 99, { corrected: true }));
    now = 11_000;
    s.put(ch, bar(1000, 101));
    expect((await s.range(ch, { limit: 10, asOf: 1500 })).map((b) => b.c)).toEqual([100]); // replaced 9 s ago: kept
    now = 12_500;
    s.put(ch, bar(2000, 102)); // the version replaced at 2000 is past keeping
    await (s as Partial<RedisBarStore>).flush?.();
    expect((await s.range(ch, { limit: 10, asOf: 1500 })).map((b) => b.c)).toEqual([]);
    expect((await s.range(ch, { limit: 10, asOf: 2500 })).map((b) => b.c)).toEqual([99]);
    if (s instanceof MemoryBarStore) expect(s.size().revisions).toBe(0);
    if (s instanceof RedisBarStore) {
      expect(await s.redis.exists(s.revisionsKey(ch))).toBe(0); // pruned to nothing: the key is gone
    }
  });
});

describe('RedisBarStore: the write script', () => {
  const calls = async (r: Redis, cmd: string): Promise<number> =>
    Number(new RegExp(`^cmdstat_${cmd}:calls=(\\d+)`, 'm').exec(await r.info('commandstats'))?.[1] ?? 0);

  it('travels once per flush (SCRIPT LOAD), each bar by its SHA1 (EVALSHA), and a SCRIPT FLUSH between flushes loses no bar', async () => {
    const s = (await impls[1]!.create(100)) as RedisBarStore;
    const admin = new Redis(redis.url);
    try {
      await admin.config('RESETSTAT');
      for (let i = 0; i < 5; i++) {
        for (const sym of ['AAPL', 'MSFT', 'IBM']) s.put(`bar.1m:${sym}`, bar(i * M, 100 + i));
        await s.flush();
      }
      expect(await calls(admin, 'eval')).toBe(0);
      expect(await calls(admin, 'evalsha')).toBe(15);
      expect(await calls(admin, 'script\\|load')).toBe(5);
      await admin.script('FLUSH');
      s.put('bar.1m:AAPL', bar(5 * M, 105));
      await s.flush();
      expect((await s.range('bar.1m:AAPL', { limit: 10 })).map((b) => b.c)).toEqual([100, 101, 102, 103, 104, 105]);
    } finally {
      admin.disconnect();
    }
  });
});
