/**
 * Types of protocol v1 as the client sees it. The protocol itself (payloads, channel names,
 * frames, codes) is defined once in src/protocol and re-exported here; this file adds what only
 * the SDK has: the per-kind events and the update handed to listeners.
 */
import type {
  Bar,
  BookPayload,
  ChannelKind,
  ClientFrame,
  DataItem,
  Execution,
  ItemOp,
  Notification,
  SubscribeFrame,
  Portfolio,
  Quote,
  Status,
  SystemMessage,
  Ticker,
  Trade,
  TradeCancel,
  TradeCorrection,
} from '../../../src/protocol/index.js';

// The protocol module as a client uses it: every type, the codes and limits, channel names and
// the order book. Not the gateway's request parser and frame builders (request.ts: parseRequest,
// requestIdOf, throttleTier; frames.ts: errorFrame, subscribeAck, dataItem, ...): no client
// calls them, and in the bundle they were 1.3 KB of 15 gzipped (docs/client-sdk.md#size).
// test/client/bundle.test.ts checks that every other value of the module is exported here.
export * from '../../../src/protocol/codes.js';
export * from '../../../src/protocol/errors.js';
export * from '../../../src/protocol/payloads.js';
export * from '../../../src/protocol/channels.js';
export * from '../../../src/protocol/book.js';
export {
  CLIENT_OPS,
  type AckFrame,
  type AuthFrame,
  type AuthRequest,
  type BatchFrame,
  type ClientFrame,
  type ClientOp,
  type ClientRequest,
  type DataItem,
  type ErrorFrame,
  type ExtensionReply,
  type ExtensionRequest,
  type ItemOp,
  type PingFrame,
  type PingRequest,
  type PongFrame,
  type RejectedChannel,
  type RequestId,
  type ServerFrame,
  type ServerOp,
  type SubscribeFrame,
  type SubscribeRequest,
  type UnsubscribeFrame,
  type UnsubscribeRequest,
  type VisibilityFrame,
  type VisibilityRequest,
  type WelcomeFrame,
  type WelcomeLimits,
} from '../../../src/protocol/frames.js';
export { MAX_BOOK_DEPTH, MAX_CHANNELS_PER_REQUEST, MAX_HISTORY_BARS } from '../../../src/protocol/request.js';

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

/** The payload of each channel kind (`PayloadOf` gives it from a channel name). */
export interface PayloadByChannelKind {
  trade: Trade;
  quote: Quote;
  ticker: Ticker;
  'bar.1s': Bar;
  'bar.1m': Bar;
  'bar.5m': Bar;
  'bar.1h': Bar;
  'bar.1d': Bar;
  status: Status;
  book: BookPayload;
  portfolio: Portfolio;
  executions: Execution;
  notifications: Notification;
  system: SystemMessage;
}

/**
 * An update of any channel, as the `data` event hands it: discriminated by `kind`, so
 * `if (u.kind === 'quote') u.d.bp` is typed (a Quote), as is `u.d` of every other kind.
 */
export type AnyUpdate = { [K in ChannelKind]: Update<PayloadByChannelKind[K]> & { kind: K } }[ChannelKind];

/** A client frame as this SDK sends it: always with a numeric `id`. */
export type OutgoingFrame = ClientFrame & { id: number };
export type OutgoingSubscribe = SubscribeFrame & { id: number };

/** An item as received: `op` may be a kind this client does not know (it is skipped, its `seq` counted). */
export type DataFrame = Omit<DataItem, 'op' | 'seq'> & { op?: string; seq?: number };

/** The per-kind event an update of this channel kind is emitted as. */
export function eventKindOf(kind: string): EventKind | undefined {
  return /^(trade|quote|ticker|portfolio|system|status)$/.test(kind)
    ? (kind as EventKind)
    : /^bar\.(1[smhd]|5m)$/.test(kind)
      ? 'bar'
      : kind === 'executions'
        ? 'execution'
        : undefined;
}
