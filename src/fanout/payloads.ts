import type { Tick } from '../core/schema.js';
import { BAR_INTERVAL_MS } from '../core/schema.js';
import { nsToMs } from '../core/time.js';

/**
 * Canonical ticks to protocol v1 payloads (`d`). Optional fields are omitted, never undefined,
 * so msgpack and JSON carry the same object. `ep` (feed epoch) is an extension on trade and
 * quote payloads: it changes when a symbol's numbering restarts (adapter restart, failover).
 */
export type Payload = Record<string, unknown>;

/**
 * The item `op` of a tick that is not a plain `data` update: trade corrections and cancels are
 * items of their own kind on the trade channel (`"op":"correction"`, `"op":"cancel"`), so a
 * client that only knows `data` never mistakes one for a new trade (docs/protocol.md).
 */
export function itemOpOf(tick: Tick): 'correction' | 'cancel' | undefined {
  return tick.k === 'correction' || tick.k === 'cancel' ? tick.k : undefined;
}

export function tickToPayload(tick: Tick): Payload {
  switch (tick.k) {
    case 'trade': {
      const d: Payload = { id: tick.id, p: tick.p, s: tick.s };
      if (tick.side) d.side = tick.side;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      if (tick.venue) d.venue = tick.venue;
      if (tick.volumeOnly || tick.excluded || tick.highLowOnly) d.volumeOnly = true;
      if (tick.excluded) d.excluded = true;
      else if (tick.highLowOnly) d.highLowOnly = true;
      d.ep = tick.ep;
      return d;
    }
    case 'quote': {
      const d: Payload = {};
      if (tick.bp !== undefined) d.bp = tick.bp;
      if (tick.bp !== undefined && tick.bs !== undefined) d.bs = tick.bs;
      if (tick.ap !== undefined) d.ap = tick.ap;
      if (tick.ap !== undefined && tick.as !== undefined) d.as = tick.as;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      d.ep = tick.ep;
      return d;
    }
    case 'ticker': {
      const d: Payload = { p: tick.p };
      if (tick.bp !== undefined) d.bp = tick.bp;
      if (tick.ap !== undefined) d.ap = tick.ap;
      d.o = tick.o;
      d.h = tick.h;
      d.l = tick.l;
      d.v = tick.v;
      d.chg = round(tick.chg, 10);
      d.chgp = round(tick.chgp, 6);
      if (tick.pc !== undefined) d.pc = tick.pc;
      d.t = nsToMs(tick.ts);
      if (tick.status) d.status = tick.status;
      if (tick.empty) d.empty = true;
      if (tick.basis) d.basis = tick.basis;
      return d;
    }
    case 'bar': {
      const d: Payload = {
        t: tick.t,
        iv: BAR_INTERVAL_MS[tick.iv],
        o: tick.o,
        h: tick.h,
        l: tick.l,
        c: tick.c,
        v: tick.v,
        n: tick.n,
        closed: tick.closed,
      };
      if (tick.corrected) d.corrected = true;
      if (tick.empty) d.empty = true;
      if (tick.basis) d.basis = tick.basis;
      return d;
    }
    case 'correction': {
      const d: Payload = { ref: tick.ref, id: tick.id, p: tick.p, s: tick.s };
      if (tick.side) d.side = tick.side;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      if (tick.venue) d.venue = tick.venue;
      if (tick.volumeOnly || tick.excluded || tick.highLowOnly) d.volumeOnly = true;
      if (tick.excluded) d.excluded = true;
      else if (tick.highLowOnly) d.highLowOnly = true;
      d.applied = tick.applied === true;
      d.ep = tick.ep;
      return d;
    }
    case 'cancel': {
      const d: Payload = { ref: tick.ref };
      if (tick.error) d.error = true;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      d.applied = tick.applied === true;
      d.ep = tick.ep;
      return d;
    }
    case 'book': {
      // the raw change as the bus carries it (tools such as `tickwire tap`); clients of
      // `book:SYM` get per-subscription views from src/fanout/book-channels.ts instead
      const d: Payload = { bids: tick.bids, asks: tick.asks };
      if (tick.reset) d.reset = true;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      return d;
    }
    case 'status': {
      const d: Payload = { status: tick.status ?? 'trading' };
      if (tick.reason) d.reason = tick.reason;
      if (tick.code) d.code = tick.code;
      if (tick.luld) d.luld = { up: tick.luld.up, down: tick.luld.down };
      if (tick.stale) d.stale = true;
      d.t = nsToMs(tick.ts);
      d.src = tick.src;
      return d;
    }
  }
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}
