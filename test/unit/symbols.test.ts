import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { escapeSubjectToken, isCanonicalSymbol, unescapeSubjectToken } from '../../src/core/symbols.js';
import { marketSubject, parseMarketSubject } from '../../src/bus/subjects.js';
import { isValidSubject } from '../../src/bus/bus.js';

describe('symbol escaping in subjects', () => {
  it('escapes the NATS-special characters and keeps the rest', () => {
    expect(escapeSubjectToken('BRK.B')).toBe('BRK%2EB');
    expect(escapeSubjectToken('A*B>C D')).toBe('A%2AB%3EC%20D');
    expect(escapeSubjectToken('100%')).toBe('100%25');
    expect(escapeSubjectToken('BTC-USD')).toBe('BTC-USD');
    expect(escapeSubjectToken('A\u3000B')).toBe('A%u3000B');
  });

  it('is reversible for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (s) => {
        const token = escapeSubjectToken(s);
        expect(unescapeSubjectToken(token)).toBe(s);
        expect(token).not.toMatch(/[.*>\s]/);
      }),
      { numRuns: 2000 },
    );
  });

  it('builds valid literal subjects that parse back', () => {
    for (const sym of ['AAPL', 'BRK.B', 'BTC-USD', 'EUR-USD']) {
      const subject = marketSubject('stock', 'bar.1m', sym);
      expect(isValidSubject(subject, false)).toBe(true);
      expect(subject.split('.')).toHaveLength(4);
      expect(parseMarketSubject(subject)).toEqual({ assetClass: 'stock', kind: 'bar.1m', symbol: sym });
    }
    expect(parseMarketSubject('md.stock.nope.AAPL')).toBeNull();
    expect(parseMarketSubject('other.stock.trade.AAPL')).toBeNull();
  });

  it('recognises canonical symbols', () => {
    for (const s of ['AAPL', 'BRK.B', 'BTC-USD', 'EUR-USD', 'USD-JPY']) expect(isCanonicalSymbol(s)).toBe(true);
    for (const s of ['aapl', '', 'A B', '.X', 'X'.repeat(40)]) expect(isCanonicalSymbol(s)).toBe(false);
  });
});
