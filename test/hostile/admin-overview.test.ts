import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_INSTRUMENTS } from '../../src/core/instruments.js';
import { startTarget } from './kit.js';
import type { Target } from './kit.js';

/**
 * The operator's console polls GET /admin/api/overview every second, and an operator opens it
 * when something is wrong, such as an attack. Its size must not be the attacker's to choose: a
 * connection may hold `gateway.maxSubscriptions` (1000) channels and an address 256 connections,
 * and every channel name of every connection used to be listed, sorted, copied from each gateway
 * worker and serialised at each poll (120 connections of 210 channels: 0.5 MB a poll; 2,560
 * connections of 1000 channels from ten addresses would be about 40 MB, seconds of the gateway's
 * event loop each second while the console is open). A connection now lists its first
 * ADMIN_SUBSCRIPTIONS_SHOWN channels and how many it has (`subscriptionCount`).
 */
const SERVICE_TOKEN = 'svc-admin-overview-0123456789';
const KINDS = ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d', 'status', 'book'];
const CHANNELS = DEFAULT_INSTRUMENTS.flatMap((i) => KINDS.map((k) => `${k}:${i.symbol}`));
const CONNECTIONS = 120;

interface OverviewConnection {
  id: string;
  subscriptions: string[];
  subscriptionCount?: number;
}

describe('the admin overview under many subscriptions', () => {
  let target: Target;
  const sockets: WebSocket[] = [];

  beforeAll(async () => {
    target = await startTarget({ auth: { serviceToken: SERVICE_TOKEN } });
    // each connection subscribes to every market channel of the default instruments
    for (let i = 0; i < CONNECTIONS; i++) {
      const ws = new WebSocket(`ws://127.0.0.1:${target.port}/v1/stream`, 'tickwire.v1.json');
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const acked = new Promise<void>((resolve) =>
        ws.on('message', (m: Buffer) => {
          if (m.toString().startsWith('{"op":"ack"')) resolve();
        }),
      );
      ws.send(JSON.stringify({ op: 'subscribe', id: 1, channels: CHANNELS, throttle: 5000, snapshot: false }));
      await acked;
      sockets.push(ws);
    }
  }, 120_000);

  afterAll(async () => {
    for (const ws of sockets) ws.terminate();
    await target?.stop();
  });

  const overview = async (): Promise<{ ms: number; bytes: number; body: { connections: OverviewConnection[]; connectionTotals: { connections: number } } }> => {
    const t0 = performance.now();
    const res = await fetch(`http://127.0.0.1:${target.port}/admin/api/overview`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
    const text = await res.text();
    expect(res.status).toBe(200);
    return {
      ms: performance.now() - t0,
      bytes: Buffer.byteLength(text),
      body: JSON.parse(text) as { connections: OverviewConnection[]; connectionTotals: { connections: number } },
    };
  };

  it('lists a few channels per connection and the count, not every name', async () => {
    const first = await overview();
    const ours = first.body.connections;
    // the overview lists 100 connections (test/hostile/admin-connections.test.ts), the totals all
    expect(ours).toHaveLength(Math.min(CONNECTIONS, 100));
    expect(first.body.connectionTotals.connections).toBe(CONNECTIONS);
    for (const c of ours) {
      expect(c.subscriptionCount).toBe(CHANNELS.length);
      expect(c.subscriptions.length).toBeLessThanOrEqual(20);
      expect(c.subscriptions.length).toBeGreaterThan(0);
      for (const name of c.subscriptions) expect(CHANNELS).toContain(name);
      expect([...c.subscriptions].sort()).toEqual(c.subscriptions);
    }
    // about 1 KB a connection, whatever it subscribes to (before: 210 names, 4.3 KB each)
    expect(first.bytes).toBeLessThan(ours.length * 1500);
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await overview()).ms);
    times.sort((a, b) => a - b);
    console.log(
      `admin overview, ${CONNECTIONS} connections x ${CHANNELS.length} channels: ${first.bytes} bytes, median ${times[2]!.toFixed(1)} ms per poll (the test's client included)`,
    );
  }, 60_000);
});
