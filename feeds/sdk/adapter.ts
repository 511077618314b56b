import type { BarInterval, Tick, TradingStatus } from '../../src/core/schema.js';

/**
 * The contract between tickwire and one market-data provider.
 *
 * An adapter speaks its provider's protocol, maps provider symbols to canonical ones and emits
 * canonical ticks through `ctx.emit`. It does not number ticks: the engine assigns `src`, `seq`,
 * `ep` (epoch) and, when absent, `rt` (receive time), so every adapter gets contiguous sequences
 * and epochs for free.
 */
type WithoutEngineFields<T> = T extends Tick ? Omit<T, 'seq' | 'ep' | 'rt' | 'src'> & { rt?: bigint } : never;
/** A tick as an adapter emits it. */
export type TickInput = WithoutEngineFields<Tick>;

export type FeedState = 'starting' | 'connecting' | 'connected' | 'stale' | 'reconnecting' | 'auth_failed' | 'error' | 'stopped';

export interface FeedLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export interface FeedContext {
  /** Hand one normalized tick to the engine. Cheap; call it from the socket's message handler. */
  emit(tick: TickInput): void;
  /** Report a lifecycle change (shown in feed health and logs). */
  status(state: FeedState, detail?: string): void;
  /** Aborted when the engine stops the feed. */
  readonly signal: AbortSignal;
  readonly log: FeedLogger;
  /**
   * Health counters beyond ticks (optional: hosts that do not track them leave it out). The SDK
   * runner reports through it; adapters call `ctx.metrics?.gap()` when they detect lost data.
   */
  readonly metrics?: FeedMetrics;
  /**
   * The source of these symbols publishes quotes and no trades (`on` true), or publishes trades
   * again (`on` false): as FeedAdapter.quotesOnly, per symbol and changeable while the feed runs,
   * for an adapter that learns it only from its data (the replay feed, from a recording's
   * `#source` lines; docs/feeds.md, "Recording and replay"). Optional: hosts that do not build
   * tickers leave it out. A feed that declares `quotesOnly` needs no call.
   */
  setQuotesOnly?(symbols: readonly string[], on: boolean): void;
  /**
   * The trading status the engine holds for `sym` as this feed reported it: reported since the
   * feed started, or taken up from the last-value store when the feed process started (memory in
   * embedded mode, Redis with `NATS_URL`). undefined when the feed reported none. An adapter that
   * publishes a status only when it changes compares with this when it has no report of its own
   * yet, so a status published before a restart is corrected by the provider's first answer,
   * not left standing because the adapter took the symbol for trading (docs/feeds.md, "Trading
   * status after a restart"). Optional: hosts without a publisher leave it out.
   */
  lastStatus?(sym: string): LastStatus | undefined;
}

/** A symbol's trading status as the engine holds it (FeedContext.lastStatus). */
export interface LastStatus {
  readonly status: TradingStatus;
  /** the provider's own status code; absent when only a band (`luld`) was reported */
  readonly code?: string;
  /** marked stale (docs/protocol.md#status-extension-channel-statussym) */
  readonly stale?: true;
}

/** Counters an adapter (or the SDK runner on its behalf) reports for feed health. */
export interface FeedMetrics {
  /** one provider message arrived (data, heartbeat or control): drives "last message age" and msg/s */
  message(): void;
  /** a reconnect to the provider began */
  reconnect(): void;
  /** the provider's own sequence numbers showed `missed` lost messages (1 when unknown) */
  gap(missed?: number, detail?: string): void;
  /** a recoverable error (bad message, provider error code, socket error) */
  error(detail: string): void;
}

export interface FeedAdapter {
  /** provider id, e.g. `binance`; becomes `src` on every tick */
  readonly id: string;
  /**
   * Bar intervals the provider sends its own closed bars for. For the symbols this feed is the
   * source of, those are the closed bars clients get, and the engine's trade-derived bar of
   * that interval only shows the open bar (docs/protocol.md, "Bars"). Omit when none.
   */
  readonly providesBars?: readonly BarInterval[];
  /**
   * The provider publishes quotes and no trades for the symbols it serves (forex is quoted, not
   * printed on a tape: OANDA). For the symbols this feed is the source of, the engine builds the
   * `ticker` and the bars from the mid price of each two-sided quote, marked `"basis":"mid"`
   * (docs/protocol.md#ticker). Declared, never guessed from trades that did not come: a trade
   * feed on a quiet symbol has no trades either. Omit (or false) for a feed that sends trades.
   */
  readonly quotesOnly?: boolean;
  start(ctx: FeedContext): Promise<void>;
  subscribe(symbols: readonly string[]): Promise<void>;
  unsubscribe(symbols: readonly string[]): Promise<void>;
  stop(): Promise<void>;
}
