/**
 * The forms of `redisUrl` (REDIS_URL):
 *
 *   redis://[[user]:password@]host:port[/db]        one Redis server (rediss:// for TLS)
 *   redis+sentinel://[[user]:password@]host:port[,host:port...]/<master name>[/db][?sentinelPassword=...&sentinelUsername=...]
 *                                                   Redis Sentinel: the sentinels to ask, the name of the
 *                                                   monitored primary (`sentinel monitor <name> ...`);
 *                                                   user/password are those of the Redis servers
 *
 * Parsing is kept free of ioredis so the config schema can validate without connecting.
 */
export interface SentinelTarget {
  kind: 'sentinel';
  sentinels: { host: string; port: number }[];
  name: string;
  db: number;
  username?: string;
  password?: string;
  sentinelUsername?: string;
  sentinelPassword?: string;
}
export type RedisTarget = { kind: 'url'; url: string } | SentinelTarget;

/** Parse a redisUrl, or return a message saying what is wrong with it (without the password). */
export function parseRedisUrl(raw: string): RedisTarget | { error: string } {
  const url = raw.trim();
  const scheme = /^([a-z+]+):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === 'redis' || scheme === 'rediss') {
    const problem = plainUrlProblem(url.slice(scheme.length + 3));
    return problem === undefined ? { kind: 'url', url } : { error: problem };
  }
  if (scheme !== 'redis+sentinel') {
    return {
      error:
        'must start with redis://, rediss:// or redis+sentinel:// (e.g. redis://127.0.0.1:6379 or redis+sentinel://10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/mymaster)',
    };
  }
  let rest = url.slice('redis+sentinel://'.length);
  let query = '';
  const q = rest.indexOf('?');
  if (q >= 0) {
    query = rest.slice(q + 1);
    rest = rest.slice(0, q);
  }
  let auth = '';
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  const slash = rest.indexOf('/');
  const hostList = slash >= 0 ? rest.slice(0, slash) : rest;
  const path = slash >= 0 ? rest.slice(slash + 1).split('/') : [];
  const sentinels: { host: string; port: number }[] = [];
  for (const part of hostList
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(part);
    const port = m?.[2] === undefined ? 26379 : Number(m[2]);
    if (!m || port < 1 || port > 65535) return { error: `redis+sentinel: "${part}" is not host:port of a sentinel` };
    sentinels.push({ host: m[1]!.replace(/^\[|\]$/g, ''), port });
  }
  if (sentinels.length === 0) return { error: 'redis+sentinel: list at least one sentinel host:port before the master name' };
  const name = decodeURIComponent(path[0] ?? '');
  if (!name) return { error: 'redis+sentinel: the master name is missing: add /<name> as in `sentinel monitor <name> ...` (e.g. .../mymaster)' };
  let db = 0;
  if (path.length > 2 || (path[1] !== undefined && !/^\d{1,2}$/.test(path[1])))
    return { error: 'redis+sentinel: after the master name only a database number may follow (/mymaster/0)' };
  if (path[1] !== undefined) db = Number(path[1]);
  const out: SentinelTarget = { kind: 'sentinel', sentinels, name, db };
  if (auth) {
    const colon = auth.indexOf(':');
    const user = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : '');
    const pass = decodeURIComponent(colon >= 0 ? auth.slice(colon + 1) : auth);
    if (user) out.username = user;
    if (pass) out.password = pass;
  }
  const params = new URLSearchParams(query);
  for (const key of params.keys()) {
    if (key !== 'sentinelPassword' && key !== 'sentinelUsername')
      return { error: `redis+sentinel: unknown parameter "${key}" (sentinelPassword and sentinelUsername are accepted)` };
  }
  const sp = params.get('sentinelPassword');
  const su = params.get('sentinelUsername');
  if (sp) out.sentinelPassword = sp;
  if (su) out.sentinelUsername = su;
  return out;
}

/**
 * What is wrong with the part of a redis:// URL after the scheme, if anything. ioredis parses it
 * with the WHATWG URL parser when it connects: a port above 65535 used to pass the schema and end
 * the start with "unexpected failure: TypeError: Invalid URL". The message never quotes the URL
 * (it may hold a password).
 */
function plainUrlProblem(rest: string): string | undefined {
  const form = 'write redis://[[user]:password@]host:port[/db] (e.g. redis://127.0.0.1:6379), the password percent-encoded';
  const at = rest.lastIndexOf('@');
  const m = /^(\[[0-9a-f:.]*\]|[^:/?#[\]]*)(?::([^/?#]*))?(\/[^?#]*)?([?#].*)?$/i.exec(at >= 0 ? rest.slice(at + 1) : rest);
  if (!m) return `the host:port is not valid: ${form}`;
  const port = m[2];
  if (port !== undefined && port !== '' && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535))
    return /^\d+$/.test(port) ? `port ${port} is not a port: use a port from 1 to 65535 (${form})` : `the port is not a number: ${form}`;
  if (m[3] !== undefined && !/^\/(\d{1,2})?$/.test(m[3])) return `only a database number may follow host:port (/0, /1, ...): ${form}`;
  try {
    new URL(`redis://${rest}`);
  } catch {
    return `it is not a valid URL: ${form}`;
  }
  return undefined;
}
