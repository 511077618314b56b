import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createCoalescer } from '../../src/fanout/coalescer.js';

describe('coalescer semantics', () => {
  it('latest: newest wins, counts what it replaces, empty window sends nothing', () => {
    const c = createCoalescer<{ v: number }>('latest', 100);
    expect(c.drain()).toEqual([]);
    c.push({ d: { v: 1 } });
    c.push({ d: { v: 2 } });
    c.push({ d: { v: 3 } });
    expect(c.drain()).toEqual([{ d: { v: 3 }, coalesced: 3 }]);
    expect(c.conflated).toBe(2);
    expect(c.drain()).toEqual([]);
    expect(c.pending).toBe(false);
  });

  it('ordered: every update in order, never merged', () => {
    const c = createCoalescer<{ id: number }>('ordered', 1000);
    for (let i = 0; i < 5; i++) c.push({ d: { id: i } });
    expect(c.drain().map((e) => e.d.id)).toEqual([0, 1, 2, 3, 4]);
    expect(c.conflated).toBe(0);
  });

  it('ordered keeps durable sequence numbers', () => {
    const c = createCoalescer<{ id: string }>('ordered', 250);
    c.push({ d: { id: 'a' }, seq: 41 });
    c.push({ d: { id: 'b' }, seq: 42 });
    expect(c.drain()).toEqual([
      { d: { id: 'a' }, coalesced: 1, seq: 41 },
      { d: { id: 'b' }, coalesced: 1, seq: 42 },
    ]);
  });

  it('bar: each closed bar once, latest open state, superseded open not sent', () => {
    const c = createCoalescer<{ t: number; c: number; closed: boolean }>('bar', 500);
    c.push({ d: { t: 0, c: 1, closed: false } });
    c.push({ d: { t: 0, c: 2, closed: false } });
    c.push({ d: { t: 0, c: 3, closed: true } });
    c.push({ d: { t: 1, c: 4, closed: false } });
    c.push({ d: { t: 1, c: 5, closed: false } });
    expect(c.drain()).toEqual([
      { d: { t: 0, c: 3, closed: true }, coalesced: 3 },
      { d: { t: 1, c: 5, closed: false }, coalesced: 2 },
    ]);
    c.push({ d: { t: 1, c: 6, closed: true } });
    c.push({ d: { t: 2, c: 7, closed: true } });
    expect(c.drain().map((e) => e.d)).toEqual([
      { t: 1, c: 6, closed: true },
      { t: 2, c: 7, closed: true },
    ]);
  });

  it('tier 0 passes everything through for every mode', () => {
    for (const mode of ['latest', 'bar', 'ordered'] as const) {
      const c = createCoalescer<{ t: number; closed: boolean }>(mode, 0);
      c.push({ d: { t: 0, closed: false } });
      c.push({ d: { t: 0, closed: false } });
      expect(c.drain()).toHaveLength(2);
    }
  });

  it('property: for any sequence and windowing, trades are complete and ordered, quotes latest-wins', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.boolean()), { maxLength: 300 }), (ops) => {
        const trades = createCoalescer<{ v: number }>('ordered', 100);
        const quotes = createCoalescer<{ v: number }>('latest', 100);
        const outT: number[] = [];
        const outQ: { v: number; n: number }[] = [];
        let sinceDrain: number[] = [];
        const pushed: number[] = [];
        for (const [v, drainNow] of ops) {
          trades.push({ d: { v } });
          quotes.push({ d: { v } });
          pushed.push(v);
          sinceDrain.push(v);
          if (drainNow) {
            outT.push(...trades.drain().map((e) => e.d.v));
            const q = quotes.drain();
            expect(q).toHaveLength(1);
            expect(q[0]!.d.v).toBe(sinceDrain.at(-1));
            expect(q[0]!.coalesced).toBe(sinceDrain.length);
            outQ.push({ v: q[0]!.d.v, n: q[0]!.coalesced });
            sinceDrain = [];
          }
        }
        outT.push(...trades.drain().map((e) => e.d.v));
        expect(outT).toEqual(pushed);
        // every emitted quote is one the feed sent
        for (const q of outQ) expect(pushed).toContain(q.v);
      }),
      { numRuns: 500 },
    );
  });
});
