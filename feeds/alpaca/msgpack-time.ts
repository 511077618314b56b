import { decodeTimestampToTimeSpec, encodeTimeSpecToTimestamp, ExtensionCodec } from '@msgpack/msgpack';

/**
 * Alpaca's MessagePack encoding sends times as MessagePack timestamps (extension type -1: seconds
 * and nanoseconds since the epoch). Decoders usually turn them into a `Date`, which keeps only
 * milliseconds; JSON mode's RFC 3339 strings carry nanoseconds. This codec reads the extension
 * itself, so both encodings give the same exact nanosecond time.
 */
export class NsTimestamp {
  constructor(readonly ns: bigint) {}
}

const NS_PER_S = 1_000_000_000n;

/** MessagePack codec: timestamps decode to NsTimestamp (exact ns) and NsTimestamp encodes back. */
export const NS_TIMESTAMP_CODEC = new ExtensionCodec();
NS_TIMESTAMP_CODEC.register({
  type: -1,
  encode: (value: unknown) => {
    if (!(value instanceof NsTimestamp)) return null;
    // floor division, so that times before 1970 keep 0 <= nsec < 1e9 as the spec requires
    let sec = value.ns / NS_PER_S;
    let nsec = value.ns % NS_PER_S;
    if (nsec < 0n) {
      sec -= 1n;
      nsec += NS_PER_S;
    }
    return encodeTimeSpecToTimestamp({ sec: Number(sec), nsec: Number(nsec) });
  },
  decode: (data: Uint8Array) => {
    const { sec, nsec } = decodeTimestampToTimeSpec(data);
    return new NsTimestamp(BigInt(sec) * NS_PER_S + BigInt(nsec));
  },
});
