import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startTarget } from './kit.js';
import type { Target } from './kit.js';

/**
 * POSTs of the HTTP-streaming fallback (`POST /v1/stream/sse`) carry no token: the session id is
 * the credential. Their bodies (up to 16 × gateway.maxFrameBytes, 1 MiB) used to be read whole
 * before the gateway looked at the session, so anyone could make it hold 1 MiB per open request:
 * 300 unfinished POSTs with a made-up session id grew the process by about 300 MiB, and nothing
 * answered them until uWS timed them out. Now a POST is answered before its body is read unless
 * a gateway holds its session, and a session's POSTs are read one at a time (as the SDK sends
 * them), so a body is held only for a session whose owner sent it.
 */

const MiB = 1024 * 1024;
const sockets: Socket[] = [];

/** Open a raw POST and send `sent` bytes of a body that declares `declared`; resolves with the socket. */
function post(port: number, session: string | undefined, declared: number, sent: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        `POST /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\n${session !== undefined ? `X-Tickwire-Session: ${session}\r\n` : ''}Content-Type: text/plain\r\nContent-Length: ${declared}\r\n\r\n`,
      );
      if (sent > 0) s.write(Buffer.alloc(sent, 0x20));
      resolve(s);
    });
    s.on('error', reject);
    sockets.push(s);
  });
}

/** The status of the first response on `s` (0: none within `ms`). */
function statusOf(s: Socket, ms: number): Promise<number> {
  return new Promise((resolve) => {
    let text = '';
    const t = setTimeout(() => resolve(0), ms);
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

describe('HTTP-stream POSTs with a made-up session (2 gateway workers)', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({ auth: { mode: 'required', jwtSecret: 'http-stream-posts-secret-0123456789abcdef' }, gateway: { workers: 2 } });
  }, 90_000);
  afterAll(async () => {
    await target?.stop();
  });

  it('300 unfinished 1 MiB bodies for a session no gateway holds: each answered at once (404, or 429 while one is asked about), nothing held', async () => {
    const before = target.rss();
    const posts = await Promise.all(Array.from({ length: 300 }, () => post(target.port, 'AAAAAAAAAAAAAAAAAAAAAAAA', MiB, MiB - 1024)));
    const statuses = await Promise.all(posts.map((s) => statusOf(s, 10_000)));
    // 404 once the other worker said it does not hold the session; 429 while that question for
    // the same id is open (one POST of a session at a time)
    expect(statuses.filter((s) => s !== 404 && s !== 429)).toEqual([]);
    expect(statuses).toContain(404);
    // before: about 300 MiB held, and no answer until uWS's timeout
    expect(target.rss() - before).toBeLessThan(64 * MiB);
    expect(await target.health()).toBe(200);
  }, 60_000);

  it('a POST without the session header: 400 NO_SESSION before its body is read', async () => {
    const s = await post(target.port, undefined, MiB, 1024);
    expect(await statusOf(s, 5000)).toBe(400);
  });
});

describe("HTTP-stream POSTs of one session (one event loop, auth off: anyone's session)", () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({ gateway: { workers: 1 } });
  }, 90_000);
  afterAll(async () => {
    await target?.stop();
  });

  it('one body at a time per session: a second POST while one is being read gets 429, then POSTs go on', async () => {
    const ctl = new AbortController();
    const stream = await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { signal: ctl.signal });
    const session = stream.headers.get('x-tickwire-session')!;
    expect(session).toMatch(/^[A-Za-z0-9_-]{24}$/);
    try {
      const frame = '{"op":"ping","id":1}\n';
      // the first POST declares its body and sends half of it
      const first = await post(target.port, session, frame.length, 5);
      const firstStatus = statusOf(first, 10_000);
      // (two connections: nothing on the wire orders them, so the first is given time to arrive)
      await new Promise((res) => setTimeout(res, 300));
      const second = await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { method: 'POST', headers: { 'x-tickwire-session': session }, body: frame });
      expect(second.status).toBe(429);
      expect(second.headers.get('retry-after')).toBe('1');
      expect(((await second.json()) as { error: string }).error).toBe('RATE_LIMIT');
      first.write(frame.slice(5));
      expect(await firstStatus).toBe(204);
      const third = await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { method: 'POST', headers: { 'x-tickwire-session': session }, body: frame });
      expect(third.status).toBe(204);
    } finally {
      ctl.abort();
    }
  }, 30_000);

  it('a body over 16 × gateway.maxFrameBytes: 413 and the connection closed; the session goes on', async () => {
    const ctl = new AbortController();
    const stream = await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { signal: ctl.signal });
    const session = stream.headers.get('x-tickwire-session')!;
    try {
      const big = await post(target.port, session, 2 * MiB, MiB + 4096);
      const closed = new Promise<void>((resolve) => big.on('close', () => resolve()));
      expect(await statusOf(big, 10_000)).toBe(413);
      await closed;
      const next = await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { method: 'POST', headers: { 'x-tickwire-session': session }, body: '' });
      expect(next.status).toBe(204);
    } finally {
      ctl.abort();
    }
  }, 30_000);

  it('an aborted POST frees its turn: the next one is read', async () => {
    const ctl = new AbortController();
    const stream = await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { signal: ctl.signal });
    const session = stream.headers.get('x-tickwire-session')!;
    try {
      const first = await post(target.port, session, 100, 5);
      first.destroy();
      // the gateway hears of the abort when the socket closes
      let status = 0;
      for (let i = 0; i < 50 && status !== 204; i++) {
        const r = await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { method: 'POST', headers: { 'x-tickwire-session': session }, body: '' });
        status = r.status;
        if (status !== 204) await new Promise((res) => setTimeout(res, 100));
      }
      expect(status).toBe(204);
    } finally {
      ctl.abort();
    }
  }, 30_000);
});
