import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import type { AlertRule } from '../../src/alerts/rule.js';
import { parseAlertRule } from '../../src/alerts/rule.js';
import { SortedEntries } from '../../src/alerts/sorted-entries.js';
import type { WindowHead, WindowSince } from '../../src/alerts/rolling-window.js';
import { mergeSince, RollingMinMax } from '../../src/alerts/rolling-window.js';
import { MemoryAlertStore } from '../../src/alerts/alert-store.js';
import { ReferenceEvaluator } from './reference-evaluator.js';
import { quote, trade } from './ticks.js';

const registry = defaultRegistry();
const SYMS = ['AAPL', 'MSFT'] as const;
// a coarse price grid so that touches, equal prices and exact levels happen often
const price = fc.integer({ min: 190, max: 210 }).map((n) => n / 2);

const common = {
  user: fc.constantFrom('u1', 'u2'),
  symbol: fc.constantFrom(...SYMS),
  cooldownMs: fc.constantFrom(0, 0, 1500, 6000),
  expires: fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: undefined, freq: 2 }),
  rearm: fc.option(fc.constantFrom(0.5, 1, 2.5), { nil: undefined, freq: 2 }),
};
const priceRule = fc.record({
  kind: fc.constant('price'),
  source: fc.constantFrom('trade', 'mid'),
  direction: fc.constantFrom('above', 'below'),
  level: price,
  ...common,
});
const spreadRule = fc.record({ kind: fc.constant('spread'), threshold: fc.constantFrom(0.5, 1, 1.5, 2), ...common });
const changeRule = fc.record({
  kind: fc.constant('change'),
  source: fc.constantFrom('trade', 'mid'),
  direction: fc.constantFrom('up', 'down'),
  percent: fc.constantFrom(0.5, 1, 2, 3),
  windowMs: fc.constantFrom(2000, 8000),
  ...common,
});

type Gen = { kind: string; expires: number | undefined; rearm: number | undefined; [k: string]: unknown };
function toInput(g: Gen, id: string, t0: number): Record<string, unknown> {
  const { expires, rearm, ...rest } = g;
  const level = (g.level ?? g.threshold ?? g.percent) as number;
  const r: Record<string, unknown> = { ...rest, id };
  if (expires !== undefined) r.expiresAt = t0 + 1 + expires;
  if (rearm !== undefined && (g.kind !== 'price' || g.direction === 'below' || rearm < level)) {
    r.mode = 'rearm';
    r.rearmBy = Math.min(rearm, level);
  }
  return r;
}

const tickGen = fc.record({
  sym: fc.constantFrom(...SYMS),
  quote: fc.boolean(),
  p: price,
  spread: fc.integer({ min: 0, max: 5 }).map((n) => n / 2),
  dt: fc.integer({ min: 0, max: 2500 }),
});
type TickOp = { sym: string; quote: boolean; p: number; spread: number; dt: number };
type Op = { op: 'tick'; t: TickOp } | { op: 'add'; g: Gen } | { op: 'remove'; i: number } | { op: 'hold'; i: number };
const opGen: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: tickGen.map((t) => ({ op: 'tick' as const, t })) },
  { weight: 2, arbitrary: fc.oneof(priceRule, spreadRule).map((g) => ({ op: 'add' as const, g: g as Gen })) },
  { weight: 1, arbitrary: fc.nat(50).map((i) => ({ op: 'remove' as const, i })) },
  // held for its user's entitlements, or released (docs/alerts.md, Entitlements)
  { weight: 1, arbitrary: fc.nat(50).map((i) => ({ op: 'hold' as const, i })) },
);

let totalFired = 0;

/**
 * Run ops on the engine and the reference; return the firings of each, tick by tick. Every
 * change is committed to a MemoryAlertStore after each op (as the service does before it
 * delivers); with `restartAt`, the engine is thrown away there and a new one restored from the store.
 */
async function run(initial: Gen[], ops: Op[], restartAt?: number, reference = true): Promise<{ got: string[][]; want: string[][] }> {
  let t = 1_000_000;
  const store = new MemoryAlertStore();
  let engine = new AlertEngine({ registry, limits: { maxRulesPerUser: 10_000, maxWindowMs: 86_400_000 } });
  const ref = new ReferenceEvaluator();
  const ids: string[] = [];
  let n = 0;
  const add = (g: Gen) => {
    const id = `r${n++}`;
    const rule = parseAlertRule(toInput(g, id, t), { registry, nowMs: t }) as AlertRule;
    engine.add(rule, t);
    ref.add(rule);
    ids.push(id);
  };
  for (const g of initial) add(g);
  const got: string[][] = [];
  const want: string[][] = [];
  for (let i = 0; i < ops.length; i++) {
    const o = ops[i]!;
    await store.commit(engine.takeChanges());
    if (i === restartAt) {
      const snap = await store.load();
      engine = new AlertEngine({ registry });
      engine.restore(snap.alerts, snap.marks, t, snap.windows ?? []);
    }
    if (o.op === 'add') add(o.g);
    else if (o.op === 'remove') {
      const id = ids[o.i % Math.max(1, ids.length)];
      if (id !== undefined) {
        engine.remove(id);
        ref.remove(id);
      }
    } else if (o.op === 'hold') {
      const id = ids[o.i % Math.max(1, ids.length)];
      const a = id === undefined ? undefined : engine.get(id);
      if (id !== undefined && a) {
        if (a.state.held) {
          engine.release(id);
          ref.release(id);
        } else {
          engine.hold(id, 'not-entitled');
          ref.hold(id);
        }
      }
    } else {
      t += o.t.dt;
      const tick = o.t.quote ? quote(o.t.sym, o.t.p - o.t.spread / 2, o.t.p + o.t.spread / 2, t) : trade(o.t.sym, o.t.p, t);
      const fired: string[] = [];
      engine.onTick(tick);
      const c = engine.takeChanges();
      for (const f of c.firings) fired.push(`${f.id}@${f.value}<-${f.previous}`);
      await store.commit(c);
      got.push(fired.sort());
      totalFired += fired.length;
      if (reference)
        want.push(
          ref
            .onTick(tick, t)
            .map((f) => `${f.id}@${f.value}<-${f.previous}`)
            .sort(),
        );
    }
  }
  return { got, want };
}

describe('alert index vs brute-force reference', () => {
  it('fires exactly what a rule-by-rule evaluator fires (price, spread, change; adds, removes, holds and releases between ticks)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(priceRule, spreadRule, changeRule), { minLength: 1, maxLength: 40 }),
        fc.array(opGen, { minLength: 40, maxLength: 150 }),
        async (initial, ops) => {
          const { got, want } = await run(initial as Gen[], ops);
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 400 },
    );
    expect(totalFired).toBeGreaterThan(1500); // the runs are not vacuous
    totalFired = 0;
  });

  it('a restart from the stored rules, states and stream marks neither loses nor repeats a firing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(priceRule, spreadRule), { minLength: 1, maxLength: 40 }),
        fc.array(opGen, { minLength: 40, maxLength: 150 }),
        fc.nat(),
        async (initial, ops, at) => {
          const { got, want } = await run(initial as Gen[], ops, at % ops.length);
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
    expect(totalFired).toBeGreaterThan(800); // the runs are not vacuous
  });
});

/**
 * Long steady runs, ticks 1 ms apart, in a 2 s window: the window holds more than 1024 entries on
 * a side (every tick of a rise stays on the min side); jumps in between fire many rules at once,
 * each firing's value measured from the window's extreme (rules on a fine grid of percents): a
 * restored window that held an extreme a tick too long (the merged storage before) shows in a
 * firing's value, or fires a rule a tick early. A restart at a random tick restores the windows
 * from their segments; the firings must equal an uninterrupted engine's exactly. (The reference evaluator, which scans the window per rule and
 * tick, is too slow for these windows; the first property ties the engine to it.)
 */
// one symbol, trades: every rule watches the runs and jumps (a mid window works the same way)
const runGen = fc.oneof(
  fc.record({
    sym: fc.constant('AAPL'),
    quote: fc.constant(false),
    steps: fc.integer({ min: 1000, max: 3000 }),
    step: fc.constantFrom(0.001, -0.001, 0.0005, -0.0005, 0.0015, -0.0015),
    dt: fc.constant(1),
  }),
  // a jump: many rules cross at once, each firing's value measured from the window's extreme
  fc.record({
    sym: fc.constant('AAPL'),
    quote: fc.constant(false),
    steps: fc.integer({ min: 1, max: 4 }),
    step: fc.constantFrom(0.4, -0.4, 1.5, -1.5),
    dt: fc.constantFrom(0, 1, 5),
  }),
);
const fineChangeRule = fc.record({
  kind: fc.constant('change'),
  source: fc.constant('trade'),
  direction: fc.constantFrom('up', 'down'),
  percent: fc.integer({ min: 50, max: 300 }).map((n) => n / 100),
  windowMs: fc.constant(2000),
  ...common,
  symbol: fc.constant('AAPL'),
  expires: fc.constant(undefined),
});
function runTicks(runs: { sym: string; quote: boolean; steps: number; step: number; dt: number }[]): Op[] {
  const last: Record<string, number> = { AAPL: 100, MSFT: 100 };
  const ops: Op[] = [];
  for (const r of runs) {
    for (let i = 0; i < r.steps; i++) {
      last[r.sym] = Math.round((last[r.sym]! + r.step) * 10_000) / 10_000;
      ops.push({ op: 'tick', t: { sym: r.sym, quote: r.quote, p: last[r.sym]!, spread: 0.02, dt: r.dt } });
    }
  }
  return ops;
}

describe('percent-change windows past 1024 entries across a restart', () => {
  it('a restored engine fires exactly as one that never restarted', async () => {
    let fired = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fineChangeRule, { minLength: 20, maxLength: 60 }),
        fc.array(runGen, { minLength: 2, maxLength: 8 }),
        fc.nat(),
        async (initial, runs, at) => {
          const ops = runTicks(runs);
          const restarted = await run(initial as Gen[], ops, at % ops.length, false);
          const uninterrupted = await run(initial as Gen[], ops, undefined, false);
          expect(restarted.got).toEqual(uninterrupted.got);
          fired += restarted.got.flat().length;
        },
      ),
      { numRuns: 30 },
    );
    expect(fired).toBeGreaterThan(30); // the runs are not vacuous
  });

  it('RollingMinMax restored from its segments at any point answers as the live one; failed commits merged', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 3000 }),
        fc.array(
          fc.oneof(
            { weight: 20, arbitrary: fc.tuple(fc.constant('push' as const), fc.integer({ min: 0, max: 5 }), fc.integer({ min: -3, max: 3 })) },
            { weight: 2, arbitrary: fc.tuple(fc.constant('commit' as const), fc.boolean(), fc.constant(0)) },
            { weight: 1, arbitrary: fc.tuple(fc.constant('restart' as const), fc.constant(0), fc.constant(0)) },
          ),
          { maxLength: 4000 },
        ),
        (w, ops) => {
          let live = new RollingMinMax(w);
          const never = new RollingMinMax(w);
          const heads = new Map<string, string>();
          const segs = new Map<string, string>();
          let pending: WindowSince | undefined;
          let t = 0;
          let v = 0;
          const commit = (ok: boolean) => {
            const taken = live.take();
            const since = pending ? mergeSince(pending, taken) : taken;
            const d = live.delta(since); // a failed commit read it too, then threw
            if (!ok) return void (pending = since);
            pending = undefined;
            if (d.reset) segs.clear();
            else for (const f of d.drop) segs.delete(f);
            for (const [f, e] of d.put) segs.set(f, JSON.stringify(e));
            heads.set('w', JSON.stringify(d.head));
          };
          for (const [op, dt, dv] of ops) {
            if (op === 'push') {
              t += dt as number;
              v += dv;
              live.push(t, v);
              never.push(t, v);
              expect([live.min, live.max]).toEqual([never.min, never.max]);
            } else if (op === 'commit')
              commit(dt === true); // false: the store failed, merged into the next
            else if (heads.has('w')) {
              commit(true);
              const segments = Object.fromEntries([...segs].map(([f, x]) => [f, JSON.parse(x) as number[]]));
              live = RollingMinMax.fromStored(w, { head: JSON.parse(heads.get('w')!) as WindowHead, segments });
              expect(live.held).toBeGreaterThanOrEqual(never.held); // every entry held, and maybe some that left (dropped at the next push)
              let stored = 0;
              for (const x of segs.values()) stored += ((JSON.parse(x) as number[]).length - 1) / 2;
              expect(stored).toBe(live.held); // the store holds exactly what is restored
            }
          }
        },
      ),
      { numRuns: 80 },
    );
  });
});

describe('index building blocks', () => {
  it('SortedEntries keeps order under inserts, deletes and range takes (vs a sorted array)', () => {
    const op = fc.oneof(
      fc.record({ o: fc.constant('ins'), k: fc.integer({ min: 0, max: 60 }) }),
      fc.record({ o: fc.constant('del'), i: fc.nat() }),
      fc.record({ o: fc.constant('take'), a: fc.integer({ min: -5, max: 65 }), b: fc.integer({ min: -5, max: 65 }), ai: fc.boolean(), bi: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 3000 }), (ops) => {
        const s = new SortedEntries();
        let model: [number, number][] = [];
        let id = 0;
        for (const o of ops) {
          if (o.o === 'ins') {
            s.insert(o.k, id);
            model.push([o.k, id++]);
            model.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
          } else if (o.o === 'del') {
            if (model.length === 0) {
              expect(s.delete(1, 1)).toBe(false);
              continue;
            }
            const [k, i] = model.splice(o.i % model.length, 1)[0]!;
            expect(s.delete(k, i)).toBe(true);
            expect(s.delete(k, i)).toBe(false);
          } else {
            const inRange = ([k]: [number, number]) => (o.ai ? k >= o.a : k > o.a) && (o.bi ? k <= o.b : k < o.b);
            const out: number[] = [];
            s.takeRange(o.a, o.ai, o.b, o.bi, out);
            expect(out).toEqual(model.filter(inRange).map((e) => e[1]));
            model = model.filter((e) => !inRange(e));
          }
          expect(s.size).toBe(model.length);
        }
        expect([...s.entries()]).toEqual(model);
      }),
      { numRuns: 60 },
    );
  });

  it('SortedEntries splits and merges chunks correctly at sizes well past one chunk', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 600, max: 6000 }),
        fc.integer({ min: 1, max: 1000 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 1000 }), fc.boolean(), fc.boolean()), { minLength: 5, maxLength: 40 }),
        fc.nat(),
        (n, keySpace, takes, seed) => {
          const s = new SortedEntries();
          let model: [number, number][] = [];
          let x = seed | 1;
          const rnd = () => ((x = Math.imul(x ^ (x >>> 13), 0x5bd1e995) >>> 0), x / 2 ** 32);
          for (let id = 0; id < n; id++) {
            const k = Math.floor(rnd() * keySpace);
            s.insert(k, id);
            model.push([k, id]);
          }
          model.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
          // delete a random third one by one (shrinks chunks below B/4 and merges them)
          for (let i = 0; i < n / 3 && model.length > 0; i++) {
            const [k, id] = model.splice(Math.floor(rnd() * model.length), 1)[0]!;
            expect(s.delete(k, id)).toBe(true);
          }
          expect([...s.entries()]).toEqual(model);
          for (const [a, b, ai, bi] of takes) {
            const [lo, hi] = [Math.min(a, b) * (keySpace / 1000), Math.max(a, b) * (keySpace / 1000)];
            const inRange = ([k]: [number, number]) => (ai ? k >= lo : k > lo) && (bi ? k <= hi : k < hi);
            const out: number[] = [];
            s.takeRange(lo, ai, hi, bi, out);
            expect(out).toEqual(model.filter(inRange).map((e) => e[1]));
            model = model.filter((e) => !inRange(e));
            expect(s.size).toBe(model.length);
            // refill some so later takes cross chunk boundaries again
            for (let j = 0; j < 200; j++) {
              const k = Math.floor(rnd() * keySpace);
              const id = n + model.length + j * 7919 + Math.floor(rnd() * 1e9);
              if (model.some((e) => e[1] === id)) continue;
              s.insert(k, id);
              model.push([k, id]);
            }
            model.sort((p, q) => p[0] - q[0] || p[1] - q[1]);
          }
          expect([...s.entries()]).toEqual(model);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('RollingMinMax gives the min and max of the window (vs a scan)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 800 }), fc.integer({ min: -1000, max: 1000 })), { maxLength: 3000 }),
        (w, pts) => {
          const r = new RollingMinMax(w);
          const all: [number, number][] = [];
          let t = 0;
          for (const [dt, v] of pts) {
            t += dt;
            r.push(t, v);
            all.push([t, v]);
            const inWin = all.filter(([ts]) => ts > t - w).map(([, x]) => x);
            expect(r.min).toBe(Math.min(...inWin));
            expect(r.max).toBe(Math.max(...inWin));
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
