/**
 * Typed errors with stable codes. Protocol codes (sent to clients) and internal codes share one
 * class; a code is never reused for a different failure.
 */
export const ProtocolErrorCode = {
  BAD_FRAME: 'BAD_FRAME',
  BAD_REQUEST: 'BAD_REQUEST',
  UNKNOWN_OP: 'UNKNOWN_OP',
  UNKNOWN_CHANNEL: 'UNKNOWN_CHANNEL',
  FORBIDDEN: 'FORBIDDEN',
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  LIMIT: 'LIMIT',
  RATE_LIMIT: 'RATE_LIMIT',
} as const;
export type ProtocolErrorCode = (typeof ProtocolErrorCode)[keyof typeof ProtocolErrorCode];

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
  RATE_LIMIT: 'RATE_LIMIT',
  UNAVAILABLE: 'UNAVAILABLE',
  PORTFOLIO_UNAVAILABLE: 'PORTFOLIO_UNAVAILABLE',
  INTERNAL: 'INTERNAL',
} as const;
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

export type ErrorCode = ProtocolErrorCode | EngineErrorCode | HttpErrorCode;

/**
 * The one base of tickwire's errors: a stable, typed `code` and a message for people. Modules
 * with codes of their own (alert rules) narrow `C`.
 */
export class TickwireError<C extends string = ErrorCode> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TickwireError';
    this.code = code;
  }
}

/** A configuration value is missing or wrong; the message names the key and the fix. */
export class ConfigError extends TickwireError<'CONFIG'> {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
    this.name = 'ConfigError';
  }
}

/** A request from a client that the protocol rejects; `code` is one of ProtocolErrorCode. */
export class ProtocolError extends TickwireError<ProtocolErrorCode> {
  constructor(code: ProtocolErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}

/**
 * A refused HTTP request: the status and the code of the answer, and the request field at fault
 * when there is one. HTTP routes answer every HttpError the same way (`sendError`).
 */
export class HttpError<C extends string = HttpErrorCode> extends TickwireError<C> {
  constructor(
    readonly status: number,
    code: C,
    message: string,
    readonly field?: string,
  ) {
    super(code, message);
    this.name = 'HttpError';
  }
}
