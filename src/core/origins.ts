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

/** A check of a request's `Origin` and `Host` headers against the entries (validated beforehand). */
export function originCheck(entries: readonly string[]): (origin: string, host: string) => boolean {
  if (entries.length === 0 || entries.includes('*')) return () => true;
  const exact = new Set<string>();
  const suffixes: { scheme: string; suffix: string; port: string }[] = [];
  for (const entry of entries) {
    const e = entry.toLowerCase();
    const m = ENTRY.exec(e)!;
    if (m[2]) suffixes.push({ scheme: m[1]!, suffix: '.' + m[3]!, port: m[4] ?? '' });
    else exact.add(e);
  }
  return (origin, host) => {
    if (origin === '') return true;
    const o = origin.toLowerCase();
    if (exact.has(o)) return true;
    const m = ENTRY.exec(o);
    if (!m || m[2]) return false;
    // the gateway's own pages (the dashboard): the origin names the host the request was sent to
    if (host !== '' && `${m[3]}${m[4] !== undefined ? ':' + m[4] : ''}` === host.toLowerCase()) return true;
    return suffixes.some((s) => s.scheme === m[1] && s.port === (m[4] ?? '') && m[3]!.endsWith(s.suffix));
  };
}
