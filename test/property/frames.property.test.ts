import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decode as referenceDecode, encode as referenceEncode } from '@msgpack/msgpack';
import { encodeWellFormed, jsonCodec, MAX_FRAME_DEPTH, msgpackCodec } from '../../src/codec/frames.js';
import type { FrameCodec } from '../../src/codec/frames.js';
import { ProtocolError } from '../../src/core/errors.js';

/**
 * The client-frame decoders against any input: a frame either decodes to a plain value (null,
 * booleans, numbers, strings, binary, arrays and plain objects: what JSON or standard
 * MessagePack carry) or is refused with ProtocolError BAD_FRAME. No other exception, and no
 * library-specific value (msgpackr extensions: Date, RegExp, Set, Error, BigInt, structured
 * clones) ever reaches the request parser.
 */
const ab = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

function isPlain(v: unknown, depth = 0): boolean {
  if (depth > MAX_FRAME_DEPTH) return false;
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return true;
  if (v instanceof Uint8Array) return true;
  if (Array.isArray(v)) return v.every((x) => isPlain(x, depth + 1));
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return false;
    return Object.values(v as object).every((x) => isPlain(x, depth + 1));
  }
  return false;
}

/** decode, and tell what happened: a plain value, BAD_FRAME, or something that must not happen */
function outcome(codec: FrameCodec, bytes: Uint8Array, binary: boolean): { kind: 'value'; value: unknown } | { kind: 'bad_frame'; message: string } {
  let v: unknown;
  try {
    v = codec.decode(ab(bytes), binary);
  } catch (err) {
    if (err instanceof ProtocolError && err.code === 'BAD_FRAME') return { kind: 'bad_frame', message: err.message };
    throw new Error(`decoder threw something other than BAD_FRAME for ${Buffer.from(bytes).toString('hex')}: ${String(err)}`, { cause: err });
  }
  if (!isPlain(v)) throw new Error(`decoder returned a non-plain value for ${Buffer.from(bytes).toString('hex')}: ${Object.prototype.toString.call(v)}`);
  return { kind: 'value', value: v };
}

/** MessagePack tokens that stress decoders: extension headers of every kind msgpackr knows, huge declared lengths, reserved bytes. */
const EXT_TYPES = [0x00, 0x42, 0x62, 0x65, 0x69, 0x70, 0x73, 0x74, 0x78, 0xff, 0x01, 0x52, 0x72];
const hostileToken: fc.Arbitrary<number[]> = fc.oneof(
  fc.record({ t: fc.constantFrom(...EXT_TYPES), n: fc.constantFrom(0, 1, 2, 3, 4, 5, 8, 16) }).map(({ t, n }) => {
    const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 };
    return fixed[n] ? [fixed[n]!, t] : [0xc7, n, t];
  }),
  fc.constantFrom<number[]>(
    [0x91],
    [0x92],
    [0x81],
    [0x82],
    [0xa1, 0x61],
    [0x01],
    [0xc0],
    [0xc1],
    [0xc3],
    [0xdc, 0xff, 0xff],
    [0xdd, 0xff, 0xff, 0xff, 0xff],
    [0xdf, 0xff, 0xff, 0xff, 0xff], // array16/array32/map32 claiming 4 G items
    [0xdb, 0xff, 0xff, 0xff, 0xf0],
    [0xc6, 0xff, 0xff, 0xff, 0xff],
    [0xc9, 0xff, 0xff, 0xff, 0xff, 0x62], // str32/bin32/ext32 claiming 4 GB
    [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0], // uint64/int64 extremes
  ),
  fc.uint8Array({ maxLength: 6 }).map((a) => [...a]),
);

const subscribeShaped = fc.record({
  op: fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'auth', 'nope'),
  id: fc.oneof(fc.integer(), fc.string({ maxLength: 70 })),
  channels: fc.array(fc.string({ maxLength: 20 }), { maxLength: 5 }),
  throttle: fc.oneof(fc.integer({ min: -5, max: 10_000 }), fc.double()),
});

describe('frame decoder: any bytes give a plain value or BAD_FRAME', () => {
  it('msgpack mode, arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (b) => void outcome(msgpackCodec, b, true)),
      { numRuns: 10_000 },
    );
  });

  it('msgpack mode, hostile token sequences (extensions, huge declared lengths, reserved 0xc1)', () => {
    fc.assert(
      fc.property(fc.array(hostileToken, { maxLength: 30 }), (toks) => void outcome(msgpackCodec, Uint8Array.from(toks.flat()), true)),
      { numRuns: 10_000 },
    );
  });

  it('msgpack mode, valid frames with a mutated byte', () => {
    fc.assert(
      fc.property(subscribeShaped, fc.nat(), fc.integer({ min: 0, max: 255 }), (frame, at, byte) => {
        const bytes = Uint8Array.from(referenceEncode(frame));
        bytes[at % bytes.length] = byte;
        void outcome(msgpackCodec, bytes, true);
        void outcome(msgpackCodec, bytes.subarray(0, at % bytes.length), true); // truncated
      }),
      { numRuns: 5_000 },
    );
  });

  it('JSON mode, arbitrary bytes (mostly invalid UTF-8) and arbitrary strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (b) => void outcome(jsonCodec, b, false)),
      { numRuns: 5_000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 64 }), (s) => void outcome(jsonCodec, Buffer.from(s), false)),
      { numRuns: 5_000 },
    );
  });

  it('invalid UTF-8 in JSON mode is BAD_FRAME naming UTF-8', () => {
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x7b, 0xce]]) {
      const o = outcome(jsonCodec, Uint8Array.from(bad), false);
      expect(o).toMatchObject({ kind: 'bad_frame', message: expect.stringMatching(/UTF-8/) });
    }
  });

  it('invalid UTF-8 in a MessagePack string (value or key, any length) is BAD_FRAME naming UTF-8, never a lossy U+FFFD', () => {
    const str = (body: number[]): number[] =>
      body.length < 32
        ? [0xa0 | body.length, ...body]
        : body.length < 256
          ? [0xd9, body.length, ...body]
          : [0xda, body.length >> 8, body.length & 255, ...body];
    const ping = [0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69, 0x6e, 0x67]; // "op": "ping"
    for (const bad of [[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xce], [0x61, 0x80, 0x62]]) {
      for (const pad of [0, 70, 300]) {
        const body = [...Array(pad).fill(0x61), ...bad];
        const asValue = Uint8Array.from([0x82, ...ping, 0xa2, 0x69, 0x64, ...str(body)]);
        const asKey = Uint8Array.from([0x82, ...ping, ...str(body), 0x01]);
        const inArray = Uint8Array.from([0x82, ...ping, 0xa8, ...Buffer.from('channels'), 0x91, ...str(body)]);
        for (const [name, bytes] of Object.entries({ asValue, asKey, inArray })) {
          expect(outcome(msgpackCodec, bytes, true), `${name} ${pad} ${bad}`).toMatchObject({ kind: 'bad_frame', message: expect.stringMatching(/UTF-8/) });
        }
      }
    }
    // an encoded U+FFFD is a valid character, not an error
    expect(outcome(msgpackCodec, Uint8Array.from([0x82, ...ping, 0xa2, 0x69, 0x64, ...str([0xef, 0xbf, 0xbd])]), true)).toEqual({
      kind: 'value',
      value: { op: 'ping', id: '\uFFFD' },
    });
  });

  it('a MessagePack string decodes to exactly its UTF-8 text, or the frame is BAD_FRAME', () => {
    const strict = new TextDecoder('utf-8', { fatal: true });
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 100 }),
          fc.string({ unit: 'binary', maxLength: 60 }).map((s) => Uint8Array.from(Buffer.from(s))),
        ),
        (body) => {
          const bytes = Uint8Array.from([0x82, 0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x69, 0x64, 0xd9, body.length, ...body]);
          let text: string | undefined;
          try {
            text = strict.decode(body);
          } catch {
            text = undefined;
          }
          const o = outcome(msgpackCodec, bytes, true);
          if (text === undefined) expect(o).toMatchObject({ kind: 'bad_frame', message: expect.stringMatching(/UTF-8/) });
          else expect(o).toEqual({ kind: 'value', value: { op: 'ping', id: text } });
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('the wrong frame type for the encoding is BAD_FRAME', () => {
    expect(outcome(msgpackCodec, Buffer.from('{"op":"ping"}'), false)).toMatchObject({ kind: 'bad_frame', message: expect.stringMatching(/text frame/) });
    expect(outcome(jsonCodec, Buffer.from('{"op":"ping"}'), true)).toMatchObject({ kind: 'bad_frame', message: expect.stringMatching(/binary frame/) });
  });

  it('msgpackr extensions are refused, not decoded', () => {
    const cases: Record<string, number[]> = {
      timestamp: [0xd6, 0xff, 0, 0, 0, 1],
      'undefined (ext 0)': [0xd4, 0x00, 0x00],
      'reserved 0xc1': [0xc1],
      bigint: [0xd4, 0x42, 0x01],
      set: [0xd4, 0x73, 0x00, 0x90],
      regexp: [0xd4, 0x78, 0x00, 0x92, 0xa1, 0x61, 0xa0],
      error: [0xd4, 0x65, 0x00, 0x92, 0xa5, 0x45, 0x72, 0x72, 0x6f, 0x72, 0xa1, 0x78],
      'typed array': [0xd5, 0x74, 0x00, 0x00],
    };
    for (const [name, bytes] of Object.entries(cases)) {
      expect(outcome(msgpackCodec, Uint8Array.from(bytes), true), name).toMatchObject({ kind: 'bad_frame' });
    }
    // inside an otherwise valid request too
    const inMap = Uint8Array.from([0x82, 0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa2, 0x69, 0x64, 0xd6, 0xff, 0, 0, 0, 1]);
    expect(outcome(msgpackCodec, inMap, true)).toMatchObject({ kind: 'bad_frame', message: expect.stringMatching(/MessagePack/) });
  });

  it('huge declared lengths are refused without allocating them', () => {
    const before = process.memoryUsage().rss;
    for (const hdr of [
      [0xdb, 0xff, 0xff, 0xff, 0xff],
      [0xc6, 0xff, 0xff, 0xff, 0xff],
      [0xdd, 0xff, 0xff, 0xff, 0xff],
      [0xdf, 0xff, 0xff, 0xff, 0xff],
      [0xc9, 0x7f, 0xff, 0xff, 0xff, 0x01],
    ]) {
      expect(outcome(msgpackCodec, Uint8Array.from([...hdr, 0x61, 0x62, 0x63]), true)).toMatchObject({ kind: 'bad_frame' });
    }
    expect(process.memoryUsage().rss - before).toBeLessThan(256 * 1024 * 1024);
  });

  it(`nesting: ${MAX_FRAME_DEPTH} levels decode, deeper (up to 100 000) is BAD_FRAME in both encodings`, () => {
    for (const depth of [MAX_FRAME_DEPTH, MAX_FRAME_DEPTH + 1, 1000, 100_000]) {
      const mp = Uint8Array.from([...Array<number>(depth).fill(0x91), 0x01]);
      const js = Buffer.from('['.repeat(depth) + '1' + ']'.repeat(depth));
      const want = depth <= MAX_FRAME_DEPTH ? 'value' : 'bad_frame';
      expect(outcome(msgpackCodec, mp, true).kind, `msgpack depth ${depth}`).toBe(want);
      expect(outcome(jsonCodec, js, false).kind, `json depth ${depth}`).toBe(want);
    }
    // maps nest the same way: {"a":{"a":...}}
    const deepMap = Uint8Array.from([...Array.from({ length: 50 }, () => [0x81, 0xa1, 0x61]).flat(), 0x01]);
    expect(outcome(msgpackCodec, deepMap, true)).toMatchObject({ kind: 'bad_frame', message: expect.stringMatching(/deeper/) });
  });
});

describe('frame codecs agree with a standard MessagePack implementation', () => {
  // JSON values as a client would send them (no -0: JSON cannot tell it apart)
  const jsonValue = fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.parse(JSON.stringify(v)) as unknown);

  it('what @msgpack/msgpack encodes, the gateway decodes to the same value as the JSON text', () => {
    // (one known difference, harmless: msgpackr renames a `__proto__` key to `__proto_`, so that
    // a frame can never set an object's prototype; JSON.parse keeps it as an own key)
    fc.assert(
      fc.property(
        jsonValue.filter((v) => !JSON.stringify(v).includes('"__proto__"')),
        (v) => {
          const viaMsgpack = outcome(msgpackCodec, referenceEncode(v), true);
          const viaJson = outcome(jsonCodec, Buffer.from(JSON.stringify(v)), false);
          expect(viaMsgpack).toEqual(viaJson);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('what the gateway encodes, @msgpack/msgpack decodes to exactly the JSON-mode object', () => {
    fc.assert(
      // (payload keys are the engine's own; a `__proto__` key, which @msgpack/msgpack refuses, never occurs)
      fc.property(
        fc.dictionary(fc.string({ maxLength: 8 }), jsonValue, { maxKeys: 6 }).filter((d) => !JSON.stringify(d).includes('"__proto__"')),
        (d) => {
          const frame = { op: 'data', ch: 'quote:AAPL', seq: 1, d };
          const fromMsgpack = referenceDecode(msgpackCodec.encode(frame));
          const fromJson = JSON.parse(Buffer.from(jsonCodec.encode(frame)).toString('utf8'));
          expect(fromMsgpack).toEqual(fromJson);
        },
      ),
      { numRuns: 1_500 },
    );
  });
});

describe("the gateway's own frames carry well-formed Unicode in both encodings (encodeWellFormed)", () => {
  const strictUtf8 = new TextDecoder('utf-8', { fatal: true });
  /** every string (value or key) of a decoded value, with a path */
  const strings = (v: unknown, at = '$'): [string, string][] =>
    typeof v === 'string'
      ? [[at, v]]
      : Array.isArray(v)
        ? v.flatMap((x, i) => strings(x, `${at}[${i}]`))
        : v && typeof v === 'object'
          ? Object.entries(v).flatMap(([k, x]) => [[`${at} key`, k] as [string, string], ...strings(x, `${at}.${k}`)])
          : [];
  /** text with lone surrogates among ordinary characters and pairs */
  const text = (min: number, max: number): fc.Arbitrary<string> =>
    fc.string({ unit: fc.constantFrom('\ud83d', '\ude00', '😀', 'a', 'é', '"', '\\', '\n', '€'), minLength: min, maxLength: max });
  const wellFormed = (s: string): boolean => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

  it('any UTF-16 string (lone surrogates included, e.g. a client text cut in the middle of an emoji) is sent as valid UTF-8, the same in JSON and MessagePack', () => {
    // a strict decoder (Python's msgpack, Go, Rust) refuses a MessagePack str that is not UTF-8
    fc.assert(
      fc.property(fc.dictionary(text(0, 8), fc.oneof(text(0, 40), text(60, 200)), { maxKeys: 4 }), text(0, 70), (d, message) => {
        const frame = { op: 'error', code: 'UNKNOWN_OP', message, d };
        const bytes = encodeWellFormed(msgpackCodec, frame);
        const fromMsgpack = referenceDecode(bytes, { useBigInt64: false });
        for (const [at, s] of strings(fromMsgpack)) {
          expect(wellFormed(s), `${at}: ${JSON.stringify(s)}`).toBe(true);
          expect(() => strictUtf8.decode(Buffer.from(s, 'utf8')), at).not.toThrow();
        }
        // no CESU-8 / WTF-8 surrogate in the bytes (ED A0..BF starts one; valid UTF-8 never has it)
        for (let i = bytes.indexOf(0xed); i >= 0 && i < bytes.length - 1; i = bytes.indexOf(0xed, i + 1)) {
          const next = bytes[i + 1]!;
          // (an 0xED inside a number's bytes is not a string: the decode above checks those)
          if (next >= 0xa0 && next <= 0xbf) expect(strings(fromMsgpack).some(([, s]) => s.includes('\ufffd') || !wellFormed(s))).toBe(true);
        }
        const fromJson = JSON.parse(Buffer.from(encodeWellFormed(jsonCodec, frame)).toString('utf8')) as unknown;
        expect(fromMsgpack).toEqual(fromJson);
      }),
      { numRuns: 1_000 },
    );
  });

  it('an op of emoji cut at 32 characters in the UNKNOWN_OP message is sent well formed', () => {
    const op = '😀'.repeat(40); // 80 UTF-16 units: a cut at 32 falls... on a pair boundary; 33 does not
    for (const o of [op, `x${op}`]) {
      const frame = { op: 'error', code: 'UNKNOWN_OP', message: `unknown op "${o.slice(0, 32)}"` };
      const s = referenceDecode(encodeWellFormed(msgpackCodec, frame)) as { message: string };
      expect(wellFormed(s.message)).toBe(true);
      expect(JSON.parse(Buffer.from(encodeWellFormed(jsonCodec, frame)).toString()).message).toBe(s.message);
    }
  });
});
