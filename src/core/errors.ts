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

export class TickwireError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TickwireError';
    this.code = code;
  }
}

/** A configuration value is missing or wrong; the message names the key and the fix. */
export class ConfigError extends TickwireError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
    this.name = 'ConfigError';
  }
}

/** A request from a client that the protocol rejects; `code` is one of ProtocolErrorCode. */
export class ProtocolError extends TickwireError {
  constructor(code: ProtocolErrorCode, message: string) {
    super(code, message);
    this.name = 'ProtocolError';
  }
}
