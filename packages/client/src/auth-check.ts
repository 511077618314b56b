import type { AuthCheckResult, AuthFailureReason } from '../../../src/protocol/index.js';

/**
 * The auth check (`GET /v1/auth/check`, protocol extension: docs/auth.md): why a connection
 * attempt was refused. Only an attempt that failed before opening asks, so this module rides in
 * the chunk of the HTTP-streaming fallback (http-stream.ts re-exports it), loaded on first use,
 * not in the entry every page loads (docs/client-sdk.md#size).
 */
export interface AuthCheckOptions {
  url: string;
  authCheckUrl?: string | false | undefined;
  connectTimeoutMs?: number | undefined;
}

/**
 * The verdict on a token; undefined when it cannot be had (unreachable, off). `path`: the
 * protocol's AUTH_CHECK_PATH, handed over by the client (imported here, the protocol module
 * would go in a chunk shared with the entry).
 */
export async function checkAuth(options: AuthCheckOptions, token: string | undefined, path: string, refusal?: string): Promise<AuthCheckResult | undefined> {
  // the HTTP fallback reads its 401 itself and closes 1008 before opening, `refusal` the close
  // reason (`token refused (expired): ...`): that is the verdict
  if (refusal !== undefined)
    return { ok: false, reason: (/\(([a-z_]+)\)/.exec(refusal)?.[1] ?? 'invalid') as AuthFailureReason, message: refusal } as AuthCheckResult;
  const url = authCheckUrl(options, path);
  const f = (globalThis as { fetch?: typeof fetch }).fetch;
  if (!url || !f) return undefined;
  // in the header, never the URL (a cross-origin check costs a preflight, answered by the gateway)
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  try {
    const res = await f(url, { headers, signal: AbortSignal.timeout(options.connectTimeoutMs ?? 10_000), cache: 'no-store' });
    if (res.status !== 200 && res.status !== 401) return undefined;
    const body = (await res.json()) as AuthCheckResult;
    return typeof body?.ok === 'boolean' ? body : undefined; // (null, a string or a number has no `ok`)
  } catch {
    return undefined;
  }
}

function authCheckUrl(options: AuthCheckOptions, path: string): string | undefined {
  const o = options.authCheckUrl;
  if (o === false) return undefined;
  if (typeof o === 'string') return o;
  try {
    const u = new URL(options.url);
    // ws: -> http:, wss: -> https: (http(s) stays)
    u.protocol = u.protocol.replace('ws', 'http');
    // (under the prefix a proxy serves the stream at, if any)
    u.pathname = (/(.*)\/v1\/stream\/?$/.exec(u.pathname)?.[1] ?? '') + path;
    u.search = '';
    return u.toString();
  } catch {
    return undefined;
  }
}
