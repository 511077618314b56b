import { describe, expect, it } from 'vitest';
import { Backoff } from '../../packages/client/src/backoff.js';

describe('Backoff (exponential, full jitter)', () => {
  it('draws each delay uniformly below a ceiling that doubles up to the cap', () => {
    const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, factor: 2 }, () => 0.999999);
    const delays = Array.from({ length: 7 }, () => b.next());
    expect(delays).toEqual([99, 199, 399, 799, 999, 999, 999]);
    const zero = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000 }, () => 0);
    expect([zero.next(), zero.next(), zero.next()]).toEqual([0, 0, 0]);
  });

  it('spreads delays (jitter) and stays within bounds with a real random source', () => {
    const b = new Backoff({ initialDelayMs: 50, maxDelayMs: 400 });
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const n = b.attempt;
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(b.ceiling(n));
      seen.add(d);
    }
    expect(seen.size).toBeGreaterThan(20);
  });

  it('counts attempts, resets, and reports exhaustion', () => {
    const b = new Backoff({ maxRetries: 2 });
    expect(b.exhausted).toBe(false);
    b.next();
    b.next();
    expect(b.attempt).toBe(2);
    expect(b.exhausted).toBe(true);
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.exhausted).toBe(false);
  });

  it('rejects inconsistent bounds', () => {
    expect(() => new Backoff({ initialDelayMs: 500, maxDelayMs: 100 })).toThrow(RangeError);
    expect(() => new Backoff({ factor: 0.5 })).toThrow(RangeError);
  });
});
