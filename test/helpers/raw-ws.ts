import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { waitFor } from './wait.js';

export interface RawFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
}

/** Parse as many complete WebSocket frames (server to client: unmasked) as `buf` holds. */
export function parseFrames(buf: Buffer): { frames: RawFrame[]; rest: Buffer } {
  const frames: RawFrame[] = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const b0 = buf[off]!;
    const b1 = buf[off + 1]!;
    let len = b1 & 0x7f;
    let hdr = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      hdr = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      hdr = 10;
    }
    const masked = (b1 & 0x80) !== 0;
    if (masked) hdr += 4;
    if (buf.length - off < hdr + len) break;
    let payload = buf.subarray(off + hdr, off + hdr + len);
    if (masked) {
      const mask = buf.subarray(off + hdr - 4, off + hdr);
      payload = Buffer.from(payload.map((x, i) => x ^ mask[i % 4]!));
    }
    frames.push({ fin: (b0 & 0x80) !== 0, opcode: b0 & 0x0f, payload: Buffer.from(payload) });
    off += hdr + len;
  }
  return { frames, rest: buf.subarray(off) };
}

/** Encode one client frame (masked, as RFC 6455 requires from clients). */
export function clientFrame(opcode: number, payload: Buffer, opts: { fin?: boolean; rsv?: number; mask?: boolean } = {}): Buffer {
  const fin = opts.fin ?? true;
  const mask = opts.mask ?? true;
  const len = payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode];
  let ext = Buffer.alloc(0);
  if (len < 126) head.push((mask ? 0x80 : 0) | len);
  else if (len < 65536) {
    head.push((mask ? 0x80 : 0) | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len);
  } else {
    head.push((mask ? 0x80 : 0) | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = randomBytes(4);
  const body = Buffer.from(payload.map((x, i) => x ^ key[i % 4]!));
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

/**
 * A raw-socket WebSocket client: exact control over reading (pause it to play a slow consumer)
 * and over the bytes sent (protocol-compliance tests).
 */
export class RawWs {
  #buf: Buffer = Buffer.alloc(0);
  readonly frames: RawFrame[] = [];
  bytesRead = 0;
  ended = false;
  /** pongs sent in answer to the server's pings (with `autoPong`) */
  pongsSent = 0;
  private constructor(
    readonly socket: Socket,
    public readonly handshake: string,
    autoPong: boolean,
  ) {
    socket.on('data', (d: Buffer) => {
      this.bytesRead += d.length;
      const { frames, rest } = parseFrames(Buffer.concat([this.#buf, d]));
      this.frames.push(...frames);
      this.#buf = rest;
      // a pong is answered when the ping is read, as browsers and the ws package do
      if (autoPong) {
        for (const f of frames) {
          if (f.opcode !== 0x9) continue;
          this.send(0xa, f.payload);
          this.pongsSent++;
        }
      }
    });
    socket.on('end', () => {
      this.ended = true;
    });
    socket.on('close', () => {
      this.ended = true;
    });
    socket.on('error', () => undefined);
  }

  /**
   * `localAddress` (e.g. 127.0.0.7) connects from another loopback address: its own per-IP limits.
   * `autoPong`: answer the server's pings like a browser (off by default: the bytes sent are exactly the test's).
   */
  static async connect(
    port: number,
    opts: { path?: string; protocol?: string; headers?: Record<string, string>; localAddress?: string; autoPong?: boolean } = {},
  ): Promise<RawWs> {
    const socket = connect({ port, host: '127.0.0.1', ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const key = randomBytes(16).toString('base64');
    const lines = [
      `GET ${opts.path ?? '/v1/stream'} HTTP/1.1`,
      'Host: 127.0.0.1',
      'Upgrade: websocket',
      'Connection: Upgrade',
      `Sec-WebSocket-Key: ${key}`,
      'Sec-WebSocket-Version: 13',
      ...(opts.protocol ? [`Sec-WebSocket-Protocol: ${opts.protocol}`] : []),
      ...Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    ];
    socket.write(lines.join('\r\n') + '\r\n\r\n');
    const head = await new Promise<{ text: string; rest: Buffer }>((resolve, reject) => {
      let acc = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        acc = Buffer.concat([acc, d]);
        const i = acc.indexOf('\r\n\r\n');
        if (i >= 0) {
          socket.off('data', onData);
          resolve({ text: acc.subarray(0, i).toString(), rest: acc.subarray(i + 4) });
        }
      };
      socket.on('data', onData);
      socket.once('error', reject);
    });
    if (!/^HTTP\/1\.1 101/.test(head.text)) {
      socket.destroy();
      throw Object.assign(new Error(`upgrade refused: ${head.text.split('\r\n')[0]}`), { head: head.text });
    }
    const ws = new RawWs(socket, head.text, opts.autoPong ?? false);
    if (head.rest.length) socket.emit('data', head.rest);
    return ws;
  }

  send(opcode: number, payload: Buffer | string, opts?: { fin?: boolean; rsv?: number; mask?: boolean }): void {
    this.socket.write(clientFrame(opcode, typeof payload === 'string' ? Buffer.from(payload) : payload, opts));
  }

  sendText(s: string): void {
    this.send(0x1, s);
  }

  /** stop reading from the socket: the server's send buffer fills up */
  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  closeFrame(): { code: number; reason: string } | undefined {
    const f = this.frames.find((x) => x.opcode === 0x8);
    if (!f) return undefined;
    return { code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005, reason: f.payload.subarray(2).toString() };
  }

  async waitFor(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
    await waitFor(pred, { what: `a condition on the frames read (${this.frames.length} so far)`, timeout: timeoutMs });
  }

  destroy(): void {
    this.socket.destroy();
  }
}
