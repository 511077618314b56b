import type { ErrorCode } from './codes.js';

/**
 * The root of tickwire's error hierarchy, shared by the engine and the client SDK: every error
 * carries a stable string `code` and, when it wraps another, its `cause`.
 */
export class TickwireError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TickwireError';
    this.code = code;
  }
}

/** A client frame the protocol refuses; `code` is the error code the `error` frame carries. */
export class ProtocolError extends TickwireError {
  declare readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}
