import { createHash, timingSafeEqual } from 'node:crypto';
import { SERVICE_SCOPES } from '../core/config.js';
import type { ServiceScope } from '../core/config.js';

/** One configured service token (auth.serviceTokens after tokenEnv is read). */
export interface ServiceTokenSpec {
  name: string;
  token?: string | undefined;
  scopes: readonly ServiceScope[];
}

/** `token`: the name of the configured token refused for its scopes (for the log, not the answer) */
export type ServiceRefusal = { status: 401 | 403; error: 'UNAUTHENTICATED' | 'FORBIDDEN'; message: string; scope?: ServiceScope; token?: string };

interface Entry {
  name: string;
  digest: Buffer;
  scopes: ReadonlySet<ServiceScope>;
}

/** the name auth.serviceToken goes by in logs and 403 answers */
export const LEGACY_SERVICE_TOKEN_NAME = 'serviceToken';

const sha256 = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
const BEARER = /^Bearer\s+(\S+)\s*$/i;

/**
 * Requests refused 403 because a known service token lacked the scope, by token name and scope
 * (`tickwire_service_scope_refusals_total`): a client misconfigured, or a token used for what it
 * was not given. One per gateway, shared by the service API and the admin console.
 */
export class ScopeRefusalCounts {
  readonly #counts = new Map<string, { token: string; scope: ServiceScope; count: number }>();

  add(token: string, scope: ServiceScope): void {
    const key = `${token}\n${scope}`;
    const e = this.#counts.get(key);
    if (e) e.count++;
    else this.#counts.set(key, { token, scope, count: 1 });
  }

  entries(): IterableIterator<{ readonly token: string; readonly scope: ServiceScope; readonly count: number }> {
    return this.#counts.values();
  }
}

/**
 * The service tokens of a gateway (docs/auth.md#service-tokens-and-scopes): auth.serviceToken
 * holds every scope, each auth.serviceTokens entry only its own. A presented token is compared
 * with every configured one in constant time (SHA-256 first, so the length does not show either),
 * and the comparison never stops at the first match.
 */
export class ServiceTokens {
  readonly #entries: Entry[];
  readonly #refusals: ScopeRefusalCounts | undefined;

  constructor(auth: {
    serviceToken?: string | undefined;
    serviceTokens?: readonly ServiceTokenSpec[] | undefined;
    /** where 403 scope refusals are counted */
    scopeRefusals?: ScopeRefusalCounts | undefined;
  }) {
    this.#entries = [];
    this.#refusals = auth.scopeRefusals;
    if (auth.serviceToken) this.#entries.push({ name: LEGACY_SERVICE_TOKEN_NAME, digest: sha256(auth.serviceToken), scopes: new Set(SERVICE_SCOPES) });
    for (const t of auth.serviceTokens ?? []) {
      if (!t.token) continue; // tokenEnv not read: loadConfig does that, a bare spec has no secret
      this.#entries.push({ name: t.name, digest: sha256(t.token), scopes: new Set(t.scopes) });
    }
  }

  /** false: no token is configured, every request is refused */
  get enabled(): boolean {
    return this.#entries.length > 0;
  }

  /** The configured token an `Authorization: Bearer <token>` header carries, if any. */
  identify(authorization: string): { name: string; scopes: ReadonlySet<ServiceScope> } | undefined {
    const m = BEARER.exec(authorization);
    const given = sha256(m?.[1] ?? '');
    let found: Entry | undefined;
    for (const e of this.#entries) {
      if (timingSafeEqual(given, e.digest) && found === undefined) found = e;
    }
    return m && found ? { name: found.name, scopes: found.scopes } : undefined;
  }

  /**
   * undefined: the header carries a token with `scope`. Otherwise the refusal: 403 FORBIDDEN naming
   * the missing scope for a known token without it, 401 for no or an unknown token (`what` names the
   * API in the message).
   */
  check(authorization: string, scope: ServiceScope, what: string): ServiceRefusal | undefined {
    const who = this.identify(authorization);
    if (who?.scopes.has(scope)) return undefined;
    if (who) this.#refusals?.add(who.name, scope);
    if (who)
      return {
        status: 403,
        error: 'FORBIDDEN',
        scope,
        token: who.name,
        message: `service token "${who.name}" lacks the scope "${scope}" this request needs: add it to its scopes in auth.serviceTokens`,
      };
    return {
      status: 401,
      error: 'UNAUTHENTICATED',
      message: this.enabled
        ? `${what}: send Authorization: Bearer <service token>`
        : `${what} is disabled: set TICKWIRE_SERVICE_TOKEN or auth.serviceTokens on the gateway`,
    };
  }
}
