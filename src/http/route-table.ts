import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { sendJson, sendText } from './http.js';

type Handler = Parameters<TemplatedApp['get']>[1];
const METHODS = ['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'connect', 'trace'] as const;

/**
 * The methods each route of an app takes, so that a request whose path has a route but not for
 * its method is told so (RFC 9110 15.5.6: 405 with `Allow`), not "no route" (404). Catch-alls
 * (`any`, and patterns ending in `*`) answer every method themselves and are not listed.
 */
export class RouteTable {
  readonly #routes: { method: string; path: RegExp }[] = [];

  add(method: (typeof METHODS)[number], pattern: string): void {
    if (pattern.endsWith('*')) return;
    const source = pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+');
    this.#routes.push({ method: method === 'del' ? 'DELETE' : method.toUpperCase(), path: new RegExp(`^${source}$`) });
  }

  /** The methods that have a route for `url` (a path, without the query), in registration order. */
  allowed(url: string): string[] {
    return [...new Set(this.#routes.filter((r) => r.path.test(url)).map((r) => r.method))];
  }
}

/** Record every route registered on `app` from now on (any module's) in `table`. */
export function recordRoutes(app: TemplatedApp, table: RouteTable): TemplatedApp {
  const target = app as unknown as Record<(typeof METHODS)[number], (pattern: string, handler: Handler) => TemplatedApp>;
  for (const m of METHODS) {
    const register = target[m].bind(app);
    target[m] = (pattern, handler) => {
      table.add(m, pattern);
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
