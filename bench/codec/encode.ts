/**
 * What the well-formed-Unicode check of the gateway's own frames costs (encodeWellFormed,
 * docs/protocol.md#encodings): ns per frame with the check and with the bare codec, for an ack,
 * an error quoting non-ASCII client text, and a 256-item float-heavy batch (the worst case for
 * the byte scan; hub emissions do not take the check). Compare the ratios within one run.
 *
 *   node --import tsx bench/codec/encode.ts [--seconds 2]
 */
import { loadavg } from 'node:os';
import { encodeWellFormed, jsonCodec, msgpackCodec } from '../../src/codec/frames.js';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1] || 2);

const quote = {
  op: 'data',
  ch: 'quote:BTC-USD',
  seq: 12,
  d: { bp: 67250.51, bs: 0.0123, ap: 67250.52, as: 1.5, t: 1718026207000.123, src: 'binance', ep: 1795316733694 },
};
const batch = {
  op: 'batch',
  items: Array.from({ length: 256 }, (_, i) => ({
    op: 'data',
    ch: 'trade:BTC-USD',
    seq: 1000 + i,
    d: {
      id: `B:${96921 + i}`,
      p: 67250.5 + Math.random(),
      s: Math.random() * 3,
      side: i % 2 ? 'buy' : 'sell',
      t: 1718026207000.123 + i,
      src: 'binance',
      ep: 1795316733694,
    },
  })),
};
const ack = {
  op: 'ack',
  id: 1,
  subscribed: ['quote:AAPL', 'trade:AAPL'],
  rejected: [{ channel: 'quote:ZZZ', code: 'UNKNOWN_CHANNEL', reason: 'unknown symbol "ZZZ"' }],
  throttle: 250,
};
const error = { op: 'error', id: 7, code: 'UNKNOWN_OP', message: 'unknown op "Überweisung 😀 prüfen": use subscribe, unsubscribe, ping, auth, visibility' };

function time(fn: () => unknown): number {
  for (let i = 0; i < 2000; i++) fn();
  let n = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) fn();
    n += 100;
  }
  return ((performance.now() - start) * 1e6) / n;
}

console.log(
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`,
);
console.log('frame        encoding  checked ns/frame  bare ns/frame  ratio');
for (const [name, frame] of Object.entries({ ack, error, quote, batch256: batch })) {
  const rows: [string, number, number][] = [
    ['json', time(() => encodeWellFormed(jsonCodec, frame)), time(() => jsonCodec.encode(frame))],
    ['msgpack', time(() => encodeWellFormed(msgpackCodec, frame)), time(() => msgpackCodec.encode(frame))],
  ];
  for (const [enc, codec, raw] of rows)
    console.log(`${name.padEnd(12)} ${enc.padEnd(9)} ${codec.toFixed(0).padStart(16)} ${raw.toFixed(0).padStart(14)}  ${(codec / raw).toFixed(2)}`);
}
