import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, token } from '../auth/helpers.js';
import { SseTestClient } from '../helpers/sse-client.js';
import type { Frame } from '../helpers/sse-client.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The HTTP-streaming fallback transport over real HTTP: protocol v1 frames as SSE events on
 * GET /v1/stream/sse, client frames by POST with the session header.
 */
const isData =
  (ch: string) =>
  (f: Frame): boolean =>
    f.op === 'data' && f.ch === ch;

async function stats(port: number): Promise<Frame> {
  return (await (await fetch(`http://127.0.0.1:${port}/v1/stats`)).json()) as Frame;
}

async function refusal(p: Promise<unknown>): Promise<{ status: number; body: Frame }> {
  try {
    await p;
  } catch (err) {
    const e = err as { status: number; body: Frame };
    return { status: e.status, body: e.body };
  }
  throw new Error('the stream was not refused');
}

// The two tests that wait on the clock (uWS's 10 s send timeout, the 8 s idle timeout), each on an
// engine of its own, run at the same time (concurrent suites, the first of the file); the suites
// after them run one test after another, as before.
describe('HTTP-streaming transport: a stalled reader', { concurrent: true }, () => {
  it('a client that stops reading is paused as a slow consumer, stays connected while stalled, then resynced', { timeout: 150_000 }, async ({ expect }) => {
    const lowWater = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        // only the subscribed symbols: all 6 000 ticks a second go to this client, and the kernel's
        // socket buffers (several MB on loopback) fill in ~5 s, not the ~20 s of 21 symbols
        synthetic: { seed: 3, rate: 6_000, symbols: ['BTC-USD', 'ETH-USD', 'AAPL', 'EUR-USD'] },
        slow: { highWaterBytes: 64 * 1024, lowWaterBytes: 16 * 1024, hardLimitBytes: 8 * 1024 * 1024, stuckMs: 60_000, checkMs: 20 },
      },
      { env: {} },
    );
    try {
      // a raw socket, so that not reading really stops the TCP window
      const sock = net.connect(lowWater.port, '127.0.0.1');
      let text = '';
      let ended = false;
      sock.on('data', (d: Buffer) => {
        if (text.length < 4096) text += d.toString('latin1');
      });
      sock.on('end', () => (ended = true));
      sock.write('GET /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
      await expect.poll(() => /"session":"([^"]+)"/.exec(text)?.[1], { timeout: 10_000 }).toBeTruthy();
      const session = /"session":"([^"]+)"/.exec(text)![1]!;
      const channels = ['quote:BTC-USD', 'quote:ETH-USD', 'trade:BTC-USD', 'quote:AAPL', 'quote:EUR-USD'];
      const post = await fetch(`http://127.0.0.1:${lowWater.port}/v1/stream/sse`, {
        method: 'POST',
        headers: { 'x-tickwire-session': session },
        body: JSON.stringify({ op: 'subscribe', id: 1, channels, throttle: 0 }),
      });
      expect(post.status).toBe(204);
      sock.pause();
      await expect.poll(async () => (await stats(lowWater.port)).gateway.slowEpisodes, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(1);
      // the stall itself is what is tested: uWS ends an HTTP response that stays unwritable for
      // 10 s; the session must live on until slow.stuckMs (60 s here) or the hard limit says
      await new Promise((r) => setTimeout(r, 12_000));
      expect((await stats(lowWater.port)).connections).toBe(1);
      expect(ended).toBe(false);
      sock.resume();
      await expect.poll(async () => (await stats(lowWater.port)).gateway.resyncs, { timeout: 60_000, interval: 100 }).toBeGreaterThanOrEqual(1);
      const s = await stats(lowWater.port);
      expect(s.gateway.slowDisconnects).toBe(0);
      expect(s.gateway.maxBufferedBytes).toBeGreaterThanOrEqual(64 * 1024);
      expect(s.gateway.maxBufferedBytes).toBeLessThanOrEqual(2 * 8 * 1024 * 1024 + 128 * 1024);
      sock.destroy();
    } finally {
      await lowWater.close();
    }
  });
});

describe('HTTP-streaming transport: idle sessions', { concurrent: true }, () => {
  it('a session with no POST for gateway.idleTimeoutSec is closed (1001) and forgotten', { timeout: 60_000 }, async ({ expect }) => {
    const engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, gateway: { idleTimeoutSec: 8 } }, { env: {} });
    try {
      const idle = await SseTestClient.open(engine.port);
      const busy = await SseTestClient.open(engine.port);
      // a keep-alive every second: under a heavily loaded box four missed ones (2 s apart) once let the busy session idle out too
      const keepAlive = setInterval(() => void busy.post([]), 1000);
      try {
        await idle.waitFor(() => idle.ended, 'the idle stream to end', 20_000);
        expect(idle.closeEvent).toEqual({ code: 1001, reason: 'idle session: no POST (command or keep-alive) for 8 s' });
        expect((await idle.post([{ op: 'ping' }])).status).toBe(404);
        expect(busy.ended).toBe(false);
        expect((await busy.request({ op: 'ping', id: 1 })).op).toBe('pong');
      } finally {
        clearInterval(keepAlive);
        busy.close();
      }
    } finally {
      await engine.close();
    }
  });
});

describe('HTTP-streaming transport, auth off', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { seed: 5, rate: 800 }, gateway: { maxSubscriptions: 3 } },
      { env: {} },
    );
  });
  afterAll(() => engine.close());

  it('opens with a session event, then the welcome; subscribe, data, unsubscribe, ping over POST', async () => {
    const c = await SseTestClient.open(engine.port);
    expect(c.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(c.res.headers.get('x-tickwire-session')).toBe(c.session);
    expect(c.events[0]!.event).toBe('session');
    expect(JSON.parse(c.events[0]!.data)).toEqual({ session: c.session, post: '/v1/stream/sse', idle_timeout_ms: 120_000 });
    const welcome = await c.waitFrame((f) => f.op === 'welcome', 'welcome');
    expect(welcome).toMatchObject({ protocol: 1, limits: { max_subscriptions: 3 } });

    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD', 'quote:ZZZZ'], throttle: 100 });
    expect(ack).toMatchObject({ subscribed: ['quote:BTC-USD'], throttle: 100 });
    expect(ack.rejected).toEqual([expect.objectContaining({ channel: 'quote:ZZZZ', code: 'UNKNOWN_CHANNEL' })]);
    await c.waitFor(() => c.frames.filter(isData('quote:BTC-USD')).length >= 3, 'three quotes');
    const quotes = c.frames.filter(isData('quote:BTC-USD'));
    expect(quotes[0]!.snapshot).toBe(true);
    for (let i = 1; i < quotes.length; i++) expect(quotes[i]!.seq).toBeGreaterThan(quotes[i - 1]!.seq);
    expect((await stats(engine.port)).connections).toBeGreaterThanOrEqual(1);

    const unack = await c.request({ op: 'unsubscribe', id: 2, channels: ['quote:BTC-USD'] });
    expect(unack.unsubscribed).toEqual(['quote:BTC-USD']);
    const pong = await c.request({ op: 'ping', id: 3 });
    expect(pong.op).toBe('pong');
    // after the unsubscribe's ack, no more quotes
    const n = c.frames.filter(isData('quote:BTC-USD')).length;
    await c.request({ op: 'ping', id: 4 });
    const idx = c.frames.findIndex((f) => f.op === 'ack' && f.id === 2);
    expect(c.frames.slice(idx + 1).some(isData('quote:BTC-USD'))).toBe(false);
    expect(c.frames.filter(isData('quote:BTC-USD')).length).toBe(n);
    c.close();
  });

  it('several frames in one POST are handled in order; bad frames get protocol errors on the stream', async () => {
    const c = await SseTestClient.open(engine.port);
    const r = await c.post([{ op: 'ping', id: 'a' }, '{oops', { op: 'launch', id: 'b' }, { op: 'ping', id: 'c' }]);
    expect(r.status).toBe(204);
    await c.waitFrame((f) => f.op === 'pong' && f.id === 'c', 'last pong');
    const replies = c.frames.filter((f) => f.op !== 'welcome').map((f) => [f.op, f.id, f.code]);
    expect(replies).toEqual([
      ['pong', 'a', undefined],
      ['error', undefined, 'BAD_FRAME'],
      ['error', 'b', 'UNKNOWN_OP'],
      ['pong', 'c', undefined],
    ]);
    // an empty POST is a keep-alive
    expect((await c.post([])).status).toBe(204);
    c.close();
  });

  it('bad session ids get clear HTTP errors; other methods 405', async () => {
    const c = await SseTestClient.open(engine.port);
    const missing = await c.post([{ op: 'ping' }], null);
    expect(missing.status).toBe(400);
    expect(missing.body).toMatchObject({ error: 'NO_SESSION' });
    const unknown = await c.post([{ op: 'ping' }], 'not-a-session');
    expect(unknown.status).toBe(404);
    expect(unknown.body).toMatchObject({ error: 'UNKNOWN_SESSION' });
    expect(unknown.body!.message).toMatch(/open a new stream/);
    const put = await fetch(c.base, { method: 'PUT' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, POST');
    // a session whose stream ended is gone
    const id = c.session;
    c.close();
    await expect.poll(async () => (await c.post([{ op: 'ping' }], id)).status).toBe(404);
  });

  it('is usable from another origin: preflight, readable session header and refusals (CORS)', async () => {
    const base = `http://127.0.0.1:${engine.port}/v1/stream/sse`;
    const pre = await fetch(base, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-tickwire-session, content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toBe('GET, POST');
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/authorization.*x-tickwire-session/);
    const c = await SseTestClient.open(engine.port);
    expect(c.res.headers.get('access-control-allow-origin')).toBe('*');
    expect(c.res.headers.get('access-control-expose-headers')).toBe('x-tickwire-session');
    const unknown = await fetch(base, { method: 'POST', headers: { 'x-tickwire-session': 'nope', origin: 'http://app.example' }, body: '' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('access-control-allow-origin')).toBe('*');
    c.close();
  });

  it('a frame over gateway.maxFrameBytes: BAD_FRAME, then the stream closes with 1009', async () => {
    const c = await SseTestClient.open(engine.port);
    const big = JSON.stringify({ op: 'ping', id: 'x'.repeat(70_000) });
    expect((await c.post([big])).status).toBe(204);
    await c.waitFor(() => c.ended, 'the end of the stream');
    expect(c.frames.at(-1)).toMatchObject({ op: 'error', code: 'BAD_FRAME' });
    expect(c.closeEvent).toEqual({ code: 1009, reason: 'frame too large' });
  });

  it('shutdown ends open streams with a close event 1001', async () => {
    const other = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' } }, { env: {} });
    const c = await SseTestClient.open(other.port);
    await other.close();
    await c.waitFor(() => c.ended, 'the end of the stream');
    expect(c.closeEvent?.code).toBe(1001);
  });
});

describe('HTTP-streaming transport, auth required', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        synthetic: { seed: 9, rate: 400 },
        auth: { mode: 'required', jwtSecret: SECRET, defaultEntitlement: 'none' },
        limits: { connectionsPerUser: 2, connectionsPerIpPerSec: 0 },
      },
      { env: {} },
    );
  });
  afterAll(() => engine.close());

  it('no token or a bad one: 401 with a JSON reason the client can read', async () => {
    const none = await refusal(SseTestClient.open(engine.port));
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ error: 'UNAUTHENTICATED' });
    const bad = await refusal(SseTestClient.open(engine.port, { token: await token({ secret: 'another-secret-0123456789-abcdefghijkl' }) }));
    expect(bad.status).toBe(401);
    expect(bad.body.message).toMatch(/token refused/);
  });

  it('token by header or query; entitlements apply per channel', async () => {
    const ent = { symbols: ['BTC-USD'] };
    const viaHeader = await SseTestClient.open(engine.port, { token: await token({ sub: 'bob', claims: { ent } }) });
    const viaQuery = await SseTestClient.open(engine.port, { token: await token({ sub: 'carol', claims: { ent } }), tokenIn: 'query' });
    for (const c of [viaHeader, viaQuery]) {
      const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD', 'quote:AAPL'] });
      expect(ack.subscribed).toEqual(['quote:BTC-USD']);
      expect(ack.rejected).toEqual([expect.objectContaining({ channel: 'quote:AAPL', code: 'FORBIDDEN' })]);
      await c.waitFrame(isData('quote:BTC-USD'), 'a quote');
      c.close();
    }
  });

  it('streams count toward the per-user connection limit together with WebSockets', async () => {
    const t = await token({ sub: 'dave', claims: { ent: { symbols: ['BTC-USD'] } } });
    const ws = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { headers: { authorization: `Bearer ${t}` }, encoding: 'json' });
    const sse = await SseTestClient.open(engine.port, { token: t });
    const third = await refusal(SseTestClient.open(engine.port, { token: t }));
    expect(third.status).toBe(429);
    expect(third.body.message).toMatch(/too many connections for this user/);
    sse.close();
    // the slot comes back when the stream ends
    await expect
      .poll(
        async () => {
          try {
            const again = await SseTestClient.open(engine.port, { token: t });
            again.close();
            return true;
          } catch {
            return false;
          }
        },
        { timeout: 10_000 },
      )
      .toBe(true);
    ws.close();
  });
});
