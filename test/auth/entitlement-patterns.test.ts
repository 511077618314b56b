import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Entitlements, globMatch, MAX_ENTITLEMENT_ENTRIES, MAX_PATTERN_LENGTH } from '../../src/access/entitlements.js';
import { JwtAuthenticator } from '../../src/access/jwt-authenticator.js';
import { loadConfig } from '../../src/core/config.js';
import { SECRET, token } from './helpers.js';

/**
 * Symbol patterns of the entitlements claim (docs/auth.md#entitlements) are matched in linear
 * time: a `*` pattern used to be compiled to a regular expression (`^` + parts joined by `.*` +
 * `$`), which backtracks: `*A*A*A*A*A*A*A*A*A*A*B` against a 32-character symbol of A's took
 * seconds, stalling a gateway's event loop on one subscribe.
 */

/** the matcher before: kept here as the reference the new one must agree with */
function regexMatch(pattern: string, symbol: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('*')
        .map((s) => s.replace(/[.\-^$+?()[\]{}|\\/=]/g, '\\$&'))
        .join('.*') +
      '$',
  );
  return re.test(symbol);
}

const PATHOLOGICAL = '*A*A*A*A*A*A*A*A*A*A*B';

describe('entitlement patterns: linear-time matching', () => {
  it('the pathological pattern against a 32-character symbol is decided at once (it took seconds)', () => {
    const ent = Entitlements.parse({ symbols: [PATHOLOGICAL], delayed: [PATHOLOGICAL] });
    expect(typeof ent).not.toBe('string');
    // the regular expression took seconds; the match is a few hundred steps per pattern (two lists)
    const asked = { steps: 0 };
    expect((ent as Entitlements).access('A'.repeat(32), 'stock', asked)).toBe('none');
    expect(asked.steps).toBeGreaterThan(0);
    expect(asked.steps).toBeLessThanOrEqual(2 * (PATHOLOGICAL.length + 1) * (32 + 1));
    const work = { steps: 0 };
    expect(globMatch(PATHOLOGICAL, 'A'.repeat(32), work)).toBe(false);
    expect(work.steps).toBeLessThanOrEqual((PATHOLOGICAL.length + 1) * (32 + 1));
  });

  it('a 1000-star pattern against a 1000-character string: steps within (pattern + 1) x (string + 1)', () => {
    const pattern = '*A'.repeat(1000) + '*B';
    const s = 'A'.repeat(1000);
    const work = { steps: 0 };
    expect(globMatch(pattern, s, work)).toBe(false);
    expect(globMatch(pattern, s + 'B')).toBe(true);
    expect(work.steps).toBeLessThanOrEqual((pattern.length + 1) * (s.length + 1));
    // the worst case of the two-pointer match is quadratic, never exponential: a star followed
    // by a long literal that almost matches at every position
    const w2 = { steps: 0 };
    expect(globMatch('*' + 'A'.repeat(31) + 'B', 'A'.repeat(1000), w2)).toBe(false);
    expect(w2.steps).toBeLessThanOrEqual(33 * 1001);
  });

  it('agrees with the regular expression it replaces on random patterns and symbols', () => {
    // a small alphabet so that patterns match often; `.` and `-` were escaped in the expression,
    // and a line terminator in the symbol is something `.*` did not match
    const patternChar = fc.constantFrom('A', 'B', '.', '-', '*', '*');
    const symbolChar = fc.constantFrom('A', 'B', '.', '-', 'C', '\n', '\u2028', '\r');
    fc.assert(
      fc.property(
        fc.array(patternChar, { minLength: 1, maxLength: 10 }).map((a) => a.join('')),
        fc.array(symbolChar, { minLength: 0, maxLength: 12 }).map((a) => a.join('')),
        (pattern, symbol) => {
          expect(globMatch(pattern, symbol)).toBe(regexMatch(pattern, symbol));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('keeps the documented examples: literal dots, * for any run of characters (none included)', () => {
    const ent = Entitlements.parse({ symbols: ['AAPL', 'BRK.*', '*-USD', 'A*B*C'], delayed: ['EUR-*', '*'] }) as Entitlements;
    expect(ent.access('AAPL', 'stock')).toBe('realtime');
    expect(ent.access('AAPLX', 'stock')).toBe('delayed');
    expect(ent.access('BRK.B', 'stock')).toBe('realtime');
    expect(ent.access('BRK.', 'stock')).toBe('realtime');
    expect(ent.access('BRKXB', 'stock')).toBe('delayed'); // the dot is a dot
    expect(ent.access('BTC-USD', 'crypto')).toBe('realtime');
    expect(ent.access('-USD', 'crypto')).toBe('realtime');
    expect(ent.access('ABC', 'stock')).toBe('realtime');
    expect(ent.access('AXXBYYC', 'stock')).toBe('realtime');
    expect(ent.access('AXXBYYCD', 'stock')).toBe('delayed');
    expect((Entitlements.parse({ symbols: ['A*B*C'] }) as Entitlements).access('ACB', 'stock')).toBe('none');
  });

  it(`a claim at the bounds (${MAX_ENTITLEMENT_ENTRIES} worst-case patterns a list) is decided in bounded work`, () => {
    // the longest patterns the claim takes, shaped for the most steps against the longest symbol
    const worst = Array.from(
      { length: MAX_ENTITLEMENT_ENTRIES },
      (_, i) => '*' + 'A'.repeat(MAX_PATTERN_LENGTH - 3) + String.fromCharCode(66 + (i % 20)) + '*',
    );
    const ent = Entitlements.parse({ symbols: worst, delayed: worst }) as Entitlements;
    expect(typeof ent).not.toBe('string');
    // 2000 patterns of at most (pattern + 1) x (symbol + 1) steps each (one such pattern as a
    // regular expression took seconds)
    const first = { steps: 0 };
    expect(ent.access('A'.repeat(32), 'stock', first)).toBe('none');
    expect(first.steps).toBeGreaterThan(0);
    expect(first.steps).toBeLessThanOrEqual(2 * MAX_ENTITLEMENT_ENTRIES * (MAX_PATTERN_LENGTH + 1) * (32 + 1));
    // asked again (every subscribe, every restricted portfolio valuation): remembered, not matched again
    const again = { steps: 0 };
    for (let i = 0; i < 1000; i++) expect(ent.access('A'.repeat(32), 'stock', again)).toBe('none');
    expect(again.steps).toBe(0);
    // the verdicts stay right: exact symbols, classes and patterns together, realtime before delayed
    const mixed = Entitlements.parse({ classes: ['crypto'], symbols: ['AAPL', 'B*'], delayed: ['stock', 'A*'] }) as Entitlements;
    for (let i = 0; i < 2; i++) {
      expect(mixed.access('AAPL', 'stock')).toBe('realtime');
      expect(mixed.access('AMZN', 'stock')).toBe('delayed');
      expect(mixed.access('AMZN', 'forex')).toBe('delayed');
      expect(mixed.access('BTC-USD', 'forex')).toBe('realtime');
      expect(mixed.access('ETH-USD', 'crypto')).toBe('realtime');
      expect(mixed.access('EUR-USD', 'forex')).toBe('none');
    }
  });
});

describe('entitlement claim bounds', () => {
  const hs = () => new JwtAuthenticator(loadConfig({ env: {}, overrides: { auth: { mode: 'required', jwtSecret: SECRET } } }).auth);

  it(`refuses a pattern over ${MAX_PATTERN_LENGTH} characters or a list over ${MAX_ENTITLEMENT_ENTRIES} entries as bad_entitlements, naming the field and the bound`, async () => {
    const long = 'A*'.repeat(MAX_PATTERN_LENGTH); // 64 characters
    expect(Entitlements.parse({ symbols: [long] })).toMatch(new RegExp(`ent\\.symbols.*${MAX_PATTERN_LENGTH}`));
    expect(Entitlements.parse({ delayed: [long] })).toMatch(new RegExp(`ent\\.delayed.*${MAX_PATTERN_LENGTH}`));
    const many = Array.from({ length: MAX_ENTITLEMENT_ENTRIES + 1 }, (_, i) => `S${i}*`);
    expect(Entitlements.parse({ symbols: many })).toMatch(new RegExp(`ent\\.symbols.*${MAX_ENTITLEMENT_ENTRIES}`));
    for (const ent of [{ symbols: [long] }, { delayed: many }]) {
      const r = await hs().authenticate(await token({ claims: { ent } }));
      expect(r).toMatchObject({ ok: false, code: 'bad_entitlements' });
    }
    // at the bounds: accepted (a token of 2000 entries would exceed the 16 KiB token limit itself)
    const atBound = 'A*'.repeat(MAX_PATTERN_LENGTH / 2);
    const full = Array.from({ length: MAX_ENTITLEMENT_ENTRIES }, (_, i) => `S${i}*`);
    expect(typeof Entitlements.parse({ symbols: [atBound, ...full.slice(1)], delayed: full })).not.toBe('string');
    expect((await hs().authenticate(await token({ claims: { ent: { symbols: [atBound], delayed: [atBound] } } }))).ok).toBe(true);
  });
});
