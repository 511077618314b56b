import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { hostValueProblem } from '../core/hosts.js';
import { statusLine } from './http.js';
import { NOSNIFF } from './security-headers.js';

/** RFC 9110 5.1: a field name is a token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/i;
/** RFC 9110 5.5: field values hold no control characters other than HTAB (CR, LF, NUL included). */
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const DIGITS = /^\d{1,15}$/;

/**
 * Why a request's body length is not unambiguous, or undefined when it is. uWebSockets.js frames
 * the body by the first `Content-Length` it sees, decodes any `Transfer-Encoding` as chunked
 * (`xchunked` and `chunked, identity` included), and takes Content-Length together with
 * Transfer-Encoding; a proxy in front may pick the other reading, and the bytes left over are
 * then parsed as a second request (request smuggling, RFC 9112 6.3 and 11.2). So a request is
 * accepted with at most one Content-Length of plain digits, or exactly one
 * `Transfer-Encoding: chunked` and no Content-Length, at most one Host, and header names and
 * values that are well-formed.
 */
/** false once the uWS build in use turned out not to list headers (its pure-JS fallback) */
let canListHeaders = true;

export function framingProblem(req: HttpRequest): string | undefined {
  if (!canListHeaders) return undefined;
  const headers: [string, string][] = [];
  try {
    req.forEach((name, value) => void headers.push([name, value]));
  } catch {
    // uWS's pure-JS fallback (allowed only with gateway.allowUwsFallback) has no forEach; it parses
    // HTTP with Node's llhttp, which refuses duplicate Content-Length and Content-Length with
    // Transfer-Encoding itself, so the check is left to it
    canListHeaders = false;
    return undefined;
  }
  return framingProblemOf(headers);
}

/**
 * Every line of a header that is a comma-separated list, joined with ", " (RFC 9110 5.3: several
 * lines of such a header are one list, and a proxy may split or join them). uWS's getHeader
 * answers the first line only. `name` in lower case.
 */
export function listHeader(req: HttpRequest, name: string): string {
  if (!canListHeaders) return req.getHeader(name);
  let joined: string | undefined;
  try {
    req.forEach((k, v) => {
      if (k.toLowerCase() === name) joined = joined === undefined ? v : `${joined}, ${v}`;
    });
  } catch {
    canListHeaders = false;
    return req.getHeader(name);
  }
  return joined ?? '';
}

/** `framingProblem` over header (name, value) pairs in arrival order; names in any case. */
export function framingProblemOf(headers: Iterable<readonly [string, string]>): string | undefined {
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let host = false;
  for (const [rawName, value] of headers) {
    const name = rawName.toLowerCase();
    if (!TOKEN.test(name)) return `header name ${JSON.stringify(name.slice(0, 40))} is not a token`;
    if (BAD_VALUE.test(value)) return `header ${name} holds a control character`;
    if (name === 'content-length') {
      if (contentLength !== undefined) return 'more than one Content-Length header';
      if (!DIGITS.test(value.trim())) return `Content-Length ${JSON.stringify(value.slice(0, 40))} is not a decimal number`;
      contentLength = value;
    } else if (name === 'host') {
      // RFC 9112 3.2: "MUST respond with a 400 ... to any that contains more than one Host header
      // field line"; a proxy may route by one and the gateway reads the other (its own-origin check)
      if (host) return 'more than one Host header';
      // and "a Host header field with an invalid field value": the request's host and port
      const problem = hostValueProblem(value);
      if (problem !== undefined) return problem;
      host = true;
    } else if (name === 'transfer-encoding') {
      if (transferEncoding !== undefined) return 'more than one Transfer-Encoding header';
      if (value.trim().toLowerCase() !== 'chunked') return `Transfer-Encoding ${JSON.stringify(value.slice(0, 40))}: only "chunked" is accepted`;
      transferEncoding = value;
    }
  }
  if (contentLength !== undefined && transferEncoding !== undefined) return 'Content-Length together with Transfer-Encoding';
  return undefined;
}

/** The JSON body of a framing refusal. */
export function framingRefusalBody(problem: string): string {
  return JSON.stringify({ error: 'BAD_HTTP_FRAMING', message: `request framing is ambiguous: ${problem}` });
}

/**
 * 400 with a JSON body and `Connection: close`, then the connection is closed, so nothing after
 * this request is parsed. The answer is deferred to the next turn of the event loop on purpose:
 * while a response is pending, uWS (20.30) drops the connection if it parses another request
 * from it, so bytes pipelined behind this request are never answered, whereas a response ended
 * inside the request handler lets uWS parse (and answer) them before it closes. The price: when
 * such bytes arrive in the same read, the client gets a TCP close without the 400.
 */
export function refuseFraming(res: HttpResponse, problem: string): void {
  const body = framingRefusalBody(problem);
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  setImmediate(() => {
    if (aborted) return;
    // end(body, true) writes `Connection: close` and closes once the response is flushed
    res.cork(() =>
      res
        .writeStatus(statusLine(400))
        .writeHeader('content-type', 'application/json')
        .writeHeader('x-content-type-options', NOSNIFF['x-content-type-options'])
        .end(body, true),
    );
  });
}

type Handler = (res: HttpResponse, req: HttpRequest) => unknown;
const METHODS = ['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'connect', 'trace', 'any'] as const;

/**
 * Check the framing of every HTTP request on `app` before its route runs (routes registered
 * later too: the service API, metrics): an ambiguous request gets `refuseFraming` and never
 * reaches the route. `onRefused` counts and logs. WebSocket upgrades are checked by the caller.
 */
export function guardHttpFraming(app: TemplatedApp, onRefused: (problem: string) => void): TemplatedApp {
  const target = app as unknown as Record<(typeof METHODS)[number], (pattern: string, handler: Handler) => TemplatedApp>;
  for (const m of METHODS) {
    const register = target[m].bind(app);
    target[m] = (pattern, handler) =>
      register(pattern, (res, req) => {
        const problem = framingProblem(req);
        if (problem === undefined) return handler(res, req);
        onRefused(problem);
        refuseFraming(res, problem);
        return undefined;
      });
  }
  return app;
}

/** The body of the answer to a request whose route handler threw (nothing of the exception in it). */
const HANDLER_ERROR_BODY = JSON.stringify({ error: 'INTERNAL', message: 'the request failed on the server (the error is logged)' });

/**
 * Catch what a route handler on `app` throws synchronously (routes registered later too). uWS
 * does not catch it: the exception reaches Node as an uncaught exception and the process exits,
 * so one request with, say, a malformed percent-encoding a handler did not expect would take the
 * gateway and every connection on it down. Instead the request gets 500 INTERNAL (unless it
 * was already answered) and `onThrown` logs the error with `METHOD /path`.
 */
export function guardHandlerErrors(app: TemplatedApp, onThrown: (err: unknown, where: string) => void): TemplatedApp {
  const target = app as unknown as Record<(typeof METHODS)[number], (pattern: string, handler: Handler) => TemplatedApp>;
  for (const m of METHODS) {
    const register = target[m].bind(app);
    target[m] = (pattern, handler) =>
      register(pattern, (res, req) => {
        try {
          return handler(res, req);
        } catch (err) {
          // still inside uWS's call: the request object is valid until this returns
          onThrown(err, `${req.getMethod().toUpperCase()} ${req.getUrl()}`);
          try {
            res.cork(() =>
              res
                .writeStatus(statusLine(500))
                .writeHeader('content-type', 'application/json')
                .writeHeader('x-content-type-options', NOSNIFF['x-content-type-options'])
                .end(HANDLER_ERROR_BODY, true),
            );
          } catch {
            // the handler had answered (or the client had gone) before it threw
          }
          return undefined;
        }
      });
  }
  return app;
}
