/**
 * Our own contiguous sequence numbers per (symbol, channel kind), with an epoch that changes
 * when the numbering restarts: a new process, an adapter restart, or a provider switch for that
 * symbol. (ep, seq) identifies a tick uniquely; consumers detect gaps by seq within one ep.
 */
export class Sequencer {
  readonly #seq = new Map<string, number>();
  readonly #epochBySymbol = new Map<string, number>();
  #baseEpoch: number;

  constructor(baseEpoch = Date.now()) {
    this.#baseEpoch = baseEpoch;
  }

  epoch(symbol: string): number {
    return this.#epochBySymbol.get(symbol) ?? this.#baseEpoch;
  }

  /** Next (seq, ep) for a symbol and kind key (e.g. `trade`, `bar.1s`). */
  next(symbol: string, kind: string): { seq: number; ep: number } {
    const key = kind + '|' + symbol;
    const seq = (this.#seq.get(key) ?? 0) + 1;
    this.#seq.set(key, seq);
    return { seq, ep: this.epoch(symbol) };
  }

  /** Start a new epoch for one symbol (provider switch): its sequences restart at 1. */
  bumpEpoch(symbol: string): number {
    const ep = Math.max(this.epoch(symbol) + 1, Date.now());
    this.#epochBySymbol.set(symbol, ep);
    for (const key of [...this.#seq.keys()]) if (key.endsWith('|' + symbol)) this.#seq.delete(key);
    return ep;
  }

  /** Start a new epoch for every symbol (adapter restart). */
  bumpAll(): void {
    this.#baseEpoch = Math.max(this.#baseEpoch + 1, Date.now());
    this.#epochBySymbol.clear();
    this.#seq.clear();
  }
}
