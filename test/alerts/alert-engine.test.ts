import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { AlertFiring } from '../../src/alerts/alert-engine.js';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import { quote, trade } from './ticks.js';

const registry = defaultRegistry();

function setup() {
  const fired: AlertFiring[] = [];
  const engine = new AlertEngine({ registry, onFire: (f) => fired.push(f) });
  let t = 1_000_000;
  const tr = (p: number, sym = 'AAPL', dt = 1000) => engine.onTick(trade(sym, p, (t += dt)));
  const q = (bp: number, ap: number, sym = 'AAPL', dt = 1000) => engine.onTick(quote(sym, bp, ap, (t += dt)));
  return { engine, fired, tr, q, now: () => t };
}
const above = (id: string, level: number, extra: object = {}) => ({ id, user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level, ...extra });
const below = (id: string, level: number, extra: object = {}) => ({ id, user: 'u', symbol: 'AAPL', kind: 'price', direction: 'below', level, ...extra });

describe('alert engine: rules parked by a spent firing budget', () => {
  const limits = { maxRulesPerUser: 1000, maxWindowMs: 86_400_000, firingsPerUserPerMin: 1 };

  it('are not evaluated while it is spent, and come back where the value has them', () => {
    const fired: AlertFiring[] = [];
    const engine = new AlertEngine({ registry, limits, onFire: (f) => fired.push(f) });
    let t = 1_000_000;
    const tr = (p: number, dt = 10) => engine.onTick(trade('AAPL', p, (t += dt)));
    engine.add(above('a', 100, { mode: 'rearm', rearmBy: 1 }));
    tr(98); // arms
    tr(101); // fires: the minute's one firing
    tr(98.5); // back by rearmBy: re-armed
    tr(101); // swallowed: parked
    expect(engine.get('a')!.state).toMatchObject({ phase: 'waiting', fired: 1, suppressed: 1 });
    for (let i = 0; i < 10; i++) {
      tr(98);
      tr(101);
    }
    // parked: neither re-armed nor crossed by the bounces
    expect(engine.get('a')!.state).toMatchObject({ fired: 1, suppressed: 1 });
    expect(engine.stats.rearmed).toBe(1);
    // a minute later, the value above the re-arm point (99): back to waiting, not armed
    tr(100.5, 60_000);
    tr(101.5);
    expect(fired).toHaveLength(1);
    expect(engine.get('a')!.state.phase).toBe('waiting');
    tr(98.8); // back past 99: re-armed
    tr(101); // fires again
    expect(fired).toHaveLength(2);
  });

  it("a parked rule can be deleted, and its user's other rules are unaffected", () => {
    const engine = new AlertEngine({ registry, limits });
    let t = 1_000_000;
    const tr = (p: number, dt = 10) => engine.onTick(trade('AAPL', p, (t += dt)));
    engine.add(above('a', 100, { mode: 'rearm', rearmBy: 1 }));
    engine.add(above('b', 100, { mode: 'rearm', rearmBy: 1 }));
    tr(98);
    tr(101); // one fires, the other is swallowed and parked
    const parked = ['a', 'b'].find((id) => engine.get(id)!.state.fired === 0)!;
    expect(engine.remove(parked)).toBeTruthy();
    expect(engine.get(parked)).toBeUndefined();
    tr(98, 60_000); // the budget holds a firing again; the deleted rule is not put back
    tr(101);
    expect(engine.stats.fired).toBe(2);
    expect(engine.stats.rules).toBe(1);
  });
});

describe('alert engine: crossing semantics', () => {
  it('a one-sided quote (a side of the book is empty) moves no mid or spread rule', () => {
    const { engine, fired, q } = setup();
    engine.add({ id: 'm', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 101, source: 'mid' });
    q(99, 100); // mid 99.5: arms
    const oneSided = { ...quote('AAPL', 200, 0, 2_000_000) } as Record<string, unknown>;
    delete oneSided.ap;
    engine.onTick(oneSided as unknown as ReturnType<typeof quote>);
    expect(fired).toEqual([]);
    q(101, 102); // mid 101.5: the cross, measured from the last two-sided mid
    expect(fired.map((f) => f.ruleId)).toEqual(['m']);
  });

  it('a trade that sets no price (volumeOnly: an odd lot, an average-price trade) moves no last-price rule', () => {
    const { engine, fired, tr, now } = setup();
    engine.add(above('a', 101));
    tr(100); // arms
    engine.onTick({ ...trade('AAPL', 130, now() + 500), volumeOnly: true });
    expect(fired).toEqual([]);
    tr(102); // the cross, measured from the last priced trade
    expect(fired.map((f) => f.ruleId)).toEqual(['a']);
  });

  it("a late trade (older in event time than a trade already seen) is not the last price, as for the ticker's p: it crosses nothing", () => {
    const { engine, fired, tr, now } = setup();
    engine.add(above('a', 101));
    engine.add({ id: 'c', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'up', percent: 10, windowMs: 60_000 });
    tr(100); // arms both
    const late = trade('AAPL', 130, now() + 500);
    engine.onTick({ ...late, ts: late.ts - 2_000_000_000n }); // printed 1.5 s before the last trade, reported now
    expect(fired).toEqual([]);
    expect(engine.get('a')!.state).toMatchObject({ phase: 'armed', seen: 100 });
    // a trade at the same event time as the last one is in order (ties in arrival order)
    const tie = trade('AAPL', 100.5, now() + 600);
    engine.onTick({ ...tie, ts: BigInt(now()) * 1_000_000n });
    tr(102); // the cross, from the last trade in event time
    expect(fired.map((f) => [f.ruleId, f.previous])).toEqual([['a', 100.5]]);
  });

  it('a correction or cancel of an earlier trade fires nothing and moves no value (docs/alerts.md, Semantics)', () => {
    const { engine, fired, tr, now } = setup();
    engine.add(above('a', 101));
    tr(100); // arms
    const base = trade('AAPL', 130, now() + 500);
    const { id: _id, p: _p, s: _s, k: _k, ...rest } = base;
    engine.onTick({ ...rest, k: 'correction', ref: 'x', id: 'y', p: 130, s: 1 });
    engine.onTick({ ...rest, k: 'cancel', ref: 'y', op: 130 });
    expect(fired).toEqual([]);
    expect(engine.get('a')!.state).toMatchObject({ phase: 'armed', seen: 100 });
    tr(102); // compared with the last trade evaluated (100)
    expect(fired.map((f) => f.previous)).toEqual([100]);
  });

  it("a waiting rule put back without its stream's last value re-arms on a first value that is back far enough", () => {
    const { engine, fired, tr } = setup();
    // rules validated by add, then stored as "fired once, waiting to re-arm", and restored without stream marks
    const a = engine.add(above('a', 230, { mode: 'rearm', rearmBy: 2 }));
    const b = engine.add({ ...below('b', 100, { mode: 'rearm', rearmBy: 5 }), symbol: 'MSFT' });
    engine.remove('a');
    engine.remove('b');
    engine.restore([
      { rule: a, state: { phase: 'waiting', fired: 1, suppressed: 0, seen: 231 } },
      { rule: b, state: { phase: 'waiting', fired: 1, suppressed: 0, seen: 99 } },
    ]);
    tr(227); // first value, already <= 228: re-arms, fires nothing
    expect(fired).toEqual([]);
    expect(engine.get('a')!.state.phase).toBe('armed');
    tr(231);
    tr(110, 'MSFT'); // first value, already >= 105: re-arms
    tr(99, 'MSFT');
    expect(fired.map((f) => f.id)).toEqual(['a:2', 'b:2']);
  });

  it('the first observation after creation only arms, even when already past the level', () => {
    const { engine, fired, tr } = setup();
    tr(100);
    engine.add(above('a', 101));
    engine.add(above('b', 105));
    tr(103); // first observation: arms both (a is already above its level)
    expect(fired).toEqual([]);
    tr(104);
    expect(fired).toEqual([]); // a was never seen below 101: no cross
    tr(106);
    expect(fired.map((f) => f.id)).toEqual(['b:1']);
    expect(fired[0]).toMatchObject({ ruleId: 'b', user: 'u', symbol: 'AAPL', kind: 'price', value: 106, previous: 104, level: 105, tick: { k: 'trade' } });
  });

  it('touching the level counts (from < L to >= L); staying at it does not fire again', () => {
    const { engine, fired, tr } = setup();
    engine.add(above('a', 100, { mode: 'rearm', rearmBy: 1 }));
    engine.add(below('b', 100, { mode: 'rearm', rearmBy: 1 }));
    tr(99.5);
    tr(100);
    tr(100);
    expect(fired.map((f) => f.id)).toEqual(['a:1']);
    tr(100.5);
    tr(99.9); // below from 100.5 to 99.9 crosses 100 going down
    expect(fired.map((f) => f.id)).toEqual(['a:1', 'b:1']);
  });

  it('a gap far over the level fires once, and each level crossed by one jump fires', () => {
    const { engine, fired, tr } = setup();
    for (let l = 101; l <= 110; l++) engine.add(above(`l${l}`, l));
    tr(100);
    tr(500);
    expect(fired.map((f) => f.id).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `l${101 + i}:1`).sort());
    tr(90);
    tr(500);
    expect(fired).toHaveLength(10); // once-mode rules are done
    expect(engine.get('l105')!.state.phase).toBe('done');
  });

  it('rearm: fires again only after going back by rearmBy (hysteresis)', () => {
    const { engine, fired, tr } = setup();
    engine.add(above('a', 100, { mode: 'rearm', rearmBy: 2 }));
    tr(99);
    tr(100); // fire 1
    tr(98.5); // not back far enough (needs <= 98)
    tr(101);
    expect(fired).toHaveLength(1);
    expect(engine.get('a')!.state.phase).toBe('waiting');
    tr(98); // re-armed
    expect(engine.get('a')!.state.phase).toBe('armed');
    tr(100.5); // fire 2
    expect(fired.map((f) => f.id)).toEqual(['a:1', 'a:2']);
  });

  it('rearm on a below rule is the mirror image', () => {
    const { engine, fired, tr } = setup();
    engine.add(below('b', 50, { mode: 'rearm', rearmBy: 5 }));
    tr(60);
    tr(50); // fire
    tr(54);
    tr(49); // not re-armed yet
    tr(55); // re-armed
    tr(45); // fire
    expect(fired.map((f) => [f.id, f.value])).toEqual([
      ['b:1', 50],
      ['b:2', 45],
    ]);
  });

  it('cooldown swallows a crossing (counted, not delivered) and the rule must go back again', () => {
    const { engine, fired, tr } = setup();
    engine.add(above('a', 100, { mode: 'rearm', rearmBy: 1, cooldownMs: 10_000 }));
    tr(90, 'AAPL', 1000);
    tr(100, 'AAPL', 1000); // fire at t
    tr(98, 'AAPL', 1000); // re-arm
    tr(101, 'AAPL', 1000); // 2 s later: swallowed
    expect(engine.get('a')!.state).toMatchObject({ fired: 1, suppressed: 1, phase: 'waiting' });
    tr(102, 'AAPL', 20_000); // cooldown over, but still waiting: no fire
    expect(fired).toHaveLength(1);
    tr(98);
    tr(100);
    expect(fired.map((f) => f.id)).toEqual(['a:1', 'a:2']);
  });

  it('expired rules never fire and are removed', () => {
    const { engine, fired, tr, now } = setup();
    engine.add(above('a', 100, { expiresAt: now() + 2500 }), now());
    engine.add(above('b', 100), now());
    tr(90);
    tr(95);
    tr(101); // t = now+3000 > expiry
    expect(fired.map((f) => f.id)).toEqual(['b:1']);
    expect(engine.get('a')).toBeUndefined();
    expect(engine.stats.expired).toBe(1);
    expect(engine.takeChanges().deletes).toEqual(['a']);
  });

  it('sweep removes expired rules without a tick', () => {
    const { engine, now } = setup();
    engine.add(above('a', 100, { expiresAt: now() + 10 }), now());
    expect(engine.sweep(now() + 5)).toBe(0);
    expect(engine.sweep(now() + 10)).toBe(1);
    expect(engine.size).toBe(0);
    expect(engine.symbols()).toEqual([]);
  });

  it('mid-quote rules use (bid+ask)/2 and ignore trades; trade rules ignore quotes', () => {
    const { engine, fired, tr, q } = setup();
    engine.add(above('mid', 100, { source: 'mid' }));
    engine.add(above('trd', 100));
    q(98, 99);
    tr(99);
    q(99.5, 100.5); // mid 100
    expect(fired.map((f) => f.id)).toEqual(['mid:1']);
    tr(100);
    expect(fired.map((f) => f.id)).toEqual(['mid:1', 'trd:1']);
  });

  it('spread rules fire when ask - bid widens to the threshold', () => {
    const { engine, fired, q } = setup();
    engine.add({ id: 's', user: 'u', symbol: 'AAPL', kind: 'spread', threshold: 0.5, mode: 'rearm', rearmBy: 0.3 });
    q(100, 100.1);
    q(100, 100.6);
    q(100, 100.3); // 0.3 > 0.2: not re-armed
    q(100, 100.7);
    q(100, 100.1); // re-armed (<= 0.2)
    q(100, 101);
    expect(fired.map((f) => f.id)).toEqual(['s:1', 's:2']);
    expect(fired[0]!.value).toBeCloseTo(0.6);
  });

  it('percent change over a rolling window (up against the window low, down against the high)', () => {
    const { engine, fired, tr } = setup();
    engine.add({ id: 'up', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'up', percent: 5, windowMs: 10_000 });
    engine.add({ id: 'dn', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'down', percent: 5, windowMs: 10_000 });
    tr(100, 'AAPL', 1000);
    tr(102, 'AAPL', 1000);
    tr(104.9, 'AAPL', 1000);
    expect(fired).toEqual([]);
    tr(105, 'AAPL', 1000); // +5% from 100 within 10 s
    expect(fired.map((f) => f.id)).toEqual(['up:1']);
    expect(fired[0]!.value).toBeCloseTo(5);
    // the high 105 leaves the window after 10 s; a slow fall does not trigger `down`
    tr(103, 'AAPL', 6000);
    tr(101, 'AAPL', 6000);
    tr(99, 'AAPL', 6000);
    expect(fired.map((f) => f.id)).toEqual(['up:1']);
    tr(94, 'AAPL', 1000); // -5.05% from 99 within the window
    expect(fired.map((f) => f.id)).toEqual(['up:1', 'dn:1']);
  });

  it('ticks of other symbols and non-price ticks cost nothing and fire nothing', () => {
    const { engine, fired, tr } = setup();
    engine.add(above('a', 100));
    tr(200, 'MSFT');
    tr(50, 'MSFT');
    expect(engine.stats.ticks).toBe(0);
    expect(fired).toEqual([]);
  });

  it('removing a rule in each phase takes it out of the index', () => {
    const { engine, fired, tr } = setup();
    engine.add(above('fresh', 100));
    expect(engine.remove('fresh')).toBe(true);
    engine.add(above('armed', 100));
    engine.add(above('waiting', 100, { mode: 'rearm', rearmBy: 50 }));
    tr(90);
    tr(120); // both fire; 'waiting' waits for <= 50
    engine.add(above('armed2', 130));
    tr(125);
    expect(engine.remove('armed2')).toBe(true);
    expect(engine.remove('waiting')).toBe(true);
    expect(engine.remove('armed')).toBe(true); // done
    expect(engine.remove('armed')).toBe(false);
    tr(40);
    tr(140);
    expect(fired.map((f) => f.id).sort()).toEqual(['armed:1', 'waiting:1']);
    expect(engine.size).toBe(0);
    expect(engine.symbols()).toEqual([]);
  });

  it('refuses NaN, zero and negative prices in ticks without changing state', () => {
    const { engine, fired, tr, q } = setup();
    engine.add(above('a', 100));
    tr(90);
    tr(NaN);
    tr(-5);
    q(0, 101);
    tr(100);
    expect(fired.map((f) => f.previous)).toEqual([90]);
  });

  it('restore: drops rules that expired meanwhile, keeps done ones out of the index, skips unknown symbols', () => {
    const { engine, tr, now } = setup();
    engine.add(above('exp', 100, { expiresAt: now() + 5000 }), now());
    engine.add(above('done', 100), now());
    engine.add(above('live', 100, { mode: 'rearm', rearmBy: 1 }), now());
    tr(90);
    tr(101); // done:1 and live:1 fire
    const stored = engine.all().map((a) => JSON.parse(JSON.stringify(a)));
    stored.push({ rule: { ...stored[2].rule, id: 'gone', symbol: 'DELISTED' }, state: { phase: 'armed', fired: 0, suppressed: 0 } });
    const fired: string[] = [];
    const e2 = new AlertEngine({ registry, onFire: (f) => fired.push(f.id) });
    e2.restore(stored, engine.marks(), now() + 6000);
    expect(e2.get('exp')).toBeUndefined();
    expect(e2.get('gone')).toBeUndefined();
    expect(e2.get('done')!.state.phase).toBe('done');
    expect(e2.takeChanges().deletes).toEqual(['exp']);
    expect(e2.symbols()).toEqual(['AAPL']);
    e2.onTick(trade('AAPL', 98, now() + 7000)); // re-arms live
    e2.onTick(trade('AAPL', 102, now() + 8000));
    expect(fired).toEqual(['live:2']);
  });

  it('takeChanges hands over upserts, deletes, marks and firings once', () => {
    const { engine, tr } = setup();
    engine.add(above('a', 100));
    engine.add(above('b', 200));
    engine.remove('b');
    tr(90);
    tr(100);
    const c = engine.takeChanges();
    expect(c.upserts).toEqual([{ rule: expect.objectContaining({ id: 'a' }), state: expect.objectContaining({ phase: 'done', fired: 1, seen: 100 }) }]);
    expect(c.deletes).toEqual(['b']);
    expect(c.marks).toEqual([{ stream: 'AAPL|trade', value: 100 }]);
    expect(c.firings.map((f) => f.id)).toEqual(['a:1']);
    expect(engine.hasChanges).toBe(false);
    engine.add(above('c', 300));
    tr(110);
    expect(engine.takeChanges().marks).toEqual([{ stream: 'AAPL|trade', value: 110 }]);
  });
});

describe('alert engine: values as quoted, not as the doubles of their arithmetic', () => {
  it('a spread quoted exactly at the threshold fires (1.3 - 1.1 is 0.19999999999999996 as a double)', () => {
    const { engine, fired, q } = setup();
    engine.add({ id: 's', user: 'u', symbol: 'AAPL', kind: 'spread', threshold: 0.2 });
    q(1.1, 1.2); // spread 0.1: arms
    q(1.1, 1.3); // spread 0.2: the threshold
    q(100.1, 100.2); // 0.1: back under, then 0.2 again in other doubles (0.20000000000000284)
    q(100.1, 100.3);
    expect(fired.map((f) => [f.ruleId, f.value])).toEqual([['s', 0.2]]);
  });

  it("a spread of a large price keeps the quote's decimals (12345.67 - 12345.66 is 0.010000000000218 as a double)", () => {
    const { engine, fired, q } = setup();
    engine.add({ id: 's', user: 'u', symbol: 'AAPL', kind: 'spread', threshold: 0.01 });
    q(12345.665, 12345.67);
    q(12345.66, 12345.67);
    expect(fired.map((f) => [f.ruleId, f.value, f.previous])).toEqual([['s', 0.01, 0.005]]);
  });

  it('a mid is the one the ticker of a quote-only symbol shows (3.3 + 3.4 over 2 is 3.3499999999999996 as a double)', () => {
    const { engine, fired, q } = setup();
    engine.add({ id: 'm', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 3.35, source: 'mid' });
    q(3.2, 3.3); // mid 3.25: arms
    q(3.3, 3.4); // mid 3.35: at the level
    expect(fired.map((f) => [f.ruleId, f.value])).toEqual([['m', 3.35]]);
  });

  it("a percent change quoted exactly at the rule's percent fires (100 to 100.3 is 0.29999999999999716 % as doubles)", () => {
    const { engine, fired, tr } = setup();
    engine.add({ id: 'up', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'up', percent: 0.3, windowMs: 60_000 });
    tr(100);
    tr(100.3);
    expect(fired.map((f) => [f.ruleId, f.value])).toEqual([['up', 0.3]]);
  });
});
