import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { sendJson } from './http.js';

type Handler = (res: HttpResponse, req: HttpRequest) => unknown;
const METHODS = ['get', 'post', 'put', 'del', 'patch', 'options', 'head', 'connect', 'trace', 'any'] as const;

/**
 * 421 HOST_NOT_ALLOWED (RFC 9110 15.5.20, Misdirected Request: this server does not answer for
 * that host): the request's Host is not a name gateway.allowedHosts answers (src/core/hosts.ts).
 * No CORS headers: the page that sent it is not one of the gateway's.
 */
export function refuseHost(res: HttpResponse, host: string): void {
  sendJson(res, 421, {
    error: 'HOST_NOT_ALLOWED',
    message: `requests for host ${JSON.stringify(host.slice(0, 200))} are not answered here: if the gateway is reached at that name, add it to gateway.allowedHosts (TICKWIRE_GATEWAY_ALLOWED_HOSTS)`,
  });
}

/**
 * Check the Host of every HTTP request on `app` before its route runs (routes registered later
 * too): a host `allowed` refuses gets `refuseHost` and never reaches the route; `onRefused`
 * counts and logs. WebSocket upgrades are checked by the caller.
 */
export function guardHost(app: TemplatedApp, allowed: (host: string) => boolean, onRefused: (host: string) => void): TemplatedApp {
  const target = app as unknown as Record<(typeof METHODS)[number], (pattern: string, handler: Handler) => TemplatedApp>;
  for (const m of METHODS) {
    const register = target[m].bind(app);
    target[m] = (pattern, handler) =>
      register(pattern, (res, req) => {
        const host = req.getHeader('host');
        if (allowed(host)) return handler(res, req);
        onRefused(host);
        refuseHost(res, host);
        return undefined;
      });
  }
  return app;
}
