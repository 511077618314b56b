import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { roundQty } from '../../src/core/numbers.js';

describe('roundQty', () => {
  it('a running sum of sizes is the exact decimal sum (no float noise), at any size', () => {
    // (sizes of one sign, as volumes are: with cancellation, an error carried from a larger
    // intermediate sum can exceed the 15 digits of a smaller result, whatever the rounding)
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 9_999_999_999 }), { minLength: 1, maxLength: 20 }), fc.integer({ min: 0, max: 4 }), (units, decimals) => {
        // sizes with `decimals` decimals, summed as a ticker or a position does
        const scale = 10 ** decimals;
        let sum = 0;
        let exact = 0n;
        for (const u of units) {
          sum = roundQty(sum + u / scale);
          exact += BigInt(u);
        }
        // the exact sum, as the double nearest to it, has at most 15 significant digits here
        expect(sum).toBe(Number(exact) / scale === 0 ? 0 : Number(exact) / scale);
      }),
    );
  });

  it('keeps 15 significant digits and at most 10 decimals; no -0', () => {
    expect(roundQty(0.1 + 0.2)).toBe(0.3);
    expect(roundQty(300000.30000000005)).toBe(300000.3);
    expect(roundQty(-300000.30000000005)).toBe(-300000.3);
    expect(roundQty(1.23456789012345e-11)).toBe(0);
    expect(Object.is(roundQty(-1e-12), 0)).toBe(true);
    expect(roundQty(123456789.123456789)).toBe(123456789.123457);
    expect(roundQty(2e20 + 12345)).toBe(2e20);
    expect(roundQty(Number.NaN)).toBeNaN();
    expect(roundQty(Infinity)).toBe(Infinity);
  });
});
