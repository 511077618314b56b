/**
 * tickwire client SDK (protocol v1), for browsers and Node.
 *
 * In browsers the global WebSocket is used and the token travels as a subprotocol
 * (`tickwire.bearer.<jwt>`, never in the URL); in Node 20 the `ws` package is imported on demand
 * and the token goes in the `Authorization` header.
 */
export {
  TickwireClient,
  type ClientEvents,
  type ClientOptions,
  type CloseEvent,
  type ConnectionState,
  type EpochEvent,
  type FallbackOptions,
  type GapEvent,
  type LatencySample,
  type ReconnectEvent,
  type ResetEvent,
  type SubscribeOptions,
  type SubscribeResult,
  type TokenSource,
  type TransportKind,
  type UnsubscribeResult,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export { codecFor, encodeMsgpack, SUBPROTOCOL, type ClientCodec, type Encoding } from './codec.js';
export { ClientErrorCode, TickwireClientError } from './errors.js';
export * from './types.js';
