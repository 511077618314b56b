/**
 * Secrets out of text that leaves the process (log lines, messages on stderr, `tickwire config`):
 * credentials in URLs, JSON Web Tokens, bearer tokens, and secret-looking query parameters.
 * Kept in core so the logger applies it to every line, error paths included.
 */

/** Key names whose values are never printed (`tickwire config`, logs). */
const SECRET_KEY = /(secret|token|password|passwd|passphrase|api[_-]?key|private[_-]?key|credential|authorization|cookie)/i;

export const REDACTED = '[redacted]';

/** Redis commands whose arguments hold a password: AUTH, HELLO ... AUTH, MIGRATE ... AUTH/AUTH2, CONFIG SET requirepass, ACL SETUSER. */
const CREDENTIAL_COMMANDS = /^(auth|hello|migrate|config|acl)$/i;

/**
 * Key names that say what a value is about rather than hold it: the name of a service token
 * (`tokenName`, logged with each 403, docs/auth.md), a count, a source, a scope.
 */
const DESCRIBES_SECRET = /(name|count|source|scope|kind|type)s?$/i;

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !DESCRIBES_SECRET.test(key);
}

/** Hide the password in a URL such as redis://user:pass@host:6379 (also in comma lists, and a sentinelPassword parameter). */
export function redactUrl(value: string): string {
  return value
    .replace(/([?&]sentinelPassword=)[^&\s]*/gi, `$1${REDACTED}`)
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:,]*)(:[^/@\s,]*)?@/gi, (_m, scheme: string, user: string, pass: string | undefined) =>
      pass ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`,
    );
}

/** a compact JWS (header.payload.signature, the header a base64url JSON object: "eyJ") */
const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
/** `Authorization: Bearer x`, `Basic x` */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
/** query or form parameters that carry a credential: ?token=, &apikey=, access_token=, ... */
const SECRET_PARAM = /([?&;](?:[a-z_-]*token|api[_-]?key|apikey|key|secret|password|passwd|signature|sig|auth|jwt)=)[^&\s"']*/gi;

/** `text` with every credential this module recognises replaced by [redacted]. */
export function redactText(text: string): string {
  return redactUrl(text)
    .replace(JWT, REDACTED)
    .replace(AUTH_SCHEME, (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(SECRET_PARAM, `$1${REDACTED}`);
}

/**
 * A copy of a value fit for a log line: strings through redactText, values of secret-named keys
 * replaced, Errors as plain objects (type, message, stack, code, cause) with the same treatment.
 * Depth-bounded; leaves numbers, booleans and nulls alone.
 */
export function redactValue(v: unknown, key?: string, depth = 0): unknown {
  if (key !== undefined && isSecretKey(key) && v !== undefined && v !== null && v !== '' && typeof v !== 'boolean' && typeof v !== 'number') return REDACTED;
  if (typeof v === 'string') return redactText(v);
  if (v === null || typeof v !== 'object' || depth > 6) return v;
  if (v instanceof Error) {
    const e = v as Error & { code?: unknown; cause?: unknown };
    const out: Record<string, unknown> = { type: e.name, message: redactText(e.message) };
    if (e.stack !== undefined) out.stack = redactText(e.stack);
    if (e.code !== undefined) out.code = e.code;
    for (const [k, x] of Object.entries(e)) if (!(k in out) && k !== 'cause') out[k] = redactValue(x, k, depth + 1);
    if (e.cause !== undefined) out.cause = redactValue(e.cause, 'cause', depth + 1);
    return out;
  }
  if (Array.isArray(v)) return v.map((x) => redactValue(x, undefined, depth + 1));
  // a Redis command that carries credentials as plain arguments (ioredis errors name the failed
  // command: `err.command = { name: 'auth', args: [user, password] }`)
  const cmd = v as { name?: unknown; args?: unknown };
  if (typeof cmd.name === 'string' && CREDENTIAL_COMMANDS.test(cmd.name) && Array.isArray(cmd.args)) return { ...cmd, args: [REDACTED] };
  if (v instanceof Uint8Array || v instanceof Date) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, redactValue(x, k, depth + 1)]));
}
