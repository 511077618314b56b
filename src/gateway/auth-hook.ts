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

export const ANONYMOUS: Principal = Object.freeze({});

export const anonymousAuthenticator: Authenticator = {
  mode: 'off',
  async authenticate() {
    return { ok: true, principal: ANONYMOUS };
  },
};
