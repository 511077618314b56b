import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGatewayWorkers } from '../../src/workers/supervisor.js';
import type { GatewayWorkers } from '../../src/workers/supervisor.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import type { Engine } from '../../src/app/engine.js';
import { api, SECRET, SERVICE_TOKEN, token } from '../auth/helpers.js';
import { gatewayWorkerEntry, spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import { freePort, startNats } from '../helpers/servers.js';
import { publishTick } from '../auth/helpers.js';
import { startEngine } from '../../src/app/engine.js';

/**
 * `gateway.workers`: one port served by several uWS worker threads (src/workers). Embedded mode,
 * so the workers also get their bus, last values, execution log and portfolio from the main thread.
 */
const PER_USER = 6;
const base = {
  host: '127.0.0.1',
  port: 0,
  log: { level: 'silent' },
  synthetic: { rate: 400 },
  auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
  limits: { connectionsPerUser: PER_USER },
  gateway: { workers: 2 },
};

interface WorkerStats {
  connections: number;
  workers: { worker: number; connections: number }[];
  workersAnswered: number;
  gateway: { connectionsOpened: number };
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let v = await read();
  while (!ok(v)) {
    if (Date.now() > deadline) throw new Error(`condition not met: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
    v = await read();
  }
  return v;
}

/**
 * `n` connections (one at a time, from the only user connected) that sit on both workers: the
 * kernel spreads connections by a hash of their addresses, so a few rounds may be needed.
 */
async function connectOnBoth(port: number, to: string, n: number, opts?: Parameters<typeof TestClient.connect>[1]): Promise<TestClient[]> {
  const stats = async (): Promise<WorkerStats> => (await fetch(`http://127.0.0.1:${port}/v1/stats`)).json() as Promise<WorkerStats>;
  for (let round = 0; round < 8; round++) {
    const open: TestClient[] = [];
    for (let i = 0; i < n; i++) open.push(await TestClient.connect(to, opts));
    const s = await until(stats, (v) => v.connections === n);
    if (s.workers.every((w) => w.connections > 0)) return open;
    for (const c of open) c.close();
    await until(stats, (v) => v.connections === 0);
  }
  throw new Error(`${n} connections never landed on both workers`);
}

describe('gateway workers (embedded, 2 workers)', () => {
  let gw: GatewayWorkers;
  const http = (path: string): string => `http://127.0.0.1:${gw.port}${path}`;
  const url = (query = ''): string => `ws://127.0.0.1:${gw.port}/v1/stream${query}`;
  const stats = async (): Promise<WorkerStats> => (await fetch(http('/v1/stats'))).json() as Promise<WorkerStats>;

  /** every client a test opened: closed after it, whatever it asserted, so the next test starts from 0 connections */
  const opened: TestClient[] = [];
  const track = <T>(c: T): T => {
    if (c instanceof TestClient) opened.push(c);
    return c;
  };
  const connectSplit = async (to: string, n: number): Promise<TestClient[]> => (await connectOnBoth(gw.port, to, n)).map(track);

  beforeAll(async () => {
    gw = await startGatewayWorkers({ overrides: base, ...gatewayWorkerEntry() });
  }, 60_000);
  afterEach(async () => {
    for (const c of opened.splice(0)) c.close();
    await until(stats, (v) => v.connections === 0);
  }, 30_000);
  afterAll(async () => {
    await gw?.close();
  }, 30_000);

  it('holds the per-user connection limit across workers, also for upgrades racing on both', async () => {
    const t = await token({ sub: 'alice' });
    const connect = (): Promise<TestClient | number> =>
      TestClient.connect(url(`?token=${t}`)).then(track, (err: { statusCode?: number }) => err.statusCode ?? -1);
    const open = await connectSplit(url(`?token=${t}`), PER_USER);
    const split = await stats();
    expect(split.workers.map((w) => w.connections).sort()).not.toContain(0);
    // whichever worker the next upgrade lands on, the user is at the limit
    for (let i = 0; i < 6; i++) expect(await connect()).toBe(429);
    open.pop()!.close();
    await until(stats, (v) => v.connections === PER_USER - 1);
    const again = await connect();
    expect(again).toBeInstanceOf(TestClient);
    open.push(again as TestClient);
    for (const c of open) c.close();
    await until(stats, (v) => v.connections === 0);

    // 3x the limit at once: exactly the limit gets through, on whichever workers
    const results = await Promise.all(Array.from({ length: PER_USER * 3 }, connect));
    const accepted = results.filter((r): r is TestClient => r instanceof TestClient);
    expect(accepted).toHaveLength(PER_USER);
    expect(results.filter((r) => r === 429)).toHaveLength(PER_USER * 2);
    // and they stay open: a connection dropped after its welcome frees its slot for one more
    // (uWS upgrade inside cork, test/e2e/gateway-upgrade-after-auth.test.ts)
    await until(stats, (v) => v.connections === PER_USER);
    expect(accepted.filter((c) => c.closeCode !== undefined).map((c) => c.closeCode)).toEqual([]);
    for (const c of accepted) c.close();
    await until(stats, (v) => v.connections === 0);
  }, 60_000);

  it('delivers market data to clients on every worker, and sums connections in /v1/stats, /metrics and /health', async () => {
    const clients = await Promise.all(Array.from({ length: 16 }, async () => track(await TestClient.connect(url()))));
    const s = await until(stats, (v) => v.connections === 16);
    expect(s.workersAnswered).toBe(2);
    expect(s.workers).toHaveLength(2);
    expect(s.workers.reduce((n, w) => n + w.connections, 0)).toBe(16);
    expect(s.workers.every((w) => w.connections > 0)).toBe(true);

    for (const [i, c] of clients.entries()) c.send({ op: 'subscribe', id: i, channels: ['quote:BTC-USD', 'trade:ETH-USD'] });
    // a live update (not only the snapshot) on every client, whichever worker holds it
    await Promise.all(clients.map((c) => c.waitFor((f) => f.op === 'data' && f.ch === 'quote:BTC-USD' && f.snapshot !== true, 15_000)));

    const metrics = await (await fetch(http('/metrics'))).text();
    expect(metrics).toMatch(/^tickwire_connections 16$/m);
    expect(metrics).toMatch(/^tickwire_info\{[^}]*\} 1$/m);
    // process-wide figures come once, from the main thread
    expect(metrics.match(/^process_cpu_seconds_total /gm)).toHaveLength(1);
    const subs = /^tickwire_subscriptions\{kind="quote"\} (\d+)$/m.exec(metrics);
    expect(Number(subs?.[1])).toBe(16);
    const health = (await (await fetch(http('/health'))).json()) as { connections: number; workers: { configured: number; running: number } };
    expect(health.connections).toBe(16);
    expect(health.workers).toMatchObject({ configured: 2, running: 2 });
    for (const c of clients) c.close();
    await until(stats, (v) => v.connections === 0);
  }, 60_000);

  it('serves one execution log to subscribers on every worker (recorded through any worker)', async () => {
    const t = await token({ sub: 'bob' });
    const clients = await connectSplit(url(`?token=${t}`), 4);
    for (const c of clients) await c.request({ op: 'subscribe', id: 1, channels: ['executions'] });
    const execution = JSON.stringify({ user: 'bob', id: 'ex-w1', order: 'o-1', sym: 'AAPL', side: 'buy', qty: 3, p: 200.5, t: Date.now() });
    const res = await fetch(http('/v1/executions'), {
      method: 'POST',
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
      body: execution,
    });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ user: 'bob', seq: 1, duplicate: false });
    await Promise.all(clients.map((c) => c.waitFor((f) => f.op === 'data' && f.ch === 'executions' && f.d?.id === 'ex-w1')));
    // the same execution through the other worker is the same event (a retry repeats it as it
    // was: the same id with other content, `t` included, is a 409 CONFLICT)
    for (let i = 0; i < 4; i++) {
      const dup = await fetch(http('/v1/executions'), {
        method: 'POST',
        headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
        body: execution,
      });
      expect(await dup.json()).toMatchObject({ seq: 1, duplicate: true });
    }
    for (const c of clients) c.close();
    await until(stats, (v) => v.connections === 0);
  }, 60_000);
});

describe('gateway workers (embedded): alerts and notifications across workers', () => {
  it("evaluates a rule created through one worker once, on the main thread, and delivers the firing to the user's connections on every worker", async () => {
    // only BTC-USD from the synthetic feed: the AAPL trades below are the only ones
    const gw = await startGatewayWorkers({
      overrides: { ...base, synthetic: { rate: 50, symbols: ['BTC-USD'] }, alerts: { flushMs: 0 } },
      ...gatewayWorkerEntry(),
    });
    const engine = { port: gw.port } as Engine;
    const isNote = (f: Frame): boolean => f.op === 'data' && f.ch === 'notifications' && f.d?.kind === 'notification';
    try {
      const t = await token({ sub: 'erin' });
      const clients = await connectOnBoth(gw.port, `ws://127.0.0.1:${gw.port}/v1/stream`, 4, { headers: { authorization: `Bearer ${t}` }, encoding: 'json' });
      for (const c of clients) expect((await c.request({ op: 'subscribe', id: 1, channels: ['notifications'] })).subscribed).toEqual(['notifications']);
      // in band, on whichever worker holds the first connection; listed through every worker
      expect(
        await clients[0]!.request({ op: 'alert.create', id: 2, rule: { id: 'aapl-230', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 } }),
      ).toMatchObject({ op: 'alert.create', alert: { id: 'aapl-230', user: 'erin' } });
      for (const c of clients) expect((await c.request({ op: 'alert.list', id: 3 })).alerts).toEqual([expect.objectContaining({ id: 'aapl-230' })]);
      // a refused rule keeps its code and field across the thread boundary
      expect(await api(engine, 'POST', '/v1/users/erin/alerts', { id: 'x1', symbol: 'ZZZZ', kind: 'price', direction: 'above', level: 1 })).toMatchObject({
        status: 400,
        body: { error: 'ALERT_UNKNOWN_SYMBOL', field: 'symbol' },
      });
      const trade = (p: number): void => publishTick(gw.main!, 'stock', { k: 'trade', sym: 'AAPL', id: `t${p}-${Math.random()}`, p, s: 1 } as never);
      trade(229);
      await until(
        async () => (await api(engine, 'GET', '/v1/users/erin/alerts/aapl-230')).body.state?.phase,
        (phase) => phase === 'armed',
      );
      trade(231);
      // one firing, one notification, on every connection of the user (both workers)
      const got = await Promise.all(clients.map((c) => c.waitFor(isNote, 15_000)));
      for (const f of got) expect(f.d).toMatchObject({ type: 'alert', title: 'AAPL above 230', data: { rule: 'aapl-230', firing: 1, value: 231 } });
      // a notification posted through the service API reaches every worker too
      expect((await api(engine, 'POST', '/v1/users/erin/notifications', { id: 'n-1', type: 'info', title: 'hello' })).status).toBe(201);
      await Promise.all(clients.map((c) => c.waitFor((f) => isNote(f) && f.d.id === 'n-1', 15_000)));
      for (const c of clients) expect(c.frames.filter(isNote)).toHaveLength(2);
      // read state is the main thread's: marked through one worker, seen through any
      await clients[0]!.request({ op: 'notifications.read', id: 4, upToId: 'n-1' });
      for (let i = 0; i < 4; i++) expect((await api(engine, 'GET', '/v1/users/erin/notifications?unread=1')).body).toMatchObject({ unread: 0, items: [] });
      for (const c of clients) c.close();
    } finally {
      await gw.close();
    }
  }, 120_000);

  it("holds a rule when a connection through a worker shows that the user's token lost the symbol, and lets it go with the symbol back (docs/alerts.md, Entitlements)", async () => {
    const gw = await startGatewayWorkers({
      overrides: { ...base, synthetic: { rate: 50, symbols: ['BTC-USD'] }, alerts: { flushMs: 0 } },
      ...gatewayWorkerEntry(),
    });
    const engine = { port: gw.port } as Engine;
    const url = `ws://127.0.0.1:${gw.port}/v1/stream`;
    const rule = async (): Promise<{ held?: boolean; heldReason?: string; state?: { phase?: string } }> =>
      (await api(engine, 'GET', '/v1/users/frank/alerts/aapl-230')).body as never;
    try {
      expect(
        (await api(engine, 'POST', '/v1/users/frank/alerts', { id: 'aapl-230', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 })).status,
      ).toBe(201);
      // tokens without stocks, on both workers: the report goes through the worker to the main thread's alert service
      const noStock = await token({ sub: 'frank', claims: { ent: { classes: ['crypto'] } } });
      const restricted = await connectOnBoth(gw.port, url, 2, { headers: { authorization: `Bearer ${noStock}` }, encoding: 'json' });
      expect(await until(rule, (r) => r.held === true)).toMatchObject({ held: true, heldReason: 'not-entitled' });
      for (const c of restricted) c.close();
      // the symbol back, through a worker: released, and it evaluates again
      const full = await TestClient.connect(url, { headers: { authorization: `Bearer ${await token({ sub: 'frank' })}` }, encoding: 'json' });
      const released = await until(rule, (r) => r.held !== true);
      expect(released.held ?? false).toBe(false);
      full.close();
    } finally {
      await gw.close();
    }
  }, 120_000);
});

describe('gateway workers over NATS (each worker with its own NATS connection)', () => {
  it('serves clients on both workers from the bus, with the per-user limit held across them', async () => {
    const nats = await startNats({ jetstream: false });
    const gw = await startGatewayWorkers({ feeds: [], overrides: { ...base, natsUrl: nats.url }, ...gatewayWorkerEntry() });
    const feed = await startEngine({ natsUrl: nats.url, log: { level: 'silent' } }, { roles: { gateway: false, feeds: [], portfolio: false }, env: {} });
    try {
      const url = `ws://127.0.0.1:${gw.port}/v1/stream`;
      const stats = async (): Promise<WorkerStats> => (await fetch(`http://127.0.0.1:${gw.port}/v1/stats`)).json() as Promise<WorkerStats>;
      const clients = await Promise.all(Array.from({ length: 12 }, () => TestClient.connect(url)));
      const s = await until(stats, (v) => v.connections === 12);
      expect(s.workers.every((w) => w.connections > 0)).toBe(true);
      for (const c of clients) await c.request({ op: 'subscribe', id: 1, channels: ['quote:NVDA'] });
      // every worker subscribed upstream on its own connection: a tick published once reaches all
      let bp = 100;
      const ticker = setInterval(() => publishTick(feed, 'stock', { k: 'quote', sym: 'NVDA', bp: bp++, ap: bp + 1 } as never), 50);
      try {
        await Promise.all(clients.map((c) => c.waitFor((f) => f.op === 'data' && f.ch === 'quote:NVDA' && f.snapshot !== true, 20_000)));
      } finally {
        clearInterval(ticker);
      }
      const t = await token({ sub: 'dave' });
      const results = await Promise.all(
        Array.from({ length: PER_USER * 2 }, () => TestClient.connect(`${url}?token=${t}`).catch((err: { statusCode?: number }) => err.statusCode ?? -1)),
      );
      expect(results.filter((r) => r instanceof TestClient)).toHaveLength(PER_USER);
      expect(results.filter((r) => r === 429)).toHaveLength(PER_USER);
      for (const r of results) if (r instanceof TestClient) r.close();
      for (const c of clients) c.close();
    } finally {
      await gw.close();
      await feed.close();
      await nats.destroy();
    }
  }, 120_000);
});

describe('gateway workers: a worker that crashes', () => {
  const entry = new URL('../helpers/crashing-gateway-worker.mjs', import.meta.url);
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tw-workers-'));
    process.env.TW_TEST_CRASH_WORKER = '1';
  });
  afterAll(() => {
    delete process.env.TW_TEST_CRASH_WORKER;
    delete process.env.TW_TEST_CRASH_FILE;
    delete process.env.TW_TEST_CRASH_ONCE;
    rmSync(dir, { recursive: true, force: true });
  });

  it('is reported and restarted; its clients are closed and reconnect to the port', async () => {
    const file = join(dir, 'crash-once');
    process.env.TW_TEST_CRASH_FILE = file;
    process.env.TW_TEST_CRASH_ONCE = '1';
    const logs: string[] = [];
    const log = captureLog(logs);
    const gw = await startGatewayWorkers({ overrides: { ...base, auth: { mode: 'off' } }, entry, log });
    try {
      const clients = await Promise.all(Array.from({ length: 12 }, () => TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`)));
      writeFileSync(file, '');
      // the crashed worker's clients lose their connection (1006: no close frame from a dying thread)
      await Promise.race(clients.map((c) => c.waitClose(15_000)));
      // a restarted worker loads its modules again (slow from source under tsx on a busy box)
      await until(
        async () => logs.join('\n'),
        (l) => l.includes('gateway worker 1 restarted'),
        60_000,
      );
      expect(logs.join('\n')).toMatch(/gateway worker 1 crashed.*injected crash/);
      expect(existsSync(file)).toBe(false);
      expect(gw.restarts).toBe(1);
      const health = await until(
        async () => (await (await fetch(`http://127.0.0.1:${gw.port}/health`)).json()) as { workers: { running: number } },
        (h) => h.workers.running === 2,
        30_000,
      );
      expect(health.workers.running).toBe(2);
      // the survivors stay connected; new connections are served
      const fresh = await TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`);
      await fresh.waitFor((f) => f.op === 'welcome');
      fresh.close();
      for (const c of clients) c.close();
    } finally {
      await gw.close();
    }
  }, 120_000);

  it('stops the workers and reports a fatal error when a worker keeps crashing', async () => {
    const file = join(dir, 'crash-always');
    process.env.TW_TEST_CRASH_FILE = file;
    delete process.env.TW_TEST_CRASH_ONCE;
    writeFileSync(file, '');
    const logs: string[] = [];
    let fatal: Error | undefined;
    const gw = await startGatewayWorkers({
      overrides: { ...base, auth: { mode: 'off' } },
      entry,
      log: captureLog(logs),
      onFatal: (err) => (fatal = err),
    }).catch((err: Error) => {
      fatal = err;
      return undefined;
    });
    try {
      await until(
        async () => fatal,
        (f) => f !== undefined,
        100_000,
      );
      expect(fatal!.message).toMatch(/crashed \d+ times within 60 s|did not start/);
    } finally {
      await gw?.close();
    }
  }, 120_000);
});

describe('tickwire start --workers 2 (CLI)', () => {
  it('serves the port from two workers and stops cleanly on SIGTERM', async () => {
    const port = await freePort();
    const proc = spawnTickwire(['start', '--workers', '2'], { PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' });
    try {
      await waitHttpOk(`http://127.0.0.1:${port}/health`, 45_000, proc);
      await until(
        async () => (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { workers?: { running: number } },
        (h) => h.workers?.running === 2,
        30_000,
      );
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`);
      await c.request({ op: 'subscribe', id: 1, channels: ['quote:EUR-USD'] });
      await c.waitFor((f) => f.op === 'data' && f.ch === 'quote:EUR-USD');
      expect(await proc.stop()).toBe(0);
      expect(proc.output()).toContain('with 2 workers');
    } finally {
      await proc.stop();
    }
  }, 90_000);

  it('exits 2 with the configuration error when a worker refuses its configuration (as one loop does)', async () => {
    // the uWS fallback check runs where the gateway starts: in each worker
    const proc = spawnTickwire(['start', '--workers', '2'], { UWS_USE_FALLBACK: '1', PORT: '0', HOST: '127.0.0.1' });
    try {
      expect(await proc.exited).toBe(2);
      expect(proc.output()).toMatch(/configuration error: .*UWS_USE_FALLBACK.*TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK=true/);
    } finally {
      await proc.stop();
    }
  }, 90_000);
});

/** A pino-like logger that keeps its lines (msg and the error text) for assertions. */
function captureLog(lines: string[]): never {
  const write = (obj: object | string, msg?: string): void => {
    lines.push(typeof obj === 'string' ? obj : `${msg ?? ''} ${JSON.stringify(obj)}`);
  };
  const logger = { info: write, warn: write, error: write, fatal: write, debug: () => undefined, trace: () => undefined, child: () => logger, level: 'info' };
  return logger as never;
}
