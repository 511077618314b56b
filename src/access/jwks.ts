import { createLocalJWKSet, errors } from 'jose';
import type { FlattenedJWSInput, JSONWebKeySet, JWSHeaderParameters } from 'jose';
import { LogSampler } from '../core/log-sampler.js';

/** At most one log line per this many ms for failed fetches of one JWKS URL (the rest: `suppressed`). */
export const JWKS_FAILURE_LOG_INTERVAL_MS = 60_000;

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
  /** failed fetches are logged here at warn (the logger redacts credentials in the URL) */
  log?: { warn(obj: object, msg?: string): void };
  /** at most one such line per this many ms (JWKS_FAILURE_LOG_INTERVAL_MS) */
  logIntervalMs?: number;
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
  readonly #failureLog: LogSampler;
  /** the URL fetched: `url` without `user:password@`, which fetch() refuses (sent as Basic auth instead) */
  readonly #target: URL;
  readonly #basic: string | undefined;
  #local: LocalSet | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #failedAt = Number.NEGATIVE_INFINITY;
  #lastError: unknown;
  #pending: Promise<void> | undefined;
  /** fetches started and failed (tests, metrics) */
  readonly stats = { fetches: 0, failures: 0 };

  constructor(opts: JwksOptions) {
    this.#o = opts;
    this.#failureLog = new LogSampler(opts.logIntervalMs ?? JWKS_FAILURE_LOG_INTERVAL_MS);
    this.#target = new URL(opts.url);
    if (this.#target.username || this.#target.password) {
      const user = decodeURIComponent(this.#target.username);
      const password = decodeURIComponent(this.#target.password);
      this.#basic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      this.#target.username = '';
      this.#target.password = '';
    }
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
        // counted each (tickwire_auth_failures_total); logged at most once per interval: an
        // outage of the identity provider fails a fetch every retryMs for as long as it lasts
        const line = this.#o.log ? this.#failureLog.take(Date.now()) : undefined;
        if (line) {
          const reason = err instanceof Error ? err.message : String(err);
          const held = this.#local !== undefined;
          this.#o.log!.warn(
            { url: this.#o.url.href, reason, keys: held ? 'kept' : 'none', ...(line.suppressed > 0 ? { suppressed: line.suppressed } : {}) },
            held
              ? 'JWKS fetch failed; the key set fetched before stays in use'
              : 'JWKS fetch failed; tokens are answered 503 jwks_unavailable until one succeeds',
          );
        }
      },
    );
    void this.#pending.finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #fetch(): Promise<LocalSet> {
    const res = await fetch(this.#target, {
      // a redirect could point the gateway anywhere: the configured URL is the key set
      redirect: 'manual',
      signal: AbortSignal.timeout(this.#o.timeoutMs),
      headers: { accept: 'application/json, application/jwk-set+json', ...(this.#basic ? { authorization: this.#basic } : {}) },
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
