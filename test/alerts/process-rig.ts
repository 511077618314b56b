import { NatsBus } from '../../src/bus/nats-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import type { Tick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import { freePort, startNats, startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';
import { SECRET, SERVICE_TOKEN } from '../auth/helpers.js';

type Server = TestServer & { destroy(): Promise<void> };

/**
 * Scale-out alerts with real processes: nats-server and redis-server, `tickwire alerts` and
 * `tickwire gateway` spawned on them (auth required, the test's secret and service token, alert
 * writes flushed at once), and AAPL trades published on NATS as a feed would.
 */
export interface AlertsProcessRig {
  readonly nats: Server;
  readonly redis: Server;
  /** the test's own connection to NATS, which publishes the trades */
  readonly ticks: NatsBus;
  /** publish an AAPL trade at `p` (received now, the next seq) */
  trade(p: number): void;
  /** spawn `tickwire alerts` (ops on a free port) and wait for its /health */
  startAlerts(): Promise<TickwireProcess>;
  /** spawn `tickwire gateway` on `port` and wait for its /health */
  startGateway(port: number): Promise<TickwireProcess>;
  /** an HTTP request with the service token; the answer's status and JSON body */
  call(port: number, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>;
  /** stop every process started (in the order started), then the connection and the servers */
  stop(): Promise<void>;
}

export async function startAlertsProcessRig(): Promise<AlertsProcessRig> {
  const [nats, redis] = await Promise.all([startNats(), startRedis()]);
  let ticks: NatsBus;
  try {
    ticks = await NatsBus.connect({ servers: nats.url, name: 'test-ticks' });
  } catch (err) {
    await Promise.all([nats.destroy(), redis.destroy()]);
    throw err;
  }
  const procs: TickwireProcess[] = [];
  let seq = 0;
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    TICKWIRE_AUTH: 'required',
    TICKWIRE_JWT_SECRET: SECRET,
    TICKWIRE_SERVICE_TOKEN: SERVICE_TOKEN,
    TICKWIRE_ALERTS_FLUSH_MS: '0',
  };
  const spawn = async (role: string, extra: Record<string, string>, healthPort: number): Promise<TickwireProcess> => {
    const p = spawnTickwire([role], { ...env, ...extra });
    procs.push(p);
    await waitHttpOk(`http://127.0.0.1:${healthPort}/health`, 60_000, p);
    return p;
  };
  return {
    nats,
    redis,
    ticks,
    trade(p) {
      const now = Date.now();
      const tick = { k: 'trade', sym: 'AAPL', src: 'test', seq: ++seq, ep: 1, ts: msToNs(now), rt: msToNs(now), id: `t${seq}`, p, s: 1 } as unknown as Tick;
      ticks.publish(marketSubject('stock', 'trade', 'AAPL'), encodeTick(tick));
    },
    async startAlerts() {
      const ops = await freePort();
      return spawn('alerts', { TICKWIRE_OPS_PORT: String(ops) }, ops);
    },
    startGateway: (port) => spawn('gateway', { PORT: String(port) }, port),
    async call(port, method, path, body) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, {
        method,
        headers: { authorization: `Bearer ${SERVICE_TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: res.status, body: await res.json() };
    },
    async stop() {
      for (const p of procs) await p.stop();
      await ticks.close();
      await Promise.all([nats.destroy(), redis.destroy()]);
    },
  };
}
