import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { freePort, startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';
import { api, SECRET, SERVICE_TOKEN } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';

type Server = TestServer & { destroy(): Promise<void> };

describe('tickwire portfolio (its own process)', () => {
  let nats: Server;
  let redis: Server;
  let proc: TickwireProcess | undefined;
  let gateway: Engine | undefined;
  beforeAll(async () => {
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
  });
  afterAll(async () => {
    await gateway?.close();
    await proc?.stop();
    await Promise.all([nats?.destroy(), redis?.destroy()]);
  });

  it('serves positions to the gateways over NATS and stops cleanly', async () => {
    const opsPort = await freePort();
    proc = spawnTickwire(['portfolio'], { NATS_URL: nats.url, REDIS_URL: redis.url, TICKWIRE_OPS_PORT: String(opsPort), HOST: '127.0.0.1' });
    await waitHttpOk(`http://127.0.0.1:${opsPort}/health`, 30_000, proc);
    gateway = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' }, natsUrl: nats.url, auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } },
      { roles: { feeds: [] }, env: {} },
    );
    const put = await api(gateway, 'PUT', '/v1/users/rita/positions', { ccy: 'USD', positions: [{ sym: 'SPY', qty: 3, cost: 1700 }] });
    expect(put).toMatchObject({ status: 200, body: { user: 'rita', positions: [{ sym: 'SPY', qty: 3, cost: 1700 }] } });
    await api(gateway, 'POST', '/v1/executions', { user: 'rita', id: 'p1', order: 'o', sym: 'SPY', side: 'sell', qty: 1, p: 590, t: Date.now() });
    await waitFor(async () => (await api(gateway!, 'GET', '/v1/users/rita/positions')).body.positions?.[0]?.qty === 2, {
      what: 'the execution applied',
      timeout: 15_000,
    });
    expect(await proc.stop()).toBe(0);
    proc = undefined;
    expect((await api(gateway, 'GET', '/v1/users/rita/positions')).status).toBe(503);
  });
});
