import type { Instrument } from '../../src/core/instruments.js';
import type { AssetClass } from '../../src/core/schema.js';
import type { TickInput } from '../sdk/adapter.js';
import { Prng } from './prng.js';

/** Per-class market parameters: volatility per event, spread and trade size ranges. */
interface ClassModel {
  /** standard deviation of the log mid move per event */
  sigma: number;
  /** half spread as a fraction of mid */
  halfSpread: number;
  /** share of events that are trades (the rest are quotes) */
  tradeShare: number;
  size(prng: Prng, mid: number): number;
  /** event weight relative to other symbols */
  weight(symbol: string): number;
}

const MAJORS = new Set(['BTC-USD', 'ETH-USD', 'EUR-USD', 'GBP-USD', 'USD-JPY']);

const MODELS: Readonly<Record<AssetClass, ClassModel>> = {
  stock: {
    sigma: 0.00025,
    halfSpread: 0.00005,
    tradeShare: 0.4,
    size: (p) => (p.next() < 0.7 ? p.int(1, 10) * 10 : p.int(1, 50) * 100),
    weight: () => 1,
  },
  crypto: {
    sigma: 0.0004,
    halfSpread: 0.00003,
    tradeShare: 0.35,
    size: (p, mid) => round(Math.max(1e-4, (Math.exp(p.gaussian()) * 500) / mid), mid > 1000 ? 5 : mid > 1 ? 3 : 0),
    weight: (s) => (MAJORS.has(s) ? 2 : 1),
  },
  forex: {
    sigma: 0.00004,
    halfSpread: 0.00001,
    tradeShare: 0.2,
    size: (p) => p.int(1, 50) * 100_000,
    weight: (s) => (MAJORS.has(s) ? 2 : 1),
  },
};

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

interface SymbolState {
  inst: Instrument;
  model: ClassModel;
  mid: number;
  tick: number;
  trades: number;
}

/**
 * A random-walk market for a set of instruments: mid prices follow a geometric random walk with
 * per-class volatility; quotes straddle the mid with a spread of at least one price increment;
 * trades print at the bid or ask with a buy/sell aggressor. Deterministic for a given seed and
 * sequence of calls.
 */
export class MarketModel {
  readonly #prng: Prng;
  readonly #symbols: SymbolState[];
  readonly #cumWeights: number[];
  readonly #totalWeight: number;
  readonly #idPrefix: string;

  constructor(instruments: readonly Instrument[], seed: number, idPrefix: string) {
    this.#prng = new Prng(seed);
    this.#idPrefix = idPrefix;
    this.#symbols = instruments.map((inst) => ({
      inst,
      model: MODELS[inst.assetClass],
      mid: inst.refPrice ?? 100,
      tick: 10 ** -inst.pricePrecision,
      trades: 0,
    }));
    let acc = 0;
    this.#cumWeights = this.#symbols.map((s) => (acc += s.model.weight(s.inst.symbol)));
    this.#totalWeight = acc;
  }

  get symbols(): string[] {
    return this.#symbols.map((s) => s.inst.symbol);
  }

  /** Expected share of all events that go to `symbol`. */
  share(symbol: string): number {
    const s = this.#symbols.find((x) => x.inst.symbol === symbol);
    return s ? s.model.weight(symbol) / this.#totalWeight : 0;
  }

  /** Generate the next event at event time `ts` (ns). */
  next(ts: bigint): TickInput | undefined {
    if (this.#symbols.length === 0) return undefined;
    const r = this.#prng.next() * this.#totalWeight;
    let i = 0;
    while (this.#cumWeights[i]! <= r) i++;
    const s = this.#symbols[i]!;
    const p = this.#prng;
    s.mid *= Math.exp(s.model.sigma * p.gaussian());
    const dec = s.inst.pricePrecision;
    const half = Math.max(s.tick, s.mid * s.model.halfSpread * (0.5 + p.next()));
    const bid = round(s.mid - half, dec);
    let ask = round(s.mid + half, dec);
    if (ask <= bid) ask = round(bid + s.tick, dec);
    if (p.next() < s.model.tradeShare) {
      const side = p.next() < 0.5 ? 'buy' : 'sell';
      s.trades++;
      return {
        k: 'trade',
        sym: s.inst.symbol,
        id: `${this.#idPrefix}-${s.trades}`,
        p: side === 'buy' ? ask : bid,
        s: s.model.size(p, s.mid),
        side,
        ts,
      };
    }
    return {
      k: 'quote',
      sym: s.inst.symbol,
      bp: bid,
      ap: ask,
      bs: s.model.size(p, s.mid),
      as: s.model.size(p, s.mid),
      ts,
    };
  }
}
