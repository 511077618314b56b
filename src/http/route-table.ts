import type { HttpRequest, HttpResponse, RecognizedString, TemplatedApp } from 'uWebSockets.js';
import { sendJson, sendText } from './http.js';

type Handler = Parameters<TemplatedApp['get']>[1];
const METHODS = ['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'connect', 'trace'] as const;

/**
 * The methods each route of an app takes, so that a request whose path has a route but not for
 * its method is told so (RFC 9110 15.5.6: 405 with `Allow`), not "no route" (404). Catch-alls
 * (`any`, and patterns ending in `*`) answer every method themselves and are not listed. A path
 * with a GET route and no HEAD route takes HEAD too (RFC 9110 9.1: a server that supports GET
 * should support HEAD), answered by its GET handler without the body (`getRoute`, `headResponse`).
 */
export class RouteTable {
  readonly #routes: { method: string; path: RegExp; handler?: Handler }[] = [];

  add(method: (typeof METHODS)[number], pattern: string, handler?: Handler): void {
    if (pattern.endsWith('*')) return;
    const source = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '([^/]+)');
    this.#routes.push({ method: method === 'del' ? 'DELETE' : method.toUpperCase(), path: new RegExp(`^${source}$`), ...(handler ? { handler } : {}) });
  }

  /** The methods that have a route for `url` (a path, without the query), in registration order; HEAD after GET. */
  allowed(url: string): string[] {
    const methods = this.#routes.filter((r) => r.path.test(url)).map((r) => r.method);
    const i = methods.indexOf('GET');
    if (i >= 0 && !methods.includes('HEAD')) methods.splice(i + 1, 0, 'HEAD');
    return [...new Set(methods)];
  }

  /** The GET route of `url` when it has no HEAD route of its own: its handler and its `:parameters`. */
  getRoute(url: string): { handler: Handler; params: string[] } | undefined {
    const matching = this.#routes.filter((r) => r.path.test(url));
    if (matching.some((r) => r.method === 'HEAD')) return undefined;
    const get = matching.find((r) => r.method === 'GET' && r.handler);
    if (!get?.handler) return undefined;
    return { handler: get.handler, params: get.path.exec(url)!.slice(1) };
  }
}

/** The byte length of a body uWS takes. */
function byteLength(body: RecognizedString | undefined): number {
  if (body === undefined) return 0;
  return typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
}

/**
 * `res` for a GET handler answering a HEAD request (RFC 9110 9.3.2): the handler's status and
 * headers go out as they are, the body does not; `Content-Length` is the length GET would send.
 * Calls that return the response return this wrapper, so chained calls stay wrapped.
 */
export function headResponse(res: HttpResponse): HttpResponse {
  let written = 0;
  const proxy: HttpResponse = new Proxy(res, {
    get(target, prop) {
      if (prop === 'write')
        return (chunk: RecognizedString): boolean => {
          written += byteLength(chunk);
          return true;
        };
      if (prop === 'end' || prop === 'tryEnd')
        return (body?: RecognizedString, _totalOrClose?: unknown): HttpResponse | [boolean, boolean] => {
          // endWithoutBody(length) aborts the process in uWS 20.30: the header is written by hand (as sendText does)
          target.writeHeader('content-length', String(written + byteLength(body))).endWithoutBody();
          return prop === 'end' ? proxy : [true, true];
        };
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const out = (value as (...a: unknown[]) => unknown).apply(target, args);
        return out === target ? proxy : out;
      };
    },
  });
  return proxy;
}

/** `req` whose `getParameter` gives `params` (a GET route's, run from a catch-all route). */
export function withParameters(req: HttpRequest, params: readonly string[]): HttpRequest {
  return new Proxy(req, {
    get(target, prop) {
      if (prop === 'getParameter') return (i: number | string): string | undefined => (typeof i === 'number' ? params[i] : undefined);
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** Record every route registered on `app` from now on (any module's) in `table`. */
export function recordRoutes(app: TemplatedApp, table: RouteTable): TemplatedApp {
  const target = app as unknown as Record<(typeof METHODS)[number], (pattern: string, handler: Handler) => TemplatedApp>;
  for (const m of METHODS) {
    const register = target[m].bind(app);
    target[m] = (pattern, handler) => {
      table.add(m, pattern, m === 'get' ? handler : undefined);
      return register(pattern, handler);
    };
  }
  return app;
}

/**
 * The answer to a request no route took: 404 when nothing lives at the path; when something does
 * (`allow`: its methods), 204 with `Allow` to OPTIONS (no CORS headers: a cross-origin preflight
 * fails, as it should) and 405 `METHOD_NOT_ALLOWED` with `Allow` to any other method.
 */
export function answerUnrouted(
  res: HttpResponse,
  method: string,
  url: string,
  allow: readonly string[],
  headers: Readonly<Record<string, string>> = {},
  what = 'route',
): void {
  const head = method === 'HEAD';
  if (allow.length === 0) {
    sendJson(res, 404, { error: 'NOT_FOUND', message: `no ${what} for ${method} ${url}` }, headers, head);
  } else if (method === 'OPTIONS') {
    sendText(res, 204, '', 'text/plain; charset=utf-8', { ...headers, allow: allow.join(', ') });
  } else {
    const body = { error: 'METHOD_NOT_ALLOWED', message: `${method} ${url}: this ${what} takes ${allow.join(', ')}` };
    sendJson(res, 405, body, { ...headers, allow: allow.join(', ') }, head);
  }
}
