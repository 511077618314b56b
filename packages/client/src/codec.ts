import { Unpackr } from 'msgpackr/unpack';
import { SUBPROTOCOL_BY_ENCODING, type Encoding } from '../../../src/protocol/index.js';
import type { OutgoingFrame } from './types.js';

/**
 * Frame encodings of protocol v1 on the client side. Decoding MessagePack uses msgpackr's
 * Unpackr with every extension off (plain MessagePack, maps as objects). Encoding only ever has
 * to handle the four small client frames, so a minimal encoder stands in for msgpackr's Packr:
 * it keeps the browser bundle to the decoder alone (about half the size).
 */
export type { Encoding };

/** The subprotocol of each encoding (defined in the protocol module). */
export const SUBPROTOCOL: Readonly<Record<Encoding, string>> = SUBPROTOCOL_BY_ENCODING;

export interface ClientCodec {
  readonly encoding: Encoding;
  readonly subprotocol: string;
  encode(frame: OutgoingFrame): Uint8Array | string;
  /** Decode one server message (ArrayBuffer / view for binary, string for text). */
  decode(data: unknown): unknown;
}

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) {
    // `ws` may hand over a fragmented message as a list of Buffers
    const parts = data.map(toBytes);
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    return out;
  }
  throw new TypeError(`cannot decode a frame of type ${typeof data}`);
}

// ---- minimal MessagePack encoder (plain types only) ----------------------------------------

class ByteWriter {
  buf = new Uint8Array(128);
  view = new DataView(this.buf.buffer);
  len = 0;
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.len++] = v;
  }
  u16(v: number): void {
    this.ensure(2);
    this.view.setUint16(this.len, v);
    this.len += 2;
  }
  u32(v: number): void {
    this.ensure(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
}

function writeValue(w: ByteWriter, v: unknown): void {
  if (v === null || v === undefined) return w.u8(0xc0);
  if (v === false) return w.u8(0xc2);
  if (v === true) return w.u8(0xc3);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= -0x80000000 && v <= 0xffffffff) {
      if (v >= 0 && v < 0x80) return w.u8(v);
      if (v < 0 && v >= -32) return w.u8(v & 0xff);
      if (v >= 0) {
        if (v <= 0xff) return (w.u8(0xcc), w.u8(v));
        if (v <= 0xffff) return (w.u8(0xcd), w.u16(v));
        return (w.u8(0xce), w.u32(v));
      }
      w.u8(0xd2);
      w.ensure(4);
      w.view.setInt32(w.len, v);
      w.len += 4;
      return;
    }
    w.u8(0xcb);
    w.ensure(8);
    w.view.setFloat64(w.len, v);
    w.len += 8;
    return;
  }
  if (typeof v === 'string') {
    const b = textEncoder.encode(v);
    if (b.length < 32) w.u8(0xa0 | b.length);
    else if (b.length <= 0xff) {
      w.u8(0xd9);
      w.u8(b.length);
    } else if (b.length <= 0xffff) {
      w.u8(0xda);
      w.u16(b.length);
    } else {
      w.u8(0xdb);
      w.u32(b.length);
    }
    return w.bytes(b);
  }
  if (Array.isArray(v)) {
    if (v.length < 16) w.u8(0x90 | v.length);
    else if (v.length <= 0xffff) {
      w.u8(0xdc);
      w.u16(v.length);
    } else {
      w.u8(0xdd);
      w.u32(v.length);
    }
    for (const x of v) writeValue(w, x);
    return;
  }
  if (typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
    const n = entries.length;
    if (n < 16) w.u8(0x80 | n);
    else if (n <= 0xffff) {
      w.u8(0xde);
      w.u16(n);
    } else {
      w.u8(0xdf);
      w.u32(n);
    }
    for (const [k, x] of entries) {
      writeValue(w, k);
      writeValue(w, x);
    }
    return;
  }
  throw new TypeError(`cannot encode a ${typeof v} as MessagePack`);
}

/** Encode a plain value (null, boolean, number, string, array, object) as standard MessagePack. */
export function encodeMsgpack(value: unknown): Uint8Array {
  const w = new ByteWriter();
  writeValue(w, value);
  return w.buf.slice(0, w.len);
}

export const msgpackClientCodec: ClientCodec = {
  encoding: 'msgpack',
  subprotocol: SUBPROTOCOL.msgpack,
  encode: (frame) => encodeMsgpack(frame),
  decode: (data) => (typeof data === 'string' ? JSON.parse(data) : unpackr.unpack(toBytes(data))),
};

export const jsonClientCodec: ClientCodec = {
  encoding: 'json',
  subprotocol: SUBPROTOCOL.json,
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => JSON.parse(typeof data === 'string' ? data : textDecoder.decode(toBytes(data))),
};

export function codecFor(encoding: Encoding): ClientCodec {
  return encoding === 'json' ? jsonClientCodec : msgpackClientCodec;
}
