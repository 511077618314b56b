import type { Tick } from '../core/schema.js';
import { BAR_INTERVAL_MS } from '../core/schema.js';
import { nsToMs } from '../core/time.js';

/**
 * Canonical ticks to protocol v1 payloads (`d`). Optional fields are omitted, never undefined,
 * so msgpack and JSON carry the same object. `ep` (feed epoch) is an extension on trade and
 * quote payloads: it changes when a symbol's numbering restarts (adapter restart, failover).
 */
export type Payload = Record<string, unknown>;

export function tickToPayload(tick: Tick): Payload {
  switch (tick.k) {
    case 'trade': {
      const d: Payload = { id: tick.id, p: tick.p, s: tick.s };
      if (tick.side) d.side = tick.side;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      if (tick.venue) d.venue = tick.venue;
      d.ep = tick.ep;
      return d;
    }
    case 'quote': {
      const d: Payload = { bp: tick.bp };
      if (tick.bs !== undefined) d.bs = tick.bs;
      d.ap = tick.ap;
      if (tick.as !== undefined) d.as = tick.as;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      d.ep = tick.ep;
      return d;
    }
    case 'ticker':
      return {
        p: tick.p, bp: tick.bp, ap: tick.ap, o: tick.o, h: tick.h, l: tick.l, v: tick.v,
        chg: round(tick.chg, 10), chgp: round(tick.chgp, 6), t: nsToMs(tick.ts),
      };
    case 'bar':
      return {
        t: tick.t, iv: BAR_INTERVAL_MS[tick.iv], o: tick.o, h: tick.h, l: tick.l, c: tick.c,
        v: tick.v, n: tick.n, closed: tick.closed,
      };
  }
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}
