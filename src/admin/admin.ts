import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { z } from 'zod';
import type { Announcement } from '../executions/schemas.js';
import { AnnouncementSchema, describeIssue } from '../executions/schemas.js';
import type { Authenticator } from '../gateway/auth-hook.js';
import { CLOSE_POLICY } from '../gateway/connection.js';
import { queryPairs } from '../http/query.js';
import type { Connection } from '../gateway/connection.js';
import type { Gateway } from '../gateway/server.js';
import { HttpError, readJson, remoteAddress, sendJson, sendText } from '../http/http.js';
import { answerUnrouted, headResponse, RouteTable, withParameters } from '../http/route-table.js';
import { ADMIN_API_HEADERS, ADMIN_PAGE_FILE, ADMIN_PAGE_HEADERS } from '../http/security-headers.js';
import type { FeedHealthEntry } from '../ingest/feed-health-view.js';
import { ServiceTokens } from '../access/service-tokens.js';
import type { ScopeRefusalCounts } from '../access/service-tokens.js';
import type { ServiceTokenSpec } from '../access/service-tokens.js';
import type { ServiceScope } from '../core/config.js';

/**
 * The operator's console: a JSON API under /admin/api/ and the page at /admin that uses it.
 *
 *   GET  /admin/api/overview                 the first 100 connections by attention, the 100 busiest channels, their totals, feeds
 *   GET  /admin/api/session                  {token, scopes}: the presented token's name and scopes
 *   GET  /admin/api/connections              ?limit=&after=&user=&ip= -> {at, connections, matched, totals, next}: a page, oldest first
 *   GET  /admin/api/channels                 a page of channels {channels, matched, totals, next}: ?limit= ?after= ?search= ?order=
 *   GET  /admin/api/feeds                    [{id, state, lagMs, reporting, ...the feed's health report}]
 *   POST /admin/api/announcements            {level, title, message} -> every connection's `system` channel
 *   POST /admin/api/connections/{id}/close   closes that connection (1008, "closed by an operator")
 *
 * Every API request needs `Authorization: Bearer <service token>`: the GETs the scope admin:read,
 * the POSTs admin:write (docs/auth.md#service-tokens-and-scopes). 401 without a valid token, 403
 * for a service token without the scope or a user's token (a user is not an operator). The page itself holds no data: it
 * asks for the token and sends it with each request. The token travels only in that header, which
 * a browser never adds by itself, so another site cannot make an operator's browser post or close
 * (no CSRF), and no API answer carries CORS headers. Every answer is `Cache-Control: no-store`;
 * the page carries the console's CSP and framing policy (src/http/security-headers.ts). A method
 * a route does not take gets 405 with `Allow`.
 */
export interface AdminOptions {
  gateway: Gateway;
  /** TICKWIRE_SERVICE_TOKEN, every scope; with serviceTokens unset too, the API answers 401 to everything */
  serviceToken: string | undefined;
  /** auth.serviceTokens: named tokens, each with its scopes */
  serviceTokens?: readonly ServiceTokenSpec[] | undefined;
  /** tells a user's token (403) from no valid token (401) */
  authenticator: Authenticator;
  /**
   * The per-IP budget of costly HTTP requests (limits.httpRequestsPerIpPerSec): a bearer token
   * that is not a service token is verified as a user's only within it (beyond it: the 401).
   */
  admitHttp?: ((ip: string) => unknown) | undefined;
  /** where 403 scope refusals are counted (the gateway's, shared with the service API) */
  scopeRefusals?: ScopeRefusalCounts | undefined;
  /** feed health as this gateway hears it on the bus */
  feeds: () => FeedHealthEntry[];
  /** publish an announcement on every gateway's `system` channel; returns its time */
  announce: (a: Announcement) => number;
  /** where the built dashboard lives (admin.html, admin.js); default dist/web, like gateway.webDir */
  webDir?: string | undefined;
  /**
   * Gateway workers (src/workers): the lists of every worker of this process, and a close that
   * finds the connection on whichever worker holds it. Unset: this gateway's own.
   */
  peers?: AdminPeers | undefined;
  /** sampling period of the channel update rates, ms (default 1000) */
  sampleMs?: number;
  log?: { info(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/**
 * How many connections GET /admin/api/overview lists (with exact totals of them all). The console
 * polls it every second; listing every connection cost about 520 bytes each, copied from each
 * gateway worker and serialised at each poll: 1.3 MB at 2,560 connections, 10 MB at the
 * connection ceiling, chosen by whoever opens connections (test/hostile/admin-connections.test.ts).
 * 100 rows is what a person reads on one screen; they are the ones that need an operator first
 * (CONNECTION_ORDER.attention), and /admin/api/connections pages through and searches the rest.
 */
export const ADMIN_OVERVIEW_CONNECTIONS = 100;
/** GET /admin/api/connections: rows per page without `limit`, and the most `limit` may ask for */
export const ADMIN_PAGE_DEFAULT = 100;
export const ADMIN_PAGE_MAX = 500;

/**
 * `attention` (the overview): slow connections first (paused by the slow-consumer policy, the
 * next to be closed with 4009), then the most bytes buffered (the memory they hold), then the
 * newest (a sudden crowd of new connections is what an operator looks at during an incident).
 * `opened` (the pages of /admin/api/connections): oldest first, by (openedAt, id), an order that
 * does not move between two requests, so a cursor (`after`) neither skips nor repeats a row.
 */
export type ConnectionOrder = 'attention' | 'opened';

export interface ConnectionQuery {
  order: ConnectionOrder;
  /** at most this many rows */
  limit: number;
  /** `opened` only: the rows after this one (the previous page's `next`) */
  after?: { openedAt: number; id: string } | undefined;
  /** only this user's connections (exact user id) */
  user?: string | undefined;
  /** only the connections from this address (exact, as the `ip` column shows it) */
  ip?: string | undefined;
  /** the channel rows asked for with the connections (unset: none, only their totals) */
  channels?: ChannelQuery | undefined;
}

/** Exact figures over every channel (the search aside). */
export interface ChannelTotals {
  /** channels with at least one subscriber (a private channel such as `portfolio` is one, whatever the users) */
  channels: number;
  /** subscriptions to them, every channel together */
  subscribers: number;
}

/**
 * How many channels GET /admin/api/overview lists (the busiest: most subscribers, with exact
 * totals of them all), and the rows per page of GET /admin/api/channels. A gateway's channels
 * grow with the instruments and channel kinds its clients ask for (each client chooses up to
 * gateway.maxSubscriptions names): every one of them, with its tiers and rate, was listed at each
 * of the console's polls (test/hostile/admin-channels.test.ts).
 */
export const ADMIN_OVERVIEW_CHANNELS = 100;

/**
 * `busiest`: most subscribers first, then by name (the overview). `name`: by name (code-unit
 * order), an order that does not move between two requests, so a cursor (`after`: the last
 * name of the previous page) neither skips nor repeats a row.
 */
export type ChannelOrder = 'busiest' | 'name';

export interface ChannelQuery {
  order: ChannelOrder;
  /** at most this many rows (0: the totals only) */
  limit: number;
  /** `name` only: the channels after this name */
  after?: string | undefined;
  /** only the channels whose name contains this text (case-insensitive) */
  search?: string | undefined;
}

export const OVERVIEW_CHANNELS: ChannelQuery = { order: 'busiest', limit: ADMIN_OVERVIEW_CHANNELS };

export const OVERVIEW_QUERY: ConnectionQuery = { order: 'attention', limit: ADMIN_OVERVIEW_CONNECTIONS, channels: OVERVIEW_CHANNELS };

/** Exact figures over every connection (the filter aside). */
export interface ConnectionTotals {
  connections: number;
  slow: number;
  bufferedBytes: number;
}

export interface ConnectionPage {
  /** at most the query's `limit`, in its order */
  connections: AdminConnection[];
  /** how many connections match the filter (`user`, `ip`), every page together */
  matched: number;
  totals: ConnectionTotals;
}

export interface AdminSnapshot extends ConnectionPage {
  /** at most the channel query's `limit`, in its order */
  channels: AdminChannel[];
  /** how many channels match the search, every page together */
  channelsMatched: number;
  channelTotals: ChannelTotals;
}

/**
 * A worker's answer: its connection page and every channel it serves (a channel is served by
 * several workers, so only the merge can count, sum and order them exactly). Cut to the query by
 * `mergeSnapshots`.
 */
export interface WorkerSnapshot extends ConnectionPage {
  channels: AdminChannel[];
}

export interface AdminPeers {
  /** the workers' `snapshot`s, merged by `mergeSnapshots` */
  gather(query: ConnectionQuery): Promise<AdminSnapshot>;
  close(id: string): Promise<boolean>;
}

interface RowKey {
  slow: boolean;
  bufferedBytes: number;
  openedAt: number;
  id: string;
}

const byOpened = (a: { openedAt: number; id: string }, b: { openedAt: number; id: string }): number => a.openedAt - b.openedAt || cmp(a.id, b.id);

export const CONNECTION_ORDER: Record<ConnectionOrder, (a: RowKey, b: RowKey) => number> = {
  attention: (a, b) => Number(b.slow) - Number(a.slow) || b.bufferedBytes - a.bufferedBytes || b.openedAt - a.openedAt || cmp(a.id, b.id),
  opened: byOpened,
};

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The cursor of a page's last row, for `after` (connection ids are base64url: no `.` in them). */
export const cursorOf = (c: { openedAt: number; id: string }): string => `${c.openedAt}.${c.id}`;

/**
 * One answer from the snapshots of several workers (or of one): each worker's best `limit`
 * connections merged and cut to `limit` again, totals summed; the channels of every worker summed
 * by name (each worker sends them all: a channel many workers serve is one row, its subscribers
 * the sum), then counted, searched, ordered and cut to the channel query.
 */
export function mergeSnapshots(parts: readonly WorkerSnapshot[], query: ConnectionQuery): AdminSnapshot {
  const byName = new Map<string, AdminChannel>();
  for (const p of parts) {
    for (const c of p.channels) {
      const m = byName.get(c.channel);
      if (!m) {
        byName.set(c.channel, { ...c, tiers: { ...c.tiers } });
        continue;
      }
      m.subscribers += c.subscribers;
      for (const [t, n] of Object.entries(c.tiers)) m.tiers[t] = (m.tiers[t] ?? 0) + n;
      // every worker emits the same updates of a channel: the rate is the channel's, not a sum
      m.updatesPerSec = Math.max(m.updatesPerSec, c.updatesPerSec);
    }
  }
  const totals: ConnectionTotals = { connections: 0, slow: 0, bufferedBytes: 0 };
  for (const p of parts) {
    totals.connections += p.totals.connections;
    totals.slow += p.totals.slow;
    totals.bufferedBytes += p.totals.bufferedBytes;
  }
  const cq = query.channels ?? { order: 'name', limit: 0 };
  const channelTotals: ChannelTotals = { channels: byName.size, subscribers: 0 };
  const search = cq.search?.toLowerCase();
  const matching: AdminChannel[] = [];
  for (const c of byName.values()) {
    channelTotals.subscribers += c.subscribers;
    if (search === undefined || c.channel.toLowerCase().includes(search)) matching.push(c);
  }
  const after = cq.after;
  const rows = cq.order === 'name' && after !== undefined ? matching.filter((c) => c.channel > after) : matching;
  return {
    connections: parts
      .flatMap((p) => p.connections)
      .sort(CONNECTION_ORDER[query.order])
      .slice(0, query.limit),
    matched: parts.reduce((n, p) => n + p.matched, 0),
    totals,
    channels: cq.limit > 0 ? rows.sort(CHANNEL_ORDER[cq.order]).slice(0, cq.limit) : [],
    channelsMatched: matching.length,
    channelTotals,
  };
}

const CHANNEL_ORDER: Record<ChannelOrder, (a: AdminChannel, b: AdminChannel) => number> = {
  busiest: (a, b) => b.subscribers - a.subscribers || cmp(a.channel, b.channel),
  name: (a, b) => cmp(a.channel, b.channel),
};

/** GET /admin/api/channels: rows per page without `limit`, and the most `limit` may ask for */
export const ADMIN_CHANNELS_PAGE_DEFAULT = 100;
export const ADMIN_CHANNELS_PAGE_MAX = 500;
const CHANNEL_PARAMS = ['limit', 'after', 'search', 'order'];

/** The query of GET /admin/api/channels, checked: a bad value is a 400 naming the parameter. */
export function parseChannelQuery(raw: string): ChannelQuery {
  const q: ChannelQuery = { order: 'name', limit: ADMIN_CHANNELS_PAGE_DEFAULT };
  for (const [name, value] of queryParams(raw, CHANNEL_PARAMS)) {
    if (name === 'limit') {
      if (!/^[0-9]{1,6}$/.test(value) || Number(value) < 1 || Number(value) > ADMIN_CHANNELS_PAGE_MAX)
        throw badParam('limit', `limit must be a whole number from 1 to ${ADMIN_CHANNELS_PAGE_MAX} (got "${value.slice(0, 40)}")`);
      q.limit = Number(value);
    } else if (name === 'order') {
      if (value !== 'name' && value !== 'busiest') throw badParam('order', `order must be "name" or "busiest" (got "${value.slice(0, 40)}")`);
      q.order = value;
    } else {
      // a channel name is at most 256 characters (docs/protocol.md)
      if (value === '' || value.length > 256) throw badParam(name, `${name} must be 1 to 256 characters`);
      if (name === 'after') q.after = value;
      else q.search = value;
    }
  }
  if (q.after !== undefined && q.order !== 'name') throw badParam('after', 'after pages the name order: leave order out or give order=name');
  return q;
}

const badParam = (field: string, message: string): HttpError => new HttpError(400, 'BAD_REQUEST', message, field);

/** A query string's (name, value) pairs, decoded: 400 for a bad %-escape, a name not in `known`, or one given twice. */
function queryParams(raw: string, known: readonly string[]): [string, string][] {
  const seen = new Set<string>();
  const out = queryPairs(raw, badParam);
  for (const [name] of out) {
    if (!known.includes(name)) throw badParam(name.slice(0, 40), `unknown query parameter "${name.slice(0, 40)}": this route takes ${known.join(', ')}`);
    if (seen.has(name)) throw badParam(name, `"${name}" is given more than once: give it once`);
    seen.add(name);
  }
  return out;
}

/** The query of GET /admin/api/connections, checked: a bad value is a 400 naming the parameter. */
export function parseConnectionQuery(raw: string): ConnectionQuery {
  const q: ConnectionQuery = { order: 'opened', limit: ADMIN_PAGE_DEFAULT };
  for (const [name, value] of queryParams(raw, CONNECTION_PARAMS)) {
    if (name === 'limit') {
      if (!/^[0-9]{1,6}$/.test(value) || Number(value) < 1 || Number(value) > ADMIN_PAGE_MAX)
        throw badParam('limit', `limit must be a whole number from 1 to ${ADMIN_PAGE_MAX} (got "${value.slice(0, 40)}")`);
      q.limit = Number(value);
    } else if (name === 'after') {
      const m = /^([0-9]{1,15})\.([A-Za-z0-9_-]{1,64})$/.exec(value);
      if (!m) throw badParam('after', `after must be the "next" of a previous page (<openedAt>.<id>), got "${value.slice(0, 80)}"`);
      q.after = { openedAt: Number(m[1]), id: m[2]! };
    } else {
      if (value === '' || value.length > 256) throw badParam(name, `${name} must be 1 to 256 characters`);
      if (name === 'user') q.user = value;
      else q.ip = value;
    }
  }
  return q;
}

const CONNECTION_PARAMS = ['limit', 'after', 'user', 'ip'];

/**
 * Channel names listed per connection in the console's lists (`subscriptions`; `subscriptionCount`
 * has them all). A connection holds up to gateway.maxSubscriptions (1000) and an address up to 256
 * connections: listing every name, sorted, copied from each gateway worker and serialised at
 * each poll (every second while the console is open) made the console's cost the clients' to
 * choose (test/hostile/admin-overview.test.ts).
 */
export const ADMIN_SUBSCRIPTIONS_SHOWN = 20;

export interface AdminConnection {
  id: string;
  user: string | null;
  ip: string;
  encoding: string;
  /** the connection's first ADMIN_SUBSCRIPTIONS_SHOWN channels (in subscription order), sorted */
  subscriptions: string[];
  /** how many channels the connection holds */
  subscriptionCount: number;
  bufferedBytes: number;
  slow: boolean;
  openedAt: number;
}

export interface AdminChannel {
  channel: string;
  subscribers: number;
  /** subscribers per throttle tier (ms) */
  tiers: Record<string, number>;
  /** emissions per second at the channel's fastest tier, over the last sampling period */
  updatesPerSec: number;
}

export interface AdminFeed extends FeedHealthEntry {
  /** ms since the feed's last provider message, as of now (undefined before the first) */
  lagMs: number | undefined;
}

/** Per-channel emission rates from the hub's tier sequence numbers, sampled periodically. */
class RateSampler {
  readonly #prev = new Map<string, { seq: number; at: number }>();
  readonly #rates = new Map<string, number>();
  readonly #timer: NodeJS.Timeout;

  constructor(
    readonly gateway: Gateway,
    periodMs: number,
  ) {
    this.#timer = setInterval(() => this.sample(), periodMs);
    this.#timer.unref();
  }

  sample(now = Date.now()): void {
    const seen = new Set<string>();
    for (const c of this.gateway.hub.channelStats()) {
      const tiers = Object.keys(c.tiers).map(Number);
      if (tiers.length === 0) continue;
      const cur = this.gateway.hub.current(c.channel, Math.min(...tiers));
      if (!cur) continue;
      seen.add(c.channel);
      const prev = this.#prev.get(c.channel);
      if (prev && now > prev.at && cur.seq >= prev.seq) this.#rates.set(c.channel, ((cur.seq - prev.seq) * 1000) / (now - prev.at));
      this.#prev.set(c.channel, { seq: cur.seq, at: now });
    }
    for (const k of this.#prev.keys()) {
      if (!seen.has(k)) {
        this.#prev.delete(k);
        this.#rates.delete(k);
      }
    }
  }

  rate(channel: string): number {
    return Math.round((this.#rates.get(channel) ?? 0) * 10) / 10;
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const { field, message } = describeIssue(r.error);
  throw new HttpError(400, 'BAD_REQUEST', message, field);
}

/** The console's data, from the gateway it runs in. */
export class AdminView {
  readonly #rates: RateSampler;
  constructor(readonly opts: AdminOptions) {
    this.#rates = new RateSampler(opts.gateway, opts.sampleMs ?? 1000);
  }

  /**
   * This gateway's connections that `q` asks for, in its order, and the totals. Only the rows it
   * returns are built (their channel names read): a poll costs the page, not every connection.
   */
  connections(q: ConnectionQuery): ConnectionPage {
    const totals: ConnectionTotals = { connections: 0, slow: 0, bufferedBytes: 0 };
    let matched = 0;
    const keyed: { key: RowKey; conn: Connection }[] = [];
    const after = q.after;
    for (const conn of this.opts.gateway.connections) {
      // read once: the comparator must see the same figures each time it looks
      const key: RowKey = { slow: conn.slow, bufferedBytes: conn.bufferedBytes, openedAt: conn.openedAt, id: conn.id };
      totals.connections++;
      if (key.slow) totals.slow++;
      totals.bufferedBytes += key.bufferedBytes;
      if (q.user !== undefined && conn.principal.user !== q.user) continue;
      if (q.ip !== undefined && conn.ip !== q.ip) continue;
      matched++;
      if (after && byOpened(key, after) <= 0) continue;
      keyed.push({ key, conn });
    }
    const order = CONNECTION_ORDER[q.order];
    keyed.sort((a, b) => order(a.key, b.key));
    const connections = keyed.slice(0, q.limit).map(({ key, conn: c }) => ({
      id: c.id,
      user: c.principal.user ?? null,
      ip: c.ip,
      encoding: c.codec.encoding,
      subscriptions: c.subscriptionsHead(ADMIN_SUBSCRIPTIONS_SHOWN).sort(),
      subscriptionCount: c.subscriptionCount,
      bufferedBytes: key.bufferedBytes,
      slow: key.slow,
      openedAt: key.openedAt,
    }));
    return { connections, matched, totals };
  }

  /**
   * One row per channel name: a private channel (`portfolio`, `executions`, ...) is one hub
   * channel per user, summed here as the rows of several workers are.
   */
  channels(): AdminChannel[] {
    return this.opts.gateway.hub
      .channelStats()
      .map((c) => ({ channel: c.channel, subscribers: c.subscribers, tiers: c.tiers, updatesPerSec: this.#rates.rate(c.channel) }));
  }

  feeds(): AdminFeed[] {
    return this.opts.feeds().map((f) => ({ ...f, lagMs: f.lastMessageAgeMs }));
  }

  /** This gateway's own lists, every channel in them (a worker answers its supervisor with this: mergeSnapshots cuts it). */
  snapshot(q: ConnectionQuery): WorkerSnapshot {
    return { ...this.connections(q), channels: q.channels ? this.channels() : [] };
  }

  /** The lists of every worker when this gateway is one of several, else its own, cut to `q`. */
  async gathered(q: ConnectionQuery): Promise<AdminSnapshot> {
    return this.opts.peers ? this.opts.peers.gather(q) : mergeSnapshots([this.snapshot(q)], q);
  }

  /** Close a connection by id; false when no such connection is open here. */
  close(id: string): boolean {
    for (const c of this.opts.gateway.connections) {
      if (c.id !== id) continue;
      c.end(CLOSE_POLICY, 'closed by an operator');
      this.opts.log?.info({ conn: id, user: c.principal.user, ip: c.ip }, 'connection closed by an operator');
      return true;
    }
    return false;
  }

  stop(): void {
    this.#rates.close();
  }
}

/** Register /admin (the page) and /admin/api/* on the gateway; returns the view and its stop. */
export function registerAdmin(app: TemplatedApp, opts: AdminOptions): AdminView {
  const view = new AdminView(opts);
  const tokens = new ServiceTokens(opts);

  /** 401 without a valid token, 403 for a service token without `scope` or a token that authenticates a user; undefined: an operator. */
  const refusal = async (
    authorization: string,
    scope: ServiceScope,
    ip: string,
  ): Promise<{ status: number; message: string; scope?: ServiceScope; token?: string } | undefined> => {
    const refused = tokens.check(authorization, scope, 'admin console');
    if (!refused || refused.status === 403 || !tokens.enabled) return refused;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    // verifying it costs a signature check (perhaps a JWKS fetch) for a nicer answer: only within
    // the address's budget, or anyone could make the gateway verify tokens at will
    if (m && opts.authenticator.mode !== 'off' && !opts.admitHttp?.(ip)) {
      const r = await opts.authenticator.authenticate(m[1]).catch(() => undefined);
      if (r?.ok && r.principal.user)
        return { status: 403, message: `user "${r.principal.user}" is not an operator: the admin console needs the service token` };
    }
    return { status: 401, message: 'admin console: send Authorization: Bearer <service token>' };
  };

  /** the API's routes, for the 405 of a method a path does not take */
  const routes = new RouteTable();
  const route = (
    method: 'get' | 'post',
    pattern: string,
    handler: (res: HttpResponse, params: string[], contentType: string, authorization: string, query: string) => Promise<{ status: number; body: unknown }>,
  ): void => {
    const scope: ServiceScope = method === 'get' ? 'admin:read' : 'admin:write';
    const serve = (res: HttpResponse, req: HttpRequest): void => {
      const authorization = req.getHeader('authorization');
      const contentType = req.getHeader('content-type');
      const params = [req.getParameter(0) ?? ''];
      const query = req.getQuery() ?? '';
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      refusal(authorization, scope, remoteAddress(res))
        .then(async (refused) => {
          if (refused) {
            const { status, token, ...rest } = refused;
            // a known token used beyond its scopes: the operator hears of it (the name, never the token)
            if (token !== undefined) opts.log?.info({ tokenName: token, scope, route: `${method.toUpperCase()} ${pattern}` }, 'service token lacks the scope');
            return { status, body: { error: status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', ...rest } };
          }
          return handler(res, params, contentType, authorization, query);
        })
        .then(
          (reply) => {
            if (aborted) return;
            sendJson(res, reply.status, reply.body, reply.status === 401 ? { ...ADMIN_API_HEADERS, 'www-authenticate': 'Bearer' } : ADMIN_API_HEADERS);
          },
          (err: unknown) => {
            if (aborted) return;
            if (err instanceof HttpError) {
              const field = (err as HttpError & { field?: string }).field;
              sendJson(res, err.status, { error: err.code, ...(field !== undefined ? { field } : {}), message: err.message }, ADMIN_API_HEADERS);
            } else {
              // the error can carry hosts, connection strings or paths: the log has it, the reply does not
              opts.log?.error({ err, path: pattern }, 'admin API request failed');
              sendJson(res, 500, { error: 'INTERNAL', message: 'the request failed inside the gateway; the gateway log has the error' }, ADMIN_API_HEADERS);
            }
          },
        );
    };
    routes.add(method, pattern, method === 'get' ? serve : undefined);
    app[method](pattern, serve);
  };

  // the connections that need an operator first, at most ADMIN_OVERVIEW_CONNECTIONS, and the totals
  route('get', '/admin/api/overview', async () => {
    const { connections, totals, channels, channelTotals } = await view.gathered(OVERVIEW_QUERY);
    return { status: 200, body: { at: Date.now(), connections, connectionTotals: totals, channels, channelTotals, feeds: view.feeds() } };
  });
  // what the console may offer: the token's name and scopes (a read-only token sees no buttons)
  route('get', '/admin/api/session', async (_res, _params, _contentType, authorization) => {
    const who = tokens.identify(authorization)!;
    return { status: 200, body: { token: who.name, scopes: [...who.scopes].sort() } };
  });
  // a page of connections, oldest first, perhaps one user's or one address's; `next` for the page after
  route('get', '/admin/api/connections', async (_res, _params, _contentType, _authorization, query) => {
    const q = parseConnectionQuery(query);
    const { connections, matched, totals } = await view.gathered(q);
    const last = connections.at(-1);
    const next = connections.length === q.limit && last ? cursorOf(last) : null;
    return { status: 200, body: { at: Date.now(), connections, matched, totals, next } };
  });
  // a page of channels, by name (or the busiest first), perhaps those whose name contains `search`
  route('get', '/admin/api/channels', async (_res, _params, _contentType, _authorization, query) => {
    const channels = parseChannelQuery(query);
    const page = await view.gathered({ order: 'opened', limit: 0, channels });
    const last = page.channels.at(-1);
    const next = channels.order === 'name' && page.channels.length === channels.limit && last ? last.channel : null;
    return { status: 200, body: { at: Date.now(), channels: page.channels, matched: page.channelsMatched, totals: page.channelTotals, next } };
  });
  route('get', '/admin/api/feeds', async () => ({ status: 200, body: view.feeds() }));
  route('post', '/admin/api/announcements', async (res, _params, contentType) => {
    const body = parse(AnnouncementSchema, await readJson(res, 64 * 1024, contentType));
    const t = opts.announce(body);
    opts.log?.info({ level: body.level, title: body.title }, 'announcement posted by an operator');
    return { status: 202, body: { ...body, t } };
  });
  route('post', '/admin/api/connections/:id/close', async (_res, params) => {
    const id = params[0]!;
    const closed = opts.peers ? await opts.peers.close(id) : view.close(id);
    if (!closed) throw new HttpError(404, 'NOT_FOUND', `no open connection "${id.slice(0, 64)}" on this gateway`);
    return { status: 202, body: { id, closed: true } };
  });

  // the page: static, no data in it (the data comes from the API with the token); HEAD answers like GET
  const page = (res: HttpResponse, head: boolean): void => {
    const file = join(opts.webDir ?? join(process.cwd(), 'dist', 'web'), ADMIN_PAGE_FILE);
    if (!existsSync(file)) {
      sendJson(res, 404, { error: 'NOT_FOUND', message: 'the admin page is not built: run npm run build on the gateway host' }, {}, head);
      return;
    }
    sendText(res, 200, readFileSync(file), 'text/html; charset=utf-8', ADMIN_PAGE_HEADERS, head);
  };
  for (const path of ['/admin', '/admin/']) {
    app.get(path, (res) => page(res, false));
    app.head(path, (res) => page(res, true));
  }
  // 404, or 405 with Allow for a method a route does not take (OPTIONS: 204 with Allow, no CORS)
  app.any('/admin/api/*', (res, req) => {
    const url = req.getUrl();
    const method = req.getMethod().toUpperCase();
    // HEAD on a GET route: its answer without the body (RFC 9110 9.3.2)
    const get = method === 'HEAD' ? routes.getRoute(url) : undefined;
    if (get) return void get.handler(headResponse(res), withParameters(req, get.params));
    answerUnrouted(res, method, url, routes.allowed(url), ADMIN_API_HEADERS, 'admin route');
  });
  return view;
}
