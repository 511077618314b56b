import { createLocalJWKSet, errors } from 'jose';
import type { FlattenedJWSInput, JSONWebKeySet, JWSHeaderParameters } from 'jose';

/**
 * No key set could be fetched from the JWKS URL (and none is held from before): the token could
 * not be checked at all. Not a verdict on the token: the gateway answers 503 `jwks_unavailable`.
 */
export class JwksUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'JwksUnavailableError';
  }
}

export interface JwksOptions {
  url: URL;
  /** a fetched key set is used this long before it is fetched again (auth.jwksCacheSec) */
  cacheMs: number;
  /** a token whose kid is not in the set refetches it at most this often */
  unknownKidMs: number;
  /** after a failed fetch, no other fetch for this long, whatever arrives */
  retryMs: number;
  /** a fetch that takes longer fails */
  timeoutMs: number;
  /** a larger answer fails (a JWKS is a few kB) */
  maxBytes: number;
}

type LocalSet = ReturnType<typeof createLocalJWKSet>;

/**
 * The identity provider's key set, fetched on demand and cached (replaces jose's remote key set,
 * which refetches for every token while its fetches fail: a flood of forged tokens during an
 * outage became one JWKS request each, and a set that could not be refreshed was dropped, so a
 * short IdP outage refused every user). Here:
 * - one fetch at a time, shared by the tokens waiting for it;
 * - after a failed fetch (network error, timeout, non-200, not a JWK set, too large) no fetch for
 *   `retryMs`, so requests never drive fetches;
 * - a set fetched before stays in use while refreshes fail (its keys were the IdP's: a revoked
 *   key disappears at the next successful fetch);
 * - a kid not in the set refetches at most every `unknownKidMs`;
 * - without any set, tokens fail with JwksUnavailableError (503), not as bad tokens (401).
 */
export class JwksCache {
  readonly #o: JwksOptions;
  #local: LocalSet | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #failedAt = Number.NEGATIVE_INFINITY;
  #lastError: unknown;
  #pending: Promise<void> | undefined;
  /** fetches started and failed (tests, metrics) */
  readonly stats = { fetches: 0, failures: 0 };

  constructor(opts: JwksOptions) {
    this.#o = opts;
  }

  /** The key for a token's header (jose's key-resolver form, for jwtVerify). */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput): ReturnType<LocalSet> => {
    if (!this.#local || Date.now() - this.#fetchedAt >= this.#o.cacheMs) await this.#refresh();
    const local = this.#local;
    if (!local) {
      const why = this.#lastError instanceof Error ? this.#lastError.message : String(this.#lastError);
      throw new JwksUnavailableError(`the JWKS could not be fetched: ${why}`.slice(0, 200), { cause: this.#lastError });
    }
    try {
      return await local(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey) || Date.now() - this.#fetchedAt < this.#o.unknownKidMs) throw err;
      // a key the IdP may have added since: fetch once (unless fetched or failed lately) and look again
      await this.#refresh();
      if (this.#local === local) throw err;
      return this.#local!(header, token);
    }
  };

  /** Fetch the set unless a fetch runs (then wait for it) or one failed less than retryMs ago. */
  #refresh(): Promise<void> {
    if (this.#pending) return this.#pending;
    if (Date.now() - this.#failedAt < this.#o.retryMs) return Promise.resolve();
    this.stats.fetches++;
    this.#pending = this.#fetch().then(
      (set) => {
        this.#local = set;
        this.#fetchedAt = Date.now();
        this.#lastError = undefined;
      },
      (err: unknown) => {
        this.stats.failures++;
        this.#failedAt = Date.now();
        this.#lastError = err;
      },
    );
    void this.#pending.finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #fetch(): Promise<LocalSet> {
    const res = await fetch(this.#o.url, {
      // a redirect could point the gateway anywhere: the configured URL is the key set
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#o.timeoutMs),
      headers: { accept: 'application/json, application/jwk-set+json' },
    }).catch((err: unknown) => {
      throw new Error(err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${this.#o.timeoutMs} ms` : describe(err), { cause: err });
    });
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new Error(`HTTP ${res.status} from the JWKS URL`);
    }
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > this.#o.maxBytes) {
      await res.body?.cancel().catch(() => undefined);
      throw new Error(`the JWKS is larger than ${this.#o.maxBytes} bytes`);
    }
    const body = await readCapped(res, this.#o.maxBytes);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch {
      throw new Error('the JWKS is not JSON');
    }
    // throws JWKSInvalid unless it is {"keys":[...]}
    return createLocalJWKSet(json as JSONWebKeySet);
  }
}

async function readCapped(res: Response, max: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      throw new Error(`the JWKS is larger than ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describe(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | undefined)?.cause;
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : undefined;
  const msg = err instanceof Error ? err.message : String(err);
  return detail ? `${msg} (${detail})` : msg;
}
