import { pack, unpack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientFrame, RawWs } from '../helpers/raw-ws.js';
import { freshAddress, rawHttp, startTarget, upgradeRequest } from './kit.js';
import type { Target } from './kit.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The bad-input corpus against a real `tickwire start` process: each case names the attack and
 * its expected outcome. After every case the process must still be up and answer /health; its
 * resident memory is sampled throughout and must stay bounded; errors must say what was wrong;
 * protocol errors and limit refusals are counted in /metrics (tickwire_protocol_errors_total{code},
 * tickwire_limit_refusals_total{limit}).
 * docs/reliability.md ("Hostile input") lists the same cases.
 *
 * Every case connects from its own loopback address (127.0.x.y), since the per-IP connection rate
 * limit is on for every address here (no loopback exemption).
 */
let target: Target;
let baselineRss = 0;
let maxRss = 0;
const MIB = 1024 * 1024;

beforeAll(async () => {
  target = await startTarget({
    synthetic: { seed: 11, rate: 6000 }, // enough traffic to fill a non-reading client's socket buffers in seconds
    gateway: { maxSubscriptions: 50, idleTimeoutSec: 8 },
    limits: { messagesPerSec: 50, messageBurst: 200, rateLimitCloseMs: 1500, connectionsPerIpPerSec: 5, connectionBurstPerIp: 10, exemptIps: [] },
    slow: { highWaterBytes: 256 * 1024, lowWaterBytes: 64 * 1024, hardLimitBytes: 1024 * 1024, stuckMs: 2000, checkMs: 50 },
  });
  // warm up: a client that subscribes and reads, so the baseline includes live channels
  const warm = await open();
  warm.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:BTC-USD'] }));
  await warm.waitFor(() => jsonFrames(warm).some((f) => f.op === 'data'), 15_000);
  warm.destroy();
  baselineRss = target.rss();
  maxRss = baselineRss;
}, 90_000);

afterAll(async () => {
  await target?.stop();
});

/** after each case: the process is up, /health answers 200, memory sampled */
async function stillHealthy(): Promise<void> {
  expect(target.proc.child.exitCode, target.proc.output().slice(-2000)).toBeNull();
  expect(await target.health()).toBe(200);
  maxRss = Math.max(maxRss, target.rss());
}

/** a connection past its welcome; protocol null offers none (msgpack, the default) */
async function open(protocol: string | null = 'tickwire.v1.json', localAddress = freshAddress()): Promise<RawWs> {
  const ws = await RawWs.connect(target.port, { ...(protocol ? { protocol } : {}), localAddress });
  await ws.waitFor(() => ws.frames.length >= 1);
  return ws;
}

function jsonFrames(ws: RawWs): Record<string, any>[] {
  return ws.frames
    .filter((f) => f.opcode === 1)
    .flatMap((f) => {
      const o = JSON.parse(f.payload.toString('utf8')) as Record<string, any>;
      return o.op === 'batch' ? (o.items as Record<string, any>[]) : [o];
    });
}

function msgpackFrames(ws: RawWs): Record<string, any>[] {
  return ws.frames.filter((f) => f.opcode === 2).map((f) => unpack(f.payload) as Record<string, any>);
}

/** Send, then wait for the error frame with `code` that answers it (errors before the send do not count). */
async function expectError(ws: RawWs, send: () => void, code: string, message: RegExp, frames = jsonFrames): Promise<Record<string, any>> {
  const from = frames(ws).length;
  send();
  await ws.waitFor(
    () =>
      frames(ws)
        .slice(from)
        .some((f) => f.op === 'error' && f.code === code),
    5000,
  );
  const e = frames(ws)
    .slice(from)
    .find((f) => f.op === 'error' && f.code === code)!;
  expect(e.message).toMatch(message);
  return e;
}

/** the connection is still usable: a ping request is answered */
async function stillOpen(ws: RawWs, msgpack = false): Promise<void> {
  const id = `alive-${Math.random()}`;
  if (msgpack) ws.send(0x2, pack({ op: 'ping', id }));
  else ws.sendText(JSON.stringify({ op: 'ping', id }));
  await ws.waitFor(() => (msgpack ? msgpackFrames(ws) : jsonFrames(ws)).some((f) => f.op === 'pong' && f.id === id), 5000);
}

// uWS's HTTP timeout (about 10 s) is waited out by connections that never complete a request (no
// WebSocket, so no counter of the other cases moves) while the rest of the corpus runs, one case
// after another as before; the checks after the corpus come when both are done.
describe('HTTP and the upgrade: the HTTP timeout', { concurrent: true }, () => {
  it('non-HTTP bytes, too many headers, an idle or trickling client -> closed by the HTTP timeout (about 10 s), nothing served', async () => {
    const timeouts = await Promise.all([
      rawHttp(target.port, Buffer.from([0x16, 0x03, 0x01, 0x00, 0xa5, 0x01, 0x00, 0x00, 0xa1, 0x03, 0x03]), { waitMs: 30_000, localAddress: freshAddress() }), // a TLS ClientHello
      rawHttp(target.port, upgradeRequest(Array.from({ length: 100 }, (_, i) => `X-H${i}: v`)), { waitMs: 30_000, localAddress: freshAddress() }),
      rawHttp(target.port, Buffer.alloc(0), { waitMs: 30_000, localAddress: freshAddress() }), // connects, sends nothing
      rawHttp(
        target.port,
        async (write, closed) => {
          // slowloris: a header line every 500 ms, never the end of the request
          write('GET /v1/stream HTTP/1.1\r\n');
          for (let i = 0; i < 50 && !closed(); i++) {
            await new Promise((r) => setTimeout(r, 500)); // pacing the attack, not a wait
            write(`X-Trickle-${i}: a\r\n`);
          }
        },
        { waitMs: 30_000, localAddress: freshAddress() },
      ),
    ]);
    for (const r of timeouts) {
      expect(r.status).toBe(0);
      expect(r.closed).toBe(true);
      expect(r.closedAfterMs).toBeLessThan(30_000);
    }
    await stillHealthy();
  }, 60_000);
});

describe('meanwhile, the rest of the corpus', { concurrent: true }, () => {
  describe.sequential('HTTP and the upgrade', () => {
    it('plain HTTP GET without Upgrade -> 426 with a JSON error', async () => {
      const r = await rawHttp(target.port, 'GET /v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
      expect(r.status).toBe(426);
      expect(JSON.parse(r.body)).toMatchObject({ error: 'UPGRADE_REQUIRED', message: expect.stringMatching(/WebSocket/) });
      await stillHealthy();
    });

    it('wrong WebSocket version (8, or none) -> 426 naming version 13', async () => {
      for (const version of ['8', null]) {
        const r = await rawHttp(target.port, upgradeRequest([], { version }), { localAddress: freshAddress() });
        expect(r.status).toBe(426);
        expect(r.head).toMatch(/sec-websocket-version: 13/i);
        expect(JSON.parse(r.body)).toMatchObject({ error: 'BAD_WEBSOCKET_VERSION' });
      }
      await stillHealthy();
    });

    it('missing or malformed Sec-WebSocket-Key -> 426, no upgrade', async () => {
      for (const key of [null, 'short']) {
        const r = await rawHttp(target.port, upgradeRequest([], { key }), { localAddress: freshAddress() });
        expect(r.status).toBe(426);
      }
      await stillHealthy();
    });

    it('unknown subprotocol only -> 400 naming it', async () => {
      const r = await rawHttp(target.port, upgradeRequest(['Sec-WebSocket-Protocol: chat, superchat']), { localAddress: freshAddress() });
      expect(r.status).toBe(400);
      expect(JSON.parse(r.body)).toMatchObject({ error: 'BAD_SUBPROTOCOL', message: expect.stringContaining('chat') });
      await stillHealthy();
    });

    it('oversized request headers (1 MB) -> connection closed at once, no response', async () => {
      const r = await rawHttp(target.port, upgradeRequest([`X-Big: ${'a'.repeat(1024 * 1024)}`]), { waitMs: 5000, localAddress: freshAddress() });
      expect(r.status).toBe(0);
      expect(r.closed).toBe(true);
      await stillHealthy();
    });
  });

  describe.sequential('WebSocket frames (JSON mode)', () => {
    it('invalid UTF-8 in a text frame -> uWS fails the connection (TCP close)', async () => {
      const ws = await open();
      ws.send(0x1, Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]));
      await ws.waitFor(() => ws.ended, 5000);
      await stillHealthy();
    });

    it('binary frame in JSON mode, text that is not JSON, nesting 10 000 deep -> BAD_FRAME saying why; connection stays open', async () => {
      const ws = await open();
      await expectError(ws, () => ws.send(0x2, Buffer.from([0x80])), 'BAD_FRAME', /binary frame on a tickwire\.v1\.json connection/);
      await expectError(ws, () => ws.sendText('{"op":"subscribe",'), 'BAD_FRAME', /not valid JSON/);
      await expectError(ws, () => ws.sendText('['.repeat(10_000) + ']'.repeat(10_000)), 'BAD_FRAME', /deeper than 16/);
      await stillOpen(ws);
      ws.destroy();
      await stillHealthy();
    });

    it('valid JSON of the wrong shape -> BAD_REQUEST; unknown op -> UNKNOWN_OP naming it; the id is echoed', async () => {
      const ws = await open();
      const send = (o: unknown) => () => ws.sendText(typeof o === 'string' ? o : JSON.stringify(o));
      await expectError(ws, send('[1,2,3]'), 'BAD_REQUEST', /must be an object with an "op" field/);
      expect((await expectError(ws, send({ op: 'subscribe', id: 5, channels: 'quote:AAPL' }), 'BAD_REQUEST', /"channels" must be an array/)).id).toBe(5);
      await expectError(ws, send({ op: 'subscribe', id: 6, channels: ['quote:AAPL', 42] }), 'BAD_REQUEST', /every channel must be a string/);
      await expectError(ws, send({ op: 'subscribe', id: 7, channels: ['quote:AAPL'], throttle: -1 }), 'BAD_REQUEST', /throttle/);
      expect((await expectError(ws, send({ op: 'drop_tables', id: 'x' }), 'UNKNOWN_OP', /unknown op "drop_tables"/)).id).toBe('x');
      const long = await expectError(ws, send({ op: 'a'.repeat(10_000) }), 'UNKNOWN_OP', /unknown op "a+"/);
      expect(long.message.length).toBeLessThan(200); // not echoed in full
      await stillOpen(ws);
      ws.destroy();
      await stillHealthy();
    });

    it('invalid channel names and symbols -> rejected one by one with UNKNOWN_CHANNEL and a reason; private channels without a token -> UNAUTHENTICATED', async () => {
      const ws = await open();
      const bad = [
        '',
        'x'.repeat(200),
        'quote:ÄPPLE',
        'quote:A\u0000B',
        'quote:aapl',
        'candle:AAPL',
        'quote:',
        ':',
        'quote:AAPL:X',
        'quote:ZZZZ',
        'trade:BTC USD',
        '../../etc/passwd',
        'md.>',
        'quote:*',
      ];
      ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: [...bad, 'executions', 'portfolio', 'quote:AAPL'] }));
      await ws.waitFor(() => jsonFrames(ws).some((f) => f.op === 'ack' && f.id === 1));
      const ack = jsonFrames(ws).find((f) => f.op === 'ack' && f.id === 1)!;
      expect(ack.subscribed).toEqual(['quote:AAPL']);
      expect(ack.rejected).toHaveLength(bad.length + 2);
      for (const r of ack.rejected as { channel: string; code: string; reason: string }[]) {
        expect(r.channel.length).toBeLessThanOrEqual(128);
        expect(r.reason.length).toBeGreaterThan(10);
        expect(['UNKNOWN_CHANNEL', 'UNAUTHENTICATED']).toContain(r.code);
      }
      expect(ack.rejected.find((r: { channel: string }) => r.channel === 'quote:aapl').reason).toMatch(/upper case: AAPL/);
      expect(ack.rejected.filter((r: { code: string }) => r.code === 'UNAUTHENTICATED').map((r: { channel: string }) => r.channel)).toEqual([
        'executions',
        'portfolio',
      ]);
      ws.destroy();
      await stillHealthy();
    });
  });

  describe.sequential('WebSocket frames (msgpack mode)', () => {
    const cases: [string, number[], RegExp][] = [
      ['truncated map', [0x83, 0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69], /not valid MessagePack/],
      ['str32 claiming 4 GB', [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61, 0x62], /not valid MessagePack/],
      ['bin32 claiming 4 GB', [0xc6, 0xff, 0xff, 0xff, 0xff, 0x00], /not valid MessagePack/],
      ['array32 claiming 4 G items', [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01], /not valid MessagePack/],
      ['map32 claiming 4 G entries', [0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61], /not valid MessagePack/],
      ['nesting 60 000 deep', [...Array<number>(60_000).fill(0x91), 0x01], /deeper than 16|not valid MessagePack/],
      ['a msgpackr extension (timestamp)', [0x81, 0xa2, 0x6f, 0x70, 0xd6, 0xff, 0, 0, 0, 1], /not plain MessagePack/],
      ['the reserved byte 0xc1', [0xc1], /not plain MessagePack|not valid MessagePack/],
    ];
    it.each(cases)('%s -> BAD_FRAME saying why; connection stays open', async (_name, bytes, message) => {
      const ws = await open(null);
      await expectError(ws, () => ws.send(0x2, Buffer.from(bytes)), 'BAD_FRAME', message, msgpackFrames);
      await stillOpen(ws, true);
      ws.destroy();
      await stillHealthy();
    });

    it('text frame in msgpack mode -> BAD_FRAME naming the encoding', async () => {
      const ws = await open(null);
      await expectError(ws, () => ws.sendText('{"op":"ping"}'), 'BAD_FRAME', /text frame on a tickwire\.v1\.msgpack connection/, msgpackFrames);
      ws.destroy();
      await stillHealthy();
    });
  });

  describe.sequential('frame sizes', () => {
    it('64-bit length claiming 2^62 bytes -> connection cut (no buffering of the claim)', async () => {
      const ws = await open();
      ws.socket.write(Buffer.from([0x81, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]));
      ws.socket.write(Buffer.alloc(64 * 1024));
      await ws.waitFor(() => ws.ended, 5000);
      await stillHealthy();
    });

    it('a 2 MB message (over the 1 MiB uWS bound) -> connection cut without a close frame', async () => {
      const ws = await open();
      ws.send(0x1, Buffer.alloc(2 * MIB, 0x20));
      await ws.waitFor(() => ws.ended, 10_000);
      await stillHealthy();
    });

    it('a 100 KB message (over gateway.maxFrameBytes) -> BAD_FRAME naming the size, then close 1009', async () => {
      const ws = await open();
      ws.sendText(JSON.stringify({ op: 'ping', pad: 'a'.repeat(100_000) }));
      await ws.waitFor(() => ws.ended, 5000);
      expect(jsonFrames(ws).find((f) => f.op === 'error')).toMatchObject({
        code: 'BAD_FRAME',
        message: expect.stringMatching(/100\d{3} bytes is over the limit of 65536/),
      });
      expect(ws.closeFrame()).toMatchObject({ code: 1009 });
      await stillHealthy();
    });
  });

  describe.sequential('floods', () => {
    it('subscription flood: 1001 channels in one request -> LIMIT; past gateway.maxSubscriptions (50) -> the rest rejected with LIMIT', async () => {
      const ws = await open();
      await expectError(
        ws,
        () => ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: Array.from({ length: 1001 }, (_, i) => `quote:S${i}`) })),
        'LIMIT',
        /at most 1000 channels per request/,
      );
      const syms = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'BRK.B', 'AMZN', 'GOOGL', 'META', 'SPY', 'QQQ', 'BTC-USD', 'ETH-USD', 'SOL-USD', 'XRP-USD', 'DOGE-USD'];
      const all = syms.flatMap((s) => ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m'].map((k) => `${k}:${s}`)); // 75 channels
      ws.sendText(JSON.stringify({ op: 'subscribe', id: 2, channels: all, throttle: 1000, snapshot: false }));
      await ws.waitFor(() => jsonFrames(ws).some((f) => f.op === 'ack' && f.id === 2));
      const ack = jsonFrames(ws).find((f) => f.op === 'ack' && f.id === 2)!;
      expect(ack.subscribed).toHaveLength(50);
      expect(ack.rejected).toHaveLength(25);
      expect(ack.rejected.every((r: { code: string; reason: string }) => r.code === 'LIMIT' && /at most 50 subscriptions/.test(r.reason))).toBe(true);
      ws.destroy();
      await stillHealthy();
    });

    it('subscribe/unsubscribe churn (150 requests) -> every one acked, nothing left subscribed', async () => {
      const ws = await open();
      for (let i = 0; i < 75; i++) {
        ws.sendText(JSON.stringify({ op: 'subscribe', id: `s${i}`, channels: ['quote:EUR-USD', 'trade:ETH-USD'], snapshot: i % 2 === 0 }));
        ws.sendText(JSON.stringify({ op: 'unsubscribe', id: `u${i}`, channels: ['quote:EUR-USD', 'trade:ETH-USD'] }));
      }
      await ws.waitFor(() => jsonFrames(ws).filter((f) => f.op === 'ack').length === 150, 10_000);
      const conns = (await target.stats()).connections as number;
      ws.destroy();
      await waitFor(async () => ((await target.stats()).connections as number) === conns - 1, 'the destroyed connection gone from /v1/stats');
      await stillHealthy();
    });

    it('message flood: pings far over the rate -> the burst is answered, then RATE_LIMIT errors, then close 4008', async () => {
      const ws = await open();
      const ping = clientFrame(0x1, Buffer.from('{"op":"ping"}'));
      const t0 = Date.now();
      // ~1000 frames per second for up to 5 s: far over 50/s sustained, longer than rateLimitCloseMs
      for (let i = 0; i < 50 && !ws.ended; i++) {
        ws.socket.write(Buffer.concat(Array<Buffer>(100).fill(ping)));
        await new Promise((r) => setTimeout(r, 100)); // pacing the flood, not a wait
      }
      await ws.waitFor(() => ws.ended, 10_000);
      const frames = jsonFrames(ws);
      const pongs = frames.filter((f) => f.op === 'pong').length;
      expect(pongs).toBeGreaterThanOrEqual(200); // the burst
      expect(pongs).toBeLessThanOrEqual(200 + 50 * Math.ceil((Date.now() - t0) / 1000)); // then the sustained rate at most
      expect(frames.find((f) => f.op === 'error' && f.code === 'RATE_LIMIT')?.message).toMatch(/more than 50 frames per second/);
      expect(ws.closeFrame()).toMatchObject({ code: 4008 });
      await stillHealthy();
    });

    it('connection flood from one IP: 40 upgrades at once -> the burst (10) is admitted, the rest refused with 429; other addresses unaffected', async () => {
      const ip = freshAddress();
      const t0 = Date.now();
      const results = await Promise.allSettled(
        Array.from({ length: 40 }, () => RawWs.connect(target.port, { protocol: 'tickwire.v1.json', localAddress: ip })),
      );
      const refill = Math.ceil(((Date.now() - t0) / 1000) * 5); // connectionsPerIpPerSec
      const ok = results.filter((r): r is PromiseFulfilledResult<RawWs> => r.status === 'fulfilled').map((r) => r.value);
      const refused = results
        .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
        .map((r) => String((r.reason as { head?: string }).head ?? r.reason));
      expect(ok.length).toBeGreaterThanOrEqual(10);
      expect(ok.length).toBeLessThanOrEqual(10 + refill); // the burst, plus what the rate refilled meanwhile
      expect(refused.length).toBeGreaterThan(0);
      expect(refused.length).toBe(40 - ok.length);
      for (const head of refused) expect(head).toMatch(/^HTTP\/1\.1 429/);
      const other = await open();
      await stillOpen(other);
      for (const ws of [...ok, other]) ws.destroy();
      await stillHealthy();
    });

    it('300 idle connections from 30 addresses -> all served, memory bounded, all gone when they close', async () => {
      // connections the cases before destroyed may still be closing on the server: `before` can
      // count them, so what this case opened is told by the opened counter, not by the difference
      const s0 = await target.stats();
      const before = s0.connections as number;
      const conns: RawWs[] = [];
      for (let a = 0; a < 30; a++) {
        const ip = freshAddress();
        conns.push(...(await Promise.all(Array.from({ length: 10 }, () => RawWs.connect(target.port, { protocol: 'tickwire.v1.json', localAddress: ip })))));
      }
      await Promise.all(conns.map((c) => c.waitFor(() => c.frames.length >= 1)));
      // open connections are counted live across workers; the other workers' counters in
      // /v1/stats are up to one board interval old (docs/operations.md)
      const opened = async (): Promise<number> => ((await target.stats()).gateway.connectionsOpened as number) - s0.gateway.connectionsOpened;
      await waitFor(async () => (await opened()) >= 300, { what: 'the opened counter', interval: 100 }).catch(() => undefined); // asserted below
      const s1 = await target.stats();
      expect(s1.gateway.connectionsOpened - s0.gateway.connectionsOpened).toBe(300);
      expect(s1.connections).toBeGreaterThanOrEqual(300);
      expect(s1.connections).toBeLessThanOrEqual(before + 300);
      maxRss = Math.max(maxRss, target.rss());
      expect(target.rss() - baselineRss).toBeLessThan(200 * MIB);
      for (const c of conns) c.destroy();
      await waitFor(async () => ((await target.stats()).connections as number) <= before, { what: 'the connections gone from /v1/stats', interval: 100 }).catch(
        () => undefined,
      ); // asserted below
      expect((await target.stats()).connections).toBeLessThanOrEqual(before);
      await stillHealthy();
    });
  });

  describe.sequential('clients that do not play along', () => {
    it('a client that never reads -> paused above high water, closed 4009 (slow consumer); the server buffer stays bounded', async () => {
      const ws = await open();
      const syms = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'BTC-USD', 'ETH-USD', 'SOL-USD', 'EUR-USD', 'GBP-USD', 'USD-JPY'];
      const channels = syms.flatMap((s) => ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m'].map((k) => `${k}:${s}`));
      ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels, throttle: 0 }));
      await ws.waitFor(() => jsonFrames(ws).some((f) => f.op === 'ack'));
      ws.pause();
      const deadline = Date.now() + 40_000;
      let s = await target.stats();
      while (s.gateway.slowDisconnects < 1 && Date.now() < deadline) {
        // it keeps writing (so the idle timeout does not close it first), it just never reads
        ws.sendText('{"op":"ping"}');
        await new Promise((r) => setTimeout(r, 500)); // pacing its writes, not a wait
        s = await target.stats();
        maxRss = Math.max(maxRss, target.rss());
      }
      expect(s.gateway.slowDisconnects).toBeGreaterThanOrEqual(1);
      expect(s.gateway.maxBufferedBytes).toBeLessThanOrEqual(2 * MIB + 64 * 1024); // 2 x slow.hardLimitBytes + one frame
      ws.resume();
      await ws.waitFor(() => ws.ended, 10_000);
      expect(ws.closeFrame()?.code).toBe(4009);
      await stillHealthy();
    }, 60_000);

    it('a WebSocket that never answers pings nor sends anything, and one that sends a frame header whose payload never comes -> both closed by the idle timeout (gateway.idleTimeoutSec 8)', async () => {
      const silent = await open(); // RawWs does not answer pings
      const partial = await open();
      partial.socket.write(clientFrame(0x1, Buffer.from(JSON.stringify({ op: 'ping', id: 1, pad: 'x'.repeat(1000) }))).subarray(0, 100));
      await Promise.all([silent.waitFor(() => silent.ended, 30_000), partial.waitFor(() => partial.ended, 30_000)]);
      expect(silent.frames.some((f) => f.opcode === 0x9)).toBe(true); // uWS pinged it first
      expect(jsonFrames(partial).some((f) => f.op === 'pong')).toBe(false);
      await stillHealthy();
    }, 40_000);
  });
});

describe('after the corpus', () => {
  it('the engine is still up, memory stayed bounded, and /metrics counted the protocol errors by code', async () => {
    await stillHealthy();
    expect(maxRss - baselineRss, `RSS grew from ${Math.round(baselineRss / MIB)} to ${Math.round(maxRss / MIB)} MiB`).toBeLessThan(300 * MIB);
    expect(await target.metric('tickwire_protocol_errors_total', { code: 'BAD_FRAME' })).toBeGreaterThanOrEqual(12);
    expect(await target.metric('tickwire_protocol_errors_total', { code: 'BAD_REQUEST' })).toBeGreaterThanOrEqual(4);
    expect(await target.metric('tickwire_protocol_errors_total', { code: 'UNKNOWN_OP' })).toBeGreaterThanOrEqual(2);
    expect(await target.metric('tickwire_protocol_errors_total', { code: 'LIMIT' })).toBeGreaterThanOrEqual(1);
    expect(await target.metric('tickwire_protocol_errors_total', { code: 'RATE_LIMIT' })).toBeGreaterThanOrEqual(1);
    expect(await target.metric('tickwire_slow_consumer_closes_total')).toBeGreaterThanOrEqual(1);
    // the limits: frames dropped by the rate limit, the 4008 close, the 429s of the connection flood
    expect(await target.metric('tickwire_limit_refusals_total', { limit: 'rate_limited_frames' })).toBeGreaterThanOrEqual(100);
    expect(await target.metric('tickwire_limit_refusals_total', { limit: 'rate_limit_closes' })).toBeGreaterThanOrEqual(1);
    expect(await target.metric('tickwire_limit_refusals_total', { limit: 'new_connections_per_ip' })).toBeGreaterThanOrEqual(25);
    // a normal client still gets live data
    const ws = await open();
    ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD'] }));
    await ws.waitFor(() => jsonFrames(ws).filter((f) => f.op === 'data').length >= 3, 15_000);
    ws.destroy();
  });
});
