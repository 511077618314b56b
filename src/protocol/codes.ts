/**
 * Error codes, close codes and names of protocol v1 (docs/protocol.md#error-codes,
 * docs/protocol.md#close-codes). The one definition: the gateway, the hub and the client SDK
 * import these; a bare `4009` or `'FORBIDDEN'` written anywhere else is a bug waiting.
 *
 * Codes are never reused for a different failure. New codes may be added (close codes in the
 * 4000-4999 range); a client treats an unknown error code as a failure of that request and an
 * unknown close code as a reason to reconnect with backoff.
 */

/** The protocol version this module describes: `welcome.protocol`. */
export const PROTOCOL_VERSION = 1;

/** The WebSocket endpoint's path. */
export const STREAM_PATH = '/v1/stream';

/** WebSocket subprotocols (`Sec-WebSocket-Protocol`): they pick the encoding. */
export const Subprotocol = {
  /** binary frames, plain MessagePack; the default when a client offers none */
  MSGPACK: 'tickwire.v1.msgpack',
  /** text frames, one JSON object each */
  JSON: 'tickwire.v1.json',
} as const;
export type Subprotocol = (typeof Subprotocol)[keyof typeof Subprotocol];

/**
 * Extension: a browser, which cannot set headers on a WebSocket, may carry its token as one more
 * offered subprotocol, `tickwire.bearer.<jwt>`, beside the encoding's, instead of `?token=` in the
 * URL (URLs end up in access logs and browser history). The server never selects it (the answer
 * names the encoding's subprotocol only). docs/protocol.md#connecting
 */
export const TOKEN_SUBPROTOCOL_PREFIX = 'tickwire.bearer.';

/** Frame encodings, by subprotocol. */
export type Encoding = 'msgpack' | 'json';
export const SUBPROTOCOL_BY_ENCODING: Readonly<Record<Encoding, Subprotocol>> = {
  msgpack: Subprotocol.MSGPACK,
  json: Subprotocol.JSON,
};

/** Codes of `error` frames and of an ack's `rejected` items. */
export const ErrorCode = {
  /** the frame cannot be decoded, or it is larger than the frame limit (then a 1009 close follows) */
  BAD_FRAME: 'BAD_FRAME',
  /** a decodable frame with an invalid shape (not an object, bad `id`, `channels`, `throttle`, ...) */
  BAD_REQUEST: 'BAD_REQUEST',
  /** `op` is not one the server knows; the connection stays open */
  UNKNOWN_OP: 'UNKNOWN_OP',
  /** in `rejected`: not a channel name, unknown kind, or a symbol not in the instrument registry */
  UNKNOWN_CHANNEL: 'UNKNOWN_CHANNEL',
  /** not entitled to the channel, another user's private channel, or a token for another user */
  FORBIDDEN: 'FORBIDDEN',
  /**
   * a private channel without a token; an `auth` token that does not verify (invalid or
   * expired); unsolicited: the token-expiry warning
   */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** over a count limit: channels per request, subscriptions per connection, connections per user */
  LIMIT: 'LIMIT',
  /** frames are being dropped: the connection sends faster than its message rate */
  RATE_LIMIT: 'RATE_LIMIT',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Every error code, for tests and docs tables. */
export const ERROR_CODES: readonly ErrorCode[] = Object.values(ErrorCode);

/** WebSocket close codes the gateway uses, with their meaning. */
export const CloseCode = {
  /** the client closed */
  NORMAL: 1000,
  /** graceful shutdown of the gateway: reconnect (to another gateway) */
  GOING_AWAY: 1001,
  /** no close frame: connection lost, or a frame far over the limit was cut off (never sent) */
  ABNORMAL: 1006,
  /** policy: the token expired without a fresh `auth`, or a new token withdrew an entitlement */
  POLICY: 1008,
  /** a client frame over `gateway.maxFrameBytes` (a BAD_FRAME error comes first) */
  TOO_LARGE: 1009,
  /** the connection stayed over its message rate for `limits.rateLimitCloseMs` */
  RATE_LIMIT: 4008,
  /** slow consumer: over the hard buffer limit, stuck, or too far behind in reading */
  SLOW_CONSUMER: 4009,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Whether a client should reconnect after a close with this code: yes after shutdown, a lost
 * connection, rate limiting (after a pause) and slow-consumer closes, and after any code it does
 * not know; no after a normal close; after 1008 only with a fresh token.
 */
export function closeCodeIsRetryable(code: number): boolean {
  return code !== CloseCode.NORMAL && code !== CloseCode.POLICY;
}

/** Limits fixed by the protocol (the configurable ones are announced in `welcome.limits`). */
export const ProtocolLimits = {
  /** channels in one subscribe or unsubscribe request */
  MAX_CHANNELS_PER_REQUEST: 1000,
  /** characters of a request `id` string */
  MAX_ID_LENGTH: 64,
  /** characters of the token in an `auth` request */
  MAX_TOKEN_LENGTH: 16 * 1024,
  /** nesting depth of a client frame */
  MAX_FRAME_DEPTH: 16,
  /** items in one `batch` frame of live updates or of a replay */
  MAX_BATCH_ITEMS: 256,
  /** characters of a channel name */
  MAX_CHANNEL_LENGTH: 128,
  /** closed bars `history` may ask for on subscribe */
  MAX_HISTORY_BARS: 1000,
  /** largest `depth` (order book levels per side) a subscribe may carry; the deployment's `book.depths` bound it further */
  MAX_BOOK_DEPTH: 1000,
  /** client frames that wait, in order, while an `auth` is being verified */
  MAX_FRAMES_HELD_BY_AUTH: 256,
} as const;

/**
 * Extension: `GET /v1/auth/check` on the gateway's port tells a client why its token is
 * refused, in a way a browser can read (a browser cannot read the body of a refused upgrade, or
 * even its status). Same token sources as the upgrade (`Authorization: Bearer`, `?token=`); the
 * answer is CORS-readable from any origin and never cached.
 */
export const AUTH_CHECK_PATH = '/v1/auth/check';

/** Why a token is refused (`reason` of a failed auth check; `auth:<reason>` in the gateway's stats). */
export type AuthFailureReason =
  | 'missing'
  | 'malformed'
  | 'alg_none'
  | 'alg_not_allowed'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'bad_issuer'
  | 'bad_audience'
  | 'bad_claim'
  | 'bad_subject'
  | 'bad_entitlements'
  | 'unknown_key'
  | 'jwks_unavailable'
  | 'invalid';

/** Reasons that a new token may cure; `jwks_unavailable` is the server's problem (retry later). */
export function authFailureIsTerminal(reason: string): boolean {
  return reason !== 'jwks_unavailable';
}

/** 200 answer of the auth check. `sub` and `expires` are absent for an anonymous connection. */
export interface AuthCheckOk {
  ok: true;
  /** the gateway's `auth.mode` */
  mode: 'off' | 'optional' | 'required';
  sub?: string;
  /** the token's `exp`, ms since the epoch */
  expires?: number;
}

/** 401 answer of the auth check: the upgrade with this token is refused. */
export interface AuthCheckRefused {
  ok: false;
  error: 'UNAUTHENTICATED';
  reason: AuthFailureReason;
  /** a text for people; never parse it */
  message: string;
}
export type AuthCheckResult = AuthCheckOk | AuthCheckRefused;
