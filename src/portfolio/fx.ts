import type { InstrumentRegistry } from '../core/instruments.js';

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

  #direct(from: string, to: string): number | undefined {
    if (from === to) return 1;
    const fwd = `${from}-${to}`;
    if (this.#registry.get(fwd)?.assetClass === 'forex') {
      const m = this.#mid(fwd);
      if (m !== undefined && m > 0) return m;
    }
    const inv = `${to}-${from}`;
    if (this.#registry.get(inv)?.assetClass === 'forex') {
      const m = this.#mid(inv);
      if (m !== undefined && m > 0) return 1 / m;
    }
    return undefined;
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
