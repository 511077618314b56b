import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { sendJson } from '../http/http.js';
import { AUTH_CHECK_PATH } from '../protocol/index.js';
import type { AuthCheckResult, AuthFailureReason } from '../protocol/index.js';
import type { Authenticator } from './auth-hook.js';
import { sessionVerdict } from './auth-hook.js';

/**
 * `GET /v1/auth/check` (protocol extension, docs/protocol.md#auth-check): the verdict the
 * upgrade would give a token, readable by a browser. A refused WebSocket upgrade shows a browser
 * nothing (no status, no body: just an `error` and a 1006 close), so the client SDK asks here
 * after an attempt that never opened, and stops retrying a token that can never work.
 *
 * CORS: any origin may read the answer (`Access-Control-Allow-Origin: *`, no credentials: the
 * token travels explicitly, never in a cookie). The preflight a browser sends for an
 * `Authorization` header is answered too. Answers are never cached.
 */
const CORS = { 'access-control-allow-origin': '*', 'cache-control': 'no-store' };

/** Why a token could not be checked at all (the verifier failed): not a verdict on the token. */
const VERIFIER_FAILED = 'the token could not be checked now: retry later';

/**
 * The answer of the WebSocket upgrade and the HTTP-stream open when the verifier failed (threw):
 * 503 with `Retry-After`, as GET /v1/auth/check answers 503 then; never 401, which clients take
 * as "this token will never do".
 */
export function answerVerifierFailed(res: HttpResponse, headers: Record<string, string> = {}): void {
  sendJson(res, 503, { error: 'UNAUTHENTICATED', code: 'jwks_unavailable', message: VERIFIER_FAILED }, { ...headers, 'retry-after': '5' });
}

/**
 * The token of a request: `Authorization: Bearer` wins over `fallback` (`?token=`, or at the
 * upgrade the token subprotocol first). A header of the Bearer scheme that is not one token
 * (`Bearer`, `Bearer a b`) is a malformed token, refused as one, not a request without a token:
 * in `optional` mode it would otherwise go on anonymously. Other schemes (`Basic`, a proxy's
 * own) are not ours and are passed over.
 */
export function tokenOf(authorization: string, fallback: string | undefined): string | undefined {
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return bearer[1];
  if (/^Bearer(\s|$)/i.test(authorization)) return MALFORMED_BEARER;
  return fallback ? fallback : undefined;
}

/** what a malformed Bearer header is verified as: not a JWT, so refused as malformed */
const MALFORMED_BEARER = 'malformed-bearer-header';

export function registerAuthCheck(app: TemplatedApp, authenticator: Authenticator): void {
  app.options(AUTH_CHECK_PATH, (res) => {
    res.cork(() => {
      res.writeStatus('204 No Content');
      for (const [k, v] of Object.entries(CORS)) res.writeHeader(k, v);
      res.writeHeader('access-control-allow-methods', 'GET');
      res.writeHeader('access-control-allow-headers', 'authorization');
      res.writeHeader('access-control-max-age', '600');
      res.end();
    });
  });
  app.get(AUTH_CHECK_PATH, (res, req) => {
    const token = tokenOf(req.getHeader('authorization'), req.getQuery('token'));
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const mode = authenticator.mode;
    if (mode === 'off' || (mode === 'optional' && token === undefined)) {
      answer(res, 200, { ok: true, mode });
      return;
    }
    authenticator.authenticate(token).then(
      (verified) => {
        // the check answers for a session: a token past its exp would be refused there
        const r = sessionVerdict(verified);
        if (aborted) return;
        if (r.ok) {
          const body: AuthCheckResult = { ok: true, mode };
          if (r.principal.user !== undefined) body.sub = r.principal.user;
          if (r.expiresAt !== undefined) body.expires = r.expiresAt;
          answer(res, 200, body);
        } else {
          answer(
            res,
            401,
            { ok: false, error: 'UNAUTHENTICATED', reason: r.code as AuthFailureReason, message: r.reason },
            { 'www-authenticate': 'Bearer error="invalid_token"' },
          );
        }
      },
      () => {
        if (!aborted) answer(res, 503, { ok: false, error: 'UNAUTHENTICATED', reason: 'jwks_unavailable', message: VERIFIER_FAILED });
      },
    );
  });
}

function answer(res: HttpResponse, status: number, body: AuthCheckResult, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, { ...CORS, ...headers });
}
