import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { installShutdown } from '../../src/ops/shutdown.js';
import { spawnListening, spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';
import { startNats, startRedis } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

const procs: TickwireProcess[] = [];
afterAll(async () => {
  await Promise.allSettled(procs.map((p) => p.stop('SIGKILL')));
});

async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2000) });
    return false;
  } catch {
    return true;
  }
}

// the three processes (and their servers) are independent: started and stopped at the same time
describe('graceful shutdown of a real tickwire process', { concurrent: true }, () => {
  it('tickwire start: SIGTERM closes clients with 1001 and exits 0', async () => {
    const { proc, port } = await spawnListening(['start'], { HOST: '127.0.0.1', LOG_LEVEL: 'info', TICKWIRE_LOG_FORMAT: 'json' });
    procs.push(proc);
    await waitHttpOk(`http://127.0.0.1:${port}/health`, 60_000, proc);
    const url = `ws://127.0.0.1:${port}/v1/stream`;
    const clients = await Promise.all([TestClient.connect(url), TestClient.connect(url, { encoding: 'json' })]);
    for (const c of clients) {
      await c.request({ op: 'subscribe', id: 1, channels: ['trade:BTC-USD', 'quote:AAPL'], throttle: 0 });
      await c.waitFor((f) => f.op === 'data', 20_000);
    }
    const code = await proc.stop('SIGTERM');
    expect(code, proc.output().slice(-3000)).toBe(0);
    expect(await Promise.all(clients.map((c) => c.waitClose(5000)))).toEqual([1001, 1001]);
    expect(clients[0]!.closeReason).toMatch(/shutting down/);
    expect(await refused(`http://127.0.0.1:${port}/health`)).toBe(true);
    const log = proc.output();
    expect(log).toMatch(/"signal":"SIGTERM".*"msg":"shutting down"/);
    expect(log).toMatch(/"msg":"stopped"/);
    // lifecycle logs: each connection's open and its close with the code
    expect(log.match(/"msg":"connection open"/g)).toHaveLength(2);
    expect(log.match(/"code":1001,[^\n]*"msg":"connection closed"/g)).toHaveLength(2);
  });

  it('SIGINT does the same', async () => {
    const { proc, port } = await spawnListening(['start'], { HOST: '127.0.0.1' });
    procs.push(proc);
    await waitHttpOk(`http://127.0.0.1:${port}/health`, 60_000, proc);
    const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`);
    await c.waitFor((f) => f.op === 'welcome');
    expect(await proc.stop('SIGINT')).toBe(0);
    expect(await c.waitClose(5000)).toBe(1001);
  });

  it('NATS + Redis roles: the gateway closes clients with 1001, the feed flushes its last values to Redis, both exit 0', async () => {
    const [nats, redis] = await Promise.all([startNats(), startRedis()]);
    const probe = new Redis(redis.url);
    try {
      const env = {
        NATS_URL: nats.url,
        REDIS_URL: redis.url,
        TICKWIRE_SYNTHETIC_SYMBOLS: 'AAPL,ETH-USD',
        TICKWIRE_SYNTHETIC_RATE: '200',
        TICKWIRE_REDIS_FLUSH_MS: '10000',
      };
      const feed = spawnTickwire(['feed', 'synthetic'], env);
      procs.push(feed);
      const { proc: gateway, port } = await spawnListening(['gateway'], { ...env, HOST: '127.0.0.1' });
      procs.push(gateway);
      await waitHttpOk(`http://127.0.0.1:${port}/ready`, 60_000, gateway);
      const c = await TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`);
      await c.request({ op: 'subscribe', id: 1, channels: ['quote:ETH-USD'], throttle: 0 });
      await c.waitForCount((f) => f.op === 'data' && f.ch === 'quote:ETH-USD', 3, 30_000);
      // with a 10 s flush interval the latest values are most likely still pending: shutdown must write them
      expect(await feed.stop('SIGTERM'), feed.output().slice(-3000)).toBe(0);
      const stored = await probe.getBuffer('tickwire:lv:quote:ETH-USD');
      expect(stored).not.toBeNull();
      expect(await gateway.stop('SIGTERM'), gateway.output().slice(-3000)).toBe(0);
      expect(await c.waitClose(5000)).toBe(1001);
    } finally {
      probe.disconnect();
      await Promise.allSettled([nats.destroy(), redis.destroy()]);
    }
  });
});

/**
 * Executions posted without a pause while SIGTERM arrives: every one answered 200/201 is in the
 * durable log (a second gateway on the same log answers its retry as a duplicate), requests cut
 * off get no answer (the order system retries them), and the process exits 0 well within
 * shutdownTimeoutMs. One case per place the log lives: JetStream (`tickwire gateway`), Redis
 * (`tickwire start` with REDIS_URL, two gateway workers).
 */
describe('SIGTERM with executions in flight', () => {
  const TOKEN = 'svc-token-0123456789abcdef';
  // one time for every execution: the check after the restart repeats each as it was (another `t` is a 409 CONFLICT)
  const T0 = Date.now();
  const post = (port: number, id: string): Promise<Response> =>
    fetch(`http://127.0.0.1:${port}/v1/executions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ user: 'inflight', id, order: 'o1', sym: 'AAPL', side: 'buy', qty: 1, p: 1, t: T0 }),
    });

  async function acknowledgedAreStored(args: string[], env: Record<string, string>): Promise<void> {
    const full = { ...env, HOST: '127.0.0.1', TICKWIRE_SERVICE_TOKEN: TOKEN, TICKWIRE_LOG_FORMAT: 'json' };
    const { proc, port } = await spawnListening(args, full);
    procs.push(proc);
    await waitHttpOk(`http://127.0.0.1:${port}/ready`, 60_000, proc);
    const acked: string[] = [];
    let n = 0;
    let stop = false;
    const senders = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const id = `x-${n++}`;
        try {
          const r = await post(port, id);
          await r.text();
          if (r.status === 200 || r.status === 201) acked.push(id);
        } catch {
          // cut off by the shutdown: no answer, so not acknowledged
        }
      }
    });
    await waitFor(() => acked.length >= 100, '100 executions acknowledged');
    const t0 = Date.now();
    const code = await proc.stop('SIGTERM');
    const ms = Date.now() - t0;
    stop = true;
    await Promise.all(senders);
    expect(code, proc.output().slice(-3000)).toBe(0);
    expect(ms).toBeLessThan(10_000); // shutdownTimeoutMs, the documented deadline
    const again = await spawnListening(args, full);
    procs.push(again.proc);
    await waitHttpOk(`http://127.0.0.1:${again.port}/ready`, 60_000, again.proc);
    const lost: string[] = [];
    for (const id of acked) {
      const r = await post(again.port, id);
      if ((await r.json()).duplicate !== true) lost.push(id);
    }
    expect(lost, `${lost.length} of ${acked.length} acknowledged executions were not in the log`).toEqual([]);
    expect(await again.proc.stop('SIGTERM')).toBe(0);
  }

  it('tickwire gateway (JetStream log)', { timeout: 120_000 }, async () => {
    const nats = await startNats({ jetstream: true });
    try {
      await acknowledgedAreStored(['gateway', '--workers', '1'], { NATS_URL: nats.url });
    } finally {
      await nats.destroy();
    }
  });

  it('tickwire start with REDIS_URL and two gateway workers (Redis log)', { timeout: 120_000 }, async () => {
    const redis = await startRedis();
    try {
      await acknowledgedAreStored(['start', '--workers', '2', '--feeds='], { REDIS_URL: redis.url });
    } finally {
      await redis.destroy();
    }
  });
});

describe('installShutdown', () => {
  const log = { info() {}, warn() {}, error() {} };

  it('exits 1 when close does not finish within shutdownTimeoutMs', async () => {
    const exits: number[] = [];
    const remove = installShutdown(
      { log, config: { shutdownTimeoutMs: 100 }, close: () => new Promise<void>(() => undefined) },
      { signals: ['SIGUSR2'], exit: (c) => exits.push(c) },
    );
    try {
      process.emit('SIGUSR2', 'SIGUSR2');
      await waitFor(() => exits.length > 0, 'the exit after shutdownTimeoutMs');
      expect(exits).toEqual([1]);
    } finally {
      remove();
    }
  });

  it('exits 0 after a clean close, 1 when close fails, and at once on a second signal', async () => {
    const run = async (close: () => Promise<void>, signals = 1): Promise<number[]> => {
      const exits: number[] = [];
      const remove = installShutdown({ log, config: { shutdownTimeoutMs: 5000 }, close }, { signals: ['SIGUSR2'], exit: (c) => exits.push(c) });
      try {
        for (let i = 0; i < signals; i++) process.emit('SIGUSR2', 'SIGUSR2');
        await waitFor(() => exits.length > 0, 'the exit');
      } finally {
        remove();
      }
      return exits;
    };
    expect(await run(async () => undefined)).toEqual([0]);
    expect(await run(async () => Promise.reject(new Error('boom')))).toEqual([1]);
    expect(await run(() => new Promise((r) => setTimeout(r, 200)), 2)).toEqual([1]); // a close still running at the second signal
  });
});
