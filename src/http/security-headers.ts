/**
 * The security headers of the gateway's HTTP answers (docs/operations.md#browser-security).
 *
 * Every answer says `X-Content-Type-Options: nosniff` (sendText adds it): a browser takes the
 * Content-Type as written and never runs, say, a JSON error body that echoes a request path as a
 * script or a page. The two pages (the dashboard and the operator's console) also carry:
 *
 * - a Content-Security-Policy: scripts, styles and images from the gateway itself only (no
 *   inline script, no eval, no plugins, no `<base>` rewriting), so that a string that ever slips
 *   into the DOM as markup still cannot run;
 * - `frame-ancestors 'none'` and `X-Frame-Options: DENY` (for browsers without CSP 2): no other
 *   site can frame them and trick a click on "close", "post" or "Create alert" (clickjacking);
 * - `Referrer-Policy: no-referrer`: the page's address, which may hold `?token=`, is never sent
 *   to another server, nor to the gateway's own access logs, as a Referer.
 *
 * Both pages carry `<meta name="tickwire-page">`, which is how the gateway knows them among the
 * files of its web folder (staticFileHeaders). The dashboard may stream from another gateway (`?ws=`), so it may connect to any ws/wss/http/https
 * host; the console talks to its own gateway only (`connect-src 'self'`) and is never stored
 * (`no-store`: the page belongs to an operator's session).
 */
export const NOSNIFF = { 'x-content-type-options': 'nosniff' } as const;

/**
 * CORS of the read routes any origin may call (chart history, and the per-IP 429 before a costly
 * route): `*` without credentials, since the token travels explicitly (`Authorization`, `?token=`),
 * never in a cookie; `Retry-After` is not a CORS-safelisted response header, so it is exposed for
 * the 429s and 503s.
 */
export const READ_CORS: Readonly<Record<string, string>> = { 'access-control-allow-origin': '*', 'access-control-expose-headers': 'retry-after' };

const csp = (connect: string): string =>
  [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src ${connect}`,
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');

const PAGE = { 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' } as const;

/** The dashboard (index.html): no-cache (revalidated, so a new build shows at once). */
export const DASHBOARD_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': csp("'self' ws: wss: http: https:"),
  ...PAGE,
  'cache-control': 'no-cache',
};

/** The operator's console (/admin, admin.html). */
export const ADMIN_PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': csp("'self'"),
  ...PAGE,
  'cache-control': 'no-store',
};

/** Every answer of the admin API (lists of users and IPs, refusals): kept by no cache. */
export const ADMIN_API_HEADERS: Readonly<Record<string, string>> = { 'cache-control': 'no-store' };

/** The console's page file, also reachable as a static file. */
export const ADMIN_PAGE_FILE = 'admin.html';

/**
 * How tickwire's own pages say which they are: `<meta name="tickwire-page" content="dashboard">`
 * (web/index.html) or `content="console"` (web/admin/admin.html). The policies are written for
 * those pages; other pages an operator serves from `gateway.webDir` (with inline scripts or
 * styles, meant to be framed) keep their own ways and get only nosniff and no-cache.
 */
const PAGE_MARKER = /<meta\s+name="tickwire-page"\s+content="(dashboard|console)"\s*\/?>/;

/** Headers of a static file of the web folder, from its name and content. */
export function staticFileHeaders(name: string, body: Uint8Array): Readonly<Record<string, string>> {
  if (name.endsWith('.html')) {
    const page = PAGE_MARKER.exec(Buffer.from(body.buffer, body.byteOffset, Math.min(body.byteLength, 4096)).toString('utf8'))?.[1];
    if (page === 'console') return ADMIN_PAGE_HEADERS;
    if (page === 'dashboard') return DASHBOARD_PAGE_HEADERS;
  }
  return { 'cache-control': 'no-cache' };
}
