import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cleanAmount, midOf, percentOf, priceDiff, roundQty, sumAmounts } from '../../src/core/numbers.js';

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
    expect(roundQty(123456789 + 0.123456789)).toBe(123456789.123457);
    expect(roundQty(2e20 + 12345)).toBe(2e20);
    expect(roundQty(Number.NaN)).toBeNaN();
    expect(roundQty(Infinity)).toBe(Infinity);
  });
});

describe('midOf, priceDiff, percentOf: values as quoted', () => {
  // prices of up to 13 significant digits with 0-8 decimals, as providers quote them
  const quoted = fc.tuple(fc.integer({ min: 1, max: 9_999_999_999_999 }), fc.integer({ min: 1, max: 9_999_999_999_999 }), fc.integer({ min: 0, max: 8 }));

  it('the mid and the difference of two quoted prices are the exact decimals, at any magnitude', () => {
    fc.assert(
      fc.property(quoted, ([ia, ib, decimals]) => {
        const scale = 10 ** decimals;
        const a = ia / scale;
        const b = ib / scale;
        expect(priceDiff(a, b)).toBe((ia - ib) / scale);
        // (ia + ib) / 2 may end in .5: one more decimal, still within 15 significant digits
        expect(midOf(a, b)).toBe((ia + ib) / (2 * scale));
      }),
    );
  });

  it('examples, and no -0', () => {
    expect(midOf(3.3, 3.4)).toBe(3.35);
    expect(priceDiff(1.3, 1.1)).toBe(0.2);
    expect(priceDiff(12345.67, 12345.66)).toBe(0.01);
    expect(priceDiff(0.00001234, 0.0000123)).toBe(4e-8);
    expect(Object.is(priceDiff(1.1, 1.1), 0)).toBe(true);
    expect(percentOf(priceDiff(100.3, 100), 100)).toBe(0.3);
    expect(percentOf(priceDiff(100, 100.3), 100.3)).toBe(-0.299102691924227);
    expect(Object.is(percentOf(-0, 5), 0)).toBe(true);
  });

  it('a difference and a change are symmetric: b - a is minus a - b, to the last digit', () => {
    // halves of the last kept digit round away from zero on both sides (Math.round alone takes
    // -2.5 to -2 and 2.5 to 3): 1.5 - 1.000000000000005 and its reverse
    expect(priceDiff(1.000000000000005, 1.5)).toBe(-priceDiff(1.5, 1.000000000000005));
    fc.assert(
      fc.property(fc.double({ min: 1e-6, max: 1e9, noNaN: true }), fc.double({ min: 1e-6, max: 1e9, noNaN: true }), (a, b) => {
        expect(priceDiff(b, a)).toBe(priceDiff(a, b) === 0 ? 0 : -priceDiff(a, b));
        expect(roundQty(-a)).toBe(-roundQty(a));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('sumAmounts, cleanAmount: money amounts without the noise of their terms', () => {
  it('a sum of decimal amounts that cancel out is 0, at any magnitude and sign', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -99_999_999, max: 99_999_999 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: -6, max: 20 }),
        (units, decimals, exp) => {
          // amounts of `decimals` decimals scaled by 10^exp, and their exact negative sum as the last term
          const scale = 10 ** exp / 10 ** decimals;
          const terms = units.map((u) => Number(`${u}e${exp - decimals}`));
          const total = units.reduce((a, u) => a + BigInt(u), 0n);
          terms.push(-Number(`${total}e${exp - decimals}`));
          expect(sumAmounts(...terms)).toBe(0);
          expect(
            cleanAmount(
              terms.reduce((a, t) => a + t, 0),
              Math.max(...terms.map(Math.abs)) || scale,
            ),
          ).toBe(0);
        },
      ),
    );
  });

  it('keeps a small result of large terms to 14 (book) and 12 (wire) significant digits of the terms', () => {
    expect(sumAmounts(1_000_000, -999_999.99)).toBe(0.01);
    expect(cleanAmount(1_000_000 - 999_999.99, 1_000_000)).toBe(0.01);
    expect(sumAmounts(0.1, 0.2, -0.3)).toBe(0);
    expect(sumAmounts(1e20, -1e20, 12345)).toBe(0); // below the 14th digit of 1e20
    expect(cleanAmount(-2.7755575615628914e-17, 0.3)).toBe(0);
    expect(cleanAmount(Infinity, 1)).toBe(0);
    expect(Object.is(sumAmounts(-0.1, 0.1), 0)).toBe(true);
  });
});
