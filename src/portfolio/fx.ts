import type { InstrumentRegistry } from '../core/instruments.js';
import { MAX_PRICE } from '../core/numbers.js';

/** Pivot currency for conversions without a direct pair (EUR -> JPY goes EUR-USD, USD-JPY). */
const PIVOT = 'USD';

/**
 * Currency conversion from live forex mids. A pair `A-B` quotes B per A (EUR-USD 1.08: one euro
 * is 1.08 dollars). from -> to uses, in order: the pair `from-to`, the inverse of `to-from`, or
 * two such legs through USD. Undefined while a needed rate has not been seen.
 */
export class FxRates {
  readonly #registry: InstrumentRegistry;
  readonly #mid: (pair: string) => number | undefined;

  constructor(registry: InstrumentRegistry, mid: (pair: string) => number | undefined) {
    this.#registry = registry;
    this.#mid = mid;
  }

  /**
   * A pair's mid, when it is a rate a market has: within [1 / MAX_PRICE, MAX_PRICE] (src/core/numbers.ts).
   * Its inverse is then within the same range, and a conversion through USD within 1e-30 to 1e30:
   * a feed's 1e-300 would have made the totals overflow to a non-finite amount (sent as 0).
   */
  #rateOf(pair: string): number | undefined {
    if (this.#registry.get(pair)?.assetClass !== 'forex') return undefined;
    const m = this.#mid(pair);
    return m !== undefined && m >= 1 / MAX_PRICE && m <= MAX_PRICE ? m : undefined;
  }

  #direct(from: string, to: string): number | undefined {
    if (from === to) return 1;
    const m = this.#rateOf(`${from}-${to}`);
    if (m !== undefined) return m;
    const inv = this.#rateOf(`${to}-${from}`);
    return inv !== undefined ? 1 / inv : undefined;
  }

  /** Units of `to` per unit of `from`. */
  rate(from: string, to: string): number | undefined {
    const d = this.#direct(from, to);
    if (d !== undefined) return d;
    if (from === PIVOT || to === PIVOT) return undefined;
    const a = this.#direct(from, PIVOT);
    const b = this.#direct(PIVOT, to);
    return a !== undefined && b !== undefined ? a * b : undefined;
  }

  /** Forex symbols that rate(from, to) may read (to subscribe to). */
  pairsFor(from: string, to: string): string[] {
    if (from === to) return [];
    const out = new Set<string>();
    const legs = (a: string, b: string): void => {
      for (const p of [`${a}-${b}`, `${b}-${a}`]) if (this.#registry.get(p)?.assetClass === 'forex') out.add(p);
    };
    legs(from, to);
    if (from !== PIVOT && to !== PIVOT) {
      legs(from, PIVOT);
      legs(PIVOT, to);
    }
    return [...out];
  }
}
