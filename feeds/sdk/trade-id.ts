/**
 * Canonical trade ids. A trade's `id` must be unique per (symbol, source) (docs/protocol.md). Some
 * providers number trades per venue, not per symbol: Polygon's trade ids are unique only per
 * (ticker, exchange, TRF) and Alpaca's per exchange, so two venues can report the same id for
 * one symbol. Those adapters qualify the id with the venue: `<venue>:<provider id>`.
 */
export function venueTradeId(venue: unknown, id: unknown): string {
  const raw = String(id);
  if (venue === undefined || venue === null || venue === '') return raw;
  return `${String(venue)}:${raw}`;
}

/**
 * Remembers the trade ids seen recently per symbol, to drop a trade the provider delivers twice
 * (e.g. a message re-sent out of sequence). Bounded: each symbol keeps its last `capacity` ids.
 */
export class RecentIds {
  readonly #capacity: number;
  readonly #bySymbol = new Map<string, Set<string>>();

  constructor(capacity = 4096) {
    this.#capacity = capacity;
  }

  /** true the first time (symbol, id) is seen, false for a repeat */
  add(symbol: string, id: string): boolean {
    let set = this.#bySymbol.get(symbol);
    if (!set) {
      set = new Set();
      this.#bySymbol.set(symbol, set);
    }
    if (set.has(id)) return false;
    set.add(id);
    if (set.size > this.#capacity) {
      // a Set iterates in insertion order: the first entry is the oldest
      set.delete(set.values().next().value as string);
    }
    return true;
  }

  /** whether (symbol, id) was seen (without adding it) */
  has(symbol: string, id: string): boolean {
    return this.#bySymbol.get(symbol)?.has(id) ?? false;
  }

  clear(): void {
    this.#bySymbol.clear();
  }
}
