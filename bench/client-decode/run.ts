/**
 * Client decode benchmark (docs/client-sdk.md#size): what decoding server frames costs per
 * frame with the SDK's MessagePack decoding (msgpackr's Unpackr, records off, maps as objects,
 * through the SDK's own codec), with the Decoder of @msgpack/msgpack (1.3 KB smaller gzipped in
 * the browser bundle: the alternative weighed for the SDK's size), and with `JSON.parse` of the
 * same frames as JSON text (the SDK's `json` encoding). The frames
 * are the gateway's own (`msgpackCodec.encode` of src/codec/frames.ts, `JSON.stringify`): a
 * coalesced quote, a ticker, a batch of 20 trades, a snapshot of a 25-level book. Rounds are
 * interleaved (decoder A, B, C, A, B, C, ...) and the median of the rounds is printed, so a
 * drifting machine load shows in every column alike. Prints a markdown table and the machine
 * load (`uptime`) before and after.
 *
 *   node --import tsx bench/client-decode/run.ts [--rounds 7] [--ms 300]
 */
import { execFileSync } from 'node:child_process';
import { Decoder } from '@msgpack/msgpack';
import { codecFor } from '../../packages/client/src/codec.js';
import { msgpackCodec } from '../../src/codec/frames.js';

const argv = process.argv.slice(2);
const num = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const ROUNDS = num('rounds', 7);
const MS = num('ms', 300);
const uptime = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();

const ep = 1795316733694;
const frames: Record<string, unknown> = {
  quote: {
    op: 'data',
    ch: 'quote:EUR-USD',
    seq: 48213,
    d: { bp: 1.08355, bs: 100000, ap: 1.08357, as: 300000, t: 1795316736505.135, src: 'synthetic', ep },
    coalesced: 3,
  },
  ticker: {
    op: 'data',
    ch: 'ticker:AAPL',
    seq: 9120,
    d: { p: 231.42, o: 229.1, h: 232.05, l: 228.7, v: 18234567, chg: 2.32, chgp: 1.0127, bp: 231.41, ap: 231.43, t: 1795316736505.135, src: 'synthetic', ep },
  },
  'batch of 20 trades': {
    op: 'batch',
    items: Array.from({ length: 20 }, (_, i) => ({
      op: 'data',
      ch: 'trade:BTC-USD',
      seq: 100 + i,
      d: { id: `mwr989hb-${i}`, p: 67297.09 + i, s: 0.0151, side: i % 2 ? 'buy' : 'sell', t: 1795316736319.948 + i, src: 'synthetic', ep },
    })),
  },
  'book snapshot, 25 levels': {
    op: 'data',
    ch: 'book:BTC-USD',
    seq: 77,
    snapshot: true,
    d: {
      bids: Array.from({ length: 25 }, (_, i) => [67297 - i * 0.5, 0.1 + i / 100]),
      asks: Array.from({ length: 25 }, (_, i) => [67297.5 + i * 0.5, 0.2 + i / 100]),
      depth: 25,
      cs: 3735928559,
      t: 1795316736319.948,
    },
  },
};

const sdk = codecFor('msgpack');
const other = new Decoder({ useBigInt64: false });
const decoders: [string, (bin: Uint8Array, text: string) => unknown][] = [
  ['SDK (msgpackr Unpackr)', (bin) => sdk.decode(bin)],
  ['@msgpack/msgpack Decoder', (bin) => other.decode(bin)],
  ['JSON.parse (json encoding)', (_bin, text) => JSON.parse(text)],
];

/** ns per decode over about MS milliseconds */
function time(fn: (bin: Uint8Array, text: string) => unknown, bin: Uint8Array, text: string): number {
  let n = 0;
  let sink = 0;
  const start = process.hrtime.bigint();
  const until = start + BigInt(MS) * 1_000_000n;
  let now = start;
  while (now < until) {
    for (let i = 0; i < 200; i++) sink += (fn(bin, text) as { op: string }).op.length;
    n += 200;
    now = process.hrtime.bigint();
  }
  if (sink === 0) throw new Error('nothing decoded');
  return Number(now - start) / n;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

console.log(`load before: ${uptime()}`);
console.log(`node ${process.version}, ${ROUNDS} interleaved rounds of ${MS} ms per decoder and frame; median µs per frame\n`);
console.log(`| frame | bytes (msgpack / json) | ${decoders.map(([n]) => n).join(' | ')} | @msgpack/msgpack / SDK |`);
console.log(`|---|---|${decoders.map(() => '---|').join('')}---|`);
for (const [name, frame] of Object.entries(frames)) {
  const bin = new Uint8Array(msgpackCodec.encode(frame as never));
  const text = JSON.stringify(frame);
  for (const [, fn] of decoders) {
    const got = JSON.stringify(fn(bin, text));
    if (got !== text) throw new Error(`${name}: a decoder returned another value: ${got}`);
    time(fn, bin, text); // warm up
  }
  const ns: number[][] = decoders.map(() => []);
  for (let r = 0; r < ROUNDS; r++) decoders.forEach(([, fn], i) => ns[i]!.push(time(fn, bin, text)));
  const med = ns.map(median);
  console.log(`| ${name} | ${bin.length} / ${text.length} | ${med.map((x) => (x / 1000).toFixed(2)).join(' | ')} | ${(med[1]! / med[0]!).toFixed(2)} |`);
}
console.log(`\nload after: ${uptime()}`);
