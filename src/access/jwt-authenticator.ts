import { decodeProtectedHeader, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyOptions } from 'jose';
import type { Config } from '../core/config.js';
import { identityProblem } from '../core/identity.js';
import { anonymousAuthenticator } from '../gateway/auth-hook.js';
import type { Authenticator, AuthMode, AuthResult } from '../gateway/auth-hook.js';
import type { Principal } from '../fanout/channels.js';
import { Entitlements } from './entitlements.js';
import type { EntitlementGrant } from './entitlements.js';
import { JwksCache, JwksUnavailableError } from './jwks.js';
import { ASYMMETRIC_ALGORITHMS, hmacKey, isHmac, publicKey } from './keys.js';
import type { JwsAlgorithm, VerificationKey } from './keys.js';

type AuthConfig = Config['auth'];

/** Longest token accepted (header, query or `auth` op). */
export const MAX_TOKEN_LENGTH = 16 * 1024;

/** A token whose kid is not in the JWKS refetches it at most this often. */
export const JWKS_UNKNOWN_KID_MS = 30_000;
/** After a failed JWKS fetch, none for this long (requests never drive fetches). */
export const JWKS_RETRY_MS = 5000;

/** Parsed entitlements of principals made by the authenticator, so they are parsed once per token. */
const entitlementCache = new WeakMap<Principal, Entitlements>();

/** A principal's market-data entitlements (see entitlements.ts for the claim shape). */
export function entitlementsOf(principal: Principal, cfg: Pick<AuthConfig, 'entitlementsClaim' | 'defaultEntitlement' | 'anonymousEntitlement'>): Entitlements {
  const cached = entitlementCache.get(principal);
  if (cached) return cached;
  let ent: Entitlements;
  // (loadConfig always sets anonymousEntitlement; a hand-made config without it gets the token default)
  if (principal.user === undefined) ent = Entitlements.of(cfg.anonymousEntitlement ?? cfg.defaultEntitlement);
  else {
    const claim = principal.claims?.[cfg.entitlementsClaim];
    const parsed = claim === undefined ? Entitlements.of(cfg.defaultEntitlement) : Entitlements.parse(claim, cfg.entitlementsClaim);
    ent = typeof parsed === 'string' ? Entitlements.NONE : parsed;
  }
  entitlementCache.set(principal, ent);
  return ent;
}

/**
 * What `entitlementsOf` reads, as JSON another process can apply (Entitlements.fromGrant): the
 * token's claim, the default entitlement for a token without one, `none` for a malformed claim.
 * Undefined without a user (anonymous).
 */
export function entitlementGrant(
  principal: Principal,
  cfg: Pick<AuthConfig, 'entitlementsClaim' | 'defaultEntitlement' | 'anonymousEntitlement'>,
): EntitlementGrant | undefined {
  if (principal.user === undefined) return undefined;
  const claim = principal.claims?.[cfg.entitlementsClaim];
  if (claim === undefined) return cfg.defaultEntitlement;
  // the claim as entitlementsOf parsed it (once per token): a malformed one is NONE there, and a
  // well-formed one is never that shared instance
  return entitlementsOf(principal, cfg) === Entitlements.NONE ? 'none' : (claim as EntitlementGrant);
}

function fail(code: string, reason: string): AuthResult {
  return { ok: false, code, reason };
}

/**
 * JWT verification with jose at the WebSocket upgrade and for `{"op":"auth"}`.
 *
 * Keys: an HMAC secret (HS*), a public key (RS*, PS*, ES*, EdDSA) and/or a JWKS URL. The token's
 * `alg` picks the key family before verification, so an HS token is never checked against a
 * public key (no HMAC/RSA confusion); `none` is refused outright; every algorithm must also be in
 * the configured allowlist. `iss`/`aud` are required when configured, `sub` always.
 */
export class JwtAuthenticator implements Authenticator {
  readonly mode: AuthMode;
  readonly #cfg: AuthConfig;
  readonly #hmac: VerificationKey | undefined;
  readonly #public: VerificationKey | undefined;
  readonly #jwks: JwksCache | undefined;
  readonly #allowed: ReadonlySet<string>;

  constructor(cfg: AuthConfig, opts: AuthenticatorOptions = {}) {
    this.#cfg = cfg;
    this.mode = cfg.mode;
    this.#allowed = new Set<string>(cfg.algorithms);
    this.#hmac = cfg.jwtSecret ? hmacKey(cfg.jwtSecret) : undefined;
    this.#public = cfg.jwtPublicKey ? publicKey(cfg.jwtPublicKey) : undefined;
    this.#jwks = cfg.jwksUrl
      ? new JwksCache({
          url: new URL(cfg.jwksUrl),
          cacheMs: cfg.jwksCacheSec * 1000,
          unknownKidMs: JWKS_UNKNOWN_KID_MS,
          retryMs: JWKS_RETRY_MS,
          timeoutMs: 5000,
          maxBytes: 1024 * 1024,
          ...(opts.log ? { log: opts.log } : {}),
        })
      : undefined;
  }

  /** Algorithms this authenticator can actually verify (configured keys ∩ allowlist). */
  get algorithms(): string[] {
    const out = new Set<string>();
    for (const a of this.#hmac?.algorithms ?? []) if (this.#allowed.has(a)) out.add(a);
    for (const a of this.#public?.algorithms ?? []) if (this.#allowed.has(a)) out.add(a);
    if (this.#jwks) for (const a of ASYMMETRIC_ALGORITHMS) if (this.#allowed.has(a)) out.add(a);
    return [...out];
  }

  async authenticate(token: string | undefined): Promise<AuthResult> {
    if (token === undefined || token === '') return fail('missing', 'no token: send Authorization: Bearer <jwt> or ?token=<jwt>');
    if (token.length > MAX_TOKEN_LENGTH) return fail('malformed', `token longer than ${MAX_TOKEN_LENGTH} characters`);
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
    } catch {
      return fail('malformed', 'not a signed JWT (three base64url parts)');
    }
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none') return fail('alg_none', 'unsigned tokens (alg "none") are refused');
    if (!this.#allowed.has(alg)) return fail('alg_not_allowed', `alg ${alg.slice(0, 16)} is not accepted here`);

    const options: JWTVerifyOptions = {
      algorithms: [alg],
      clockTolerance: this.#cfg.clockToleranceSec,
      requiredClaims: this.#cfg.requireExp ? ['sub', 'exp'] : ['sub'],
    };
    if (this.#cfg.issuer) options.issuer = [...this.#cfg.issuer];
    if (this.#cfg.audience) options.audience = [...this.#cfg.audience];

    let payload: JWTPayload;
    try {
      if (isHmac(alg)) {
        if (!this.#hmac) return fail('alg_not_allowed', `alg ${alg} needs a shared secret and none is configured`);
        ({ payload } = await jwtVerify(token, this.#hmac.key, options));
      } else if (this.#public && (this.#public.algorithms as readonly string[]).includes(alg)) {
        ({ payload } = await jwtVerify(token, this.#public.key, options));
      } else if (this.#jwks && (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
        ({ payload } = await jwtVerify(token, this.#jwks.getKey, options));
      } else {
        return fail('alg_not_allowed', `alg ${alg} does not match the configured key`);
      }
    } catch (err) {
      // no key set to check against: not a verdict on the token (the callers answer 503)
      if (err instanceof JwksUnavailableError) throw err;
      return classify(err);
    }

    // jose checks iat only against a maximum age; a token issued in the future (beyond the
    // leeway) comes from a clock that is wrong, or was minted ahead to outlive a revocation
    // (RFC 7519 4.1.6; the leeway is documented for exp, nbf and iat alike)
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + this.#cfg.clockToleranceSec) {
      return fail('not_yet_valid', 'token is issued in the future ("iat")');
    }
    const sub = payload.sub;
    if (typeof sub !== 'string') return fail('bad_subject', '"sub" must be a string of 1-256 printable characters');
    const problem = identityProblem(sub);
    if (problem !== undefined) return fail('bad_subject', `"sub" ${problem} (1-256 printable characters, well-formed Unicode)`);
    const principal: Principal = Object.freeze({ user: sub, claims: Object.freeze({ ...payload }) });
    const claim = payload[this.#cfg.entitlementsClaim];
    if (claim !== undefined) {
      const ent = Entitlements.parse(claim, this.#cfg.entitlementsClaim);
      if (typeof ent === 'string') return fail('bad_entitlements', ent);
      entitlementCache.set(principal, ent);
    }
    return typeof payload.exp === 'number' ? { ok: true, principal, expiresAt: payload.exp * 1000 } : { ok: true, principal };
  }
}

/** The refusal for a verification error; rethrows what is not a verdict on the token. */
function classify(err: unknown): AuthResult {
  if (err instanceof errors.JWTExpired) return fail('expired', 'token expired');
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'iss':
        return fail('bad_issuer', 'token issuer ("iss") is not accepted');
      case 'aud':
        return fail('bad_audience', 'token audience ("aud") is not accepted');
      case 'nbf':
        return fail('not_yet_valid', 'token is not valid yet ("nbf")');
      default:
        return fail('bad_claim', `claim "${err.claim}" is missing or invalid`);
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return fail('bad_signature', 'signature does not verify');
  if (err instanceof errors.JOSEAlgNotAllowed) return fail('alg_not_allowed', 'algorithm not accepted');
  if (err instanceof errors.JWKSNoMatchingKey) return fail('unknown_key', 'no key in the JWKS matches the token (kid/alg)');
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid || err instanceof errors.JWTClaimValidationFailed) {
    return fail('malformed', 'token is malformed');
  }
  if (err instanceof errors.JOSEError) return fail('invalid', `token refused (${err.code})`);
  if (err instanceof TypeError) return fail('invalid', 'token refused (key does not fit the algorithm)');
  // not about the token: the verifier failed (the callers answer 503 jwks_unavailable)
  throw err;
}

export interface AuthenticatorOptions {
  /** failed JWKS fetches are logged here, sampled (src/access/jwks.ts) */
  log?: { warn(obj: object, msg?: string): void };
}

/** The authenticator for a configuration: anonymous when auth is off. */
export function createAuthenticator(cfg: AuthConfig, opts: AuthenticatorOptions = {}): Authenticator {
  if (cfg.mode === 'off') return anonymousAuthenticator;
  const a = new JwtAuthenticator(cfg, opts);
  return a satisfies Authenticator;
}

export type { JwsAlgorithm };
