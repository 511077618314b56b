import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pack, Packr } from 'msgpackr';
import { jsonCodec, MAX_FRAME_DEPTH, MAX_FRAME_KEYS, MAX_FRAME_VALUES, msgpackCodec } from '../../src/codec/frames.js';
import { jsonShapeProblem, msgpackShapeProblem } from '../../src/codec/frame-shape.js';
import { ProtocolError } from '../../src/core/errors.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { startTarget } from './kit.js';
import type { Target } from './kit.js';

/**
 * Client frames that are cheap to send and dear to decode. The frame rate (limits.messagesPerSec,
 * burst limits.messageBurst) counts frames, and a frame of gateway.maxFrameBytes (64 KiB) cost the
 * gateway what its values cost the decoder: `[` nested 65 536 deep took JSON.parse 14 ms before the
 * depth check ran on the result, a MessagePack map of 9000 distinct keys 13 ms, 60 000 numbers with
 * one stray byte after them 17 ms (msgpackr stringifies the whole value it read into its error
 * message), where a subscribe of 1000 channels takes 0.2 ms. Four connections without a token
 * sending such frames at their frame rate to a `tickwire start` process (two gateway workers) took
 * a bystander's ping from 1 ms (median) to 164-750 ms, up to 944 ms, and both cores.
 *
 * The gateway reads the shape of a frame from its bytes before decoding it (src/codec/frame-shape.ts):
 * deeper than MAX_FRAME_DEPTH (16), holding more than MAX_FRAME_VALUES (2048) values (array
 * elements and map entries, at every level) or more than MAX_FRAME_KEYS (64) map entries (fresh
 * random keys cost most: 7 maps of 256 new keys a frame from 16 connections took the bystander's
 * ping to 606 ms), or holding any MessagePack extension, is BAD_FRAME before any decoder runs.
 */

const ab = (b: Uint8Array): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;

/**
 * The limits as protocol.md states them, on a decoded value walked in document order: at each
 * array element or map entry (at depth d, the top-level value being at 0), d over
 * MAX_FRAME_DEPTH is 'depth', one value over MAX_FRAME_VALUES 'values', one map entry over
 * MAX_FRAME_KEYS 'keys'; the first limit passed is the answer.
 */
function expected(v: unknown): 'depth' | 'values' | 'keys' | undefined {
  let values = 0;
  let keys = 0;
  const walk = (x: unknown, depth: number): 'depth' | 'values' | 'keys' | undefined => {
    if (x === null || typeof x !== 'object') return undefined;
    const map = !Array.isArray(x);
    for (const item of map ? Object.values(x) : (x as unknown[])) {
      if (depth + 1 > MAX_FRAME_DEPTH) return 'depth';
      if (++values > MAX_FRAME_VALUES) return 'values';
      if (map && ++keys > MAX_FRAME_KEYS) return 'keys';
      const why = walk(item, depth + 1);
      if (why) return why;
    }
    return undefined;
  };
  return walk(v, 0);
}

/** array elements and map entries at every level */
function valuesOf(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const items = Array.isArray(v) ? v : Object.values(v);
  return items.reduce<number>((n, x) => n + 1 + valuesOf(x), 0);
}

const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v));
const nested = (depth: number): unknown => (depth === 0 ? 1 : [nested(depth - 1)]);
const keys = (n: number): Record<string, number> => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 1]));

function badFrame(decode: () => unknown): string {
  try {
    decode();
  } catch (err) {
    if (err instanceof ProtocolError && err.code === 'BAD_FRAME') return err.message;
    throw err;
  }
  throw new Error('decoded');
}

describe('hostile: the shape of a client frame is read before it is decoded', () => {
  it('the scans agree with the limits on the decoded value, in both encodings (the first limit passed)', () => {
    // values that reach the limits: wide arrays and maps, many keys, nesting up to 20, and each limit passed first
    const leaf = fc.oneof(fc.integer(), fc.string({ maxLength: 4 }), fc.constant(null), fc.boolean(), fc.double({ noNaN: true }));
    const tree = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
      array: fc.array(tie('value'), { maxLength: 6 }),
      object: fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 6 }),
    })).value;
    const shaped = fc.oneof(
      tree,
      fc
        .tuple(fc.integer({ min: MAX_FRAME_VALUES - 3, max: MAX_FRAME_VALUES + 3 }), fc.boolean())
        .map(([n, map]) => (map ? keys(n) : Array.from({ length: n }, (_, i) => i))),
      fc.integer({ min: MAX_FRAME_DEPTH - 2, max: MAX_FRAME_DEPTH + 3 }).map(nested),
      fc
        .tuple(fc.integer({ min: MAX_FRAME_KEYS - 3, max: MAX_FRAME_KEYS + 3 }), fc.integer({ min: 1, max: 8 }))
        .map(([n, parts]) => Array.from({ length: parts }, (_, p) => keys(Math.ceil(n / parts) + p))),
      fc
        .tuple(fc.integer({ min: MAX_FRAME_VALUES - 70, max: MAX_FRAME_VALUES }), fc.integer({ min: 1, max: 80 }))
        .map(([n, k]) => [Array.from({ length: n }, () => 0), keys(k)]),
      fc.tuple(fc.integer({ min: 1, max: MAX_FRAME_DEPTH + 2 }), tree).map(([d, t]) => [nested(d), t, { 'a"\\': ['"]', '\\"[{'] }]),
      // a wide array or map whose first item passes another limit before its width passes the value
      // limit: JSON finds that one first, and so must the MessagePack scan, which reads the width
      // from the container's header before its items
      fc
        .tuple(
          fc.oneof(
            fc.integer({ min: MAX_FRAME_DEPTH - 2, max: MAX_FRAME_DEPTH + 2 }).map(nested),
            fc.integer({ min: MAX_FRAME_KEYS - 2, max: MAX_FRAME_KEYS + 2 }).map(keys),
          ),
          fc.integer({ min: MAX_FRAME_VALUES - 3, max: MAX_FRAME_VALUES + 80 }),
          fc.boolean(),
        )
        .map(([first, n, map]) => (map ? { first, ...keys(n) } : [first, ...Array.from({ length: n }, () => 0)])),
    );
    fc.assert(
      fc.property(shaped, (v) => {
        const want = expected(v);
        expect(jsonShapeProblem(json(v))).toBe(want);
        expect(jsonShapeProblem(Buffer.from(JSON.stringify(v, null, 2)))).toBe(want);
        expect(msgpackShapeProblem(pack(v))).toBe(want);
      }),
      { numRuns: 400 },
    );
  });

  it('the MessagePack scan reads every plain type in every width a standard encoder may choose, and stops on any truncation', () => {
    // msgpackr picks the shortest forms; other encoders (and other clients) may send str8 for a
    // short string, map16 for a small map, uint64, float32, bin: each is one valid encoding of the value
    const leaf = fc.oneof(
      fc.integer({ min: -(2 ** 31), max: 2 ** 32 - 1 }),
      fc.string({ maxLength: 40 }).map((t) => t + '"]}\\'),
      fc.constant(null),
      fc.boolean(),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.float({ noNaN: true, noDefaultInfinity: true }).map(Math.fround),
    );
    const tree = fc.letrec((tie) => ({
      value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, tie('array'), tie('object')),
      array: fc.array(tie('value'), { maxLength: 6 }),
      object: fc.dictionary(fc.string({ maxLength: 5 }), tie('value'), { maxKeys: 6 }),
    })).value;
    const head = (b: number, n: number, bytes: number): number[] => [b, ...Array.from({ length: bytes }, (_, i) => (n / 256 ** (bytes - 1 - i)) & 0xff)];
    // one valid encoding of `v`, its widths taken from `pick` (0, 1, 2...: the shortest form or a wider one)
    function encode(v: unknown, pick: () => number): number[] {
      if (v === null) return [0xc0];
      if (v === false || v === true) return [v ? 0xc3 : 0xc2];
      if (typeof v === 'number') {
        const wide = pick() % 3;
        if (Number.isInteger(v) && !Object.is(v, -0) && v >= -(2 ** 31) && v < 2 ** 32) {
          if (wide === 0 && v >= -32 && v < 128) return [v & 0xff]; // positive or negative fixint
          if (v >= 0 && wide === 1) return [0xcf, 0, 0, 0, 0, ...head(0, v, 4).slice(1)]; // uint64
          if (v >= 0) return head(0xce, v, 4); // uint32
          if (wide === 1) return [0xd3, 0xff, 0xff, 0xff, 0xff, ...head(0, v >>> 0, 4).slice(1)]; // int64
          return head(0xd2, v >>> 0, 4); // int32
        }
        const f = Buffer.alloc(8);
        if (Math.fround(v) === v && wide !== 2) {
          f.writeFloatBE(v);
          return [0xca, ...f.subarray(0, 4)];
        }
        f.writeDoubleBE(v);
        return [0xcb, ...f];
      }
      if (typeof v === 'string') {
        const b = [...Buffer.from(v)];
        const w = pick() % 4;
        if (w === 0 && b.length < 32) return [0xa0 | b.length, ...b];
        if (w <= 1 && b.length < 256) return [0xd9, b.length, ...b];
        if (w <= 2) return [...head(0xda, b.length, 2), ...b];
        return [...head(0xdb, b.length, 4), ...b];
      }
      const map = !Array.isArray(v);
      const items = map ? Object.entries(v as object).flat() : (v as unknown[]);
      const n = map ? items.length / 2 : items.length;
      const w = pick() % 3;
      const h = w === 0 && n < 16 ? [(map ? 0x80 : 0x90) | n] : w <= 1 ? head(map ? 0xde : 0xdc, n, 2) : head(map ? 0xdf : 0xdd, n, 4);
      return [...h, ...items.flatMap((x) => encode(x, pick))];
    }
    fc.assert(
      fc.property(tree, fc.array(fc.nat(), { minLength: 1, maxLength: 64 }), (v, widths) => {
        let i = 0;
        const bytes = Uint8Array.from(encode(v, () => widths[i++ % widths.length]!));
        const want = expected(v);
        expect(msgpackShapeProblem(bytes)).toBe(want);
        if (want === undefined) expect(msgpackCodec.decode(ab(bytes), true)).toEqual(v);
        // every truncation of it: the scan ends, and the decoder refuses it
        for (let end = 0; end < bytes.length; end++) msgpackShapeProblem(bytes.subarray(0, end));
        for (let end = 0; end < bytes.length; end++) jsonShapeProblem(json(v).subarray(0, end));
      }),
      { numRuns: 300 },
    );
    // bin 8/16/32 (plain MessagePack; the decoder gives a Uint8Array) inside a frame
    for (const bin of [
      [0xc4, 3, 1, 2, 3],
      [0xc5, 0, 3, 1, 2, 3],
      [0xc6, 0, 0, 0, 3, 1, 2, 3],
    ]) {
      const frame = Uint8Array.of(0x92, ...bin, 0xa1, 0x5d);
      expect(msgpackShapeProblem(frame)).toBeUndefined();
      expect(msgpackCodec.decode(ab(frame), true)).toEqual([Uint8Array.of(1, 2, 3), ']']);
    }
  });

  it(`${MAX_FRAME_VALUES} values and ${MAX_FRAME_KEYS} map entries decode, one more is BAD_FRAME naming the limit; a subscribe of 1000 channels decodes`, () => {
    const channels = Array.from({ length: 1000 }, (_, i) => `trade:SYM${i}`);
    const subscribe = { op: 'subscribe', id: 1, channels, throttle: 100, snapshot: true, history: 10 };
    expect(jsonCodec.decode(ab(json(subscribe)), false)).toEqual(subscribe);
    expect(msgpackCodec.decode(ab(pack(subscribe)), true)).toEqual(subscribe);
    const atLimit = { op: 'ping', pad: Array.from({ length: MAX_FRAME_VALUES - 2 }, () => 0) };
    expect(valuesOf(atLimit)).toBe(MAX_FRAME_VALUES);
    expect(jsonCodec.decode(ab(json(atLimit)), false)).toEqual(atLimit);
    expect(msgpackCodec.decode(ab(pack(atLimit)), true)).toEqual(atLimit);
    const over = { ...atLimit, one: 1 };
    expect(badFrame(() => jsonCodec.decode(ab(json(over)), false))).toContain(`more than ${MAX_FRAME_VALUES} values`);
    expect(badFrame(() => msgpackCodec.decode(ab(pack(over)), true))).toContain(`more than ${MAX_FRAME_VALUES} values`);
    const keyed = { op: 'ping', ...keys(MAX_FRAME_KEYS - 1) };
    expect(jsonCodec.decode(ab(json(keyed)), false)).toEqual(keyed);
    expect(msgpackCodec.decode(ab(pack(keyed)), true)).toEqual(keyed);
    const overKeys = { ...keyed, one: 1 };
    expect(badFrame(() => jsonCodec.decode(ab(json(overKeys)), false))).toContain(`more than ${MAX_FRAME_KEYS} map entries`);
    expect(badFrame(() => msgpackCodec.decode(ab(pack(overKeys)), true))).toContain(`more than ${MAX_FRAME_KEYS} map entries`);
    // a header declaring more entries than the frame could hold: truncated, as the decoder says
    expect(badFrame(() => msgpackCodec.decode(ab(Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x61, 0x01)), true))).toContain('not valid MessagePack');
    // entries the frame does hold: refused before the decoder reads one
    const declared = Buffer.concat([Buffer.of(0xdd, 0, 0, 0x0b, 0xb8), Buffer.alloc(3000, 0x01)]);
    expect(badFrame(() => msgpackCodec.decode(ab(declared), true))).toContain(`more than ${MAX_FRAME_VALUES} values`);
  });
});

describe('hostile: msgpackr records in a client frame', () => {
  // msgpackr's records (extension 0x72) decoded to plain objects: accepted although protocol v1
  // has no extension types, and their values were hidden from the shape scan (a record is an id
  // byte, then its values)
  const records = new Packr({ useRecords: true });
  it('any extension type is BAD_FRAME before decoding, records included', () => {
    const notPlain = 'not plain MessagePack';
    expect(badFrame(() => msgpackCodec.decode(ab(records.pack({ op: 'ping', id: 1 })), true))).toContain(notPlain);
    const many = records.pack({ op: 'ping', rows: Array.from({ length: 3000 }, (_, i) => ({ x: i, y: 1 })) });
    expect(msgpackShapeProblem(many)).toBe('extension');
    expect(badFrame(() => msgpackCodec.decode(ab(many), true))).toContain(notPlain);
    // every ext and fixext header, whatever its type byte
    for (const head of [
      [0xd4, 0x72],
      [0xd5, 0x01],
      [0xd6, 0xff],
      [0xd7, 0x00],
      [0xd8, 0x05],
      [0xc7, 0x00, 0x01],
      [0xc8, 0x00, 0x00, 0x01],
      [0xc9, 0, 0, 0, 0, 0x01],
    ]) {
      const frame = Uint8Array.of(0x82, 0xa2, 0x6f, 0x70, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa1, 0x78, ...head, ...new Array<number>(16).fill(0));
      expect(msgpackShapeProblem(frame)).toBe('extension');
    }
  });
});

/** user and system CPU time of the target process so far, seconds (Linux /proc) */
function cpuSeconds(target: Target): number {
  const fields = readFileSync(`/proc/${target.proc.child.pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

describe('hostile: frames dear to decode, against a tickwire start process', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({ gateway: { workers: 1 }, feeds: [] });
  }, 90_000);
  afterAll(() => target?.stop());

  const deepJson = Buffer.from('['.repeat(65_536));
  const manyKeys = pack({ op: 'ping', ...keys(9000) }); // 63 KiB
  const strayByte = Buffer.concat([pack(Array.from({ length: 60_000 }, () => 1)), Buffer.of(1)]);

  it('each is BAD_FRAME naming the limit, and costs the engine little CPU', async () => {
    const attackers = await Promise.all([
      TestClient.connect(`ws://127.0.0.1:${target.port}/v1/stream`, { encoding: 'json' }),
      TestClient.connect(`ws://127.0.0.1:${target.port}/v1/stream`, { encoding: 'msgpack' }),
      TestClient.connect(`ws://127.0.0.1:${target.port}/v1/stream`, { encoding: 'msgpack' }),
    ]);
    const [deep, keyed, stray] = attackers as [TestClient, TestClient, TestClient];
    const cpuBefore = cpuSeconds(target);
    const rounds = 100; // below limits.messageBurst: every frame is decoded
    for (let i = 0; i < rounds; i++) {
      deep.sendRaw(deepJson, false);
      keyed.sendRaw(manyKeys, true);
      stray.sendRaw(strayByte, true);
    }
    // every frame is answered: an error (a 9000-key ping was answered pong before)
    const errors = async (c: TestClient): Promise<Frame[]> => c.waitForCount((f) => f.op === 'error' || f.op === 'pong', rounds, 60_000);
    const [deepErrors, keyedErrors, strayErrors] = await Promise.all(attackers.map(errors));
    // the CPU time the engine spent on the 300 frames (19 MB): before, 4 to 5 s (its event loop, and
    // every other connection of the worker, held that long); the process's own time, whatever else
    // runs on the machine
    const spent = cpuSeconds(target) - cpuBefore;
    expect(spent, `the engine spent ${spent.toFixed(2)} s of CPU on the frames`).toBeLessThan(1);
    for (const f of deepErrors!) expect(f).toMatchObject({ code: 'BAD_FRAME', message: `frame nests deeper than ${MAX_FRAME_DEPTH} levels` });
    for (const f of keyedErrors!) expect(f).toMatchObject({ code: 'BAD_FRAME', message: expect.stringContaining(`more than ${MAX_FRAME_KEYS} map entries`) });
    for (const f of strayErrors!) expect(f).toMatchObject({ code: 'BAD_FRAME', message: expect.stringContaining(`more than ${MAX_FRAME_VALUES} values`) });
    for (const c of attackers) c.close();
  }, 90_000);
});
