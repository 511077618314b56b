import type { Principal } from '../fanout/channels.js';

/**
 * How the gateway learns who a connection is. The access module (src/access) implements it with JWT
 * verification; `anonymousAuthenticator` is the auth-off default.
 */
export type AuthMode = 'off' | 'optional' | 'required';

export type AuthResult =
  | { ok: true; principal: Principal; /** token expiry, ms since epoch */ expiresAt?: number }
  | { ok: false; reason: string; /** stable reason code for metrics, e.g. expired, bad_signature */ code: string };

export interface Authenticator {
  readonly mode: AuthMode;
  /** Verify a token (undefined when the client sent none). */
  authenticate(token: string | undefined): Promise<AuthResult>;
}

/**
 * The verdict for starting or refreshing a session (a WebSocket, an HTTP stream, an in-band
 * `auth`; the auth check answers for them). `exp` is the end of everything a session does
 * (docs/auth.md): a token whose `exp` has passed cannot start one, although the clock tolerance
 * lets it verify (as `expired`). Accepted, it would be closed 1008 at once by the session
 * policy, and a client holding on to that token would reconnect in a loop.
 */
export function sessionVerdict(result: AuthResult, now = Date.now()): AuthResult {
  if (result.ok && result.expiresAt !== undefined && result.expiresAt <= now) return { ok: false, code: 'expired', reason: 'token expired' };
  return result;
}

export const ANONYMOUS: Principal = Object.freeze({});

export const anonymousAuthenticator: Authenticator = {
  mode: 'off',
  async authenticate() {
    return { ok: true, principal: ANONYMOUS };
  },
};
