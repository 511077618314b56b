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

/**
 * A URL's scheme and user info. The scheme is at most 32 characters (RFC 3986 schemes are short
 * names: redis, rediss, redis+sentinel, nats, wss) and is not anchored at a word boundary: a
 * longer word before `://` keeps its head unchanged. Unbounded and anchored at each word, a text
 * of many short words and no `://` (`a.a.a.…`, 32 KB) was scanned to its end from every word:
 * 0.5 s for one log line (test/unit/redaction-cost.test.ts).
 */
const URL_USERINFO = /([a-z][a-z0-9+.-]{0,31}:\/\/)([^/@\s:,]*)(:[^/@\s,]*)?@/gi;

/** Hide the password in a URL such as redis://user:pass@host:6379 (also in comma lists, and a sentinelPassword parameter). */
export function redactUrl(value: string): string {
  const out = value.replace(/([?&]sentinelPassword=)[^&\s]*/gi, `$1${REDACTED}`);
  if (!out.includes('://')) return out;
  return out.replace(URL_USERINFO, (_m, scheme: string, user: string, pass: string | undefined) =>
    pass ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`,
  );
}

/** a run of base64url characters and dots: where a compact JWS can be (see redactJwts) */
const JWS_RUN = /[A-Za-z0-9_.-]{13,}/g;
/** JWS segments are base64url text: a word character (\b before `eyJ`) is any of these but `-` */
const WORD_CHAR = /[A-Za-z0-9_]/;

/**
 * Every compact JWS in `text` (header.payload.signature, the header a base64url JSON object:
 * "eyJ") replaced by [redacted]: what the pattern
 * `\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*` replaces, found in one pass. A
 * regular expression tried at each `eyJ` scans to the end of the run of segment characters from
 * each of them: a text of `eyJ-eyJ-…` (32 KB) took 1.3 s, 256 KB minutes, on every log line,
 * feed health text or error that quoted it (test/unit/redaction-cost.test.ts). Here each run of
 * base64url characters and dots is split at its dots once: a JWS starts at the first `eyJ` of a
 * segment (after a non-word character) that leaves 4 characters in it, when the next segment has
 * 4 and a third follows; it ends with that third segment.
 */
function redactJwts(text: string): string {
  if (!text.includes('eyJ')) return text;
  return text.replace(JWS_RUN, (run) => {
    if (!run.includes('eyJ')) return run;
    const segs = run.split('.');
    let out = '';
    let i = 0;
    while (i < segs.length) {
      const seg = segs[i]!;
      const start = i + 2 < segs.length && segs[i + 1]!.length >= 4 ? jwsStart(seg) : -1;
      if (start < 0) {
        out += i + 1 < segs.length ? seg + '.' : seg;
        i++;
        continue;
      }
      out += seg.slice(0, start) + REDACTED;
      i += 3;
      if (i < segs.length) out += '.';
    }
    return out;
  });
}

/** Where a JWS can start in a segment: the first `eyJ` after a non-word character (or at 0) with 4 characters after it; -1 if none. */
function jwsStart(seg: string): number {
  for (let at = seg.indexOf('eyJ'); at >= 0 && at + 7 <= seg.length; at = seg.indexOf('eyJ', at + 1)) {
    if (at === 0 || !WORD_CHAR.test(seg[at - 1]!)) return at;
  }
  return -1;
}
/** `Authorization: Bearer x`, `Basic x` */
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/gi;
/** query or form parameters that carry a credential: ?token=, &apikey=, access_token=, ... */
const SECRET_PARAM = /([?&;](?:[a-z_-]*token|api[_-]?key|apikey|key|secret|password|passwd|signature|sig|auth|jwt)=)[^&\s"']*/gi;

/** `text` with every credential this module recognises replaced by [redacted]. */
export function redactText(text: string): string {
  return redactJwts(redactUrl(text))
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
