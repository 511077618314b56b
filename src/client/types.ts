/**
 * Types of protocol v1 as the client sees it: channel payloads (`d`), server frames, and the
 * mapping from a channel name to its payload type. Field names follow the wire exactly; servers
 * may add fields, so every payload also tolerates unknown keys at run time.
 */

export type Side = 'buy' | 'sell';

/** `trade:SYM`: every trade, never dropped, in order. */
export interface Trade {
  /** unique per symbol and source */
  id: string;
  p: number;
  s: number;
  side?: Side;
  venue?: string;
  /** exchange time, ms since epoch */
  t: number;
  /** provider id */
  src: string;
  /** feed epoch: changes when the source restarts or switches provider */
  ep?: number;
}

/**
 * `quote:SYM`: best bid/ask, latest value wins. A side the provider reports empty (no
 * liquidity) is absent, with its size: it is never filled in with another price.
 */
export interface Quote {
  bp?: number;
  bs?: number;
  ap?: number;
  as?: number;
  t: number;
  src: string;
  ep?: number;
}

/** `ticker:SYM`: last price and day statistics, latest value wins. */
export interface Ticker {
  p: number;
  /** absent while the latest quote has an empty bid */
  bp?: number;
  ap?: number;
  o: number;
  h: number;
  l: number;
  v: number;
  chg: number;
  /** change in percent */
  chgp: number;
  t: number;
  /** the symbol's trading status, once its provider reported one */
  status?: TradingStatus;
}

/**
 * An item `"op":"correction"` on `trade:SYM`: the provider corrected the trade `ref` (an `id`
 * seen earlier on the channel); `id`, `p`, `s` describe the corrected trade. `applied` is true
 * when the server still held the original and recomputed the ticker and bars from it.
 */
export interface TradeCorrection {
  ref: string;
  id: string;
  p: number;
  s: number;
  side?: Side;
  venue?: string;
  t: number;
  src: string;
  applied: boolean;
  ep?: number;
}

/** An item `"op":"cancel"` on `trade:SYM`: the trade `ref` was cancelled (`error`: reported as erroneous). */
export interface TradeCancel {
  ref: string;
  error?: boolean;
  t: number;
  src: string;
  applied: boolean;
  ep?: number;
}

export type TradingStatus = 'trading' | 'halted';

/** `status:SYM`: the symbol's trading status as its provider reports it, latest value wins. */
export interface Status {
  status: TradingStatus;
  /** provider's reason text, e.g. "Trading Halt: News Pending" */
  reason?: string;
  /** provider's own status code */
  code?: string;
  /** limit up / limit down price band */
  luld?: { up: number; down: number };
  t: number;
  src: string;
}

/** `bar.1s:SYM`, `bar.1m:SYM`: OHLCV bar; open bars update, each closed bar arrives once. */
export interface Bar {
  /** bar start, ms since epoch */
  t: number;
  /** interval, ms */
  iv: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  /** trade count */
  n: number;
  closed: boolean;
  /** a closed bar sent again after a trade correction or cancel (or a late provider bar) changed it */
  corrected?: boolean;
}

export interface Position {
  sym: string;
  qty: number;
  p: number;
  value: number;
  pnl: number;
  ccy: string;
}

/** `portfolio`: the caller's portfolio valuation. */
export interface Portfolio {
  ccy: string;
  value: number;
  cost: number;
  pnl: number;
  day_pnl: number;
  positions: Position[];
  t: number;
}

/** `executions`: one fill of the caller. Never dropped, in order, resumable by `seq`. */
export interface Execution {
  id: string;
  order: string;
  sym: string;
  side: Side;
  qty: number;
  p: number;
  fee?: number;
  t: number;
}

/** `system`: operator announcement. */
export interface SystemMessage {
  level: 'info' | 'warning' | 'critical';
  title: string;
  message: string;
  t: number;
}

export type MarketKind = 'trade' | 'quote' | 'ticker' | 'bar.1s' | 'bar.1m' | 'bar.5m' | 'bar.1h' | 'bar.1d' | 'status';
export type PrivateChannel = 'portfolio' | 'executions' | 'system';
export type ChannelKind = MarketKind | PrivateChannel;

/** A channel name: `KIND:SYMBOL` for market data, a plain name for private streams. */
export type Channel = `${MarketKind}:${string}` | PrivateChannel;

/** The payload type carried by a channel, derived from its name. */
export type PayloadOf<C extends string> = C extends `trade:${string}`
  ? Trade
  : C extends `quote:${string}`
    ? Quote
    : C extends `ticker:${string}`
      ? Ticker
      : C extends `bar.${string}:${string}`
        ? Bar
        : C extends `status:${string}`
          ? Status
        : C extends 'portfolio'
          ? Portfolio
          : C extends 'executions'
            ? Execution
            : C extends 'system'
              ? SystemMessage
              : unknown;

/** Payload by channel kind, for the per-kind events. */
export interface PayloadByKind {
  trade: Trade;
  quote: Quote;
  ticker: Ticker;
  bar: Bar;
  portfolio: Portfolio;
  execution: Execution;
  system: SystemMessage;
  status: Status;
  /** items of op `correction` / `cancel` on `trade:SYM` */
  correction: TradeCorrection;
  cancel: TradeCancel;
}
export type EventKind = keyof PayloadByKind;

/** Item ops the client delivers: `data`, and the trade amendments. Other ops are skipped. */
export type ItemOp = 'data' | 'correction' | 'cancel';

/** One delivered update, as handed to listeners. */
export interface Update<T = unknown> {
  channel: string;
  /** channel kind (`trade`, `bar.1s`, `portfolio`, ...) */
  kind: ChannelKind | string;
  /** symbol for market channels, undefined for private ones */
  symbol: string | undefined;
  /** per-channel sequence number (for `executions`: the durable event number) */
  seq: number | undefined;
  /** true for the current value sent right after a subscribe */
  snapshot: boolean;
  /** how many source updates this one replaces under throttling (extension field; 1 if absent) */
  coalesced: number;
  /** the item op (the client always sets it): `data`, or `correction` / `cancel` on a trade channel */
  op?: ItemOp;
  d: T;
  /**
   * on the snapshot of a bar channel subscribed with `history`: the closed bars before the
   * snapshot's bar, oldest first (docs/protocol.md#bar-history)
   */
  history?: T[];
}

// ---- server frames -------------------------------------------------------------------------

export interface WelcomeFrame {
  op: 'welcome';
  conn: string;
  protocol: number;
  server_time: number;
  limits?: Record<string, unknown>;
}

export interface RejectedChannel {
  channel: string;
  code: string;
  reason: string;
}

export interface AckFrame {
  op: 'ack';
  id?: number;
  subscribed?: string[];
  unsubscribed?: string[];
  rejected?: RejectedChannel[];
  /** the throttle tier (ms) the server applies to the subscribed channels */
  throttle?: number;
}

export interface PongFrame {
  op: 'pong';
  id?: number;
  server_time: number;
}

export interface DataFrame {
  /** `data`, or another item kind (`correction`, `cancel`, or one this client does not know) */
  op?: string;
  ch: string;
  seq?: number;
  d: unknown;
  snapshot?: boolean;
  coalesced?: number;
  /** closed bars before a bar snapshot (`history` on subscribe) */
  history?: unknown[];
}

export interface BatchFrame {
  op: 'batch';
  items: DataFrame[];
}

export interface ErrorFrame {
  op: 'error';
  id?: number;
  code: string;
  message: string;
}

export type ServerFrame = WelcomeFrame | AckFrame | PongFrame | DataFrame | BatchFrame | ErrorFrame;

// ---- client frames -------------------------------------------------------------------------

export interface SubscribeFrame {
  op: 'subscribe';
  id: number;
  channels: string[];
  throttle?: number;
  snapshot?: boolean;
  since?: number;
  history?: number;
}
export interface UnsubscribeFrame {
  op: 'unsubscribe';
  id: number;
  channels: string[];
}
export interface PingFrame {
  op: 'ping';
  id: number;
}
export interface AuthFrame {
  op: 'auth';
  id: number;
  token: string;
}
export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PingFrame | AuthFrame;

/** Close codes of protocol v1. */
export const CloseCode = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  POLICY: 1008,
  TOO_LARGE: 1009,
  RATE_LIMIT: 4008,
  SLOW_CONSUMER: 4009,
} as const;

/** Split a channel name into kind and symbol. */
export function parseChannel(channel: string): { kind: string; symbol: string | undefined } {
  const i = channel.indexOf(':');
  return i < 0 ? { kind: channel, symbol: undefined } : { kind: channel.slice(0, i), symbol: channel.slice(i + 1) };
}

/** The per-kind event an update of this channel kind is emitted as. */
export function eventKindOf(kind: string): EventKind | undefined {
  switch (kind) {
    case 'trade':
    case 'quote':
    case 'ticker':
    case 'portfolio':
    case 'system':
    case 'status':
      return kind;
    case 'bar.1s':
    case 'bar.1m':
    case 'bar.5m':
    case 'bar.1h':
    case 'bar.1d':
      return 'bar';
    case 'executions':
      return 'execution';
    default:
      return undefined;
  }
}
