import { Packr } from 'msgpackr';
import { ErrorCode, ProtocolError, ProtocolLimits, Subprotocol, TOKEN_SUBPROTOCOL_PREFIX } from '../protocol/index.js';
import { toWellFormed } from '../protocol/text.js';
import type { Encoding } from '../protocol/index.js';
import { jsonShapeProblem, MAX_FRAME_KEYS, MAX_FRAME_VALUES, msgpackShapeProblem, msgpackStringsAreUtf8 } from './frame-shape.js';
import type { ShapeProblem } from './frame-shape.js';

/**
 * Wire frames of protocol v1. Both encodings carry the same objects: a msgpack frame decodes with
 * any standard MessagePack decoder to exactly what JSON mode sends. No msgpackr extensions
 * (records, structures, typed arrays) are used, and payload builders never put `undefined` in.
 */
export type { Encoding };

export const SUBPROTOCOL_MSGPACK = Subprotocol.MSGPACK;
export const SUBPROTOCOL_JSON = Subprotocol.JSON;

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
export const MAX_FRAME_DEPTH = ProtocolLimits.MAX_FRAME_DEPTH;

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

export { MAX_FRAME_KEYS, MAX_FRAME_VALUES } from './frame-shape.js';

const DEPTH_MESSAGE = `frame nests deeper than ${MAX_FRAME_DEPTH} levels`;
const NOT_PLAIN_MESSAGE =
  'frame is not plain MessagePack: extension types and the reserved byte 0xc1 are not accepted (use maps, arrays, strings, numbers, booleans and nil)';

/**
 * Refuse a frame whose bytes show it over the shape limits (see frame-shape.ts), before decoding
 * it ('utf8' is refused after decoding: a malformed frame is reported as such first).
 */
function checkShape(why: ShapeProblem | undefined): void {
  if (why === 'depth') throw new ProtocolError(ErrorCode.BAD_FRAME, DEPTH_MESSAGE);
  if (why === 'extension') throw new ProtocolError(ErrorCode.BAD_FRAME, NOT_PLAIN_MESSAGE);
  if (why === 'values')
    throw new ProtocolError(
      ErrorCode.BAD_FRAME,
      `frame holds more than ${MAX_FRAME_VALUES} values (array elements and map entries at every level): split the request`,
    );
  if (why === 'keys')
    throw new ProtocolError(
      ErrorCode.BAD_FRAME,
      `frame holds more than ${MAX_FRAME_KEYS} map entries (keys at every level): protocol v1 frames have a few fields each`,
    );
}

function checkPlain(v: unknown): void {
  const why = notPlain(v, 0);
  if (why === 'depth') throw new ProtocolError(ErrorCode.BAD_FRAME, DEPTH_MESSAGE);
  if (why === 'type') throw new ProtocolError(ErrorCode.BAD_FRAME, NOT_PLAIN_MESSAGE);
}

/**
 * `v` with every lone surrogate in its strings and keys replaced by U+FFFD, as a UTF-8 encoder
 * does. Server frames can carry text that is not well formed: a client's text cut in the middle
 * of a pair (an `op` or a channel name quoted in an error), or a string from a JSON body
 * ("\ud800" is valid JSON). JSON.stringify would send it as an escape, and msgpackr would write
 * it as CESU-8 bytes, which a strict MessagePack decoder refuses (a str is UTF-8). Both encodings
 * send U+FFFD instead, so that they carry the same objects, and valid UTF-8.
 */
function wellFormed(v: unknown): unknown {
  if (typeof v === 'string') return toWellFormed(v);
  if (Array.isArray(v)) return v.map(wellFormed);
  if (v === null || typeof v !== 'object' || v instanceof Uint8Array) return v;
  const out: Record<string, unknown> = {};
  // (defineProperty: a `__proto__` key stays an own key, as JSON.parse made it)
  for (const [k, x] of Object.entries(v))
    Object.defineProperty(out, wellFormed(k) as string, { value: wellFormed(x), enumerable: true, writable: true, configurable: true });
  return out;
}

/**
 * Whether encoded bytes may hold a string that is not valid UTF-8: msgpackr writes a lone
 * surrogate as ED A0..BF xx, which valid UTF-8 never contains. 0xED is rare (and found by memchr);
 * when it is there, the strings are checked precisely.
 */
function mayHoldBadUtf8(b: Uint8Array): boolean {
  for (let i = b.indexOf(0xed); i >= 0 && i < b.length - 1; i = b.indexOf(0xed, i + 1)) {
    if (b[i + 1]! >= 0xa0 && b[i + 1]! <= 0xbf) return !msgpackStringsAreUtf8(b);
  }
  return false;
}

export const msgpackCodec: FrameCodec = {
  encoding: 'msgpack',
  subprotocol: SUBPROTOCOL_MSGPACK,
  binary: true,
  encode: (frame) => packr.pack(frame),
  decode(data, isBinary) {
    if (!isBinary) throw new ProtocolError(ErrorCode.BAD_FRAME, 'text frame on a tickwire.v1.msgpack connection: send binary MessagePack frames');
    const bytes = new Uint8Array(data);
    const shape = msgpackShapeProblem(bytes);
    checkShape(shape);
    let v: unknown;
    try {
      v = packr.unpack(bytes);
    } catch (err) {
      throw new ProtocolError(ErrorCode.BAD_FRAME, `frame is not valid MessagePack: ${(err as Error).message}`);
    }
    checkPlain(v);
    // msgpackr decodes invalid UTF-8 to U+FFFD: two byte strings would reach the parser as one text
    if (shape === 'utf8') throw new ProtocolError(ErrorCode.BAD_FRAME, 'frame is not valid MessagePack: a string is not valid UTF-8');
    return v;
  },
};

export const jsonCodec: FrameCodec = {
  encoding: 'json',
  subprotocol: SUBPROTOCOL_JSON,
  binary: false,
  encode: (frame) => Buffer.from(JSON.stringify(frame)),
  decode(data, isBinary) {
    if (isBinary) throw new ProtocolError(ErrorCode.BAD_FRAME, 'binary frame on a tickwire.v1.json connection: send JSON text frames');
    checkShape(jsonShapeProblem(new Uint8Array(data)));
    let text: string;
    try {
      text = utf8.decode(data);
    } catch {
      throw new ProtocolError(ErrorCode.BAD_FRAME, 'frame is not valid UTF-8');
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw new ProtocolError(ErrorCode.BAD_FRAME, `frame is not valid JSON: ${(err as Error).message}`);
    }
    checkPlain(v);
    return v;
  },
};

export const CODECS: Readonly<Record<Encoding, FrameCodec>> = { msgpack: msgpackCodec, json: jsonCodec };

/**
 * Encode a frame whose strings may not be well formed: the gateway's own answers (`ack`,
 * `error`, extension replies), which quote client text. Lone surrogates become U+FFFD in both
 * encodings (see `wellFormed`); the check costs a scan of the encoded bytes. Hub emissions use
 * `codec.encode` directly: their payloads come from the feeds.
 */
export function encodeWellFormed(codec: FrameCodec, frame: object): Uint8Array {
  if (codec.binary) {
    const bytes = codec.encode(frame);
    return mayHoldBadUtf8(bytes) ? codec.encode(wellFormed(frame) as object) : bytes;
  }
  const text = JSON.stringify(frame);
  // JSON.stringify escapes a lone surrogate as \udXXX (and nothing else as \ud...)
  return Buffer.from(text.includes('\\ud') ? JSON.stringify(wellFormed(frame)) : text);
}

/**
 * Subprotocols a client may offer in one upgrade. RFC 6455 sets no bound; a page offers what it
 * lists, the SDK two or three. The offer is read before any per-address limit (the encoding is
 * chosen first), and reading it cost by its entries: 50 000 entries (100 KB) took about 4 ms a
 * request (test/hostile/handshake-cost.test.ts).
 */
export const MAX_SUBPROTOCOLS = 64;

/**
 * Pick the encoding from the client's offered subprotocols (Sec-WebSocket-Protocol, comma
 * separated). msgpack is the default when none is offered; an offer with none of ours is refused
 * (`offered`: the encodings offered, for the refusal), and so is one of more than
 * MAX_SUBPROTOCOLS entries (`problem` says so; the rest of the header is not read). A
 * `tickwire.bearer.<token>` entry is the token (TOKEN_SUBPROTOCOL_PREFIX), never an encoding and
 * never selected.
 */
export function negotiateSubprotocol(header: string): { codec: FrameCodec; accept: string; token: string | undefined } | { offered: string; problem?: string } {
  let token: string | undefined;
  const offered: string[] = [];
  let from = 0;
  for (let entries = 1; ; entries++) {
    if (entries > MAX_SUBPROTOCOLS) {
      return { offered: offered.slice(0, 4).join(', '), problem: `more than ${MAX_SUBPROTOCOLS} subprotocols offered` };
    }
    const comma = header.indexOf(',', from);
    const p = header.slice(from, comma < 0 ? header.length : comma).trim();
    if (p.startsWith(TOKEN_SUBPROTOCOL_PREFIX)) token ??= p.slice(TOKEN_SUBPROTOCOL_PREFIX.length) || undefined;
    else if (p) offered.push(p);
    if (comma < 0) break;
    from = comma + 1;
  }
  if (offered.length === 0) return { codec: msgpackCodec, accept: '', token };
  for (const p of offered) {
    if (p === SUBPROTOCOL_MSGPACK) return { codec: msgpackCodec, accept: p, token };
    if (p === SUBPROTOCOL_JSON) return { codec: jsonCodec, accept: p, token };
  }
  return { offered: offered.join(', ') };
}
