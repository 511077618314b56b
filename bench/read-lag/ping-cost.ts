/**
 * What the read-lag probe and the HTTP framing check cost the gateway.
 *
 *   node --import tsx bench/read-lag/ping-cost.ts [--connections 1000] [--rounds 20]
 *
 * Starts the embedded engine on loopback, opens N WebSocket connections (raw sockets that answer
 * pings like a browser), each subscribed to one channel, then times the gateway's slow-consumer
 * sweep when every connection is due a lag ping (`slow.pingMs`) and when none is, waiting for
 * the pongs between rounds. The clients run in this process, and on loopback the kernel does the
 * receiving side inside the sender's write, so the per-ping figure is an upper bound for a real
 * network. Also times `framingProblemOf` on a typical 8-header request. Prints the figures and
 * the machine load.
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { startEngine } from '../../src/app/engine.js';
import { framingProblemOf } from '../../src/http/http-framing.js';
import { RawWs } from '../../test/helpers/raw-ws.js';

const { values } = parseArgs({ options: { connections: { type: 'string', default: '1000' }, rounds: { type: 'string', default: '20' } } });
const n = Number(values.connections);
const rounds = Number(values.rounds);

// a sweep interval far beyond the run: only this script's calls sweep
const engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { rate: 50 }, slow: { checkMs: 1_000_000 } });
const gateway = engine.gateway!;
const clients: RawWs[] = [];
try {
  for (let i = 0; i < n; i++) {
    const ws = await RawWs.connect(engine.port, { protocol: 'tickwire.v1.json', autoPong: true });
    ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD'] }));
    clients.push(ws);
  }
  const acked = (ws: RawWs): boolean => ws.frames.some((f) => f.opcode === 1 && f.payload.includes('"ack"'));
  await clients[0]!.waitFor(() => clients.every(acked), 60_000);
  const conns = [...gateway.connections];
  const pingMs = engine.config.slow.pingMs;
  let now = Date.now() + 10 * pingMs;
  let withPing = 0n;
  for (let r = 0; r < rounds; r++) {
    now += pingMs;
    const pongs = clients.reduce((s, c) => s + c.pongsSent, 0);
    const t0 = process.hrtime.bigint();
    for (const c of conns) c.checkBackpressure(now);
    withPing += process.hrtime.bigint() - t0;
    // every ping answered before the next round (a ping is only due when none is outstanding)
    await clients[0]!.waitFor(() => clients.reduce((s, c) => s + c.pongsSent, 0) >= pongs + n, 30_000);
    await new Promise((res) => setTimeout(res, 50));
  }
  const t1 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (const c of conns) c.checkBackpressure(now);
  const without = process.hrtime.bigint() - t1;

  const headers: [string, string][] = [
    ['host', '127.0.0.1:8080'],
    ['user-agent', 'curl/8.0'],
    ['accept', '*/*'],
    ['authorization', 'Bearer abcdefghijklmnopqrstuvwxyz0123456789'],
    ['content-type', 'application/json'],
    ['content-length', '120'],
    ['x-request-id', 'abc-123'],
    ['connection', 'keep-alive'],
  ];
  const m = 200_000;
  const t2 = process.hrtime.bigint();
  for (let i = 0; i < m; i++) framingProblemOf(headers);
  const framing = process.hrtime.bigint() - t2;

  const perSweep = Number(withPing) / rounds / 1e6;
  console.log(`connections: ${n}, rounds: ${rounds}, slow.pingMs: ${pingMs}`);
  console.log(`sweep, a lag ping due on every connection: ${perSweep.toFixed(2)} ms (${((perSweep * 1000) / n).toFixed(1)} us per connection)`);
  console.log(`sweep, no ping due: ${(Number(without) / rounds / 1e6).toFixed(2)} ms`);
  console.log(`ping CPU at slow.pingMs=${pingMs} for 10 000 connections: about ${(((perSweep / n) * 10_000 * 1000) / pingMs).toFixed(0)} ms per second`);
  console.log(`HTTP framing check, 8 headers: ${(Number(framing) / m).toFixed(0)} ns per request`);
  console.log(
    `load average: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
} finally {
  for (const c of clients) c.destroy();
  await engine.close();
}
