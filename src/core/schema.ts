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
}

export interface QuoteTick extends TickBase {
  k: 'quote';
  bp: number;
  bs?: number;
  ap: number;
  as?: number;
}

export type BarInterval = '1s' | '1m';
export const BAR_INTERVAL_MS: Readonly<Record<BarInterval, number>> = { '1s': 1000, '1m': 60_000 };

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
}

export interface TickerTick extends TickBase {
  k: 'ticker';
  p: number;
  bp: number;
  ap: number;
  o: number;
  h: number;
  l: number;
  v: number;
  chg: number;
  chgp: number;
}

export type Tick = TradeTick | QuoteTick | BarTick | TickerTick;
export type TickKind = Tick['k'];

/** Market-data channel kinds of protocol v1 (the part before the colon). */
export type MarketChannelKind = 'trade' | 'quote' | 'ticker' | 'bar.1s' | 'bar.1m';
export const MARKET_CHANNEL_KINDS: readonly MarketChannelKind[] = ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m'];

export function channelKindOf(tick: Tick): MarketChannelKind {
  return tick.k === 'bar' ? (tick.iv === '1s' ? 'bar.1s' : 'bar.1m') : tick.k;
}
