/**
 * Provider symbols <-> canonical symbols. Each adapter has a default rule (Binance: `BTC-USD` ->
 * `btcusd`, OANDA: `EUR-USD` -> `EUR_USD`) and the feeds file can name exceptions per symbol
 * (`symbolMap: { BTC-USD: BTCUSDT }`).
 *
 * Only symbols we asked the provider for map back: every `toProvider` result is remembered, and
 * `toCanonical` answers from that memory alone, so a provider message about a symbol this feed
 * does not serve is ignored rather than guessed. Provider symbols are compared case-insensitively
 * (several providers lower-case them in stream names).
 */
export interface SymbolRule {
  /** canonical -> provider */
  toProvider(canonical: string): string;
}

export const identityRule: SymbolRule = { toProvider: (s) => s };

/** `BTC-USD` <-> `BTC{sep}USD` (sep '' for Binance, '_' for OANDA, '/' for crypto on some venues). */
export function pairRule(sep: string, opts: { lower?: boolean } = {}): SymbolRule {
  return {
    toProvider: (s) => {
      const out = s.replace('-', sep);
      return opts.lower ? out.toLowerCase() : out;
    },
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

  /** Provider name for a canonical symbol (the rule applies to symbols not listed); remembered for the way back. */
  toProvider(canonical: string): string {
    const known = this.#toProvider.get(canonical);
    if (known !== undefined) return known;
    const provider = this.#rule.toProvider(canonical);
    this.add(canonical, provider);
    return provider;
  }

  /** Canonical symbol for a provider symbol, or undefined when it is not one we asked for. */
  toCanonical(provider: string): string | undefined {
    return this.#toCanonical.get(provider.toUpperCase());
  }

  /** Canonical symbols known to the map. */
  canonical(): string[] {
    return [...this.#toProvider.keys()];
  }
}
