import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { AlertFiring } from '../../src/alerts/alert-engine.js';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import { trade } from './ticks.js';

/**
 * 20,000 rules on one symbol (10,000 `above` at 100.00..199.99, 10,000 `below` at the same
 * levels, 20 users): each tick fires exactly the rules whose level it crossed, once, and a tick
 * that crosses nothing fires nothing. Counts, not timings (speed is bench/alerts).
 */
describe('alert engine: many rules on one symbol', () => {
  it('fires exactly the crossed levels, each once, whatever the number of rules watching', () => {
    const fired: AlertFiring[] = [];
    const engine = new AlertEngine({ registry: defaultRegistry(), limits: { maxRulesPerUser: 1000, maxWindowMs: 86_400_000 }, onFire: (f) => fired.push(f) });
    const level = (i: number) => (10_000 + i) / 100;
    for (let i = 0; i < 10_000; i++) {
      const user = `u${i % 20}`;
      engine.add({ id: `a${i}`, user, symbol: 'AAPL', kind: 'price', direction: 'above', level: level(i) }, 0);
      engine.add({ id: `b${i}`, user, symbol: 'AAPL', kind: 'price', direction: 'below', level: level(i) }, 0);
    }
    let t = 1_000_000;
    const tr = (p: number) => engine.onTick(trade('AAPL', p, (t += 1000)));
    tr(150.005); // first observation arms all 20,000 (fires none)
    expect(fired).toHaveLength(0);
    expect(engine.stats.armed).toBe(20_000);
    tr(150.007); // no level in (150.005, 150.007]
    expect(fired).toHaveLength(0);
    tr(160); // above levels 150.01..160.00: 1,000 rules
    expect(fired.map((f) => f.ruleId).sort()).toEqual(Array.from({ length: 1000 }, (_, k) => `a${5001 + k}`).sort());
    fired.length = 0;
    tr(160);
    tr(159.995); // once-rules that fired are done; no below level in [159.995, 160)
    expect(fired).toHaveLength(0);
    tr(99); // below levels in [99, 159.995): 100.00..159.99, i.e. 6,000 rules
    expect(fired).toHaveLength(6000);
    expect(new Set(fired.map((f) => f.ruleId)).size).toBe(6000);
    expect(fired.every((f) => f.ruleId.startsWith('b') && f.level < 159.995 && f.previous === 159.995 && f.value === 99)).toBe(true);
    fired.length = 0;
    tr(250); // above levels not yet fired: 100.00..150.00 (5,001) and 160.01..199.99 (3,999)
    expect(fired).toHaveLength(9000);
    expect(engine.stats.fired).toBe(16_000);
    // per user: each of the 20 users got exactly its share
    const perUser = new Map<string, number>();
    for (const f of fired) perUser.set(f.user, (perUser.get(f.user) ?? 0) + 1);
    expect([...perUser.values()].every((n) => n === 450)).toBe(true);
  });
});
