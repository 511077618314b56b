import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { buildBarHistory } from '../../src/history/bar-history.js';
import type { BarHistory } from '../../src/history/bar-history.js';
import { RedisBarStore } from '../../src/history/redis-bar-store.js';
import { startRedis } from '../helpers/servers.js';

/**
 * Feed processes keep replaced bar versions for their own auth.delayMs; a gateway reads them at
 * its own. A gateway further behind than the writers keep warns (docs/operations.md).
 */
type RedisServer = Awaited<ReturnType<typeof startRedis>>;
let redis: RedisServer;
const closers: (() => Promise<void>)[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await Promise.allSettled(closers.map((c) => c()));
  await redis?.destroy();
});

interface Line {
  obj: Record<string, unknown>;
  msg: string | undefined;
}
function recorder(): { warns: Line[]; info(): void; warn(obj: object, msg?: string): void } {
  const warns: Line[] = [];
  return { warns, info() {}, warn: (obj, msg) => warns.push({ obj: obj as Record<string, unknown>, msg }) };
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function history(prefix: string, delayMs: number, roles: { gateway: boolean; feeds: boolean }, log: ReturnType<typeof recorder>): BarHistory {
  const config = loadConfig({ env: {}, overrides: { redisUrl: redis.url, auth: { delayMs }, history: { redisKeyPrefix: prefix } } });
  const h = buildBarHistory({ config, registry: defaultRegistry(), log: log as never, ...roles });
  closers.push(() => h.close());
  return h;
}

describe('bar history: the writers keep time against a gateway delay', () => {
  it('a gateway whose auth.delayMs is longer than the feed processes keep warns once, naming both', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const feedLog = recorder();
    const feed = history(prefix, 60_000, { gateway: false, feeds: true }, feedLog);
    expect(await (feed.store as RedisBarStore).waitReady(5000)).toBe(true);
    const keyOf = (feed.store as RedisBarStore).keepKey;
    // the writer recorded its keep time
    const probe = new RedisBarStore({ url: redis.url, windowBars: 10, keyPrefix: prefix });
    closers.push(() => probe.close());
    expect(await probe.waitReady(5000)).toBe(true);
    let recorded: string | null = null;
    await until(() => {
      void probe.redis.get(keyOf).then((v) => (recorded = v));
      return recorded === '60000';
    });

    const longLog = recorder();
    const long = history(prefix, 900_000, { gateway: true, feeds: false }, longLog);
    await until(() => (long.store as RedisBarStore).writerKeepMs !== undefined);
    expect((long.store as RedisBarStore).writerKeepMs).toBe(60_000);
    expect(longLog.warns).toHaveLength(1);
    expect(longLog.warns[0]!.obj).toMatchObject({ writerKeepMs: 60_000, delayMs: 900_000 });
    expect(longLog.warns[0]!.msg).toMatch(/auth\.delayMs.*TICKWIRE_AUTH_DELAY_MS/);

    // a gateway at (or under) the writers keep time: nothing to say
    const sameLog = recorder();
    const same = history(prefix, 60_000, { gateway: true, feeds: false }, sameLog);
    await until(() => (same.store as RedisBarStore).writerKeepMs !== undefined);
    expect(sameLog.warns).toEqual([]);
    expect(feedLog.warns).toEqual([]);
  });

  it('a gateway started before the feed process warns when the feed process records a shorter keep', async () => {
    const prefix = `t:${randomBytes(4).toString('hex')}:`;
    const log = recorder();
    const gw = new RedisBarStore({ url: redis.url, windowBars: 10, keyPrefix: prefix, readDelayMs: 900_000, keepCheckMs: 20, log });
    closers.push(() => gw.close());
    expect(await gw.waitReady(5000)).toBe(true);
    await new Promise((r) => setTimeout(r, 60));
    expect(gw.writerKeepMs).toBeUndefined();
    expect(log.warns).toEqual([]);
    const feed = new RedisBarStore({ url: redis.url, windowBars: 10, keyPrefix: prefix, keepRevisionsMs: 0, recordKeep: true });
    closers.push(() => feed.close());
    await until(() => log.warns.length > 0);
    expect(gw.writerKeepMs).toBe(0);
    expect(log.warns[0]!.obj).toMatchObject({ writerKeepMs: 0, delayMs: 900_000 });
    // checked again every keepCheckMs, said once
    await new Promise((r) => setTimeout(r, 100));
    expect(log.warns).toHaveLength(1);
  });
});
