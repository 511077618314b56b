import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../helpers/wait.js';
import { startTarget } from './kit.js';
import type { Target } from './kit.js';

/**
 * A request body sent a byte at a time (each TCP segment small, as a client with Nagle off and a
 * pause between writes sends it): uWS hands each segment to the body reader as a chunk of its
 * own. The reader (src/http/http.ts bodyCollector: the HTTP stream's POSTs, and through readBody
 * the service API, the alert routes and the admin console) kept one Buffer per chunk, a few
 * hundred bytes of bookkeeping for each byte of body: 200 sessions each trickling a byte per
 * millisecond into a POST grew the gateway by 53 MiB for 202 KB of body (about 270 bytes per
 * byte). Chunked transfer encoding needs no pacing: uWS hands each chunk over on its own, and 4
 * POSTs of 900 000 one-byte chunks (5.4 MB on the wire each, sent at once) grew it by 1.4 GiB.
 * Now the bytes go into one buffer per body grown by doubling: 4.4 MiB for the 227 KB trickled,
 * 26 MiB for the chunked POSTs. The same held for the bytes a POST for another worker's session
 * (or a made-up one: no credential needed) brought with its headers while that worker is asked:
 * 100 chunked POSTs with made-up ids peaked at 659 MiB; now 49 MiB.
 */

const KB = 1024;
const MiB = 1024 * 1024;

const SESSIONS = 200;
/** each POST declares this much body, more than the trickle sends */
const BODY = 4 * KB;
/**
 * One-byte segments sent on each POST, each read by the gateway as a chunk of its own: a round (a
 * byte on each POST) is sent once the gateway has read the one before (`readByGateway`). The
 * gateway of this test runs with a 1 MiB young generation (`--max-semi-space-size=1`): what it
 * holds shows in its RSS without up to tens of MiB of garbage not collected yet on top, so a few
 * MiB of slack is enough where 32 MiB were. 300 × 200 segments cost the per-chunk collector of
 * before 22.8 MiB, the one buffer per body 1.2 MiB (2-core box at load 18).
 *
 * Before, the trickle ran for a fixed 7 s, a byte a millisecond, and needed 1001 segments against
 * 32 MiB of slack: a loaded runner sent 547-613 in that time, and could not send more, since uWS
 * closes a request whose body comes slower than 16 KB/s after 8-12 s (its 10 s HTTP timeout,
 * checked every 4 s): the body must be whole by then.
 */
const SEGMENTS = 300;
/** RSS the gateway may grow by beyond 16 bytes per segment: its young generation and noise */
const SLACK = 6 * MiB;
/** bytes per segment the per-chunk collector held (53 MiB for 202 KB; 22.8 MiB for 60 KB above) */
const OLD_COST = 270;
const CHUNKS = 900_000;

/**
 * A keep-alive connection to the gateway's GET /health. `readByGateway()` resolves on the answer
 * to a request sent now: the gateway serves it on its one event loop (gateway.workers 1), and
 * bytes written on loopback before the request are in their sockets' receive queues before it,
 * so the loop's poll that hands over the request hands over those sockets too (uSockets reads
 * every socket a poll reports, up to 1024 of them, before it polls again): they are read by then.
 */
async function healthProbe(port: number): Promise<{ readByGateway(): Promise<void>; close(): void }> {
  const s = await new Promise<Socket>((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => resolve(c)).on('error', reject);
  });
  s.setNoDelay(true);
  let text = '';
  let waiting: { resolve(): void; reject(e: Error): void } | undefined;
  const settle = (): void => {
    const end = text.indexOf('\r\n\r\n');
    if (end < 0 || !waiting) return;
    const head = text.slice(0, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
    if (!head.startsWith('HTTP/1.1 200') || !Number.isFinite(length)) {
      waiting.reject(new Error(`GET /health on the probe connection: ${head.slice(0, 200)}`));
      return;
    }
    if (text.length < end + 4 + length) return;
    text = text.slice(end + 4 + length);
    const w = waiting;
    waiting = undefined;
    w.resolve();
  };
  s.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    settle();
  });
  s.on('close', () => waiting?.reject(new Error('the gateway closed the GET /health probe connection')));
  return {
    readByGateway: () =>
      new Promise<void>((resolve, reject) => {
        waiting = { resolve, reject };
        s.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      }),
    close: () => s.destroy(),
  };
}

describe('a POST body trickled in one-byte segments (one event loop, auth off)', () => {
  let target: Target;
  beforeAll(async () => {
    // a young generation of 1 MiB (see SEGMENTS): V8's flag, allowed in NODE_OPTIONS
    target = await startTarget({ gateway: { workers: 1 } }, { NODE_OPTIONS: '--max-semi-space-size=1' });
  }, 90_000);
  afterAll(async () => {
    await target?.stop();
  });

  it('200 sessions each trickling a POST body a byte per TCP segment: the gateway holds about the bodies, not hundreds of bytes per segment', async () => {
    const ctl = new AbortController();
    // the responses are held: an unread fetch body that is garbage collected ends its stream
    const streams: Response[] = [];
    for (let i = 0; i < SESSIONS; i++) streams.push(await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { signal: ctl.signal }));
    const sessions = streams.map((r) => r.headers.get('x-tickwire-session')!);
    expect(sessions.every((id) => /^[A-Za-z0-9_-]{24}$/.test(id))).toBe(true);
    const sockets = await Promise.all(
      sessions.map(
        (session) =>
          new Promise<Socket>((resolve, reject) => {
            const s = connect(target.port, '127.0.0.1', () => {
              s.setNoDelay(true);
              s.write(
                `POST /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tickwire-Session: ${session}\r\nContent-Type: text/plain\r\nContent-Length: ${BODY}\r\n\r\n`,
              );
              resolve(s);
            }).on('error', reject);
          }),
      ),
    );
    const headsSent = Date.now();
    const answers = sockets.map(() => '');
    sockets.forEach((s, i) => s.on('data', (d: Buffer) => (answers[i] += d.toString('latin1'))));
    const probe = await healthProbe(target.port);
    try {
      // the heads read
      await probe.readByGateway();
      const before = target.rss();
      // a line break on each, round after round: blank lines are skipped, so each body is a valid
      // (empty) batch. With Nagle off each write is a TCP segment of its own; the next round waits
      // until the gateway has read this one (its answer to a GET /health sent after it), so no two
      // segments of a POST are read as one chunk however loaded the runner is
      const one = Buffer.from('\n');
      let sent = 0;
      while (sent < SEGMENTS) {
        for (const s of sockets) s.write(one);
        sent++;
        await probe.readByGateway();
      }
      const grown = target.rss() - before;
      const bound = SLACK + 16 * sent * SESSIONS;
      console.log(
        `${SESSIONS} POSTs, ${sent} one-byte segments each (${((sent * SESSIONS) / KB).toFixed(0)} KB in all, ${Date.now() - headsSent} ms after the heads): gateway RSS grew ${(grown / MiB).toFixed(1)} MiB`,
      );
      // enough segments that the old per-segment cost would be twice the bound
      expect(OLD_COST * sent * SESSIONS).toBeGreaterThan(2 * bound);
      // the bodies so far, a doubling buffer each, and the garbage of the chunks' wrappers not
      // collected yet (V8's young generation): far from a few hundred bytes per segment
      expect(grown).toBeLessThan(bound);
      // the bodies complete: each answered 204
      for (const s of sockets) s.write(Buffer.alloc(BODY - sent, 0x0a));
      await waitFor(() => answers.every((a) => a.startsWith('HTTP/1.1 ')), { timeout: 30_000, what: 'every POST answered' });
      for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 204/);
      expect(await target.health()).toBe(200);
    } finally {
      probe.close();
      for (const s of sockets) s.destroy();
      ctl.abort();
    }
  }, 120_000);

  it('4 POSTs in chunked transfer encoding, 900 000 chunks of one byte each, sent at once: the gateway holds about the bodies', async () => {
    const streams: Response[] = [];
    const ctl = new AbortController();
    for (let i = 0; i < 4; i++) streams.push(await fetch(`http://127.0.0.1:${target.port}/v1/stream/sse`, { signal: ctl.signal }));
    const before = target.rss();
    try {
      const answers = await Promise.all(
        streams.map(
          (stream) =>
            new Promise<string>((resolve, reject) => {
              const s = connect(target.port, '127.0.0.1', () => {
                s.write(
                  `POST /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tickwire-Session: ${stream.headers.get('x-tickwire-session')}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`,
                );
                // 5.4 MB on the wire for a body of 900 000 line breaks (under 16 × gateway.maxFrameBytes)
                s.write(Buffer.from('1\r\n\n\r\n'.repeat(CHUNKS) + '0\r\n\r\n'));
              });
              let text = '';
              s.on('data', (d: Buffer) => {
                text += d.toString('latin1');
                if (text.includes('\r\n\r\n')) {
                  s.destroy();
                  resolve(text);
                }
              });
              s.on('error', reject);
              s.on('close', () => resolve(text));
            }),
        ),
      );
      const grown = target.rss() - before;
      console.log(`4 chunked POSTs of ${CHUNKS} one-byte chunks: gateway RSS grew ${(grown / MiB).toFixed(1)} MiB`);
      for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 204/);
      expect(grown).toBeLessThan(128 * MiB);
      expect(await target.health()).toBe(200);
    } finally {
      ctl.abort();
    }
  }, 60_000);
});

describe('POSTs in chunked transfer encoding with a made-up session id (2 gateway workers)', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({ gateway: { workers: 2 } });
  }, 90_000);
  afterAll(async () => {
    await target?.stop();
  });

  it('100 at once, 170 000 one-byte chunks each: 404 UNKNOWN_SESSION, and what is held while the other worker is asked stays about the bytes', async () => {
    const before = target.rss();
    let peak = 0;
    const sample = setInterval(() => (peak = Math.max(peak, target.rss() - before)), 20);
    const payload = Buffer.from('1\r\n\n\r\n'.repeat(170_000) + '0\r\n\r\n');
    try {
      const statuses = await Promise.all(
        Array.from(
          { length: 100 },
          () =>
            new Promise<number>((resolve) => {
              const s = connect(target.port, '127.0.0.1', () => {
                const head = `POST /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tickwire-Session: ${randomBytes(18).toString('base64url')}\r\nTransfer-Encoding: chunked\r\n\r\n`;
                s.write(Buffer.concat([Buffer.from(head), payload]));
              });
              let text = '';
              s.on('data', (d: Buffer) => {
                text += d.toString('latin1');
                if (text.includes('\r\n\r\n')) s.destroy();
              });
              s.on('error', () => undefined);
              s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
            }),
        ),
      );
      await new Promise((r) => setTimeout(r, 300));
      console.log(`100 chunked POSTs with made-up ids: gateway RSS peaked ${(peak / MiB).toFixed(1)} MiB above the start`);
      expect(statuses.every((st) => st === 404)).toBe(true);
      expect(peak).toBeLessThan(200 * MiB);
      // the gateway answers again once it has parsed what the kernel had already taken in for the
      // closed connections: within 5 s on a quiet box, more on a loaded CI runner (once /health did
      // not answer within its 5 s there); how long it took is printed
      const t0 = Date.now();
      let health = await target.health();
      while (health !== 200 && Date.now() - t0 < 30_000) health = await target.health();
      console.log(`/health answered ${health} ${Date.now() - t0} ms after the POSTs`);
      expect(health).toBe(200);
    } finally {
      clearInterval(sample);
    }
  }, 90_000);
});
