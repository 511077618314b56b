/**
 * A minimal WebSocket client on node:net for the load path (RFC 6455, client side only):
 * HTTP/1.1 upgrade with Sec-WebSocket-Accept check, masked client frames, server frames with
 * 7/16/64-bit lengths, text and binary, fragmented messages, ping -> pong, close handshake.
 * No extensions (no permessage-deflate): the servers under test all run with compression off.
 *
 * Payloads handed to `onMessage` are views into the socket's receive buffer: decode them before
 * returning, do not keep them.
 */
import { connect, type Socket } from 'node:net';
import { createHash, randomBytes, randomFillSync } from 'node:crypto';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface RawWsOptions {
  host: string;
  port: number;
  /** request target, e.g. `/v1/stream` or `/socket.io/?EIO=4&transport=websocket` */
  path: string;
  /** offered Sec-WebSocket-Protocol, if any */
  protocol?: string;
  handshakeTimeoutMs: number;
}

export interface RawWsHandlers {
  onOpen(ws: RawWsClient): void;
  onMessage(ws: RawWsClient, payload: Buffer, binary: boolean): void;
  /** called once, whatever the cause; code 1006 when the connection dropped without a close frame */
  onClose(ws: RawWsClient, code: number, reason: string): void;
}

const enum State {
  Handshake,
  Open,
  Closing,
  Closed,
}

const maskKey = Buffer.alloc(4);

export class RawWsClient {
  readonly #socket: Socket;
  readonly #handlers: RawWsHandlers;
  readonly #key = randomBytes(16).toString('base64');
  readonly #protocol: string | undefined;
  #state = State.Handshake;
  #timer: NodeJS.Timeout | undefined;
  /** received bytes not yet parsed: a list, concatenated only once a whole frame is there */
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = 0;
  /** fragments of a message in progress */
  #fragments: Buffer[] | null = null;
  #fragmentOpcode = 0;
  #fragmentBytes = 0;
  /** bytes received on the socket after the handshake */
  bytesIn = 0;
  /** socket reads ('data' events): about one per server write when the reader keeps up */
  reads = 0;

  constructor(opts: RawWsOptions, handlers: RawWsHandlers) {
    this.#handlers = handlers;
    this.#protocol = opts.protocol;
    const socket = connect({ host: opts.host, port: opts.port, noDelay: true });
    this.#socket = socket;
    this.#timer = setTimeout(() => this.#fail(`handshake timed out after ${opts.handshakeTimeoutMs} ms`), opts.handshakeTimeoutMs);
    socket.on('connect', () => {
      const lines = [
        `GET ${opts.path} HTTP/1.1`,
        `Host: ${opts.host}:${opts.port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${this.#key}`,
        'Sec-WebSocket-Version: 13',
      ];
      if (opts.protocol) lines.push(`Sec-WebSocket-Protocol: ${opts.protocol}`);
      socket.write(lines.join('\r\n') + '\r\n\r\n');
    });
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(err.message));
    socket.on('close', () => this.#finish(1006, 'connection dropped'));
  }

  get isOpen(): boolean {
    return this.#state === State.Open;
  }

  sendText(text: string): void {
    this.#sendFrame(0x1, Buffer.from(text, 'utf8'));
  }

  sendBinary(bytes: Uint8Array): void {
    this.#sendFrame(0x2, bytes);
  }

  /** Start the close handshake; the socket is destroyed if the server does not answer in time. */
  close(code = 1000, timeoutMs = 2000): void {
    if (this.#state === State.Handshake) {
      this.#socket.destroy();
      return;
    }
    if (this.#state !== State.Open) return;
    const payload = Buffer.alloc(2);
    payload.writeUInt16BE(code, 0);
    this.#sendFrame(0x8, payload);
    this.#state = State.Closing;
    this.#timer = setTimeout(() => this.#socket.destroy(), timeoutMs);
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #sendFrame(opcode: number, payload: Uint8Array): void {
    if (this.#state !== State.Open) return;
    const len = payload.length;
    const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
    const out = Buffer.allocUnsafe(2 + ext + 4 + len);
    out[0] = 0x80 | opcode;
    if (ext === 0) out[1] = 0x80 | len;
    else if (ext === 2) {
      out[1] = 0x80 | 126;
      out.writeUInt16BE(len, 2);
    } else {
      out[1] = 0x80 | 127;
      out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
      out.writeUInt32BE(len >>> 0, 6);
    }
    randomFillSync(maskKey);
    const m = 2 + ext;
    maskKey.copy(out, m);
    const p = m + 4;
    for (let i = 0; i < len; i++) out[p + i] = payload[i]! ^ maskKey[i & 3]!;
    this.#socket.write(out);
  }

  #onData(chunk: Buffer): void {
    this.reads++;
    if (this.#state === State.Closed) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#state === State.Handshake) {
      this.#handshake();
      return;
    }
    this.bytesIn += chunk.length;
    if (this.#buffered < this.#need) return;
    this.#parse();
  }

  #take(): Buffer {
    const buf = this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#buffered);
    this.#chunks = [];
    this.#buffered = 0;
    return buf;
  }

  #handshake(): void {
    const buf = this.#take();
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) {
      if (buf.length > MAX_HEADER_BYTES) this.#fail('handshake response headers too large');
      else {
        this.#chunks.push(buf);
        this.#buffered = buf.length;
      }
      return;
    }
    const head = buf.toString('latin1', 0, end).split('\r\n');
    const status = head[0] ?? '';
    if (!/^HTTP\/1\.1 101 /.test(status)) {
      this.#fail(`upgrade refused: ${status}`);
      return;
    }
    const headers = new Map<string, string>();
    for (let i = 1; i < head.length; i++) {
      const line = head[i]!;
      const c = line.indexOf(':');
      if (c > 0) headers.set(line.slice(0, c).trim().toLowerCase(), line.slice(c + 1).trim());
    }
    const expected = createHash('sha1')
      .update(this.#key + GUID)
      .digest('base64');
    if (headers.get('sec-websocket-accept') !== expected) {
      this.#fail('bad Sec-WebSocket-Accept');
      return;
    }
    const proto = headers.get('sec-websocket-protocol');
    if (this.#protocol && proto !== undefined && proto !== this.#protocol) {
      this.#fail(`server chose subprotocol ${proto}`);
      return;
    }
    clearTimeout(this.#timer);
    this.#state = State.Open;
    this.#handlers.onOpen(this);
    const rest = buf.subarray(end + 4);
    if (rest.length > 0 && this.#state === State.Open) {
      this.#chunks.push(rest);
      this.#buffered = rest.length;
      this.bytesIn += rest.length;
      this.#parse();
    }
  }

  #parse(): void {
    const buf = this.#take();
    const n = buf.length;
    let off = 0;
    this.#need = 0;
    while (this.#state !== State.Closed) {
      const avail = n - off;
      if (avail < 2) {
        this.#need = 2;
        break;
      }
      const b0 = buf[off]!;
      const b1 = buf[off + 1]!;
      if (b1 & 0x80) {
        this.#fail('server sent a masked frame');
        return;
      }
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (avail < 4) {
          this.#need = 4;
          break;
        }
        len = buf.readUInt16BE(off + 2);
        hdr = 4;
      } else if (len === 127) {
        if (avail < 10) {
          this.#need = 10;
          break;
        }
        const hi = buf.readUInt32BE(off + 2);
        len = hi * 2 ** 32 + buf.readUInt32BE(off + 6);
        hdr = 10;
        if (len > MAX_MESSAGE_BYTES) {
          this.#fail(`frame of ${len} bytes is larger than ${MAX_MESSAGE_BYTES}`);
          return;
        }
      }
      if (avail < hdr + len) {
        this.#need = hdr + len;
        break;
      }
      const payload = buf.subarray(off + hdr, off + hdr + len);
      off += hdr + len;
      this.#frame((b0 & 0x80) !== 0, b0 & 0x0f, payload);
    }
    if (off < n && this.#state !== State.Closed) {
      this.#chunks.push(off === 0 ? buf : buf.subarray(off));
      this.#buffered = n - off;
    }
  }

  #frame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case 0x1:
      case 0x2:
        if (this.#fragments) {
          this.#fail('new message before the previous fragmented one ended');
          return;
        }
        if (fin) this.#handlers.onMessage(this, payload, opcode === 0x2);
        else {
          // the payload is a view into the receive buffer: copy what must outlive this call
          this.#fragments = [Buffer.from(payload)];
          this.#fragmentOpcode = opcode;
          this.#fragmentBytes = payload.length;
        }
        return;
      case 0x0: {
        if (!this.#fragments) {
          this.#fail('continuation frame without a message');
          return;
        }
        this.#fragments.push(Buffer.from(payload));
        this.#fragmentBytes += payload.length;
        if (this.#fragmentBytes > MAX_MESSAGE_BYTES) {
          this.#fail('fragmented message too large');
          return;
        }
        if (fin) {
          const whole = Buffer.concat(this.#fragments, this.#fragmentBytes);
          this.#fragments = null;
          this.#handlers.onMessage(this, whole, this.#fragmentOpcode === 0x2);
        }
        return;
      }
      case 0x8: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
        const reason = payload.length > 2 ? payload.toString('utf8', 2) : '';
        if (this.#state === State.Open) {
          const echo = Buffer.alloc(2);
          echo.writeUInt16BE(code === 1005 ? 1000 : code, 0);
          this.#sendFrame(0x8, echo);
        }
        this.#finish(code, reason);
        this.#socket.end();
        return;
      }
      case 0x9:
        this.#sendFrame(0xa, payload);
        return;
      case 0xa:
        return;
      default:
        this.#fail(`unknown opcode ${opcode}`);
    }
  }

  #fail(reason: string): void {
    this.#finish(1006, reason);
    this.#socket.destroy();
  }

  #finish(code: number, reason: string): void {
    if (this.#state === State.Closed) return;
    this.#state = State.Closed;
    clearTimeout(this.#timer);
    this.#chunks = [];
    this.#buffered = 0;
    this.#handlers.onClose(this, code, reason);
  }
}
