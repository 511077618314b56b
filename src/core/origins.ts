/**
 * `gateway.allowedOrigins`: which web pages may open a stream (a WebSocket upgrade, the
 * HTTP-streaming fallback). Browsers send the page's origin in `Origin`; other clients (the SDK in
 * Node, servers) send none and are not concerned. An empty list allows every origin (the default,
 * as protocol v1 always did); otherwise a request is allowed when it has no `Origin`, when the
 * origin is the gateway's own (the dashboard it serves: the origin's host is the request's
 * `Host`), or when an entry matches it. Entries: `*` (any), an exact origin
 * (`https://app.example.com`, `http://localhost:3000`), or one with a wildcard first label
 * (`https://*.example.com`: any subdomain of example.com, not example.com itself).
 */

const ENTRY = /^(https?):\/\/(\*\.)?([a-z0-9-]+(?:\.[a-z0-9-]+)*)(?::(\d{1,5}))?$/i;

/** Why `entry` is not an allowed-origin entry, or undefined. */
export function originEntryProblem(entry: string): string | undefined {
  if (entry === '*') return undefined;
  const m = ENTRY.exec(entry);
  if (!m) return `"${entry}" is not an origin: use scheme://host[:port] (e.g. https://app.example.com), https://*.example.com or *`;
  if (m[4] !== undefined && (Number(m[4]) < 1 || Number(m[4]) > 65535)) return `"${entry}": the port must be 1 to 65535`;
  return undefined;
}

const DEFAULT_PORT: Readonly<Record<string, string>> = { http: '80', https: '443' };

/** the port of an origin as compared: '' for none or the scheme's default (`https://a:443` is `https://a`) */
const portOf = (scheme: string, port: string | undefined): string => (port === undefined || port === DEFAULT_PORT[scheme] ? '' : String(Number(port)));

/** A check of a request's `Origin` and `Host` headers against the entries (validated beforehand). */
export function originCheck(entries: readonly string[]): (origin: string, host: string) => boolean {
  if (entries.length === 0 || entries.includes('*')) return () => true;
  const exact = new Set<string>();
  const suffixes: { scheme: string; suffix: string; port: string }[] = [];
  const key = (scheme: string, host: string, port: string): string => `${scheme}://${host}${port ? ':' + port : ''}`;
  for (const entry of entries) {
    const m = ENTRY.exec(entry.toLowerCase())!;
    const port = portOf(m[1]!, m[4]);
    if (m[2]) suffixes.push({ scheme: m[1]!, suffix: '.' + m[3]!, port });
    else exact.add(key(m[1]!, m[3]!, port));
  }
  return (origin, host) => {
    if (origin === '') return true;
    const m = ENTRY.exec(origin.toLowerCase());
    if (!m || m[2]) return false;
    const scheme = m[1]!;
    const port = portOf(scheme, m[4]);
    if (exact.has(key(scheme, m[3]!, port))) return true;
    // the gateway's own pages (the dashboard): the origin names the host the request was sent to
    const h = host.toLowerCase();
    if (h !== '' && (`${m[3]}${m[4] !== undefined ? ':' + m[4] : ''}` === h || `${m[3]}${port ? ':' + port : ''}` === h)) return true;
    return suffixes.some((s) => s.scheme === scheme && s.port === port && m[3]!.endsWith(s.suffix));
  };
}
