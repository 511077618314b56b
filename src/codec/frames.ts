import { Packr } from 'msgpackr';
import { ProtocolError } from '../core/errors.js';

/**
 * Wire frames of protocol v1. Both encodings carry the same objects: a msgpack frame decodes with
 * any standard MessagePack decoder to exactly what JSON mode sends. No msgpackr extensions
 * (records, structures, typed arrays) are used, and payload builders never put `undefined` in.
 */
export type Encoding = 'msgpack' | 'json';

export const SUBPROTOCOL_MSGPACK = 'tickwire.v1.msgpack';
export const SUBPROTOCOL_JSON = 'tickwire.v1.json';

const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  mapsAsObjects: true,
  // refuse anything outside plain MessagePack when decoding client frames
  int64AsType: 'number',
});

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface FrameCodec {
  readonly encoding: Encoding;
  readonly subprotocol: string;
  /** whether frames are sent as binary (msgpack) or text (json) WebSocket messages */
  readonly binary: boolean;
  encode(frame: object): Uint8Array;
  /** Decode one client frame; throws ProtocolError(BAD_FRAME) on anything not decodable. */
  decode(data: ArrayBuffer, isBinary: boolean): unknown;
}

/** Deepest nesting accepted in a client frame; protects the decoder from hostile input. */
export const MAX_FRAME_DEPTH = 16;

/**
 * Why a decoded client frame is not plain data (nil, booleans, numbers, strings, binary, arrays,
 * maps) nested at most MAX_FRAME_DEPTH deep, or undefined when it is. msgpackr decodes its own
 * extensions (timestamps, undefined, BigInt, Set, RegExp, Error, typed arrays, structured-clone
 * references that can even build cycles) and the reserved byte 0xc1; none of that is protocol v1.
 */
function notPlain(v: unknown, depth: number): 'depth' | 'type' | undefined {
  if (depth > MAX_FRAME_DEPTH) return 'depth';
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return undefined;
  if (typeof v !== 'object') return 'type';
  let items: unknown[];
  if (Array.isArray(v)) items = v;
  else if (v instanceof Uint8Array) return undefined;
  else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return 'type';
    items = Object.values(v);
  }
  for (const x of items) {
    const why = notPlain(x, depth + 1);
    if (why) return why;
  }
  return undefined;
}

function checkPlain(v: unknown): void {
  const why = notPlain(v, 0);
  if (why === 'depth') throw new ProtocolError('BAD_FRAME', `frame nests deeper than ${MAX_FRAME_DEPTH} levels`);
  if (why === 'type') throw new ProtocolError('BAD_FRAME', 'frame is not plain MessagePack: extension types and the reserved byte 0xc1 are not accepted (use maps, arrays, strings, numbers, booleans and nil)');
}

export const msgpackCodec: FrameCodec = {
  encoding: 'msgpack',
  subprotocol: SUBPROTOCOL_MSGPACK,
  binary: true,
  encode: (frame) => packr.pack(frame),
  decode(data, isBinary) {
    if (!isBinary) throw new ProtocolError('BAD_FRAME', 'text frame on a tickwire.v1.msgpack connection: send binary MessagePack frames');
    let v: unknown;
    try {
      v = packr.unpack(new Uint8Array(data));
    } catch (err) {
      throw new ProtocolError('BAD_FRAME', `frame is not valid MessagePack: ${(err as Error).message}`);
    }
    checkPlain(v);
    return v;
  },
};

export const jsonCodec: FrameCodec = {
  encoding: 'json',
  subprotocol: SUBPROTOCOL_JSON,
  binary: false,
  encode: (frame) => Buffer.from(JSON.stringify(frame)),
  decode(data, isBinary) {
    if (isBinary) throw new ProtocolError('BAD_FRAME', 'binary frame on a tickwire.v1.json connection: send JSON text frames');
    let text: string;
    try {
      text = utf8.decode(data);
    } catch {
      throw new ProtocolError('BAD_FRAME', 'frame is not valid UTF-8');
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw new ProtocolError('BAD_FRAME', `frame is not valid JSON: ${(err as Error).message}`);
    }
    checkPlain(v);
    return v;
  },
};

export const CODECS: Readonly<Record<Encoding, FrameCodec>> = { msgpack: msgpackCodec, json: jsonCodec };

/**
 * Pick the encoding from the client's offered subprotocols (Sec-WebSocket-Protocol, comma
 * separated). msgpack is the default when none is offered; an offer with none of ours is refused.
 */
export function negotiateSubprotocol(header: string): { codec: FrameCodec; accept: string } | null {
  const offered = header.split(',').map((s) => s.trim()).filter(Boolean);
  if (offered.length === 0) return { codec: msgpackCodec, accept: '' };
  for (const p of offered) {
    if (p === SUBPROTOCOL_MSGPACK) return { codec: msgpackCodec, accept: p };
    if (p === SUBPROTOCOL_JSON) return { codec: jsonCodec, accept: p };
  }
  return null;
}
