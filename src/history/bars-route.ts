import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { CODECS } from '../codec/frames.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import { BAR_INTERVALS, barIntervalOf } from '../core/schema.js';
import type { BarInterval } from '../core/schema.js';
import type { BarRange, ChannelResolver, Principal } from '../fanout/channels.js';
import type { Payload } from '../fanout/payloads.js';
import type { Authenticator } from '../gateway/auth-hook.js';
import { tokenOf } from '../gateway/auth-check.js';
import { MAX_HISTORY_BARS } from '../protocol/index.js';
import { READ_CORS } from '../http/security-headers.js';
import { remoteAddress, sendJson, sendText } from '../http/http.js';
import { queryPairs } from '../http/query.js';

// Every answer of the route carries READ_CORS, as docs/protocol.md#allowed-origins-extension
// promises ("the JSON routes stay readable from any origin"): a chart served from another origin
// (its own app server, a dev server on another port) reads history with `fetch`.

/** Bars answered when the request names no `limit`. */
export const DEFAULT_BARS_LIMIT = 500;
const MSGPACK_TYPES = /\bapplication\/(x-|vnd\.)?msgpack\b/i;

export interface BarsRouteOptions {
  /** the gateway's resolvers: entitlements and delayed access apply exactly as on the WebSocket */
  resolvers: readonly ChannelResolver[];
  authenticator: Authenticator;
  registry: InstrumentRegistry;
  log?: { warn(obj: object, msg?: string): void };
  /** before the store is read for `principal` (from `ip`): a promise to wait for (the read budget), or undefined */
  gate?: (principal: Principal, ip: string, bars: number) => Promise<unknown> | undefined;
  /**
   * gateway.allowedOrigins: answers 403 ORIGIN_NOT_ALLOWED (with `headers`) and returns true for a
   * page it does not allow. The bars are the feed's data as much as the stream is: the list that
   * keeps another site's pages from showing the stream keeps them from drawing its charts.
   */
  refuseOrigin?: (res: HttpResponse, req: HttpRequest, headers: Record<string, string>) => boolean;
}

/** A parameter's problem: answered 400 with the parameter's name. */
class BadParam extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The query's parameters, decoded strictly: a malformed percent-escape (`%ZZ`, a lone `%`, bytes
 * that are not UTF-8) is a 400 naming the parameter, where uWS's own decoding would turn it into
 * other characters (`symbol=%ZZ` answered `unknown symbol "3"`). `+` is a space, as in forms.
 * A parameter of the route given twice is a 400 naming it: which one counts would be a guess
 * (`symbol=AAPL&symbol=MSFT` used to answer AAPL's bars silently). Other parameters are ignored.
 */
function strictQuery(raw: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [name, value] of queryPairs(raw, (param, message) => new BadParam(param, message))) {
    if (out.has(name) && BARS_PARAMS.has(name)) throw new BadParam(name, `"${name}" is given more than once: give it once`);
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/** The parameters GET /v1/bars reads. */
const BARS_PARAMS = new Set(['symbol', 'interval', 'from', 'to', 'limit', 'token']);

export interface BarsQuery {
  symbol: string;
  interval: BarInterval;
  from?: number;
  to?: number;
  limit: number;
}

/**
 * Times from 1e9 up to 1e11 ms fall in 1970-01-12 .. 1973-03-03, before any bar a store holds;
 * as seconds they are 2001-09-09 .. 5138, so they are almost surely seconds. Chart libraries count
 * in seconds (Lightweight Charts' `UTCTimestamp`: "UTCTimestamp expects a number of seconds",
 * API reference, type alias UTCTimestamp), and passing such a time on unconverted answered an
 * empty page with `next: null`, which reads as "no more data": a chart stopped loading for good.
 */
const SECONDS_LOOK = { min: 1e9, max: 1e11 };

function time(raw: string, param: 'from' | 'to'): number | undefined {
  if (raw === '') return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n))
    throw new BadParam(param, `"${param}" must be a time in ms since the epoch (a non-negative integer), got "${raw.slice(0, 40)}"`);
  if (n >= SECONDS_LOOK.min && n < SECONDS_LOOK.max)
    throw new BadParam(param, `"${param}" (${n}) looks like seconds since the epoch: times are in ms, e.g. ${param}=${n * 1000}`);
  return n;
}

/** Validate the query parameters of GET /v1/bars; throws BadParam naming the first bad one. */
export function parseBarsQuery(get: (name: string) => string, registry: InstrumentRegistry): BarsQuery {
  const symbol = get('symbol');
  if (symbol === '') throw new BadParam('symbol', '"symbol" is required, e.g. symbol=AAPL');
  if (!registry.has(symbol)) {
    const hint = registry.has(symbol.toUpperCase()) ? ` (symbols are upper case: ${symbol.toUpperCase()})` : '';
    throw new BadParam('symbol', `unknown symbol "${symbol.slice(0, 40)}"${hint}`);
  }
  const ivRaw = get('interval');
  const interval = barIntervalOf(`bar.${ivRaw}`);
  if (!interval) throw new BadParam('interval', `"interval" must be one of ${BAR_INTERVALS.join(', ')}${ivRaw === '' ? '' : `, got "${ivRaw.slice(0, 20)}"`}`);
  const from = time(get('from'), 'from');
  const to = time(get('to'), 'to');
  if (from !== undefined && to !== undefined && from >= to) throw new BadParam('to', `"to" (${to}) must be after "from" (${from})`);
  const limitRaw = get('limit');
  let limit = DEFAULT_BARS_LIMIT;
  if (limitRaw !== '') {
    limit = Number(limitRaw);
    if (!/^\d+$/.test(limitRaw) || limit < 1 || limit > MAX_HISTORY_BARS)
      throw new BadParam('limit', `"limit" must be an integer from 1 to ${MAX_HISTORY_BARS}, got "${limitRaw.slice(0, 20)}"`);
  }
  const q: BarsQuery = { symbol, interval, limit };
  if (from !== undefined) q.from = from;
  if (to !== undefined) q.to = to;
  return q;
}

/**
 * The page of `q` and its `next`: the `t` of the newest bar this user may see that is older than
 * every bar of the page (older than `from` when the range held none), or null when there is none,
 * so a client tells "the oldest bar is reached" from "no bar in this range, older ones exist"
 * (TradingView's `HistoryMetadata`: `noData` "no more data on the server", `nextTime` "the time
 * of the next available bar in history" when the requested range is empty, in ms). One read of
 * `limit + 1` bars: the extra one, when there is one, is `next`; only a range with `from` that
 * holds fewer than `limit` bars needs a second read (of one bar, before `from`). Both go through
 * the channel's own `history`, so delayed access sees no bar newer than its delay in `next` either.
 */
async function pageOf(history: (q: BarRange) => Promise<Payload[]>, q: BarsQuery): Promise<{ bars: Payload[]; next: number | null }> {
  const range: BarRange = { limit: q.limit + 1 };
  if (q.from !== undefined) range.from = q.from;
  if (q.to !== undefined) range.to = q.to;
  const read = await history(range);
  if (read.length > q.limit) return { bars: read.slice(read.length - q.limit), next: read[read.length - q.limit - 1]!.t as number };
  if (q.from === undefined) return { bars: read, next: null }; // every bar before `to` is in the page
  const [older] = await history({ to: q.from, limit: 1 });
  return { bars: read, next: older ? (older.t as number) : null };
}

/**
 * `GET /v1/bars?symbol=&interval=&from=&to=&limit=` (docs/protocol.md#get-v1bars): closed bars
 * from the bar store, oldest first, for charts that scroll back. The token (`Authorization:
 * Bearer` or `?token=`) is checked as at the WebSocket upgrade, and the channel `bar.<interval>:<symbol>`
 * is resolved by the gateway's own resolvers, so entitlements and delayed access are the
 * WebSocket's. JSON, or MessagePack when `Accept` names it.
 */
export function registerBarsRoute(app: TemplatedApp, opts: BarsRouteOptions): void {
  // the preflight a browser sends before a cross-origin GET with `Authorization`
  app.options('/v1/bars', (res: HttpResponse, req: HttpRequest) => {
    if (opts.refuseOrigin?.(res, req, READ_CORS)) return;
    sendText(res, 204, '', 'text/plain; charset=utf-8', {
      ...READ_CORS,
      allow: 'GET, HEAD',
      'access-control-allow-methods': 'GET, HEAD',
      'access-control-allow-headers': 'authorization, accept',
      'access-control-max-age': '600',
    });
  });
  app.get('/v1/bars', (res: HttpResponse, req: HttpRequest) => {
    if (opts.refuseOrigin?.(res, req, READ_CORS)) return;
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    const accept = req.getHeader('accept');
    const authorization = req.getHeader('authorization');
    let q: BarsQuery;
    try {
      const params = strictQuery(req.getQuery() ?? '');
      q = parseBarsQuery((name) => params.get(name) ?? '', opts.registry);
    } catch (err) {
      const e = err as BadParam;
      sendJson(res, 400, { error: 'BAD_REQUEST', param: e.param, message: e.message }, READ_CORS);
      return;
    }
    const token = tokenOf(authorization, req.getQuery('token'));
    const msgpack = MSGPACK_TYPES.test(accept);
    const ip = remoteAddress(res);
    serve(q, token, ip).then(
      (reply) => {
        if (aborted) return;
        if (reply.status === 401) {
          sendJson(res, 401, reply.body, { ...READ_CORS, 'www-authenticate': 'Bearer' });
        } else if (reply.status === 200 && msgpack) {
          sendText(res, 200, CODECS.msgpack.encode(reply.body), 'application/msgpack', { ...READ_CORS, 'cache-control': 'no-store', vary: 'accept' });
        } else {
          const headers: Record<string, string> =
            reply.status === 200 ? { 'cache-control': 'no-store', vary: 'accept' } : reply.retryAfter ? { 'retry-after': String(reply.retryAfter) } : {};
          sendJson(res, reply.status, reply.body, { ...READ_CORS, ...headers });
        }
      },
      (err: unknown) => {
        opts.log?.warn({ err }, 'GET /v1/bars failed');
        if (!aborted) sendJson(res, 503, { error: 'UNAVAILABLE', message: 'the bar store is unreachable; retry' }, { ...READ_CORS, 'retry-after': '5' });
      },
    );
  });

  async function serve(q: BarsQuery, token: string | undefined, ip: string): Promise<{ status: number; body: object; retryAfter?: number }> {
    const mode = opts.authenticator.mode;
    let principal: Principal = {};
    if (mode !== 'off' && (mode === 'required' || token !== undefined)) {
      let r;
      try {
        r = await opts.authenticator.authenticate(token);
      } catch {
        // the verifier failed (no JWKS could be fetched): not a verdict on the token, as at the upgrade
        return {
          status: 503,
          body: { error: 'UNAUTHENTICATED', code: 'jwks_unavailable', message: 'the token could not be checked now: retry later' },
          retryAfter: 5,
        };
      }
      // why, as the HTTP stream's open answers it (an empty 401 left a page to guess: expired? malformed?)
      if (!r.ok) return { status: 401, body: { error: 'UNAUTHENTICATED', code: r.code, message: `token refused: ${r.reason}` } };
      principal = r.principal;
    }
    const channel = `bar.${q.interval}:${q.symbol}`;
    let resolved;
    for (const r of opts.resolvers) {
      resolved = r.resolve(channel, principal);
      if (resolved) break;
    }
    if (!resolved) return { status: 404, body: { error: 'UNKNOWN_CHANNEL', message: `no resolver serves ${channel}` } };
    if (!resolved.ok) {
      const status = resolved.code === 'FORBIDDEN' ? 403 : resolved.code === 'UNAUTHENTICATED' ? 401 : 400;
      return { status, body: { error: resolved.code, ...(status === 400 ? { param: 'symbol' } : {}), message: resolved.reason } };
    }
    const history = resolved.spec.history;
    if (!history) return { status: 503, body: { error: 'UNAVAILABLE', message: 'this gateway has no bar store' } };
    // the budget counts the bars answered (the one extra bar read for `next` is not sent)
    await opts.gate?.(principal, ip, q.limit);
    const { bars, next } = await pageOf(history, q);
    return { status: 200, body: { symbol: q.symbol, interval: q.interval, bars, next } };
  }
}
