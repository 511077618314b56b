import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFrame, RawWs } from '../helpers/raw-ws.js';
import { TestClient } from '../helpers/ws-client.js';
import { startTarget } from './kit.js';
import type { Target } from './kit.js';

/**
 * Unsolicited WebSocket pongs as fast as a socket takes them. RFC 6455 5.5.3 allows a pong
 * nobody asked for (a one-way heartbeat), and uWS hands every pong to the gateway's `pong`
 * handler (the read-lag measure, slow.lagMs): a crossing into JavaScript per 6-byte frame, which
 * the frame rate (limits.messagesPerSec) never counted. Four connections without a token sending
 * empty pongs for 5 s to a `tickwire start` process (about 12 million) took a bystander's ping
 * from 1 ms (median) to 150-600 ms, at worst 1.5 s, and 3.7 s of CPU; nothing ever closed them.
 *
 * Counting them as frames was not enough: over the frame rate a connection is closed only after
 * limits.rateLimitCloseMs (3 s), and for those 3 s the bystander's pings still took 170-570 ms.
 * A pong that answers none of the gateway's own read-lag pings now takes a token of a bucket of
 * its own (limits.messagesPerSec, burst limits.messageBurst), and a connection that empties it
 * is closed 4008 at once.
 */
describe('hostile: a flood of unsolicited pongs', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({ gateway: { workers: 1 }, feeds: [] });
  }, 90_000);
  afterAll(() => target?.stop());

  it('closed 4008 once the pongs empty their bucket; a bystander is still served', async () => {
    const ws = await RawWs.connect(target.port, { protocol: 'tickwire.v1.json' });
    const bystander = await TestClient.connect(`ws://127.0.0.1:${target.port}/v1/stream`, { encoding: 'json' });
    const burst = Buffer.concat(Array.from({ length: 5000 }, () => clientFrame(0xa, Buffer.alloc(0))));
    const started = Date.now();
    // write while the socket takes it, for at most 8 s
    while (!ws.ended && Date.now() - started < 8000) {
      if (ws.socket.writableLength < 1 << 20) ws.socket.write(burst);
      await new Promise((r) => setTimeout(r, 2));
    }
    await ws.waitFor(() => ws.closeFrame() !== undefined, 5000);
    expect(ws.closeFrame()).toMatchObject({ code: 4008, reason: expect.stringContaining('pongs') });
    // at once: the first 5000 pongs hold 4800 more than the burst
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await target.metric('tickwire_limit_refusals_total', { limit: 'rate_limit_closes' })).toBeGreaterThanOrEqual(1);
    const pong = await bystander.request({ op: 'ping', id: 1 });
    expect(pong.op).toBe('pong');
    bystander.close();
  }, 60_000);

  it('a few unsolicited pongs (a heartbeat) are nothing', async () => {
    const ws = await RawWs.connect(target.port, { protocol: 'tickwire.v1.json' });
    for (let i = 0; i < 100; i++) ws.send(0xa, Buffer.from(`beat ${i}`));
    ws.sendText(JSON.stringify({ op: 'ping', id: 1 }));
    await ws.waitFor(() => ws.frames.some((f) => f.opcode === 0x1 && f.payload.includes('"pong"')));
    expect(ws.closeFrame()).toBeUndefined();
    ws.socket.destroy();
  });

  it('a client answering the gateway\u2019s pings is never refused for it', async () => {
    // slow.pingMs 1000: the read-lag pings of a connection with subscriptions, answered at once
    const ws = await RawWs.connect(target.port, { protocol: 'tickwire.v1.json', autoPong: true });
    ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: ['system'] }));
    await ws.waitFor(() => ws.pongsSent >= 3, 10_000);
    const texts = ws.frames.filter((f) => f.opcode === 0x1).map((f) => JSON.parse(f.payload.toString()) as { op: string; code?: string });
    expect(texts.filter((f) => f.op === 'error')).toEqual([]);
    expect(ws.closeFrame()).toBeUndefined();
    ws.socket.destroy();
  }, 30_000);
});
