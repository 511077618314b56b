/**
 * Provider symbols <-> canonical symbols. Each adapter has a default rule (Binance: `BTC-USD` ->
 * `BTCUSD`, OANDA: `EUR-USD` -> `EUR_USD`) and the feeds file can name exceptions per symbol
 * (`symbolMap: { BTC-USD: BTCUSDT }`). Lookups are exact in both directions; provider symbols are
 * compared case-insensitively because several providers lower-case them in stream names.
 */
export interface SymbolRule {
  /** canonical -> provider */
  toProvider(canonical: string): string;
  /** provider -> canonical, or undefined when the rule cannot invert it (then only explicit entries map) */
  toCanonical?(provider: string): string | undefined;
}

export const identityRule: SymbolRule = { toProvider: (s) => s, toCanonical: (s) => s.toUpperCase() };

/** `BTC-USD` <-> `BTC{sep}USD` (sep '' for Binance, '_' for OANDA, '/' for crypto on some venues). */
export function pairRule(sep: string, opts: { lower?: boolean } = {}): SymbolRule {
  return {
    toProvider: (s) => {
      const out = s.replace('-', sep);
      return opts.lower ? out.toLowerCase() : out;
    },
    toCanonical: sep === '' ? undefined : (p) => p.toUpperCase().replace(sep, '-'),
  };
}

export class SymbolMap {
  readonly #toProvider = new Map<string, string>();
  readonly #toCanonical = new Map<string, string>();
  readonly #rule: SymbolRule;

  /**
   * @param symbols canonical symbols this feed serves (all of them get a provider name)
   * @param overrides explicit canonical -> provider entries from the feeds file
   */
  constructor(symbols: readonly string[], rule: SymbolRule = identityRule, overrides: Readonly<Record<string, string>> = {}) {
    this.#rule = rule;
    for (const [canonical, provider] of Object.entries(overrides)) this.add(canonical, provider);
    for (const s of symbols) if (!this.#toProvider.has(s)) this.add(s, rule.toProvider(s));
  }

  add(canonical: string, provider: string): void {
    this.#toProvider.set(canonical, provider);
    this.#toCanonical.set(provider.toUpperCase(), canonical);
  }

  /** Provider name for a canonical symbol (the rule applies to symbols not listed). */
  toProvider(canonical: string): string {
    return this.#toProvider.get(canonical) ?? this.#rule.toProvider(canonical);
  }

  /** Canonical symbol for a provider symbol, or undefined when it is not one of ours. */
  toCanonical(provider: string): string | undefined {
    return this.#toCanonical.get(provider.toUpperCase()) ?? this.#rule.toCanonical?.(provider);
  }

  /** Canonical symbols known to the map. */
  canonical(): string[] {
    return [...this.#toProvider.keys()];
  }
}
