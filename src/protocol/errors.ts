import type { ErrorCode } from './codes.js';

/**
 * The root of tickwire's error hierarchy, shared by the engine and the client SDK: every error
 * carries a stable string `code` (typed: modules with codes of their own narrow `C`) and, when it
 * wraps another, its `cause`.
 */
export class TickwireError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TickwireError';
    this.code = code;
  }
}

/** A client frame the protocol refuses; `code` is the error code the `error` frame carries. */
export class ProtocolError extends TickwireError<ErrorCode> {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}
