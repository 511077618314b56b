import type { AssetClass } from './schema.js';
import { isCanonicalSymbol } from './symbols.js';
import { ConfigError } from './errors.js';
import { isTimeZone, parseDayStartTime } from './trading-day.js';

/** One tradable instrument as tickwire knows it. */
export interface Instrument {
  /** canonical symbol (upper case) */
  readonly symbol: string;
  readonly assetClass: AssetClass;
  /** quote currency: prices of this instrument are in this currency */
  readonly currency: string;
  /** decimals of price precision */
  readonly pricePrecision: number;
  /** provider ids feeding this symbol, primary first */
  readonly providers: readonly string[];
  /** reference price used to seed synthetic markets */
  readonly refPrice?: number;
  /**
   * legacy: where this instrument's trading day starts, in minutes after UTC midnight (0-1439), a
   * fixed offset with no daylight-saving shift. When set it wins over `dayStartTime`/`timeZone`.
   */
  readonly dayStartUtcMinutes?: number;
  /**
   * local time ("HH:MM") in `timeZone` where the trading day (the ticker's day, `bar.1d`, day
   * P&L) starts; default by asset class (DEFAULT_DAY_START in src/core/trading-day.ts)
   */
  readonly dayStartTime?: string;
  /** IANA time zone of `dayStartTime` (e.g. America/New_York); default by asset class */
  readonly timeZone?: string;
}

/**
 * The instrument registry: the set of symbols the engine serves. A subscription to a symbol not
 * in it is rejected with UNKNOWN_CHANNEL.
 */
export class InstrumentRegistry {
  readonly #bySymbol = new Map<string, Instrument>();

  constructor(instruments: Iterable<Instrument> = []) {
    for (const i of instruments) this.add(i);
  }

  add(instrument: Instrument): void {
    if (!isCanonicalSymbol(instrument.symbol)) {
      throw new ConfigError(
        `instrument symbol "${instrument.symbol}" is not canonical: use upper case letters, digits and . - _ / (e.g. AAPL, BRK.B, BTC-USD)`,
      );
    }
    if (instrument.timeZone !== undefined && !isTimeZone(instrument.timeZone))
      throw new ConfigError(`instrument ${instrument.symbol}: timeZone "${instrument.timeZone}" is not an IANA time zone (e.g. America/New_York)`);
    if (instrument.dayStartTime !== undefined && parseDayStartTime(instrument.dayStartTime) === undefined)
      throw new ConfigError(`instrument ${instrument.symbol}: dayStartTime "${instrument.dayStartTime}" is not a local time "HH:MM"`);
    this.#bySymbol.set(instrument.symbol, Object.freeze({ ...instrument, providers: [...instrument.providers] }));
  }

  get(symbol: string): Instrument | undefined {
    return this.#bySymbol.get(symbol);
  }

  has(symbol: string): boolean {
    return this.#bySymbol.has(symbol);
  }

  all(): Instrument[] {
    return [...this.#bySymbol.values()];
  }

  byClass(assetClass: AssetClass): Instrument[] {
    return this.all().filter((i) => i.assetClass === assetClass);
  }

  get size(): number {
    return this.#bySymbol.size;
  }
}

const stock = (symbol: string, refPrice: number): Instrument => ({
  symbol,
  assetClass: 'stock',
  currency: 'USD',
  pricePrecision: 2,
  providers: ['synthetic'],
  refPrice,
});
const crypto = (symbol: string, refPrice: number, pricePrecision = 2): Instrument => ({
  symbol,
  assetClass: 'crypto',
  currency: symbol.split('-')[1] ?? 'USD',
  pricePrecision,
  providers: ['synthetic'],
  refPrice,
});
const fx = (symbol: string, refPrice: number, pricePrecision = 5): Instrument => ({
  symbol,
  assetClass: 'forex',
  currency: symbol.split('-')[1] ?? 'USD',
  pricePrecision,
  providers: ['synthetic'],
  refPrice,
});

/** The default universe served by the embedded engine and the synthetic feed. */
export const DEFAULT_INSTRUMENTS: readonly Instrument[] = [
  stock('AAPL', 228.5),
  stock('MSFT', 415.2),
  stock('NVDA', 131.4),
  stock('TSLA', 248.9),
  stock('BRK.B', 452.1),
  stock('AMZN', 197.3),
  stock('GOOGL', 171.6),
  stock('META', 561.0),
  stock('SPY', 585.7),
  stock('QQQ', 505.4),
  crypto('BTC-USD', 67250),
  crypto('ETH-USD', 2650.5),
  crypto('SOL-USD', 152.35),
  crypto('XRP-USD', 0.5321, 4),
  crypto('DOGE-USD', 0.1234, 5),
  fx('EUR-USD', 1.0842),
  fx('GBP-USD', 1.2715),
  fx('USD-JPY', 151.42, 3),
  fx('USD-CHF', 0.8731),
  fx('AUD-USD', 0.6612),
  fx('USD-CAD', 1.3598),
];

export function defaultRegistry(): InstrumentRegistry {
  return new InstrumentRegistry(DEFAULT_INSTRUMENTS);
}
