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

// (maps come as objects: msgpackr's default without records)
const unpackr = new Unpackr({ useRecords: false, int64AsType: 'number' });
const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

function toBytes(data: unknown): Uint8Array {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  // (a Uint8Array too: a view of the same bytes, nothing copied)
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

/** The four bytes of `n` (an unsigned or signed 32-bit integer), big-endian. */
const be32 = (n: number): number[] => [n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
const f64 = new DataView(new ArrayBuffer(8));

/** Encode a plain value (null, boolean, number, string, array, object) as standard MessagePack. */
export function encodeMsgpack(value: unknown): Uint8Array {
  const out: number[] = [];
  // A length or an unsigned integer `n` takes the smallest form: the fix form (`fix | n` below
  // `max`), else the 8-bit one (`c16 - 1`, when `has8`), the 16-bit one (`c16`) or the 32-bit one
  // (`c16 + 1`): uint cc/cd/ce, str d9/da/db, array dc/dd, map de/df.
  const head = (n: number, fix: number, max: number, c16: number, has8?: boolean): unknown =>
    n < max ? out.push(fix | n) : has8 && n <= 0xff ? out.push(c16 - 1, n) : n <= 0xffff ? out.push(c16, n >> 8, n & 0xff) : out.push(c16 + 1, ...be32(n));
  const write = (v: unknown): void => {
    if (v === null || v === undefined) out.push(0xc0);
    else if (typeof v === 'boolean') out.push(v ? 0xc3 : 0xc2);
    else if (typeof v === 'number') {
      if (!Number.isInteger(v) || v < -0x80000000 || v > 0xffffffff) {
        f64.setFloat64(0, v);
        out.push(0xcb, ...new Uint8Array(f64.buffer));
      } else if (v >= 0) head(v, 0, 0x80, 0xcd, true);
      else if (v >= -32) out.push(v & 0xff);
      else out.push(0xd2, ...be32(v));
    } else if (typeof v === 'string') {
      const b = textEncoder.encode(v);
      head(b.length, 0xa0, 32, 0xda, true);
      for (const x of b) out.push(x);
    } else if (Array.isArray(v)) {
      head(v.length, 0x90, 16, 0xdc);
      for (const x of v) write(x);
    } else if (typeof v === 'object') {
      const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined);
      head(entries.length, 0x80, 16, 0xde);
      for (const [k, x] of entries) {
        write(k);
        write(x);
      }
    } else throw new TypeError(`cannot encode a ${typeof v} as MessagePack`);
  };
  write(value);
  return new Uint8Array(out);
}

export const msgpackClientCodec: ClientCodec = {
  encoding: 'msgpack',
  subprotocol: SUBPROTOCOL.msgpack,
  encode: encodeMsgpack,
  decode: (data) => (typeof data === 'string' ? JSON.parse(data) : unpackr.unpack(toBytes(data))),
};

export const jsonClientCodec: ClientCodec = {
  encoding: 'json',
  subprotocol: SUBPROTOCOL.json,
  encode: JSON.stringify,
  decode: (data) => JSON.parse(typeof data === 'string' ? data : textDecoder.decode(toBytes(data))),
};

export function codecFor(encoding: Encoding): ClientCodec {
  return encoding === 'json' ? jsonClientCodec : msgpackClientCodec;
}
