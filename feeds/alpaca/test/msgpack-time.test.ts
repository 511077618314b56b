import { decode, encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { NS_TIMESTAMP_CODEC, NsTimestamp } from '../msgpack-time.js';

const roundTrip = (ns: bigint): unknown =>
  decode(encode({ t: new NsTimestamp(ns) }, { extensionCodec: NS_TIMESTAMP_CODEC }), { extensionCodec: NS_TIMESTAMP_CODEC });

describe('MessagePack timestamps to exact nanoseconds', () => {
  it('keeps every nanosecond in the 32-, 64- and 96-bit timestamp formats', () => {
    for (const ns of [
      1_614_009_104_000_000_000n, // whole seconds: 32-bit format
      1_614_009_105_335_689_322n, // 64-bit format
      1_614_009_106_000_000_001n,
      17_179_869_184_000_000_001n, // seconds beyond 34 bits: 96-bit format
      -1n, // before 1970: 96-bit format with nsec 999999999
      -1_500_000_000n,
    ]) {
      expect(roundTrip(ns)).toEqual({ t: new NsTimestamp(ns) });
    }
  });

  it('reads a timestamp written by another encoder (a Date, 64-bit format) exactly', () => {
    const bytes = encode({ t: new Date(Date.UTC(2021, 1, 22, 15, 51, 44, 208)) });
    expect(decode(bytes, { extensionCodec: NS_TIMESTAMP_CODEC })).toEqual({ t: new NsTimestamp(1_614_009_104_208_000_000n) });
  });
});
