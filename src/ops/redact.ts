import { isSecretKey, REDACTED, redactUrl } from '../core/secrets.js';

export { isSecretKey, REDACTED, redactUrl } from '../core/secrets.js';

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
