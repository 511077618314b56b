/** Key names whose values are never printed (`tickwire config`, logs). */
const SECRET_KEY = /(secret|token|password|passwd|passphrase|api_?key|private_?key|credential)/i;

export const REDACTED = '[redacted]';

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

/** Hide the password in a URL such as redis://user:pass@host:6379 (also in comma lists, and a sentinelPassword parameter). */
export function redactUrl(value: string): string {
  return value
    .replace(/([?&]sentinelPassword=)[^&\s]*/gi, `$1${REDACTED}`)
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)([^/@\s:,]*)(:[^/@\s,]*)?@/gi, (_m, scheme: string, user: string, pass: string | undefined) =>
      pass ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`,
    );
}

/**
 * A copy of a configuration object with secrets hidden: values of keys named like secret, token,
 * password (any depth), and credentials inside URLs.
 */
export function redactConfig<T>(value: T): T {
  return walk(value, undefined) as T;
}

function walk(v: unknown, key: string | undefined): unknown {
  if (key !== undefined && isSecretKey(key) && v !== undefined && v !== null && v !== '') return REDACTED;
  if (typeof v === 'string') return redactUrl(v);
  if (Array.isArray(v)) return v.map((x) => walk(x, undefined));
  if (v && typeof v === 'object') {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, k)]));
  }
  return v;
}
