import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * `npm run cluster` (scripts/cluster.mjs, here from source): three NATS nodes, Redis, a feed, a
 * gateway with two workers, the portfolio service and the alert service start on loopback; market
 * data, the service API, the portfolio service and the alert service work through it; SIGINT (Ctrl-C) stops every process it started.
 */
interface Ready {
  urls: Record<string, string>;
  serviceToken: string;
  pids: { name: string; pid: number }[];
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

let child: ReturnType<typeof spawn> | undefined;
let ready: Ready | undefined;
afterAll(async () => {
  // a failed test must not leave the deployment running: SIGINT it, then the children by PID
  if (child && child.exitCode === null) {
    child.kill('SIGINT');
    await new Promise((r) => child!.once('exit', r));
  }
  for (const p of ready?.pids ?? []) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
});

describe('npm run cluster', () => {
  it('starts the whole scale-out deployment, data flows, and Ctrl-C leaves no process behind', { timeout: 240_000 }, async () => {
    const port = await freePort();
    child = spawn(process.execPath, ['scripts/cluster.mjs', '--source', '--port', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));

    ready = await waitFor(
      () => {
        if (child!.exitCode !== null) throw new Error(`cluster exited early: ${out.slice(-3000)}`);
        const m = /^cluster ready (.*)$/m.exec(out);
        return m ? (JSON.parse(m[1]!) as Ready) : undefined;
      },
      { what: 'the "cluster ready" line', timeout: 180_000, interval: 200 },
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${out.slice(-3000)}`);
    });
    expect(ready.pids.map((p) => p.name).sort()).toEqual([
      'nats-server n1',
      'nats-server n2',
      'nats-server n3',
      'redis-server',
      'tickwire alerts',
      'tickwire feed synthetic',
      'tickwire gateway',
      'tickwire portfolio',
    ]);
    expect(ready.urls.nats!.split(',')).toHaveLength(3);
    expect(out).toContain(`ws://127.0.0.1:${port}/v1/stream`);
    expect(out).toContain(`http://127.0.0.1:${port}/admin`);

    // market data from the feed process, through NATS, out of the gateway
    const c = await TestClient.connect(ready.urls.stream!, { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:BTC-USD'], throttle: 0 });
    await c.waitForCount((f) => f.op === 'data' && f.ch === 'quote:AAPL' && !f.snapshot, 3, 30_000);
    // /ready (NATS and Redis) and /health listing the feed it hears on the bus
    expect((await fetch(ready.urls.health!.replace('/health', '/ready'))).status).toBe(200);
    // a gateway worker learns feeds from their periodic health reports on the bus: wait for one
    const healthUrl = ready.urls.health!;
    const health = await waitFor(
      async () => {
        const h = (await (await fetch(healthUrl)).json()) as { feeds: { id: string; state: string }[] };
        return h.feeds.some((f) => f.id === 'synthetic' && f.state === 'connected') ? h : undefined;
      },
      { what: '/health listing the feed', timeout: 20_000 },
    );
    expect(health.feeds).toEqual(expect.arrayContaining([expect.objectContaining({ id: 'synthetic', state: 'connected' })]));
    // the portfolio service (its own process) answers positions through the gateway's service API
    const auth = { authorization: `Bearer ${ready.serviceToken}`, 'content-type': 'application/json' };
    const base = `http://127.0.0.1:${port}`;
    const put = await fetch(`${base}/v1/users/ops-test/positions`, {
      method: 'PUT',
      headers: auth,
      body: JSON.stringify({ ccy: 'USD', positions: [{ sym: 'AAPL', qty: 3, cost: 600 }] }),
    });
    expect(put.status).toBe(200);
    expect(((await (await fetch(`${base}/v1/users/ops-test/positions`, { headers: auth })).json()) as { positions: unknown[] }).positions).toEqual([
      { sym: 'AAPL', qty: 3, cost: 600 },
    ]);
    // the alert service (its own process) takes a rule through the gateway's service API: without
    // it the cluster answered every alert request 503 ALERTS_UNAVAILABLE
    const rule = { id: 'cluster-1', symbol: 'AAPL', kind: 'price', direction: 'above', level: 1_000_000 };
    const created = await fetch(`${base}/v1/users/ops-test/alerts`, { method: 'POST', headers: auth, body: JSON.stringify(rule) });
    expect(created.status, await created.clone().text()).toBe(201);
    const rules = (await (await fetch(`${base}/v1/users/ops-test/alerts`, { headers: auth })).json()) as { alerts: { id: string }[] };
    expect(rules.alerts.map((a) => a.id)).toEqual(['cluster-1']);
    expect((await fetch(ready.urls.alertsOps!)).status).toBe(200);
    // the admin console with the printed token lists the connections of both workers, and closes
    // a connection on whichever worker holds it
    const others = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(ready!.urls.stream!, { encoding: 'json' })));
    const ids = await Promise.all([c, ...others].map(async (x) => (await x.waitFor((f) => f.op === 'welcome')).conn as string));
    const listed = await waitFor(
      async () => {
        const o = (await (await fetch(`${base}/admin/api/overview`, { headers: auth })).json()) as {
          connections: { id: string }[];
          channels: { channel: string; subscribers: number }[];
        };
        return ids.every((id) => o.connections.some((x) => x.id === id)) ? o : undefined;
      },
      { what: 'every connection in /admin/api/overview', timeout: 10_000, interval: 200 },
    );
    expect(listed.channels.find((x) => x.channel === 'quote:AAPL')?.subscribers).toBeGreaterThanOrEqual(1);
    const stats = (await (await fetch(ready.urls.stats!)).json()) as { workersAnswered?: number };
    expect(stats.workersAnswered).toBe(2);
    for (const [i, x] of others.entries()) {
      const r = await fetch(`${base}/admin/api/connections/${ids[i + 1]!}/close`, { method: 'POST', headers: auth });
      expect(r.status).toBe(202);
      expect(await x.waitClose(10_000)).toBe(1008);
    }
    c.close();

    // Ctrl-C: everything stops, nothing is left behind
    for (const p of ready.pids) expect(alive(p.pid), p.name).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
    for (const p of ready.pids) expect(alive(p.pid), `${p.name} (${p.pid}) still running`).toBe(false);
    expect(out).toMatch(/cluster: stopped 8 processes/);
  });
});
