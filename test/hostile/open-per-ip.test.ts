import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, testEngine, token } from '../auth/helpers.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * One address may hold at most `limits.connectionsPerIp` WebSocket and HTTP-stream connections
 * (and upgrades in progress) at once: each is a file descriptor of the process, and with auth off
 * or optional, or with many tokens, the per-user limit does not bind. Before, one address opened
 * connections at its connection rate until the gateway's ceiling (gateway.maxConnections, the
 * open-file limit less 256): measured on loopback with auth off and the default rates, one
 * address held 445 WebSockets after 20 s, 20 more each second (19,744 at 20,000 open files in
 * about 16 minutes); with the default cap it holds 256. Loopback is exempt by default: here it
 * is the attacker.
 */
interface Attempt {
  status: number;
  retryAfter?: string | undefined;
  body: string;
  ws?: WebSocket;
}

const opened: WebSocket[] = [];

function upgrade(port: number, headers: Record<string, string> = {}): Promise<Attempt> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['tickwire.v1.json'], { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      opened.push(ws);
      resolve({ status: 101, body: '', ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }));
    });
    ws.once('error', reject);
  });
}

async function closeAll(): Promise<void> {
  await Promise.all(
    opened.splice(0).map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close();
        }),
    ),
  );
}

describe('open connections per address (one gateway)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'optional', jwtSecret: SECRET },
      limits: { connectionsPerIp: 3, connectionsPerIpPerSec: 0, exemptIps: [] },
    });
  });
  afterEach(closeAll);
  afterAll(() => engine.close());

  it('refuses the connection over the cap with 429 and Retry-After, WebSocket and HTTP stream alike; a close frees a slot', async () => {
    const first = [await upgrade(engine.port), await upgrade(engine.port), await upgrade(engine.port)];
    expect(first.map((a) => a.status)).toEqual([101, 101, 101]);
    const over = await upgrade(engine.port);
    expect(over.status).toBe(429);
    expect(Number(over.retryAfter)).toBeGreaterThanOrEqual(5);
    expect(JSON.parse(over.body)).toMatchObject({ error: 'RATE_LIMIT', message: expect.stringContaining('limits.connectionsPerIp') });
    const sse = await fetch(`http://127.0.0.1:${engine.port}/v1/stream/sse`);
    expect(sse.status).toBe(429);
    expect(await sse.json()).toMatchObject({ error: 'RATE_LIMIT', message: expect.stringContaining('limits.connectionsPerIp') });
    expect(engine.access!.limits.stats.refusedOpenPerIp).toBe(2);

    first[0]!.ws!.close();
    await waitFor(() => engine.access!.limits.openOf('127.0.0.1') === 2);
    expect((await upgrade(engine.port)).status).toBe(101);
  });

  it('counts an HTTP stream until it ends', async () => {
    const ctl = new AbortController();
    const res = await fetch(`http://127.0.0.1:${engine.port}/v1/stream/sse`, { signal: ctl.signal });
    expect(res.status).toBe(200);
    await waitFor(() => engine.access!.limits.openOf('127.0.0.1') === 1);
    expect((await upgrade(engine.port)).status).toBe(101);
    expect((await upgrade(engine.port)).status).toBe(101);
    expect((await upgrade(engine.port)).status).toBe(429);
    ctl.abort();
    await waitFor(() => engine.access!.limits.openOf('127.0.0.1') === 2);
    expect((await upgrade(engine.port)).status).toBe(101);
  });

  it('frees the slot of a connection refused after its token was checked (401)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await upgrade(engine.port, { authorization: 'Bearer abc.def.ghi' })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401]);
    await waitFor(() => engine.access!.limits.openOf('127.0.0.1') === 0);
    const good = await upgrade(engine.port, { authorization: `Bearer ${await token({ sub: 'alice' })}` });
    expect(good.status).toBe(101);
    expect(engine.access!.limits.openOf('127.0.0.1')).toBe(1);
  });
});

describe('open connections per address across 2 gateway workers', () => {
  const gw = embeddedWorkers({
    limits: { connectionsPerIp: 4, connectionsPerIpPerSec: 0, exemptIps: [] },
  });
  afterEach(closeAll);

  it('holds one cap for the address, whichever worker each connection reaches', async () => {
    const statuses: number[] = [];
    // fresh TCP connections: the kernel spreads them over both workers
    for (let i = 0; i < 10; i++) statuses.push((await upgrade(gw.port)).status);
    expect(statuses.filter((s) => s === 101)).toHaveLength(4);
    expect(statuses.slice(4)).toEqual([429, 429, 429, 429, 429, 429]);
  });
});
