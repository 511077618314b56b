import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { errorOf } from '../helpers/config-error.js';
import { parseRedisUrl } from '../../src/core/redis-url.js';
import { RedisEventLog } from '../../src/executions/redis-event-log.js';
import { REDACTED, redactUrl } from '../../src/ops/redact.js';
import { createRedis } from '../../src/store/redis-connection.js';
import { freePort, startRedis } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/** Configuration of clustered NATS and Redis Sentinel (docs/operations.md). */

describe('NATS_URL with every cluster node', () => {
  it('accepts a comma separated list and refuses an entry that is not a server URL, naming the key', () => {
    const cfg = loadConfig({ env: { NATS_URL: 'nats://10.0.0.1:4222, nats://10.0.0.2:4222,nats://user:pw@10.0.0.3:4222' } });
    expect(cfg.natsUrl).toContain('10.0.0.3');
    expect(loadConfig({ env: { NATS_URL: '127.0.0.1:4222,tls://nats.example:4443' } }).natsUrl).toBeDefined();
    expect(errorOf(() => loadConfig({ env: { NATS_URL: 'nats://10.0.0.1:4222,,nats://10.0.0.2:4222' } }))).toMatch(/natsUrl.*"" is not a NATS server URL/);
    expect(errorOf(() => loadConfig({ env: { NATS_URL: 'http://10.0.0.1:4222' } }))).toMatch(/natsUrl.*"http:\/\/10\.0\.0\.1:4222" is not a NATS server URL/);
  });

  it('executions.replicas is the JetStream replica count (1 to 5)', () => {
    expect(loadConfig({ env: { TICKWIRE_EXECUTIONS_REPLICAS: '3' } }).executions.replicas).toBe(3);
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_EXECUTIONS_REPLICAS: '7' } }))).toMatch(/executions\.replicas/);
  });
});

describe('REDIS_URL for Redis Sentinel', () => {
  it('parses redis+sentinel:// into sentinels, master name, db and credentials', () => {
    expect(parseRedisUrl('redis+sentinel://10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2?sentinelPassword=s%26p')).toEqual({
      kind: 'sentinel',
      sentinels: [
        { host: '10.0.0.1', port: 26379 },
        { host: '10.0.0.2', port: 26379 },
        { host: '::1', port: 26380 },
      ],
      name: 'mymaster',
      db: 2,
      sentinelPassword: 's&p',
    });
    expect(parseRedisUrl('redis+sentinel://app:pw@h1:1/m')).toMatchObject({ username: 'app', password: 'pw', name: 'm', db: 0 });
    expect(parseRedisUrl('redis://127.0.0.1:6379/0')).toEqual({ kind: 'url', url: 'redis://127.0.0.1:6379/0' });
  });

  it('refuses malformed URLs with a message naming the key', () => {
    expect(errorOf(() => loadConfig({ env: { REDIS_URL: 'redis+sentinel://10.0.0.1:26379' } }))).toMatch(/redisUrl.*master name is missing/);
    expect(errorOf(() => loadConfig({ env: { REDIS_URL: 'redis+sentinel:///mymaster' } }))).toMatch(/redisUrl.*at least one sentinel/);
    expect(errorOf(() => loadConfig({ env: { REDIS_URL: 'redis+sentinel://h:99999/m' } }))).toMatch(/redisUrl.*"h:99999" is not host:port/);
    expect(errorOf(() => loadConfig({ env: { REDIS_URL: 'redis+sentinel://h:1/m?foo=1' } }))).toMatch(/redisUrl.*unknown parameter "foo"/);
    expect(errorOf(() => loadConfig({ env: { REDIS_URL: '127.0.0.1:6379' } }))).toMatch(
      /redisUrl.*must start with redis:\/\/, rediss:\/\/ or redis\+sentinel:\/\//,
    );
    expect(() => createRedis('sentinel://x')).toThrow(ConfigError);
  });

  it('hides passwords of sentinel URLs', () => {
    expect(redactUrl('redis+sentinel://:pw@h1:1,h2:2/m?sentinelPassword=sp')).toBe(`redis+sentinel://:${REDACTED}@h1:1,h2:2/m?sentinelPassword=${REDACTED}`);
  });
});

describe('redis.ackReplicas: an execution counts once a replica has it', () => {
  const cleanup: (() => Promise<void> | void)[] = [];
  afterAll(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  it('refuses an append no replica confirmed, and announces it once when its retry finds it stored', async () => {
    const primary = await startRedis();
    cleanup.push(() => primary.destroy());
    // WAIT returns as soon as the replica acknowledges; the bound only matters while none does.
    // 500 ms was too short for a replica's acknowledgement on a loaded CI machine (a refusal
    // although the replica was online), so the refusal below waits 2 s
    const log = new RedisEventLog({ url: primary.url, keyPrefix: 'ack:', maxPerUser: 100, retentionMs: 60_000, ackReplicas: 1, ackTimeoutMs: 2000 });
    cleanup.push(() => log.close());
    const seen: number[] = [];
    log.follow((user, ev) => seen.push(ev.seq));
    const e = { id: 'a-1', order: 'o', sym: 'AAPL', side: 'buy' as const, qty: 1, p: 10, fee: 0, t: 1 };
    await expect(log.append('u', e)).rejects.toThrow(/only 0 of 1 replicas.*redis\.ackReplicas/);
    expect(seen).toEqual([]); // not announced: not durable yet

    // a replica joins; the order system retries the same id
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'tw-replica-'));
    const replica: ChildProcess = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir, '--replicaof', '127.0.0.1', String(primary.port)],
      { stdio: 'ignore' },
    );
    cleanup.push(() => {
      replica.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    });
    const probe = createRedis(primary.url, { lazyConnect: true });
    probe.on('error', () => undefined);
    cleanup.push(() => probe.disconnect());
    await waitFor(
      async () => {
        if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
        return /slave0:.*state=online/.test(await probe.info('replication'));
      },
      { what: 'the replica in sync', timeout: 30_000 },
    );
    expect(await log.append('u', e)).toEqual({ seq: 1, duplicate: true });
    expect(seen).toEqual([1]);
    expect(await log.append('u', e)).toEqual({ seq: 1, duplicate: true }); // a plain repeat: not announced again
    expect(await log.append('u', { ...e, id: 'a-2' })).toEqual({ seq: 2, duplicate: false });
    expect(seen).toEqual([1, 2]);
  });
});
