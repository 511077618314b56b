import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/store/redis-connection.js';
import { RedisSentinelSet } from '../helpers/ha-servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A process opens several Redis clients (last values, the execution log, notifications, alerts,
 * bars). Under Sentinel each of them follows failovers through the sentinels' `+switch-master`
 * announcements; one subscription per sentinel is enough for all of them, not one per client.
 */
let set: RedisSentinelSet;

beforeAll(async () => {
  set = await RedisSentinelSet.start();
}, 60_000);

afterAll(async () => {
  await set?.destroy();
});

/** the connections subscribed to a sentinel's announcements, by `CLIENT LIST` */
async function subscribers(port: number): Promise<number> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const list = (await r.call('CLIENT', 'LIST')) as string;
    return list.split('\n').filter((line) => / sub=[1-9]/.test(line)).length;
  } finally {
    r.disconnect();
  }
}

async function subscribersPerSentinel(): Promise<number[]> {
  return Promise.all(set.sentinels.map((s) => subscribers(s.port)));
}

describe('failover listeners under Redis Sentinel', () => {
  it('share one subscription per sentinel between the clients of a process, and close with the last client', async () => {
    const clients = ['tw-a', 'tw-b', 'tw-c'].map((connectionName) => createRedis(set.url, { connectionName, maxRetriesPerRequest: 1 }));
    for (const c of clients) c.on('error', () => undefined);
    await Promise.all(clients.map((c) => waitFor(() => c.status === 'ready', { what: 'a client ready' })));
    await waitFor(async () => (await subscribersPerSentinel()).every((n) => n >= 1), { what: 'the failover listeners subscribed' });
    expect(await subscribersPerSentinel()).toEqual(set.sentinels.map(() => 1));

    // the listeners stay while any client of the process is open
    clients[0]!.disconnect();
    clients[1]!.disconnect();
    await waitFor(() => clients[1]!.status === 'end', { what: 'two clients closed' });
    expect(await subscribersPerSentinel()).toEqual(set.sentinels.map(() => 1));
    expect(await clients[2]!.ping()).toBe('PONG');

    // and go with the last one
    clients[2]!.disconnect();
    await waitFor(async () => (await subscribersPerSentinel()).every((n) => n === 0), { what: 'the failover listeners closed' });
  }, 60_000);
});
