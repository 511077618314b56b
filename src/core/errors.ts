/**
 * Typed errors with stable codes. The root class and the protocol's errors live in the protocol
 * module (src/protocol/errors.ts), which the client SDK shares; a code is never reused for a
 * different failure.
 */
import { ErrorCode, TickwireError } from '../protocol/index.js';

export { ProtocolError, TickwireError } from '../protocol/index.js';

/** Codes sent to clients in `error` frames and `rejected` items (defined in src/protocol/codes.ts). */
export const ProtocolErrorCode = ErrorCode;
export type ProtocolErrorCode = ErrorCode;

/** A configuration value is missing or wrong; the message names the key and the fix. */
export class ConfigError extends TickwireError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
    this.name = 'ConfigError';
  }
}
