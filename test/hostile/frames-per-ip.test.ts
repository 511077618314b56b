import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Engine } from '../../src/app/engine.js';
import { testEngine } from '../auth/helpers.js';
import { embeddedWorkers } from '../helpers/gateway-workers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Client frames of all the connections of one address share a budget (limits.messagesPerIpPerSec,
 * limits.messageBurstPerIp), once for the process whichever gateway worker holds them. The frame
 * rate was per connection only, and one address may hold limits.connectionsPerIp (256)
 * connections: 128 connections of one address, each within its own rate (50 subscribe and
 * unsubscribe frames of 100 channels a second), took a gateway worker's event loop whole (a
 * bystander's ping got no answer in 7 s; measured against a `tickwire start` process).
 */

interface Client {
  ws: WebSocket;
  frames: Record<string, any>[];
}

async function open(port: number, localAddress: string): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['tickwire.v1.json'], { localAddress });
  const frames: Record<string, any>[] = [];
  ws.on('message', (m) => frames.push(JSON.parse(String(m)) as Record<string, any>));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  await waitFor(() => frames.some((f) => f.op === 'welcome'), { timeout: 5000, what: 'welcome' });
  return { ws, frames };
}

const pongs = (clients: Client[]): number => clients.reduce((n, c) => n + c.frames.filter((f) => f.op === 'pong').length, 0);
const ipRefusals = (c: Client): Record<string, any>[] =>
  c.frames.filter((f) => f.op === 'error' && f.code === 'RATE_LIMIT' && String(f.message).includes('limits.messagesPerIpPerSec'));

/** each client sends `n` pings at once */
function pingAll(clients: Client[], n: number, tag: string): void {
  for (const [i, c] of clients.entries()) for (let k = 0; k < n; k++) c.ws.send(JSON.stringify({ op: 'ping', id: `${tag}${i}-${k}` }));
}

describe('hostile: frames of many connections of one address', () => {
  let engine: Engine;
  beforeAll(async () => {
    // a refill of one per 100 s keeps the counts exact on a loaded machine; loopback is the attacker
    engine = await testEngine({
      feeds: [],
      limits: { exemptIps: [], messagesPerSec: 1000, messageBurst: 1000, messagesPerIpPerSec: 0.01, messageBurstPerIp: 30 },
    });
  });
  afterAll(() => engine?.close());

  it('4 connections of one address sending 20 frames each: 30 answered (the address burst), the rest dropped with RATE_LIMIT; another address is served; nothing closed', async () => {
    const clients = await Promise.all([1, 2, 3, 4].map(() => open(engine.port, '127.0.0.5')));
    pingAll(clients, 20, 'a');
    await waitFor(() => pongs(clients) >= 30 && clients.every((c) => c.frames.some((f) => f.op === 'error' || f.op === 'pong')), {
      timeout: 5000,
      what: 'the pongs',
    });
    // every frame is either answered or dropped: wait for the connections to be quiet
    await new Promise((r) => setTimeout(r, 300));
    expect(pongs(clients)).toBe(30);
    expect(clients.some((c) => ipRefusals(c).length > 0)).toBe(true);
    // one error a second per connection at most
    for (const c of clients) expect(ipRefusals(c).length).toBeLessThanOrEqual(1);
    expect(engine.access!.limits.stats.rateLimitedFramesPerIp).toBe(50);
    const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text();
    expect(metrics).toMatch(/tickwire_limit_refusals_total\{limit="frames_per_ip"\} 50/);

    // another address has a budget of its own
    const other = await open(engine.port, '127.0.0.6');
    pingAll([other], 3, 'b');
    await waitFor(() => pongs([other]) === 3, { timeout: 5000, what: "the other address's pongs" });
    // nothing was closed for the address's budget
    for (const c of [...clients, other]) expect(c.ws.readyState).toBe(WebSocket.OPEN);
    for (const c of [...clients, other]) c.ws.close();
  });

  it('a subscribe of 1000 channels counts 10 frames of the address budget: refused with its id when the address has not that many left, nothing of it done', async () => {
    const [a, b] = await Promise.all([open(engine.port, '127.0.0.7'), open(engine.port, '127.0.0.7')]);
    const channels = Array.from({ length: 1000 }, (_, i) => `quote:X${i}`);
    // 30 in the burst: frames of 1000, 1000 and 801 channels (10, 10 and 9) from two connections
    // leave one; a fourth of 1000 channels takes it, and is refused for the 9 it lacks
    a!.ws.send(JSON.stringify({ op: 'subscribe', id: 1, channels, snapshot: false }));
    b!.ws.send(JSON.stringify({ op: 'subscribe', id: 2, channels, snapshot: false }));
    a!.ws.send(JSON.stringify({ op: 'subscribe', id: 3, channels: channels.slice(0, 801), snapshot: false }));
    const answer = (c: Client, id: number) => c.frames.find((f) => f.id === id && (f.op === 'ack' || f.op === 'error'));
    await waitFor(() => answer(a!, 1) && answer(b!, 2) && answer(a!, 3), { timeout: 5000, what: 'three answers' });
    expect([answer(a!, 1)!.op, answer(b!, 2)!.op, answer(a!, 3)!.op]).toEqual(['ack', 'ack', 'ack']);
    b!.ws.send(JSON.stringify({ op: 'subscribe', id: 4, channels, snapshot: false }));
    await waitFor(() => answer(b!, 4), { timeout: 5000, what: 'the fourth answer' });
    expect(answer(b!, 4)).toMatchObject({ op: 'error', code: 'RATE_LIMIT' });
    expect(String(answer(b!, 4)!.message)).toContain('limits.messagesPerIpPerSec');
    expect(b!.frames.some((f) => f.op === 'ack' && f.id === 4)).toBe(false);
    a!.ws.close();
    b!.ws.close();
  });
});

describe('hostile: frames of one address across 2 gateway workers', () => {
  const gw = embeddedWorkers({
    feeds: [],
    limits: { exemptIps: [], messagesPerSec: 1000, messageBurst: 1000, messagesPerIpPerSec: 0.01, messageBurstPerIp: 30 },
  });

  it('16 connections (the kernel spreads them over both workers) sending 10 frames each: 30 answered, once for the process', async () => {
    const clients: Client[] = [];
    for (let i = 0; i < 16; i++) clients.push(await open(gw.port, '127.0.0.8'));
    pingAll(clients, 10, 'w');
    await waitFor(() => pongs(clients) >= 30, { timeout: 10_000, what: 'the pongs' });
    await new Promise((r) => setTimeout(r, 500));
    // a budget per worker would answer up to 60
    expect(pongs(clients)).toBe(30);
    for (const c of clients) c.ws.close();
  });
});
