import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { clientFrame, RawWs } from '../helpers/raw-ws.js';
import { quietFor } from '../helpers/wait.js';

/**
 * RFC 6455 behaviour of the gateway, after the Autobahn testsuite's server cases 1-7 and 9, on raw
 * sockets. Autobahn echoes messages back; the gateway does not echo, so every case asserts on the
 * server's reaction instead: a request (`{"op":"ping"}`) that arrives intact is answered with a
 * `pong` carrying its id; a protocol violation fails the connection (a 1002/1007 close frame, or
 * the TCP connection closed without one). Where uWebSockets.js deviates from the RFC the test
 * asserts what it really does and docs/reliability.md ("WebSocket compliance") says so.
 */
let engine: Engine;
let port = 0;

beforeAll(async () => {
  // no feeds: nothing but the answers to our own requests arrives on these connections; no
  // message rate limit (test/hostile covers it): case 9.7 sends 1000 requests at once
  engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], limits: { messagesPerSec: 0 } }, { env: {} });
  port = engine.port;
});

afterAll(async () => {
  await engine?.close();
});

const OP_CONT = 0x0;
const OP_TEXT = 0x1;
const OP_BINARY = 0x2;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;
const OP_PONG = 0xa;

/** A JSON-mode connection past its welcome frame. */
async function open(protocol = 'tickwire.v1.json'): Promise<RawWs> {
  const ws = await RawWs.connect(port, { protocol });
  await ws.waitFor(() => ws.frames.length >= 1);
  return ws;
}

/** A ping request of exactly `size` bytes of JSON (padded), for framing cases. */
function pingOfSize(id: number | string, size: number): Buffer {
  const base = JSON.stringify({ op: 'ping', id, pad: '' });
  if (size < base.length) throw new Error(`size ${size} below ${base.length}`);
  const b = Buffer.from(JSON.stringify({ op: 'ping', id, pad: 'x'.repeat(size - base.length) }));
  expect(b.length).toBe(size);
  return b;
}

/** JSON frames (text) the server sent after the welcome. */
function answers(ws: RawWs): Record<string, any>[] {
  return ws.frames
    .slice(1)
    .filter((f) => f.opcode === OP_TEXT)
    .map((f) => JSON.parse(f.payload.toString('utf8')) as Record<string, any>);
}

async function waitPong(ws: RawWs, id: number | string): Promise<void> {
  await ws.waitFor(() => answers(ws).some((a) => a.op === 'pong' && a.id === id), 5000);
}

/**
 * The connection was failed: TCP closed, and if a close frame came first it is 1002 (protocol
 * error) or, for `utf8`, 1007. Returns the close code seen (undefined: none).
 */
async function expectFailed(ws: RawWs, opts: { utf8?: boolean } = {}): Promise<number | undefined> {
  await ws.waitFor(() => ws.ended, 5000);
  const cf = ws.closeFrame();
  if (cf) expect(opts.utf8 ? [1002, 1007] : [1002]).toContain(cf.code);
  return cf?.code;
}

/** After a close handshake: the close frame the server sent back, and the TCP connection is gone. */
async function closeReply(ws: RawWs): Promise<{ code: number; reason: string; empty: boolean } | undefined> {
  await ws.waitFor(() => ws.ended, 5000);
  const f = ws.frames.find((x) => x.opcode === OP_CLOSE);
  if (!f) return undefined;
  return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString(), empty: f.payload.length === 0 };
}

function closePayload(code: number, reason: Buffer | string = ''): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  return Buffer.concat([b, typeof reason === 'string' ? Buffer.from(reason) : reason]);
}

describe('handshake (RFC 6455 4.1, 11.3.4)', () => {
  it('Sec-WebSocket-Protocol sent as several header lines is one list: the encoding offered on a later line is chosen', async () => {
    // 11.3.4: the header "MAY appear multiple times in an HTTP request (which is logically the
    // same as a single |Sec-WebSocket-Protocol| header field that contains all values)"; RFC 9110
    // 5.3 lets any proxy split or join such lines. Only the first line was read: 400 BAD_SUBPROTOCOL
    for (const [first, second] of [['chat', 'tickwire.v1.json'] as const, ['chat, superchat', 'tickwire.v1.json, tickwire.v1.msgpack'] as const]) {
      const ws = await RawWs.connect(port, { protocol: first, headers: { 'sec-websocket-protocol': second } });
      expect(ws.handshake).toMatch(/\r\nsec-websocket-protocol: tickwire\.v1\.json(\r\n|$)/i);
      await ws.waitFor(() => ws.frames.length >= 1);
      ws.send(OP_TEXT, JSON.stringify({ op: 'ping', id: 'split' }));
      await waitPong(ws, 'split');
      ws.destroy();
    }
    // the lines together still offer nothing this server speaks: 400 naming all of them
    await expect(RawWs.connect(port, { protocol: 'chat', headers: { 'sec-websocket-protocol': 'superchat' } })).rejects.toMatchObject({
      head: expect.stringMatching(/^HTTP\/1\.1 400/),
    });
  });
});

describe('1 framing: text and binary messages of every length encoding', () => {
  it.each([
    ['7-bit, 125 bytes', 125],
    ['16-bit, 126 bytes', 126],
    ['16-bit, 127 bytes', 127],
    ['16-bit, 128 bytes', 128],
    ['16-bit, 65535 bytes', 65535],
    ['64-bit, 65536 bytes (the configured maximum)', 65536],
  ])('1.1 text: %s is reassembled and answered', async (_name, size) => {
    const ws = await open();
    ws.send(OP_TEXT, pingOfSize(size, size));
    await waitPong(ws, size);
    ws.destroy();
  });

  it('1.1.1 an empty text message is not JSON: BAD_FRAME, connection stays open', async () => {
    const ws = await open();
    ws.send(OP_TEXT, Buffer.alloc(0));
    await ws.waitFor(() => answers(ws).some((a) => a.op === 'error' && a.code === 'BAD_FRAME'));
    ws.sendText(JSON.stringify({ op: 'ping', id: 'after' }));
    await waitPong(ws, 'after');
    ws.destroy();
  });

  it('1.2 binary: msgpack requests of 125, 126 and 65536 bytes are answered on a msgpack connection', async () => {
    const { pack, unpack } = await import('msgpackr');
    const ws = await RawWs.connect(port);
    await ws.waitFor(() => ws.frames.length >= 1);
    for (const size of [125, 126, 65536]) {
      const base = pack({ op: 'ping', id: size, pad: '' }).length;
      // str8/str16/str32 headers grow with the pad: find the pad that gives the exact size
      let pad = size - base;
      while (pack({ op: 'ping', id: size, pad: 'x'.repeat(pad) }).length > size) pad--;
      const msg = Buffer.from(pack({ op: 'ping', id: size, pad: 'x'.repeat(pad) }));
      ws.send(OP_BINARY, msg);
      await ws.waitFor(() => ws.frames.some((f) => f.opcode === OP_BINARY && (unpack(f.payload) as { id?: number }).id === size), 5000);
    }
    ws.destroy();
  });

  it('1.2 binary frame on a JSON connection: BAD_FRAME, connection stays open', async () => {
    const ws = await open();
    ws.send(OP_BINARY, Buffer.from([0x81, 0xa2, 0x6f, 0x70]));
    await ws.waitFor(() => answers(ws).some((a) => a.op === 'error' && a.code === 'BAD_FRAME' && /binary frame/.test(a.message)));
    expect(ws.ended).toBe(false);
    ws.destroy();
  });
});

describe('2 pings and pongs', () => {
  it.each([
    ['2.1 no payload', Buffer.alloc(0)],
    ['2.2 text payload', Buffer.from('Hello, world!')],
    ['2.3 binary payload', Buffer.from([0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff])],
    ['2.4 125-byte payload', Buffer.alloc(125, 0xfe)],
  ])('%s: pong with the same payload', async (_name, payload) => {
    const ws = await open();
    ws.send(OP_PING, payload);
    await ws.waitFor(() => ws.frames.some((f) => f.opcode === OP_PONG));
    expect(ws.frames.find((f) => f.opcode === OP_PONG)!.payload.equals(payload)).toBe(true);
    ws.destroy();
  });

  it('2.5 a 126-byte ping (control frames are at most 125) fails the connection, no pong', async () => {
    const ws = await open();
    ws.send(OP_PING, Buffer.alloc(126, 0xfe));
    await expectFailed(ws);
    expect(ws.frames.some((f) => f.opcode === OP_PONG)).toBe(false);
  });

  it('2.6 a 125-byte ping written one byte at a time is answered', async () => {
    const ws = await open();
    const payload = Buffer.alloc(125, 0x41);
    for (const byte of clientFrame(OP_PING, payload)) {
      ws.socket.write(Buffer.from([byte]));
      await new Promise((r) => setTimeout(r, 1)); // pacing, not a wait: one TCP segment per byte
    }
    await ws.waitFor(() => ws.frames.some((f) => f.opcode === OP_PONG && f.payload.equals(payload)));
    ws.destroy();
  });

  it('2.7-2.9 unsolicited pongs are ignored; a ping after them is answered', async () => {
    const ws = await open();
    ws.send(OP_PONG, Buffer.alloc(0));
    ws.send(OP_PONG, Buffer.from('unsolicited pong payload'));
    ws.send(OP_PING, Buffer.from('ping payload'));
    await ws.waitFor(() => ws.frames.some((f) => f.opcode === OP_PONG));
    expect(ws.frames.filter((f) => f.opcode === OP_PONG).map((f) => f.payload.toString())).toEqual(['ping payload']);
    expect(ws.ended).toBe(false);
    ws.destroy();
  });

  it('2.10/2.11 ten pings, sent apart or in one write, get ten pongs in order', async () => {
    for (const together of [false, true]) {
      const ws = await open();
      const frames = Array.from({ length: 10 }, (_, i) => clientFrame(OP_PING, Buffer.from(`payload-${i}`)));
      if (together) ws.socket.write(Buffer.concat(frames));
      else for (const f of frames) ws.socket.write(f);
      await ws.waitFor(() => ws.frames.filter((f) => f.opcode === OP_PONG).length === 10);
      expect(ws.frames.filter((f) => f.opcode === OP_PONG).map((f) => f.payload.toString())).toEqual(Array.from({ length: 10 }, (_, i) => `payload-${i}`));
      ws.destroy();
    }
  });
});

describe('3 reserved bits', () => {
  it.each([
    ['3.1 RSV2 on a text frame', OP_TEXT, 2],
    ['3.2 RSV1 on a text frame (no extension negotiated)', OP_TEXT, 4],
    ['3.3 RSV3 on a text frame', OP_TEXT, 1],
    ['3.4 RSV1+RSV3', OP_TEXT, 5],
    ['3.5 RSV1+RSV2 on a binary frame', OP_BINARY, 6],
    ['3.6 all three on a ping', OP_PING, 7],
  ])('%s fails the connection', async (_name, opcode, rsv) => {
    const ws = await open();
    ws.sendText(JSON.stringify({ op: 'ping', id: 'before' }));
    await waitPong(ws, 'before');
    ws.send(opcode, opcode === OP_TEXT ? JSON.stringify({ op: 'ping', id: 'rsv' }) : Buffer.from('x'), { rsv });
    await expectFailed(ws);
    expect(answers(ws).some((a) => a.id === 'rsv')).toBe(false);
  });
});

describe('4 opcodes', () => {
  it.each([3, 4, 5, 6, 7])('4.1 reserved non-control opcode %i fails the connection', async (opcode) => {
    const ws = await open();
    ws.send(opcode, Buffer.from('reserved'));
    await expectFailed(ws);
  });

  it.each([0xb, 0xc, 0xd, 0xe, 0xf])('4.2 reserved control opcode %i fails the connection', async (opcode) => {
    const ws = await open();
    ws.send(opcode, Buffer.from('reserved'));
    await expectFailed(ws);
  });
});

describe('5 fragmentation', () => {
  const request = JSON.stringify({ op: 'ping', id: 'frag' });

  it('5.1/5.2 fragmented ping or pong fails the connection', async () => {
    for (const opcode of [OP_PING, OP_PONG]) {
      const ws = await open();
      ws.send(opcode, 'frag', { fin: false });
      ws.send(OP_CONT, 'ment');
      await expectFailed(ws);
      expect(ws.frames.some((f) => f.opcode === OP_PONG)).toBe(false);
    }
  });

  it('5.3-5.5 a text request in 2 fragments, or in 1-byte fragments, is reassembled and answered', async () => {
    const ws = await open();
    ws.send(OP_TEXT, request.slice(0, 10), { fin: false });
    ws.send(OP_CONT, request.slice(10));
    await waitPong(ws, 'frag');
    const one = JSON.stringify({ op: 'ping', id: 'bytes' });
    for (let i = 0; i < one.length; i++) ws.send(i === 0 ? OP_TEXT : OP_CONT, one[i]!, { fin: i === one.length - 1 });
    await waitPong(ws, 'bytes');
    ws.destroy();
  });

  it('5.6-5.8 a ping between fragments is answered at once and the message still completes', async () => {
    const ws = await open();
    ws.send(OP_TEXT, request.slice(0, 10), { fin: false });
    ws.send(OP_PING, 'in between');
    await ws.waitFor(() => ws.frames.some((f) => f.opcode === OP_PONG));
    expect(answers(ws)).toEqual([]);
    ws.send(OP_CONT, request.slice(10));
    await waitPong(ws, 'frag');
    ws.destroy();
  });

  it('5.9-5.14 a continuation frame with no message started fails the connection', async () => {
    for (const fin of [true, false]) {
      const ws = await open();
      ws.send(OP_CONT, request, { fin });
      await expectFailed(ws);
    }
  });

  it('5.15-5.18 a new text frame inside a fragmented message fails the connection', async () => {
    const ws = await open();
    ws.send(OP_TEXT, request.slice(0, 10), { fin: false });
    ws.send(OP_TEXT, request);
    await expectFailed(ws);
    expect(answers(ws).some((a) => a.id === 'frag')).toBe(false);
  });

  it('5.19/5.20 fragments with pings and pauses between them', async () => {
    const ws = await open();
    const parts = [request.slice(0, 5), request.slice(5, 10), request.slice(10, 15), request.slice(15, 20), request.slice(20)];
    for (let i = 0; i < parts.length; i++) {
      ws.send(i === 0 ? OP_TEXT : OP_CONT, parts[i]!, { fin: i === parts.length - 1 });
      if (i === 1 || i === 3) {
        ws.send(OP_PING, `p${i}`);
        // the pause between fragments lasts until the ping in the middle of the message is answered
        await ws.waitFor(() => ws.frames.some((f) => f.opcode === OP_PONG && f.payload.toString() === `p${i}`));
      }
    }
    await waitPong(ws, 'frag');
    expect(ws.frames.filter((f) => f.opcode === OP_PONG).map((f) => f.payload.toString())).toEqual(['p1', 'p3']);
    ws.destroy();
  });
});

describe('6 UTF-8 in text messages', () => {
  it('6.2/6.4 valid UTF-8 split inside a code point across fragments is reassembled', async () => {
    const msg = Buffer.from(JSON.stringify({ op: 'ping', id: 'κόσμε-𝄞-€' }));
    for (let cut = 1; cut < msg.length; cut += 3) {
      const ws = await open();
      ws.send(OP_TEXT, msg.subarray(0, cut), { fin: false });
      ws.send(OP_CONT, msg.subarray(cut));
      await waitPong(ws, 'κόσμε-𝄞-€');
      ws.destroy();
    }
  });

  // Autobahn 6.3, 6.6, 6.8, 6.9, 6.14, 6.16-6.21: bad continuation, truncated sequences, overlong
  // forms, surrogates, code points above U+10FFFF, 0xFE/0xFF
  const invalid: [string, number[]][] = [
    ['6.3 surrogate in the middle of text', [0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80, 0x65, 0x64]],
    ['6.6 truncated sequence at the end', [0xce, 0xba, 0xe1, 0xbd]],
    ['6.8 above U+10FFFF (5-byte form)', [0xf8, 0x88, 0x80, 0x80, 0x80]],
    ['6.9 above U+10FFFF (F4 90)', [0xf4, 0x90, 0x80, 0x80]],
    ['6.14 lone continuation byte', [0x80]],
    ['6.16 0xFE / 0xFF', [0xfe, 0xff]],
    ['6.17 overlong "/"', [0xc0, 0xaf]],
    ['6.18 overlong NUL (3 bytes)', [0xe0, 0x80, 0x80]],
    ['6.19 UTF-16 surrogate pair encoded as UTF-8', [0xed, 0xa0, 0x80, 0xed, 0xb0, 0x80]],
  ];
  it.each(invalid)('%s fails the connection (no 1007 close frame from uWS: TCP close)', async (_name, bytes) => {
    const ws = await open();
    ws.send(OP_TEXT, Buffer.from(bytes));
    const code = await expectFailed(ws, { utf8: true });
    // uWS closes the socket without a close frame; should it ever send one, 1007 or 1002 is fine
    expect(code === undefined || code === 1007 || code === 1002).toBe(true);
  });

  it('6.x invalid UTF-8 across fragments fails the connection', async () => {
    const ws = await open();
    ws.send(OP_TEXT, Buffer.from([0x7b, 0xce]), { fin: false });
    ws.send(OP_CONT, Buffer.from([0x41, 0x7d]));
    await expectFailed(ws, { utf8: true });
  });

  it('6.x a binary frame is not UTF-8 checked (msgpack strings are checked by the decoder)', async () => {
    const ws = await RawWs.connect(port);
    await ws.waitFor(() => ws.frames.length >= 1);
    ws.send(OP_BINARY, Buffer.from([0xa2, 0xff, 0xfe])); // a msgpack str with invalid UTF-8
    await ws.waitFor(() => ws.frames.length >= 2);
    expect(ws.ended).toBe(false);
    ws.destroy();
  });
});

describe('7 close handshake', () => {
  it('7.1.1 close 1000 is echoed and the TCP connection closed', async () => {
    const ws = await open();
    ws.send(OP_CLOSE, closePayload(1000));
    expect(await closeReply(ws)).toMatchObject({ code: 1000 });
  });

  it('7.1.2-7.1.4 after a close, further frames (close, ping, text) get no answer', async () => {
    const ws = await open();
    ws.send(OP_CLOSE, closePayload(1000));
    ws.send(OP_CLOSE, closePayload(1000));
    ws.send(OP_PING, 'after close');
    ws.sendText(JSON.stringify({ op: 'ping', id: 'after close' }));
    await closeReply(ws);
    expect(ws.frames.filter((f) => f.opcode === OP_CLOSE)).toHaveLength(1);
    expect(ws.frames.some((f) => f.opcode === OP_PONG)).toBe(false);
    expect(answers(ws)).toEqual([]);
  });

  it('7.1.5 a close in the middle of a fragmented message closes it unanswered', async () => {
    const ws = await open();
    ws.send(OP_TEXT, '{"op":"pi', { fin: false });
    ws.send(OP_CLOSE, closePayload(1000));
    expect(await closeReply(ws)).toMatchObject({ code: 1000 });
    expect(answers(ws)).toEqual([]);
  });

  it('7.3.1 an empty close is answered with an empty close', async () => {
    const ws = await open();
    ws.send(OP_CLOSE, Buffer.alloc(0));
    expect(await closeReply(ws)).toMatchObject({ empty: true });
  });

  it('7.3.2 a 1-byte close payload: uWS answers an empty close (the RFC asks for 1002)', async () => {
    const ws = await open();
    ws.send(OP_CLOSE, Buffer.from([0x03]));
    const reply = await closeReply(ws);
    expect(reply === undefined || reply.empty || reply.code === 1002).toBe(true);
  });

  it('7.3.3-7.3.5 close with a code and a reason of up to 123 bytes is echoed with both', async () => {
    for (const reason of ['', 'Hello World!', 'r'.repeat(123)]) {
      const ws = await open();
      ws.send(OP_CLOSE, closePayload(1000, reason));
      expect(await closeReply(ws)).toEqual({ code: 1000, reason, empty: false });
    }
  });

  it('7.3.6 a close frame over 125 bytes fails the connection', async () => {
    const ws = await open();
    ws.send(OP_CLOSE, closePayload(1000, 'r'.repeat(124)));
    await expectFailed(ws);
  });

  it('7.5.1 a close reason that is not UTF-8: uWS answers an empty close (the RFC asks for 1007)', async () => {
    const ws = await open();
    ws.send(OP_CLOSE, closePayload(1000, Buffer.from([0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80])));
    const reply = await closeReply(ws);
    expect(reply === undefined || reply.empty || reply.code === 1007 || reply.code === 1002).toBe(true);
  });

  // uWS echoes 1000-1003, 1007-1011 and 4000-4999; it treats 1012-3999 as invalid (see below)
  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 4000, 4999])('7.7 valid close code %i is echoed', async (code) => {
    const ws = await open();
    ws.send(OP_CLOSE, closePayload(code));
    expect(await closeReply(ws)).toMatchObject({ code });
  });

  it.each([3000, 3999])('7.7 registered close code %i: uWS answers an empty close instead of echoing it (deviation)', async (code) => {
    const ws = await open();
    ws.send(OP_CLOSE, closePayload(code));
    const reply = await closeReply(ws);
    expect(reply === undefined || reply.empty || reply.code === code).toBe(true);
  });

  it.each([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535])(
    '7.9/7.13 invalid close code %i is not echoed: uWS answers an empty close (the RFC asks for 1002) and closes',
    async (code) => {
      const ws = await open();
      ws.send(OP_CLOSE, closePayload(code));
      const reply = await closeReply(ws);
      expect(reply === undefined || reply.empty || reply.code === 1002).toBe(true);
    },
  );

  it('the server-initiated close: an oversized message gets BAD_FRAME, then close 1009', async () => {
    const ws = await open();
    ws.send(OP_TEXT, pingOfSize('big', 65537));
    expect(await closeReply(ws)).toMatchObject({ code: 1009 });
    expect(answers(ws)).toMatchObject([{ op: 'error', code: 'BAD_FRAME' }]);
  });
});

describe('9 limits: large messages within the configured maximum, in any fragmentation', () => {
  it.each([1, 64, 256, 1024, 4096, 16384, 65536])('9.2-9.4 a 64 KiB text request in %i-byte fragments is answered', async (chunk) => {
    const ws = await open();
    const msg = pingOfSize(`chunk-${chunk}`, 65536);
    if (chunk === 1) {
      // 65536 one-byte frames in one write: the reassembly buffer grows by one byte per frame
      const frames: Buffer[] = [];
      for (let i = 0; i < msg.length; i++) frames.push(clientFrame(i === 0 ? OP_TEXT : OP_CONT, msg.subarray(i, i + 1), { fin: i === msg.length - 1 }));
      ws.socket.write(Buffer.concat(frames));
    } else {
      for (let i = 0; i < msg.length; i += chunk) ws.send(i === 0 ? OP_TEXT : OP_CONT, msg.subarray(i, i + chunk), { fin: i + chunk >= msg.length });
    }
    await ws.waitFor(() => answers(ws).some((a) => a.id === `chunk-${chunk}`), 15_000);
    ws.destroy();
  });

  it('9.7 1000 small requests in one write are all answered, in order', async () => {
    const ws = await open();
    ws.socket.write(Buffer.concat(Array.from({ length: 1000 }, (_, i) => clientFrame(OP_TEXT, Buffer.from(JSON.stringify({ op: 'ping', id: i }))))));
    await ws.waitFor(() => answers(ws).length >= 1000, 15_000);
    expect(answers(ws).map((a) => a.id)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    ws.destroy();
  });

  it('a fragmented message over the maximum is refused with 1009 once reassembled', async () => {
    const ws = await open();
    const msg = pingOfSize('over', 100_000);
    for (let i = 0; i < msg.length; i += 10_000) ws.send(i === 0 ? OP_TEXT : OP_CONT, msg.subarray(i, i + 10_000), { fin: i + 10_000 >= msg.length });
    expect(await closeReply(ws)).toMatchObject({ code: 1009 });
  });
});

describe('masking', () => {
  it('an unmasked client frame is never acted on (uWS does not fail the connection as the RFC asks: it misreads the frame)', async () => {
    const ws = await open();
    ws.send(OP_TEXT, JSON.stringify({ op: 'ping', id: 'unmasked' }), { mask: false });
    await quietFor(300, 'no answer to the unmasked frame');
    expect(answers(ws).some((a) => a.id === 'unmasked')).toBe(false);
    ws.destroy();
  });
});

describe('after all of the above', () => {
  it('the gateway is healthy and serves new connections', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    expect(res.status).toBe(200);
    const ws = await open();
    ws.sendText(JSON.stringify({ op: 'ping', id: 'last' }));
    await waitPong(ws, 'last');
    ws.destroy();
  });
});
