/**
 * Fast field readers for the load client. The client is a sink that shares two cores with the
 * server under test, so instead of building every frame as objects it reads only what it checks
 * from the encoded bytes: the channel's symbol number, and the quote's `bs` (publisher sequence),
 * `as` (phase tag) and `t` (creation time). Each update found is handed to `onUpdate`.
 *
 * MessagePack: a small streaming walker over standard types (maps with string keys, arrays,
 * strings, numbers, booleans, nil, bin, ext skipped). JSON: the peers' frames have a fixed shape,
 * so fields are located with Buffer.indexOf. `--full-decode` swaps these for msgpackr and
 * JSON.parse, to check that both paths count the same.
 */
export type UpdateHandler = (symbol: number, bs: number, as: number, t: number, snapshot: boolean) => void;

/** What a frame was: updates (0 or more reported), or a control frame the caller decodes itself. */
export const enum FrameKind {
  Updates,
  Control,
}

let b: Uint8Array = new Uint8Array(0);
let p = 0;
let view = new DataView(b.buffer);
let strStart = 0;
let strLen = 0;

function u8(): number {
  return b[p++]!;
}

function setBuffer(bytes: Uint8Array): void {
  b = bytes;
  p = 0;
  view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Read a string header at p; sets strStart/strLen and skips the bytes. false if not a string. */
function readStr(): boolean {
  const c = b[p]!;
  if ((c & 0xe0) === 0xa0) {
    strLen = c & 0x1f;
    p += 1;
  } else if (c === 0xd9) {
    strLen = b[p + 1]!;
    p += 2;
  } else if (c === 0xda) {
    strLen = view.getUint16(p + 1);
    p += 3;
  } else if (c === 0xdb) {
    strLen = view.getUint32(p + 1);
    p += 5;
  } else return false;
  strStart = p;
  p += strLen;
  return true;
}

/** Read any number at p (NaN for other types, which are skipped). */
function readNum(): number {
  const c = b[p]!;
  if (c < 0x80) {
    p++;
    return c;
  }
  if (c >= 0xe0) {
    p++;
    return c - 0x100;
  }
  let v: number;
  switch (c) {
    case 0xcb:
      v = view.getFloat64(p + 1);
      p += 9;
      return v;
    case 0xca:
      v = view.getFloat32(p + 1);
      p += 5;
      return v;
    case 0xcc:
      v = b[p + 1]!;
      p += 2;
      return v;
    case 0xcd:
      v = view.getUint16(p + 1);
      p += 3;
      return v;
    case 0xce:
      v = view.getUint32(p + 1);
      p += 5;
      return v;
    case 0xcf:
      v = view.getUint32(p + 1) * 2 ** 32 + view.getUint32(p + 5);
      p += 9;
      return v;
    case 0xd0:
      v = view.getInt8(p + 1);
      p += 2;
      return v;
    case 0xd1:
      v = view.getInt16(p + 1);
      p += 3;
      return v;
    case 0xd2:
      v = view.getInt32(p + 1);
      p += 5;
      return v;
    case 0xd3:
      v = view.getInt32(p + 1) * 2 ** 32 + view.getUint32(p + 5);
      p += 9;
      return v;
    default:
      skip();
      return NaN;
  }
}

function mapLen(): number {
  const c = b[p]!;
  if ((c & 0xf0) === 0x80) {
    p++;
    return c & 0x0f;
  }
  if (c === 0xde) {
    p += 3;
    return view.getUint16(p - 2);
  }
  if (c === 0xdf) {
    p += 5;
    return view.getUint32(p - 4);
  }
  return -1;
}

function arrayLen(): number {
  const c = b[p]!;
  if ((c & 0xf0) === 0x90) {
    p++;
    return c & 0x0f;
  }
  if (c === 0xdc) {
    p += 3;
    return view.getUint16(p - 2);
  }
  if (c === 0xdd) {
    p += 5;
    return view.getUint32(p - 4);
  }
  return -1;
}

/** Skip one value of any type. */
function skip(): void {
  const c = u8();
  if (c < 0x80 || c >= 0xe0) return;
  if ((c & 0xf0) === 0x80) {
    for (let n = (c & 0x0f) * 2; n > 0; n--) skip();
    return;
  }
  if ((c & 0xf0) === 0x90) {
    for (let n = c & 0x0f; n > 0; n--) skip();
    return;
  }
  if ((c & 0xe0) === 0xa0) {
    p += c & 0x1f;
    return;
  }
  switch (c) {
    case 0xc0:
    case 0xc2:
    case 0xc3:
      return;
    case 0xcc:
    case 0xd0:
      p += 1;
      return;
    case 0xcd:
    case 0xd1:
      p += 2;
      return;
    case 0xca:
    case 0xce:
    case 0xd2:
      p += 4;
      return;
    case 0xcb:
    case 0xcf:
    case 0xd3:
      p += 8;
      return;
    case 0xd9:
    case 0xc4:
      p += 1 + b[p]!;
      return;
    case 0xda:
    case 0xc5:
      p += 2 + view.getUint16(p);
      return;
    case 0xdb:
    case 0xc6:
      p += 4 + view.getUint32(p);
      return;
    case 0xd4:
      p += 2;
      return;
    case 0xd5:
      p += 3;
      return;
    case 0xd6:
      p += 5;
      return;
    case 0xd7:
      p += 9;
      return;
    case 0xd8:
      p += 17;
      return;
    case 0xc7:
      p += 2 + b[p]!;
      return;
    case 0xc8:
      p += 3 + view.getUint16(p);
      return;
    case 0xc9:
      p += 5 + view.getUint32(p);
      return;
    case 0xdc: {
      let n = view.getUint16(p);
      p += 2;
      while (n-- > 0) skip();
      return;
    }
    case 0xdd: {
      let n = view.getUint32(p);
      p += 4;
      while (n-- > 0) skip();
      return;
    }
    case 0xde: {
      let n = view.getUint16(p) * 2;
      p += 2;
      while (n-- > 0) skip();
      return;
    }
    case 0xdf: {
      let n = view.getUint32(p) * 2;
      p += 4;
      while (n-- > 0) skip();
      return;
    }
    default:
      throw new Error(`unknown MessagePack type 0x${c.toString(16)}`);
  }
}

/** Symbol number of a channel string at [strStart, strStart+strLen): the digits at its end. */
function symbolOfChannel(): number {
  let n = 0;
  let mul = 1;
  for (let i = strStart + strLen - 1; i >= strStart; i--) {
    const d = b[i]! - 0x30;
    if (d < 0 || d > 9) break;
    n += d * mul;
    mul *= 10;
  }
  return n;
}

const K_OP = 0x6f70; // "op"
const K_CH = 0x6368; // "ch"
const K_BS = 0x6273; // "bs"
const K_AS = 0x6173; // "as"

/** Read one data item (a map) at p and report it. */
function readItem(onUpdate: UpdateHandler): void {
  let n = mapLen();
  if (n < 0) {
    skip();
    return;
  }
  let symbol = -1;
  let bs = NaN;
  let as = NaN;
  let t = NaN;
  let snapshot = false;
  while (n-- > 0) {
    if (!readStr()) {
      skip();
      skip();
      continue;
    }
    const kl = strLen;
    const k0 = b[strStart]!;
    if (kl === 2 && ((k0 << 8) | b[strStart + 1]!) === K_CH) {
      if (readStr()) symbol = symbolOfChannel();
      else skip();
    } else if (kl === 1 && k0 === 0x64 /* d */) {
      let m = mapLen();
      if (m < 0) {
        skip();
        continue;
      }
      while (m-- > 0) {
        if (!readStr()) {
          skip();
          skip();
          continue;
        }
        const ml = strLen;
        const key = ml === 2 ? (b[strStart]! << 8) | b[strStart + 1]! : ml === 1 ? b[strStart]! : -1;
        if (key === K_BS) bs = readNum();
        else if (key === K_AS) as = readNum();
        else if (key === 0x74 /* t */) t = readNum();
        else skip();
      }
    } else if (kl === 8 && k0 === 0x73 /* snapshot */) snapshot = u8() === 0xc3;
    else skip();
  }
  if (symbol >= 0) onUpdate(symbol, bs, as, t, snapshot);
}

/**
 * Read a protocol-v1 MessagePack frame. `data` and `batch` frames are reported item by item;
 * anything else is left to the caller (Control).
 */
export function readMsgpackFrame(bytes: Uint8Array, onUpdate: UpdateHandler): FrameKind {
  setBuffer(bytes);
  const start = p;
  let n = mapLen();
  if (n < 0) return FrameKind.Control;
  // `op` comes first in every frame tickwire and the uWS peer send; if not, fall back
  if (!readStr() || strLen !== 2 || ((b[strStart]! << 8) | b[strStart + 1]!) !== K_OP || !readStr()) return FrameKind.Control;
  const op0 = b[strStart]!;
  const opLen: number = strLen;
  if (op0 === 0x64 /* data */ && opLen === 4) {
    p = start;
    readItem(onUpdate);
    return FrameKind.Updates;
  }
  if (op0 !== 0x62 /* batch */ || opLen !== 5) return FrameKind.Control;
  n--;
  while (n-- > 0) {
    if (!readStr()) {
      skip();
      skip();
      continue;
    }
    const kl: number = strLen;
    if (kl === 5 && b[strStart] === 0x69 /* items */) {
      let items = arrayLen();
      while (items-- > 0) readItem(onUpdate);
    } else skip();
  }
  return FrameKind.Updates;
}

// ---- JSON (the ws and Socket.IO peers) -------------------------------------------------------

const CH = Buffer.from('"ch":"');
const BS = Buffer.from('"bs":');
const AS = Buffer.from('"as":');
const T = Buffer.from('"t":');

/** Parse a JSON number at `from` without making a string (falls back for exponents). */
function numberAt(buf: Buffer, from: number): number {
  let i = from;
  let neg = false;
  if (buf[i] === 0x2d /* - */) {
    neg = true;
    i++;
  }
  let v = 0;
  let c = buf[i]!;
  while (c >= 0x30 && c <= 0x39) {
    v = v * 10 + (c - 0x30);
    c = buf[++i]!;
  }
  if (c === 0x2e /* . */) {
    let scale = 1;
    let frac = 0;
    c = buf[++i]!;
    while (c >= 0x30 && c <= 0x39) {
      frac = frac * 10 + (c - 0x30);
      scale *= 10;
      c = buf[++i]!;
    }
    v += frac / scale;
  }
  if (c === 0x65 || c === 0x45 /* e E */) {
    let end = i;
    while (end < buf.length && buf[end] !== 0x2c && buf[end] !== 0x7d && buf[end] !== 0x5d) end++;
    return Number(buf.toString('latin1', from, end));
  }
  return neg ? -v : v;
}

/**
 * Read one JSON data frame's fields, `from` the start of its object; the shape is the peers'
 * own: {"ch":..,"seq":..,"d":{"bp":..,"bs":..,"ap":..,"as":..,"t":..,"src":..}}.
 */
export function readJsonData(buf: Buffer, from: number, onUpdate: UpdateHandler): boolean {
  const ch = buf.indexOf(CH, from);
  if (ch < 0) return false;
  const chEnd = buf.indexOf(0x22, ch + CH.length);
  let symbol = 0;
  let mul = 1;
  for (let i = chEnd - 1; i > ch; i--) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) break;
    symbol += d * mul;
    mul *= 10;
  }
  const bs = buf.indexOf(BS, chEnd);
  const as = buf.indexOf(AS, bs);
  const t = buf.indexOf(T, as);
  if (bs < 0 || as < 0 || t < 0) return false;
  onUpdate(symbol, numberAt(buf, bs + BS.length), numberAt(buf, as + AS.length), numberAt(buf, t + T.length), false);
  return true;
}
