/**
 * Types of protocol v1 as the client sees it. The protocol itself (payloads, channel names,
 * frames, codes) is defined once in src/protocol and re-exported here; this file adds what only
 * the SDK has: the per-kind events and the update handed to listeners.
 */
import type {
  Bar,
  ChannelKind,
  ClientFrame,
  DataItem,
  Execution,
  ItemOp,
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

export * from '../../../src/protocol/index.js';

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
}

/** A client frame as this SDK sends it: always with a numeric `id`. */
export type OutgoingFrame = ClientFrame & { id: number };
export type OutgoingSubscribe = SubscribeFrame & { id: number };

/** An item as received: `op` may be a kind this client does not know (it is skipped, its `seq` counted). */
export type DataFrame = Omit<DataItem, 'op' | 'seq'> & { op?: string; seq?: number };

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
      return 'bar';
    case 'executions':
      return 'execution';
    default:
      return undefined;
  }
}
