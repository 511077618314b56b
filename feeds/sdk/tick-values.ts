import type { TickInput } from './adapter.js';

const finitePositive = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x > 0;
const finiteNonNeg = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x) && x >= 0;

/**
 * What is wrong with the numbers of one tick as an adapter emits it (empty when nothing is): a
 * price is a positive finite number, a size, volume or count a non-negative one, a bar's high and
 * low bound its open and close, `ts` is bigint nanoseconds. No provider documents anything else
 * (sizes are quantities, prices are positive; docs/feeds.md, "What the engine refuses"), so
 * these are the adapter contract: the conformance kit reports them in an adapter's tests, and the
 * engine refuses such a tick from any adapter (TickPublisher.publish). Book levels are checked
 * by the book's own validation (validBookInput).
 */
export function tickValueProblems(tick: TickInput): string[] {
  const p: string[] = [];
  if (typeof tick.ts !== 'bigint') p.push(`ts must be bigint nanoseconds, got ${typeof tick.ts}`);
  if (tick.rt !== undefined && typeof tick.rt !== 'bigint') p.push('rt must be bigint when set');
  switch (tick.k) {
    case 'trade':
    case 'correction':
      if (!finitePositive(tick.p)) p.push(`${tick.k} p ${tick.p} must be a positive number`);
      if (!finiteNonNeg(tick.s)) p.push(`${tick.k} s ${tick.s} must be a non-negative number`);
      if (tick.k === 'correction' && tick.os !== undefined && !finiteNonNeg(tick.os)) p.push(`correction os ${tick.os} must be a non-negative number`);
      break;
    case 'quote':
      // a side may be absent (the provider reports it empty); both when the provider's whole book
      // is empty (docs/feeds.md, "Empty quote sides")
      if (tick.bp !== undefined && !finitePositive(tick.bp)) p.push(`quote bp ${tick.bp} must be a positive number`);
      if (tick.ap !== undefined && !finitePositive(tick.ap)) p.push(`quote ap ${tick.ap} must be a positive number`);
      if (tick.bs !== undefined && !finiteNonNeg(tick.bs)) p.push(`quote bs ${tick.bs} must be a non-negative number`);
      if (tick.as !== undefined && !finiteNonNeg(tick.as)) p.push(`quote as ${tick.as} must be a non-negative number`);
      break;
    case 'bar':
      if (!finitePositive(tick.t) || tick.t < 946_684_800_000) p.push(`bar t ${tick.t} must be a bar start in ms`);
      for (const f of ['o', 'h', 'l', 'c'] as const) if (!finitePositive(tick[f])) p.push(`bar ${f} ${tick[f]} must be a positive number`);
      // No provider builds a bar otherwise: every sale condition that sets a bar's open or close
      // sets its high and low too (Polygon glossary, Trade Conditions, consolidated Update Last /
      // Update High/Low; Alpaca Market Data FAQ, "How are bars aggregated?"). docs/feeds.md, "A
      // provider bar's open and close always lie within its high and low"
      if (tick.h < Math.max(tick.o, tick.c, tick.l) || tick.l > Math.min(tick.o, tick.c)) p.push('bar high/low do not bound open/close');
      if (!finiteNonNeg(tick.v)) p.push(`bar v ${tick.v} must be non-negative`);
      if (!Number.isInteger(tick.n) || tick.n < 0) p.push(`bar n ${tick.n} must be a non-negative integer`);
      break;
    case 'status':
      if (tick.luld && !(finitePositive(tick.luld.up) && finitePositive(tick.luld.down))) p.push('status luld up/down must be positive numbers');
      break;
    default:
      break;
  }
  return p;
}
