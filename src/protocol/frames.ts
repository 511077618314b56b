import type { ErrorCode } from './codes.js';

/**
 * Frames of protocol v1 (docs/protocol.md#client-frames, #server-frames), discriminated on `op`.
 * One object per WebSocket message in both directions; both encodings carry the same objects.
 * Key order in these types is the order the gateway writes them.
 */

/** A request id: optional on every request and echoed on the `ack`, `pong` or `error` answering it. */
export type RequestId = number | string;

// ---- client to server -------------------------------------------------------------------------

export interface SubscribeFrame {
  op: 'subscribe';
  id?: RequestId;
  /** 1 to 1000 channel names */
  channels: string[];
  /** the most often (ms) the client wants each channel's updates; 0 (default) = as they come */
  throttle?: number;
  /** send each channel's current value right after the ack (default true) */
  snapshot?: boolean;
  /** durable channels (`executions`, `notifications`): every event after this sequence number, then live */
  since?: number;
  /** `bar.*` channels: the snapshot carries up to this many closed bars before it (0 to MAX_HISTORY_BARS) */
  history?: number;
  /** extension: false subscribes off screen (docs/protocol.md#visibility); default true */
  visible?: boolean;
  /** `book:*` channels: order book levels per side, 1 to MAX_BOOK_DEPTH (rounded up to a configured depth) */
  depth?: number;
}

export interface UnsubscribeFrame {
  op: 'unsubscribe';
  id?: RequestId;
  channels: string[];
}

export interface PingFrame {
  op: 'ping';
  id?: RequestId;
}

/** Authenticates an anonymous connection or replaces its token before it expires. */
export interface AuthFrame {
  op: 'auth';
  id?: RequestId;
  token: string;
}

/**
 * Extension (docs/protocol.md#visibility): mark subscriptions on or off screen (`channels` with
 * `visible`) and/or say whether the client's page is shown (`page`). Off-screen latest-value
 * channels drop to a slow tier; a hidden page pauses them; coming back sends a snapshot.
 */
export interface VisibilityFrame {
  op: 'visibility';
  id?: RequestId;
  channels?: string[];
  visible?: boolean;
  page?: 'visible' | 'hidden';
}

/** What a client may send. */
export type ClientFrame = SubscribeFrame | UnsubscribeFrame | PingFrame | AuthFrame | VisibilityFrame;
export type ClientOp = ClientFrame['op'];
export const CLIENT_OPS: readonly ClientOp[] = ['subscribe', 'unsubscribe', 'ping', 'auth', 'visibility'];

/** A subscribe as the server validated it (defaults filled in). */
export interface SubscribeRequest extends SubscribeFrame {
  throttle: number;
  snapshot: boolean;
}
export type UnsubscribeRequest = UnsubscribeFrame;
export type PingRequest = PingFrame;
export type AuthRequest = AuthFrame;
export type VisibilityRequest = VisibilityFrame;
/** A client frame that passed `parseRequest`. */

/**
 * An additive op served by a module of the engine (alerts, notifications: `alert.create`,
 * `notifications.read`, ...), known to the parser only by name.
 */
export interface ExtensionRequest {
  op: 'extension';
  id?: RequestId;
  /** the op as the client sent it, e.g. `alert.create` */
  name: string;
  frame: Readonly<Record<string, unknown>>;
}
/** A client frame that passed `parseRequest`. */
export type ClientRequest = SubscribeRequest | UnsubscribeRequest | PingRequest | AuthRequest | VisibilityRequest | ExtensionRequest;

// ---- server to client -------------------------------------------------------------------------

/** Limits of the deployment, in `welcome` (new entries may be added; read the ones you know). */
export interface WelcomeLimits {
  /** largest client frame, bytes */
  max_frame_bytes: number;
  /** channels per connection */
  max_subscriptions: number;
  /** the tiers (ms) a `throttle` is rounded up to */
  throttle_tiers: number[];
  /** the deployment's minimum throttle, ms */
  min_throttle: number;
}

/** Always the first frame of a connection. */
export interface WelcomeFrame {
  op: 'welcome';
  /** connection id (12 characters, base64url), as in the gateway's logs */
  conn: string;
  protocol: number;
  /** ms since the epoch, when the connection opened */
  server_time: number;
  limits: WelcomeLimits;
}

/** One channel a subscribe refused, with the reason. */
export interface RejectedChannel {
  channel: string;
  code: ErrorCode;
  /** a text for people; never parse it */
  reason: string;
}

/** Answers subscribe, unsubscribe and auth. */
export interface AckFrame {
  op: 'ack';
  id?: RequestId;
  /** subscribe: channels now subscribed, in request order; auth: `[]` */
  subscribed?: string[];
  /** extension, unsubscribe: channels no longer subscribed */
  unsubscribed?: string[];
  rejected: RejectedChannel[];
  /** extension, subscribe: the throttle tier (ms) applied */
  throttle?: number;
  /** extension, auth: the new token's expiry, ms since the epoch */
  expires?: number;
  /** extension, visibility: subscriptions whose on-screen flag was set */
  updated?: string[];
  /** extension, visibility: the connection's page state after the request */
  page?: 'visible' | 'hidden';
}

export interface PongFrame {
  op: 'pong';
  id?: RequestId;
  server_time: number;
}

/** Item kinds on a channel: `data`, and the trade amendments (extensions). */
export type ItemOp = 'data' | 'correction' | 'cancel';

/**
 * One update on a channel. Alone in a frame or inside a `batch`. `correction` and `cancel` items
 * (trade channels) count in `seq` like `data`; a client skips an item kind it does not know but
 * still counts its `seq`.
 */
export interface DataItem<D = unknown> {
  op: ItemOp;
  ch: string;
  /** per (channel, throttle tier) on one gateway; on `executions`, the durable event number */
  seq: number;
  d: D;
  /** the channel's current value, sent after the subscribe before any live update */
  snapshot?: true;
  /** extension, `bar.*` snapshots of a subscribe with `history`: the closed bars before `d`, oldest first */
  history?: D[];
  /** extension: how many source updates this one stands for, when above 1 */
  coalesced?: number;
}

/** Several updates in one frame (of one channel or several); at most 256 for live or replay. */
export interface BatchFrame {
  op: 'batch';
  items: DataItem[];
}

export interface ErrorFrame {
  op: 'error';
  id?: RequestId;
  code: ErrorCode;
  /** a text for people; never parse it */
  message: string;
  /** extension: on the token-expiry warning, the token's `exp` in ms */
  expires?: number;
}

/** What the server sends. A client ignores frames whose `op` it does not know. */
export type ServerFrame = WelcomeFrame | AckFrame | PongFrame | DataItem | BatchFrame | ErrorFrame;

/** The answer to an extension op (`alert.create`, ...): the op's name, the request's id, its fields. */
export interface ExtensionReply {
  op: string;
  id?: RequestId;
  [field: string]: unknown;
}
export type ServerOp = ServerFrame['op'];

// ---- builders: the gateway writes frames through these, so key order stays fixed -------------

/** An `error` frame; `id` only when the request had a usable one. */
export function errorFrame(code: ErrorCode, message: string, id?: RequestId, expires?: number): ErrorFrame {
  const f: ErrorFrame = id === undefined ? { op: 'error', code, message } : { op: 'error', id, code, message };
  if (expires !== undefined) f.expires = expires;
  return f;
}

/** A subscribe ack. */
export function subscribeAck(id: RequestId | undefined, subscribed: string[], rejected: RejectedChannel[], throttle: number): AckFrame {
  return id === undefined ? { op: 'ack', subscribed, rejected, throttle } : { op: 'ack', id, subscribed, rejected, throttle };
}

/** An unsubscribe ack. */
export function unsubscribeAck(id: RequestId | undefined, unsubscribed: string[]): AckFrame {
  return id === undefined ? { op: 'ack', unsubscribed, rejected: [] } : { op: 'ack', id, unsubscribed, rejected: [] };
}

/** A visibility ack (extension, docs/protocol.md#visibility). */
export function visibilityAck(id: RequestId | undefined, updated: string[], rejected: RejectedChannel[], page: 'visible' | 'hidden'): AckFrame {
  return id === undefined ? { op: 'ack', updated, rejected, page } : { op: 'ack', id, updated, rejected, page };
}

/** An auth ack; `expires` when the token has an `exp`. */
export function authAck(id: RequestId | undefined, expires: number | undefined): AckFrame {
  const f: AckFrame = id === undefined ? { op: 'ack', subscribed: [], rejected: [] } : { op: 'ack', id, subscribed: [], rejected: [] };
  if (expires !== undefined) f.expires = expires;
  return f;
}

export function pongFrame(id: RequestId | undefined, serverTime: number): PongFrame {
  return id === undefined ? { op: 'pong', server_time: serverTime } : { op: 'pong', id, server_time: serverTime };
}

/** One item; `snapshot` and `coalesced` only when set (coalesced only above 1). */
export function dataItem<D>(op: ItemOp, ch: string, seq: number, d: D, snapshot: boolean, coalesced = 1): DataItem<D> {
  const item: DataItem<D> = { op, ch, seq, d };
  if (snapshot) item.snapshot = true;
  if (coalesced > 1) item.coalesced = coalesced;
  return item;
}

/** One item alone, or several in a `batch`. */
export function itemsFrame(items: DataItem[]): DataItem | BatchFrame {
  return items.length === 1 ? items[0]! : { op: 'batch', items };
}
