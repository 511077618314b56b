/**
 * `gateway.allowedHosts`: the names the gateway is reached at, checked against each request's
 * `Host` header (RFC 9112 3.2: the host and port the client sent the request to).
 *
 * Why: a browser decides what a page may read by its origin's *name*, not by the address the name
 * resolves to. A page on `evil.example` whose DNS name is re-bound to the gateway's address
 * (DNS rebinding) sends its requests to the gateway with `Host: evil.example` and, to the browser,
 * is reading its own site: it can read every answer, and to the gateway's own-origin rule of
 * gateway.allowedOrigins (src/core/origins.ts: the origin names the request's Host) it looks
 * like the dashboard. Answering only the host names the operator named closes that: the
 * attacker's name is never one of them (the same defence as Django's ALLOWED_HOSTS, Vite's
 * server.allowedHosts and geth's --http.vhosts).
 *
 * Always allowed, whatever the list says: IP literals (`127.0.0.1`, `[::1]`, `10.1.2.3`: a page
 * cannot be served from an address it does not own, and kube-probes and load-balancer health
 * checks send the address), `localhost` and `*.localhost` (browsers resolve those to loopback
 * themselves, RFC 6761 6.3), and the listen address `host` when it is a name. Entries: `*` (any
 * host: the check is off), a name (`md.example.com`) or `*.example.com` (any subdomain, not
 * example.com itself). The port in Host is not compared: the page has to reach the gateway's port
 * to be answered at all.
 */

/** RFC 3986 reg-name as DNS names use it: letters, digits, hyphens, dots (and `_`, seen in internal names). */
const NAME = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*\.?$/i;
const ENTRY = /^(\*\.)?([a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*)$/i;
const IPV4 = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
/** the inside of an IP-literal (RFC 3986 3.2.2): hex groups, colons, an embedded IPv4, a zone */
const IPV6 = /^[0-9a-f:.]*:[0-9a-f:.]*(?:%25[a-z0-9._~-]+)?$/i;

/** Why `entry` is not an allowed-host entry, or undefined. */
export function hostEntryProblem(entry: string): string | undefined {
  if (entry === '*') return undefined;
  if (/:\d*$/.test(entry) && !entry.startsWith('[')) return `"${entry}": give the host name without a port (the port is not compared)`;
  if (!ENTRY.test(entry) && !IPV4.test(entry)) return `"${entry}" is not a host name: use md.example.com, *.example.com or *`;
  return undefined;
}

/** A Host header split into its host (lower case, without brackets and a trailing dot) and port; undefined when it is not host[:port]. */
export function parseHost(value: string): { host: string; ip: boolean } | undefined {
  const v = value.trim().toLowerCase();
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0) return undefined;
    const rest = v.slice(end + 1);
    if (rest !== '' && !/^:\d{1,5}$/.test(rest)) return undefined;
    const inside = v.slice(1, end);
    return IPV6.test(inside) ? { host: inside, ip: true } : undefined;
  }
  const m = /^([^:]+)(?::(\d{0,5}))?$/.exec(v);
  if (!m || !NAME.test(m[1]!)) return undefined;
  const host = m[1]!.replace(/\.$/, '');
  return { host, ip: IPV4.test(host) };
}

/** Why a Host header value is malformed (RFC 9112 3.2: 400), or undefined. */
export function hostValueProblem(value: string): string | undefined {
  if (value.trim() === '') return 'the Host header is empty';
  return parseHost(value) === undefined ? `Host ${JSON.stringify(value.slice(0, 80))} is not host[:port]` : undefined;
}

/**
 * A check of a request's Host header against the entries (validated beforehand) and the names
 * always allowed; `listenHost` is the address the gateway listens on (`host`). True: answer it.
 */
export function hostCheck(entries: readonly string[], listenHost: string): (hostHeader: string) => boolean {
  if (entries.includes('*')) return () => true;
  const exact = new Set<string>(['localhost']);
  const suffixes = ['.localhost'];
  const listen = parseHost(listenHost);
  if (listen && !listen.ip) exact.add(listen.host);
  for (const entry of entries) {
    const e = entry.toLowerCase().replace(/\.$/, '');
    if (e.startsWith('*.')) suffixes.push(e.slice(1));
    else exact.add(e);
  }
  return (hostHeader) => {
    const h = parseHost(hostHeader);
    if (!h) return false;
    return h.ip || exact.has(h.host) || suffixes.some((s) => h.host.endsWith(s));
  };
}

/** The Host names a gateway answers, as its start-up log line says them. */
export function answeredHosts(entries: readonly string[], listenHost: string): string {
  if (entries.includes('*')) return 'any (gateway.allowedHosts: *)';
  const listen = parseHost(listenHost);
  const names = [...(listen && !listen.ip ? [listen.host] : []), ...entries];
  return `IP addresses, localhost, *.localhost${names.map((n) => `, ${n}`).join('')}`;
}
