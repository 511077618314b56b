import type { QuoteTick, TradeTick } from '../../src/core/schema.js';

let seq = 0;
/** A trade tick received at `ms` (ms since the epoch). */
export function trade(sym: string, p: number, ms: number): TradeTick {
  const ns = BigInt(ms) * 1_000_000n;
  return { k: 'trade', sym, src: 'test', seq: ++seq, ep: 1, ts: ns, rt: ns, id: String(seq), p, s: 1 };
}

export function quote(sym: string, bp: number, ap: number, ms: number): QuoteTick {
  const ns = BigInt(ms) * 1_000_000n;
  return { k: 'quote', sym, src: 'test', seq: ++seq, ep: 1, ts: ns, rt: ns, bp, ap };
}
