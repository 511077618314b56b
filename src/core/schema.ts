/**
 * The canonical tick schema. Every feed adapter emits these; the bus carries them MessagePack
 * encoded; the gateway turns them into protocol v1 payloads (`d`).
 *
 * Inside the engine times are nanoseconds since the epoch (bigint): `ts` when the event happened
 * at the source (exchange time), `rt` when tickwire received it. `seq` is tickwire's own
 * contiguous counter per (symbol, kind) and `ep` the epoch of that counter: it changes when the
 * adapter restarts or the symbol switches provider, so (ep, seq) identifies a tick uniquely.
 */
export type AssetClass = 'stock' | 'crypto' | 'forex';
export const ASSET_CLASSES: readonly AssetClass[] = ['stock', 'crypto', 'forex'];

export type Side = 'buy' | 'sell';

interface TickBase {
  /** canonical symbol, upper case */
  sym: string;
  /** provider id (`synthetic`, `binance`, ...) */
  src: string;
  seq: number;
  ep: number;
  /** event time, ns since epoch */
  ts: bigint;
  /** receive time in tickwire, ns since epoch */
  rt: bigint;
}

export interface TradeTick extends TickBase {
  k: 'trade';
  /** unique per symbol and source */
  id: string;
  p: number;
  s: number;
  side?: Side;
  venue?: string;
  /**
   * The provider's sale conditions say this trade sets no price (an odd lot, an average-price
   * trade: docs/feeds.md, "Trade conditions"): it counts in volume, but never moves the last
   * price, the day's open/high/low or a bar's open/high/low/close.
   */
  volumeOnly?: true;
  /**
   * The provider's sale conditions say this print counts in nothing (an official open or close,
   * a corrected consolidated close: re-reports of prices already printed): no price, no volume,
   * no trade count. Always with `volumeOnly`, so a reader that knows only that takes no price.
   */
  excluded?: true;
  /**
   * The provider's sale conditions say this print counts in the volume and the day's high and
   * low, but sets no last price, open or close (a late or prior-reference print: SIP `Z`, `P`,
   * `4`, UTDF `G`; docs/feeds.md, "Trade conditions"): the ticker's day high/low and `bar.1d`
   * take its price, an intraday bar only its size. Always with `volumeOnly`, so a reader that
   * knows only that takes no price (the conservative side).
   */
  highLowOnly?: true;
}

export interface QuoteTick extends TickBase {
  k: 'quote';
  /** absent when the provider reports no bid (an empty side is never filled with another price) */
  bp?: number;
  bs?: number;
  /** absent when the provider reports no ask */
  ap?: number;
  as?: number;
}

/**
 * A provider's correction of an earlier trade (published on the trade subject). `ref` is the
 * canonical id of the original trade, built by the adapter's own trade-id function; `id`, `p`,
 * `s` describe the corrected trade. `op`/`os` carry the original price and size when the
 * provider sends them (used to adjust volume when the original is no longer retained).
 */
export interface TradeCorrectionTick extends TickBase {
  k: 'correction';
  ref: string;
  id: string;
  p: number;
  s: number;
  side?: Side;
  venue?: string;
  op?: number;
  os?: number;
  /**
   * whether the corrected trade sets no price (see TradeTick.volumeOnly), from the corrected
   * conditions; absent when the provider does not say: the original trade's flag is kept
   */
  volumeOnly?: boolean;
  /**
   * the corrected trade counts in nothing (see TradeTick.excluded: an official open or close
   * re-reported), from the corrected conditions; always with `volumeOnly: true`. The publisher
   * then takes the original out of everything derived, as a cancel does
   */
  excluded?: true;
  /**
   * the corrected trade counts in the volume and the day's high and low only (see
   * TradeTick.highLowOnly), from the corrected conditions; always with `volumeOnly: true`. A
   * correction that says `volumeOnly` without it is not `highLowOnly`; one that says neither
   * keeps the original trade's flags
   */
  highLowOnly?: true;
  /** set by the publisher: the original was found and the derived views were recomputed */
  applied?: boolean;
}

/** A provider's cancel (bust) of an earlier trade, or its report of an erroneous trade. */
export interface TradeCancelTick extends TickBase {
  k: 'cancel';
  ref: string;
  /** the provider flagged the original trade as an error rather than a cancel */
  error?: boolean;
  /** original price and size when the provider sends them */
  op?: number;
  os?: number;
  /** set by the publisher: the original was found and the derived views were recomputed */
  applied?: boolean;
}

/**
 * Trading status of one symbol as its provider reports it. Adapters may send only the part they
 * know (a LULD band update has no status); the publisher merges them into the full state it
 * publishes on `status:SYM`.
 */
export type TradingStatus = 'trading' | 'halted';
export interface StatusTick extends TickBase {
  k: 'status';
  status?: TradingStatus;
  /** provider's reason text, e.g. "Trading Halt" or "not tradeable" */
  reason?: string;
  /** provider's own status code, e.g. Alpaca "H" */
  code?: string;
  /** limit up / limit down price band (US equities) */
  luld?: { up: number; down: number };
  /**
   * The status (`status`, `reason`, `code`) was reported before the feed's connection to its
   * provider was lost and may have changed meanwhile: the provider sends no status on
   * (re)subscribe (Alpaca `statuses`, Polygon `LULD`; docs/feeds.md). From an adapter, a report
   * with only `stale` marks the symbol's status so; the next report with a `status` clears it.
   */
  stale?: true;
}

/**
 * Bar intervals the engine derives from trades (docs/protocol.md, "bar"). Bars are aligned on
 * the Unix epoch, so minute and hour bars start on the UTC minute and hour, and day bars on
 * UTC midnight unless the instrument names another day start (`dayStartUtcMinutes`).
 */
export type BarInterval = '1s' | '1m' | '5m' | '1h' | '1d';
export const BAR_INTERVALS: readonly BarInterval[] = ['1s', '1m', '5m', '1h', '1d'];
export const BAR_INTERVAL_MS: Readonly<Record<BarInterval, number>> = {
  '1s': 1000,
  '1m': 60_000,
  '5m': 300_000,
  '1h': 3_600_000,
  '1d': 86_400_000,
};

export interface BarTick extends TickBase {
  k: 'bar';
  iv: BarInterval;
  /** bar start, ms since epoch */
  t: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  n: number;
  closed: boolean;
  /** a closed bar published again after a trade correction or cancel changed it */
  corrected?: boolean;
  /**
   * no trade that sets a price is left in the bar (its trades were cancelled, or corrected into
   * prints that set none): `o h l c` are not prices of the interval (docs/protocol.md#bar)
   */
  empty?: boolean;
  /** what the prices are: absent for trade prices; `mid` for mid prices of quotes (a quote-only source, docs/protocol.md#bar) */
  basis?: PriceBasis;
}

/**
 * What the prices of a ticker or bar are when they are not trade prices: `mid`, the mid price
 * (bid + ask) / 2 of each two-sided quote, for a symbol whose source publishes quotes and no
 * trades (FeedAdapter.quotesOnly; docs/protocol.md#ticker).
 */
export type PriceBasis = 'mid';

export interface TickerTick extends TickBase {
  k: 'ticker';
  p: number;
  /** absent while the latest quote has no bid (or no quote arrived yet) */
  bp?: number;
  ap?: number;
  o: number;
  h: number;
  l: number;
  v: number;
  chg: number;
  chgp: number;
  /** the previous trading day's close (its last trade price), once the engine has seen one */
  pc?: number;
  /** the symbol's trading status, once its provider reported one */
  status?: TradingStatus;
  /**
   * the day's trades that set a price were all cancelled (or corrected into prints that set
   * none): the day has no last price; `p o h l` are the previous close `pc`, or 0 without one
   */
  empty?: boolean;
  /** `mid`: `p o h l` are mid prices of quotes, not trade prices (a quote-only source) */
  basis?: PriceBasis;
}

/**
 * A change of one symbol's order book (channel `book:SYM`). Levels are [price, size] with the
 * size the level's new total (not a delta); size 0 removes the level. `reset: true` replaces the
 * whole book (a provider snapshot, or the publisher's stored copy); otherwise the listed levels
 * change and the others stay.
 */
export interface BookTick extends TickBase {
  k: 'book';
  reset?: boolean;
  bids: [number, number][];
  asks: [number, number][];
}

export type Tick = TradeTick | QuoteTick | BarTick | TickerTick | TradeCorrectionTick | TradeCancelTick | StatusTick | BookTick;
export type TickKind = Tick['k'];

/**
 * Market-data channel kinds of protocol v1 (the part before the colon). `book` (order books) has
 * its own resolver (src/fanout/book-channels.ts), so it is not in MARKET_CHANNEL_KINDS.
 */
export type BarChannelKind = `bar.${BarInterval}`;
export type BookChannelKind = 'book';
export type MarketChannelKind = 'trade' | 'quote' | 'ticker' | BarChannelKind | 'status' | BookChannelKind;
export const MARKET_CHANNEL_KINDS: readonly MarketChannelKind[] = ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d', 'status'];

/** `bar.5m` -> `5m`; undefined for a kind that is not a bar kind. */
export function barIntervalOf(kind: string): BarInterval | undefined {
  if (!kind.startsWith('bar.')) return undefined;
  const iv = kind.slice(4);
  return (BAR_INTERVALS as readonly string[]).includes(iv) ? (iv as BarInterval) : undefined;
}

/** Corrections and cancels travel on the trade channel, in order with the trades they amend. */
export function channelKindOf(tick: Tick): MarketChannelKind {
  switch (tick.k) {
    case 'bar':
      return `bar.${tick.iv}`;
    case 'correction':
    case 'cancel':
      return 'trade';
    default:
      return tick.k;
  }
}
