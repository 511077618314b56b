/**
 * Typed errors with stable codes. The root class and the protocol's errors live in the protocol
 * module (src/protocol/errors.ts), which the client SDK shares; every other error of the engine
 * extends that root here. A code is never reused for a different failure.
 */
import { ErrorCode } from '../protocol/index.js';
import { TickwireError } from '../protocol/index.js';

export { ProtocolError, TickwireError } from '../protocol/index.js';

/** Codes sent to clients in `error` frames and `rejected` items (defined in src/protocol/codes.ts). */
export const ProtocolErrorCode = ErrorCode;
export type ProtocolErrorCode = ErrorCode;

/** Failures inside the engine: startup, bus, durable logs (logged, or thrown to the caller of the API). */
export const EngineErrorCode = {
  CONFIG: 'CONFIG',
  USAGE: 'USAGE',
  LISTEN: 'LISTEN',
  BUS_CONNECT: 'BUS_CONNECT',
  BUS_SUBJECT: 'BUS_SUBJECT',
  BUS_HANDLER: 'BUS_HANDLER',
  JETSTREAM: 'JETSTREAM',
  EXEC_APPEND: 'EXEC_APPEND',
  EXEC_NOT_REPLICATED: 'EXEC_NOT_REPLICATED',
  ALERT_STORE: 'ALERT_STORE',
} as const;
export type EngineErrorCode = (typeof EngineErrorCode)[keyof typeof EngineErrorCode];

/** The `error` field of an HTTP API's error body (`{ "error": code, "message": ..., "field"?: ... }`). */
export const HttpErrorCode = {
  BAD_REQUEST: 'BAD_REQUEST',
  BAD_JSON: 'BAD_JSON',
  TOO_LARGE: 'TOO_LARGE',
  UNSUPPORTED_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  /** a user's book lacks executions the log no longer holds (GET positions: 409 until a PUT) */
  INCOMPLETE: 'INCOMPLETE',
  RATE_LIMIT: 'RATE_LIMIT',
  UNAVAILABLE: 'UNAVAILABLE',
  PORTFOLIO_UNAVAILABLE: 'PORTFOLIO_UNAVAILABLE',
  INTERNAL: 'INTERNAL',
} as const;
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

/** Every code an engine error can carry. */
export type EngineOrHttpErrorCode = ProtocolErrorCode | EngineErrorCode | HttpErrorCode;

/** A configuration value is missing or wrong; the message names the key and the fix. */
export class ConfigError extends TickwireError<'CONFIG'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
    this.name = 'ConfigError';
  }
}

/**
 * A refused HTTP request: the status and the code of the answer, and the request field at fault
 * when there is one. HTTP routes answer every HttpError the same way (`sendError`).
 */
export class HttpError<C extends string = HttpErrorCode> extends TickwireError<C> {
  constructor(
    readonly status: number,
    /** an upper-case code such as `BAD_REQUEST` (a message in its place does not type-check) */
    code: C extends Uppercase<C> ? C : never,
    message: string,
    readonly field?: string,
    /** `cause`: what failed inside, for the log; never part of the answer */
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'HttpError';
  }
}
