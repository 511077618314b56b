import { TickwireError } from '../../../src/protocol/index.js';

/**
 * Errors raised by the client SDK. `code` is either a protocol v1 error code sent by the server
 * (`BAD_REQUEST`, `FORBIDDEN`, `LIMIT`, ...) or one of the client's own codes below.
 */
export const ClientErrorCode = {
  /** the request was still waiting for its reply when the client was closed */
  CLOSED: 'CLOSED',
  /** the connection dropped while a ping or auth request was waiting for its reply */
  CONNECTION_LOST: 'CONNECTION_LOST',
  /** no reply to a request within `requestTimeoutMs` */
  TIMEOUT: 'TIMEOUT',
  /** reconnecting gave up after `maxRetries` attempts */
  RETRIES_EXHAUSTED: 'RETRIES_EXHAUSTED',
  /** a server frame could not be decoded */
  BAD_SERVER_FRAME: 'BAD_SERVER_FRAME',
  /** the WebSocket itself reported an error (refused, 401 at upgrade, network) */
  TRANSPORT: 'TRANSPORT',
  /** the token function threw or rejected */
  TOKEN: 'TOKEN',
} as const;

/**
 * An error of the client: `code` is a server error code (`UNAUTHENTICATED`, `FORBIDDEN`, ...) or
 * one of ClientErrorCode. Part of tickwire's one error hierarchy (TickwireError).
 */
export class TickwireClientError extends TickwireError {
  // (`declare`: set in the constructor, not defined again as class fields: bytes of the bundle budget)
  /** request id the server echoed, when the error answers a request */
  declare readonly requestId: number | undefined;
  /** `UNAUTHENTICATED` at connect: why the token was refused (`expired`, `bad_signature`, ...) */
  declare readonly reason: string | undefined;
  /** `TIMEOUT` of a subscribe (the client's own too): its channels */
  declare readonly channels: string[] | undefined;
  constructor(code: string, message: string, options?: { cause?: unknown; requestId?: number; reason?: string; channels?: string[] | undefined }) {
    super(code, message, options); // (TickwireError passes on a cause only when there is one)
    this.name = 'TickwireClientError';
    this.requestId = options?.requestId;
    this.reason = options?.reason;
    this.channels = options?.channels;
  }
}
