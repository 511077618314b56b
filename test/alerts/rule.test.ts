import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import { loadConfig } from '../../src/core/config.js';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import { AlertRuleError, parseAlertRule } from '../../src/alerts/rule.js';

const registry = defaultRegistry();
const base = { id: 'r1', user: 'alice', symbol: 'AAPL' };

function errorOf(input: unknown, nowMs?: number): AlertRuleError {
  try {
    parseAlertRule(input, { registry, ...(nowMs === undefined ? {} : { nowMs }) });
  } catch (err) {
    expect(err).toBeInstanceOf(AlertRuleError);
    return err as AlertRuleError;
  }
  throw new Error('expected the rule to be refused');
}

describe('alert rule model', () => {
  it('accepts each kind and applies defaults', () => {
    const p = parseAlertRule({ ...base, kind: 'price', direction: 'above', level: 230 }, { registry });
    expect(p).toEqual({ ...base, kind: 'price', direction: 'above', level: 230, source: 'trade', mode: 'once', cooldownMs: 0 });
    const c = parseAlertRule(
      { ...base, kind: 'change', direction: 'down', percent: 2, windowMs: 60_000, source: 'mid', mode: 'rearm', rearmBy: 1, cooldownMs: 5000 },
      { registry },
    );
    expect(c).toMatchObject({ kind: 'change', source: 'mid', windowMs: 60_000, mode: 'rearm', rearmBy: 1, cooldownMs: 5000 });
    const s = parseAlertRule({ ...base, kind: 'spread', threshold: 0.05, expiresAt: 2_000_000_000_000 }, { registry });
    expect(s).toMatchObject({ kind: 'spread', threshold: 0.05, expiresAt: 2_000_000_000_000 });
  });

  it('refuses an unknown symbol with ALERT_UNKNOWN_SYMBOL', () => {
    const e = errorOf({ ...base, symbol: 'NOPE', kind: 'price', direction: 'above', level: 1 });
    expect(e.code).toBe('ALERT_UNKNOWN_SYMBOL');
    expect(e.message).toContain('unknown symbol "NOPE"');
  });

  it('quotes at most 40 characters of an unknown symbol: the answer does not echo a whole frame', () => {
    // in band the rule comes in a frame of up to 64 KiB, over the service API in a body of up to
    // 1 MiB; the answer quoted the symbol whole (a 60 000-character symbol: a 60 KB error)
    const e = errorOf({ ...base, symbol: 'A'.repeat(60_000), kind: 'price', direction: 'above', level: 1 });
    expect(e.code).toBe('ALERT_UNKNOWN_SYMBOL');
    expect(e.message).toContain(`unknown symbol "${'A'.repeat(40)}…" (60000 characters)`);
    expect(e.message.length).toBeLessThan(200);
    expect(e.issues.every((i) => i.message.length < 200)).toBe(true);
  });

  it.each([NaN, Infinity, -Infinity])('refuses level %s naming the field', (level) => {
    const e = errorOf({ ...base, kind: 'price', direction: 'above', level });
    expect(e.code).toBe('ALERT_INVALID');
    expect(e.issues.map((i) => i.path)).toContain('level');
    expect(e.issues).toEqual([{ path: 'level', message: 'level must be a finite number (NaN and Infinity are refused)' }]);
  });

  it.each([0, -1000, 1.5])('refuses windowMs %s', (windowMs) => {
    const e = errorOf({ ...base, kind: 'change', direction: 'up', percent: 1, windowMs });
    expect(e.issues).toEqual([{ path: 'windowMs', message: 'windowMs must be a whole number of ms greater than 0' }]);
  });

  it('refuses a window above alerts.maxWindowMs', () => {
    const e = errorOf({ ...base, kind: 'change', direction: 'up', percent: 1, windowMs: 100 * 86_400_000 });
    expect(e.message).toContain('alerts.maxWindowMs');
  });

  it('lists every bad field at once, and unknown fields and kinds', () => {
    const e = errorOf({ id: '', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'sideways', level: -1, colour: 'red' });
    const paths = e.issues.map((i) => i.path).sort();
    expect(paths).toEqual(expect.arrayContaining(['id', 'direction', 'level']));
    expect(e.message).toContain('unknown field "colour"');
    expect(errorOf({ ...base, kind: 'volume' }).message).toContain('kind must be "price", "change" or "spread"');
    expect(errorOf(null).message).toContain('expected an object');
    expect(errorOf({ ...base, kind: 'price', direction: 'above' }).message).toContain('level is required');
    expect(errorOf({ ...base, kind: 'price', direction: 'above', level: '12' }).message).toContain('level must be a number');
  });

  it('needs a usable hysteresis in rearm mode', () => {
    expect(errorOf({ ...base, kind: 'price', direction: 'above', level: 10, mode: 'rearm' }).issues[0]!.path).toBe('rearmBy');
    expect(errorOf({ ...base, kind: 'price', direction: 'above', level: 10, mode: 'rearm', rearmBy: 10 }).message).toContain('less than level');
    expect(errorOf({ ...base, kind: 'price', direction: 'above', level: 10, rearmBy: 1 }).message).toContain('only applies to mode "rearm"');
    expect(errorOf({ ...base, kind: 'spread', threshold: 1, mode: 'rearm', rearmBy: 2 }).message).toContain('at most threshold');
    expect(errorOf({ ...base, kind: 'price', direction: 'above', level: 10, mode: 'rearm', rearmBy: 0 }).message).toContain('rearmBy must be greater than 0');
  });

  it('refuses a negative cooldown and an expiry in the past', () => {
    expect(errorOf({ ...base, kind: 'spread', threshold: 1, cooldownMs: -5 }).issues[0]!.path).toBe('cooldownMs');
    expect(errorOf({ ...base, kind: 'spread', threshold: 1, expiresAt: 1000 }, 5000).message).toContain('expiresAt is in the past');
  });

  it('enforces the per-user limit from config (alerts.maxRulesPerUser), per user', () => {
    const cfg = loadConfig({ env: {}, overrides: { alerts: { maxRulesPerUser: 2 } } });
    const engine = new AlertEngine({ registry, limits: cfg.alerts });
    engine.add({ ...base, id: 'a1', kind: 'spread', threshold: 1 });
    engine.add({ ...base, id: 'a2', kind: 'spread', threshold: 2 });
    expect(() => engine.add({ ...base, id: 'a3', kind: 'spread', threshold: 3 })).toThrow(/limit \(alerts.maxRulesPerUser\) is 2/);
    engine.add({ ...base, id: 'b1', user: 'bob', kind: 'spread', threshold: 3 });
    expect(engine.remove('a1', 'bob')).toBe(false);
    expect(engine.remove('a1', 'alice')).toBe(true);
    engine.add({ ...base, id: 'a3', kind: 'spread', threshold: 3 });
    let code: string | undefined;
    try {
      engine.add({ ...base, id: 'a4', kind: 'spread', threshold: 3 });
    } catch (err) {
      code = (err as AlertRuleError).code;
    }
    expect(code).toBe('ALERT_LIMIT');
    expect(() => engine.add({ ...base, id: 'b1', user: 'bob', kind: 'spread', threshold: 3 })).toThrow(/exists/);
  });

  it('config refuses a bad alerts key naming it', () => {
    expect(() => loadConfig({ env: { TICKWIRE_ALERTS_MAX_RULES_PER_USER: '0' } })).toThrow(/alerts.maxRulesPerUser \(env TICKWIRE_ALERTS_MAX_RULES_PER_USER\)/);
  });
});
