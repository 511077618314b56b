import { ProtocolLimits } from '../protocol/index.js';

/**
 * The shape of a client frame read from its bytes before it is decoded: how deep it nests and how
 * many values it holds (array elements and map entries, at every level; the top-level value is
 * not counted). The decoders' cost is not in the bytes but in the values: a 64 KiB JSON frame
 * of `[` nested 65 536 deep took JSON.parse 14 ms, a MessagePack map of 9000 distinct keys 13 ms
 * (new object shapes), an array of 60 000 numbers with one stray byte after it 17 ms (msgpackr
 * quotes the value it read in its error, stringified whole), against 0.2 ms for a subscribe of
 * 1000 channels. Map keys cost most: each new key is a new object shape, and frames of fresh
 * random keys keep making them (1792 keys a frame from 16 connections: a bystander's ping 606 ms
 * median; 2047 values as plain strings in an array: 0.7 ms), so map entries have a limit of
 * their own (MAX_FRAME_KEYS). Both scans are single passes without recursion, and report the first
 * limit a frame passes in the order of its bytes (the same in both encodings); a frame over a
 * limit is refused before any decoder runs. Malformed input is left to the decoder: the scans stop
 * at the end of the bytes and report only what they saw. The MessagePack scan also finds a
 * string that is not valid UTF-8 ('utf8'), a problem for after decoding (the JSON codec checks the
 * whole text's UTF-8 as it decodes it).
 */
export type ShapeProblem = 'depth' | 'values' | 'keys' | 'extension' | 'utf8';

const MAX_DEPTH = ProtocolLimits.MAX_FRAME_DEPTH;
/**
 * Values in one client frame: array elements and map entries, counted at every level (a
 * `subscribe` of 1000 channels holds about 1010); checked on the bytes before decoding. (Here,
 * not in ProtocolLimits: the client SDK bundles that object, and only the gateway checks these.)
 */
export const MAX_FRAME_VALUES = 2048;
/**
 * Map entries (keys) in one client frame, at every level (a `subscribe` holds at most 9, an
 * `alert.create` about 15); checked on the bytes before decoding.
 */
export const MAX_FRAME_KEYS = 64;
const MAX_VALUES = MAX_FRAME_VALUES;
const MAX_KEYS = MAX_FRAME_KEYS;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Bounds of a JSON shape scan: deepest item, values and map entries at every level. */
export interface ShapeLimits {
  readonly depth: number;
  readonly values: number;
  readonly keys: number;
}

const FRAME_LIMITS: ShapeLimits = { depth: MAX_DEPTH, values: MAX_VALUES, keys: MAX_KEYS };

/**
 * JSON text (UTF-8 bytes): a value nested deeper than MAX_FRAME_DEPTH, more than MAX_FRAME_VALUES
 * values or more than MAX_FRAME_KEYS map entries; or, with `limits`, the bounds given there (the
 * HTTP APIs' JSON bodies: src/http/http.ts readJson).
 */
export function jsonShapeProblem(b: Uint8Array, limits: ShapeLimits = FRAME_LIMITS): ShapeProblem | undefined {
  const { depth: maxDepth, values: maxValues, keys: maxKeys } = limits;
  const n = b.length;
  let open = 0; // containers around the current position
  let fresh = false; // just after `[` or `{`: the next token is a first item or the close
  let values = 0;
  let keys = 0;
  // isMap[d]: the container with `d` containers around its items is an object (depth is checked
  // at each item, so `open` passes the depth + 1 only in a frame refused at its next item)
  const isMap = new Uint8Array(maxDepth + 3);
  for (let i = 0; i < n; i++) {
    const c = b[i]!;
    if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
    if (fresh) {
      fresh = false;
      if (c !== 0x5d && c !== 0x7d) {
        // the first item of a container, at depth `open`
        if (open > maxDepth) return 'depth';
        if (++values > maxValues) return 'values';
        if (isMap[open] === 1 && ++keys > maxKeys) return 'keys';
      }
    }
    switch (c) {
      case QUOTE:
        // skip the string: to the next quote not escaped (an odd run of backslashes before it)
        for (;;) {
          const q = b.indexOf(QUOTE, i + 1);
          if (q < 0) return undefined;
          let k = q - 1;
          while (b[k] === BACKSLASH) k--;
          i = q;
          if ((q - 1 - k) % 2 === 0) break;
        }
        break;
      case 0x5b: // [
      case 0x7b: // {
        open++;
        if (open < isMap.length) isMap[open] = c === 0x7b ? 1 : 0;
        fresh = true;
        break;
      case 0x5d:
      case 0x7d:
        open--;
        break;
      case 0x2c: // , another item at depth `open`
        if (open > maxDepth) return 'depth';
        if (++values > maxValues) return 'values';
        if (isMap[open] === 1 && ++keys > maxKeys) return 'keys';
        break;
      default:
        break;
    }
  }
  return undefined;
}

/** A big-endian uint16 / uint32 of a MessagePack header at `at` (NaN or 0 past the end). */
function u16(b: Uint8Array, at: number): number {
  return (b[at]! << 8) | b[at + 1]!;
}

function u32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) >>> 0) + ((b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether b[from, to) is valid UTF-8 (ASCII is checked byte by byte, the rest by the decoder). */
function isUtf8(b: Uint8Array, from: number, to: number): boolean {
  for (let i = from; i < to; i++) {
    if (b[i]! >= 0x80) {
      try {
        utf8.decode(b.subarray(from, to));
      } catch {
        return false;
      }
      return true;
    }
  }
  return true;
}

/**
 * MessagePack bytes: a value nested deeper than MAX_FRAME_DEPTH, more than MAX_FRAME_VALUES
 * values or MAX_FRAME_KEYS map entries, or an extension type (ext 8/16/32, fixext), which
 * protocol v1 never uses. msgpackr decodes its own extensions, and one of them, records (type
 * 0x72: a list of keys, then objects written as a record id and their values), decoded to plain
 * objects that passed the check on the decoded value, and hid a frame's values from this scan (a
 * record's values follow a byte that reads as one integer): 6000 keys in 40 KB decoded in 8.6 ms.
 * Values and map entries count item by item, as the JSON scan counts them: a wide array whose
 * first item nests too deep is refused for its depth in both encodings, not for the width its
 * header declares. A length the rest of the frame cannot hold (every value takes a byte at least:
 * four billion entries in a short frame; a string longer than the bytes left) ends the scan: the
 * frame is truncated, which the decoder reports at once.
 *
 * The same pass checks that every string (fixstr, str 8/16/32, map keys included) is valid UTF-8:
 * msgpackr decodes invalid sequences to U+FFFD, so two different byte strings could reach the
 * request parser as the same text. That is 'utf8', reported only when no limit is passed (the
 * decoder reports a malformed frame first, so the codec refuses 'utf8' after decoding).
 */
export function msgpackShapeProblem(b: Uint8Array): ShapeProblem | undefined {
  return scanMsgpack(b, true);
}

/**
 * Whether every string in the MessagePack value `b` is valid UTF-8: for the gateway's own encoded
 * frames, which hold any number of values (no limits) and may hold msgpackr's extensions (they
 * are stepped over).
 */
export function msgpackStringsAreUtf8(b: Uint8Array): boolean {
  return scanMsgpack(b, false) !== 'utf8';
}

/**
 * One pass over the MessagePack value at the start of `b`, without recursion, reading each
 * header once. `clientFrame`: check the limits and refuse extensions (msgpackShapeProblem);
 * otherwise only strings are checked (msgpackStringsAreUtf8).
 */
function scanMsgpack(b: Uint8Array, clientFrame: boolean): ShapeProblem | undefined {
  const n = b.length;
  // left[d]: values still to read (map: keys and values) in the container whose items are at depth d + 1
  const left: number[] = [];
  // inMap[d]: that container is a map (its items alternate key, value)
  const inMap: boolean[] = [];
  let pos = 0;
  let values = 0;
  let keys = 0;
  let badString = false;
  let top = true;
  while (pos < n && (top || left.length > 0)) {
    if (!top) {
      const last = left.length - 1;
      const remaining = left[last]!;
      if (remaining === 0) {
        left.pop();
        inMap.pop();
        continue;
      }
      left[last] = remaining - 1;
      // an item of the container at depth `left.length` (a map's entry at its key): depth, then
      // values, then keys, whichever limit it passes first, as the JSON scan finds them
      const map = inMap[last]!;
      if (clientFrame && (!map || remaining % 2 === 0)) {
        if (left.length > MAX_DEPTH) return 'depth';
        if (++values > MAX_VALUES) return 'values';
        if (map && ++keys > MAX_KEYS) return 'keys';
      }
    }
    top = false;
    const t = b[pos++]!;
    let strLen = -1; // a string's length
    let entries = 0; // a container's count: elements, or key-value pairs
    if (t < 0x80 || t >= 0xe0) continue; // fixint
    if (t < 0x90)
      entries = t & 0x0f; // fixmap
    else if (t < 0xa0) {
      entries = t & 0x0f; // fixarray
    } else if (t < 0xc0) {
      strLen = t & 0x1f; // fixstr
    } else {
      switch (t) {
        case 0xdc:
          entries = u16(b, pos);
          pos += 2;
          break;
        case 0xdd:
          entries = u32(b, pos);
          pos += 4;
          break;
        case 0xde:
          entries = u16(b, pos);
          pos += 2;
          break;
        case 0xdf:
          entries = u32(b, pos);
          pos += 4;
          break;
        case 0xd9: // str 8, 16, 32
          strLen = b[pos]!;
          pos += 1;
          break;
        case 0xda:
          strLen = u16(b, pos);
          pos += 2;
          break;
        case 0xdb:
          strLen = u32(b, pos);
          pos += 4;
          break;
        case 0xc4: // bin 8, 16, 32
          pos += 1 + b[pos]!;
          continue;
        case 0xc5:
          pos += 2 + u16(b, pos);
          continue;
        case 0xc6:
          pos += 4 + u32(b, pos);
          continue;
        case 0xcc:
        case 0xd0:
          pos += 1;
          continue;
        case 0xcd:
        case 0xd1:
          pos += 2;
          continue;
        case 0xca:
        case 0xce:
        case 0xd2:
          pos += 4;
          continue;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          pos += 8;
          continue;
        case 0xc7: // ext 8, 16, 32: length, type, data
          if (clientFrame) return 'extension';
          pos += 2 + b[pos]!;
          continue;
        case 0xc8:
          if (clientFrame) return 'extension';
          pos += 3 + u16(b, pos);
          continue;
        case 0xc9:
          if (clientFrame) return 'extension';
          pos += 5 + u32(b, pos);
          continue;
        case 0xd4: // fixext 1, 2, 4, 8, 16: type, data
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
          if (clientFrame) return 'extension';
          pos += 1 + (1 << (t - 0xd4));
          continue;
        default:
          continue; // nil, booleans, 0xc1 (the decoder refuses it)
      }
    }
    if (strLen >= 0) {
      if (strLen > n - pos) break;
      if (!badString && !isUtf8(b, pos, pos + strLen)) badString = true;
      pos += strLen;
      continue;
    }
    // the values inside it: a map's keys and values
    const map = t < 0x90 || t === 0xde || t === 0xdf;
    const items = map ? 2 * entries : entries;
    if (items > n - pos) break;
    if (items === 0) continue;
    left.push(items);
    inMap.push(map);
  }
  return badString ? 'utf8' : undefined;
}
