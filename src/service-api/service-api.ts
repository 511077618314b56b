import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { z } from 'zod';
import type { ExecutionService } from '../executions/execution-service.js';
import { identityProblem } from '../core/identity.js';
import { MAX_POSITIONS_JSON_VALUES } from '../core/json-depth.js';
import { AnnouncementSchema, describeIssue, ExecutionRequestSchema, PositionsSchema } from '../executions/schemas.js';
import type { PortfolioApi } from '../portfolio/portfolio-api.js';
import { HttpError, readJson, sendJson } from '../http/http.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import { Entitlements } from '../access/entitlements.js';
import { AlertRequestCode, AlertRequestError } from '../alerts/alert-api.js';
import type { AlertsApi } from '../alerts/alert-api.js';
import type { NotificationService } from '../notifications/notification-service.js';
import { ServiceTokens } from '../access/service-tokens.js';
import type { ScopeRefusalCounts, ServiceTokenSpec } from '../access/service-tokens.js';
import type { ServiceScope } from '../core/config.js';

export interface ServiceApiOptions {
  /** TICKWIRE_SERVICE_TOKEN, every scope; with serviceTokens unset too, every request is refused with 401 */
  serviceToken: string | undefined;
  /** auth.serviceTokens: named tokens, each with its scopes (docs/auth.md#service-tokens-and-scopes) */
  serviceTokens?: readonly ServiceTokenSpec[] | undefined;
  /** where 403 scope refusals are counted (the gateway's, shared with the admin console) */
  scopeRefusals?: ScopeRefusalCounts | undefined;
  executions: ExecutionService;
  /** positions (in process or over NATS); unset: 503 */
  portfolio: PortfolioApi | undefined;
  log?: { warn(obj: object, msg: string): void };
  /** largest request body, bytes */
  bodyLimit?: number;
  /** alert rules (in process or over NATS); unset: the alert routes answer 503 */
  alerts?: AlertsApi;
  /** the notifications log; unset: the notification routes answer 503 */
  notifications?: NotificationService;
  /** entitlement defaults for alert rules created here (auth.defaultEntitlement, entitlementsClaim) */
  auth?: Pick<Config['auth'], 'defaultEntitlement'>;
  /** instruments (the asset class of an alert's symbol decides its entitlement) */
  registry?: InstrumentRegistry;
}

/** A user's access to an alert's symbol; an unknown symbol counts as real time (validation refuses it). */
function accessFor(ent: Entitlements, symbol: unknown, registry: InstrumentRegistry | undefined): ReturnType<Entitlements['access']> {
  const inst = typeof symbol === 'string' ? registry?.get(symbol) : undefined;
  return inst ? ent.access(inst.symbol, inst.assetClass) : 'realtime';
}

interface Reply {
  status: number;
  body: unknown;
}

interface RequestInfo {
  params: string[];
  contentType: string;
  query: string;
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const { field, message } = describeIssue(r.error);
  throw new HttpError(400, 'BAD_REQUEST', message, field);
}

function userParam(raw: string): string {
  let user: string;
  try {
    user = decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, 'BAD_REQUEST', 'user in the path is not valid percent-encoding', 'user');
  }
  const problem = identityProblem(user);
  if (problem !== undefined) throw new HttpError(400, 'BAD_REQUEST', `user in the path ${problem}`, 'user');
  return user;
}

/**
 * `?unread=` of GET /v1/users/{user}/notifications: `1`/`true` only the unread, `0`/`false` or
 * none every one. Anything else is a 400 naming it: another spelling (`TRUE`, `yes`, `unread[]`,
 * the parameter twice) used to list every notification as if the filter had been understood.
 */
function unreadParam(query: string): boolean {
  let unread: boolean | undefined;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = (eq < 0 ? part : part.slice(0, eq)).slice(0, 40);
    if (name !== 'unread') throw new HttpError(400, 'BAD_REQUEST', `unknown query parameter "${name}": this route takes unread (1 or 0)`, name);
    if (unread !== undefined) throw new HttpError(400, 'BAD_REQUEST', '"unread" is given more than once: give it once', 'unread');
    const value = eq < 0 ? undefined : part.slice(eq + 1);
    if (value === '1' || value === 'true') unread = true;
    else if (value === '0' || value === 'false') unread = false;
    else throw new HttpError(400, 'BAD_REQUEST', `unread must be 1 (only the unread ones) or 0, got ${JSON.stringify((value ?? '').slice(0, 40))}`, 'unread');
  }
  return unread ?? false;
}

/**
 * The service API on the gateway's HTTP port, for order systems and operators:
 *
 *   POST /v1/executions                 {user, id, order, sym, side, qty, p, fee?, t}
 *   PUT  /v1/users/{user}/positions     {ccy, positions: [{sym, qty, cost}]}
 *   GET  /v1/users/{user}/positions
 *   POST /v1/announcements              {level, title, message}
 *
 * Every request needs `Authorization: Bearer <service token>`: 401 without a configured token,
 * 403 FORBIDDEN (naming the scope) for a token without the route's scope (docs/auth.md#service-tokens-and-scopes). Bodies
 * are JSON, validated; a 400 names the field: {"error":"BAD_REQUEST","field":"qty","message":...}.
 */
export function registerServiceApi(app: TemplatedApp, opts: ServiceApiOptions): void {
  const tokens = new ServiceTokens(opts);
  const limit = opts.bodyLimit ?? 1024 * 1024;

  const route = (
    method: 'get' | 'post' | 'put' | 'del',
    pattern: string,
    scope: ServiceScope,
    params: number,
    handler: (res: HttpResponse, info: RequestInfo) => Promise<Reply>,
  ): void => {
    app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
      const authorization = req.getHeader('authorization');
      const info: RequestInfo = {
        params: Array.from({ length: params }, (_, i) => req.getParameter(i) ?? ''),
        contentType: req.getHeader('content-type'),
        query: req.getQuery() ?? '',
      };
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const refused = tokens.check(authorization, scope, 'service API');
      if (refused) {
        const { status, token, ...body } = refused;
        // a known token used beyond its scopes: the operator hears of it (the name, never the token)
        if (token !== undefined)
          opts.log?.warn(
            { tokenName: token, scope, route: `${method === 'del' ? 'DELETE' : method.toUpperCase()} ${pattern}` },
            'service token lacks the scope',
          );
        sendJson(res, status, body, status === 401 ? { 'www-authenticate': 'Bearer' } : {});
        return;
      }
      handler(res, info).then(
        (reply) => {
          if (!aborted) sendJson(res, reply.status, reply.body);
        },
        (err: unknown) => {
          if (aborted) return;
          if (err instanceof HttpError) {
            // a 5xx of a backend (portfolio, alerts): its cause is for the operator, not the caller
            if (err.status >= 500) opts.log?.warn({ err }, `service API ${method === 'del' ? 'DELETE' : method.toUpperCase()} ${pattern} failed`);
            sendJson(res, err.status, { error: err.code, ...(err.field !== undefined ? { field: err.field } : {}), message: err.message });
          } else {
            opts.log?.warn({ err }, `service API ${method === 'del' ? 'DELETE' : method.toUpperCase()} ${pattern} failed`);
            sendJson(res, 503, {
              error: 'UNAVAILABLE',
              message: 'the request could not be completed; retry (the execution log or the portfolio service is unreachable)',
            });
          }
        },
      );
    });
  };

  route('post', '/v1/executions', 'executions:write', 0, async (res, { contentType }) => {
    const body = parse(ExecutionRequestSchema, await readJson(res, limit, contentType));
    const { user, ...execution } = body;
    const r = await opts.executions.record(user, execution);
    return { status: r.duplicate ? 200 : 201, body: { user, id: execution.id, seq: r.seq, duplicate: r.duplicate } };
  });

  route('put', '/v1/users/:user/positions', 'positions:write', 1, async (res, { params, contentType }) => {
    const user = userParam(params[0]!);
    const body = parse(PositionsSchema, await readJson(res, limit, contentType, MAX_POSITIONS_JSON_VALUES));
    if (!opts.portfolio) throw new HttpError(503, 'UNAVAILABLE', 'no portfolio service is configured');
    return { status: 200, body: await opts.portfolio.putPositions(user, body) };
  });

  route('get', '/v1/users/:user/positions', 'positions:read', 1, async (_res, { params }) => {
    const user = userParam(params[0]!);
    if (!opts.portfolio) throw new HttpError(503, 'UNAVAILABLE', 'no portfolio service is configured');
    const v = await opts.portfolio.getPositions(user);
    if (!v) throw new HttpError(404, 'NOT_FOUND', `no positions for user "${user}"`);
    return { status: 200, body: v };
  });

  route('post', '/v1/announcements', 'announcements:write', 0, async (res, { contentType }) => {
    const body = parse(AnnouncementSchema, await readJson(res, limit, contentType));
    const t = opts.executions.announce(body);
    return { status: 202, body: { ...body, t } };
  });

  registerAlertRoutes(route, opts, limit);
}

type Route = (
  method: 'get' | 'post' | 'put' | 'del',
  pattern: string,
  scope: ServiceScope,
  params: number,
  handler: (res: HttpResponse, info: RequestInfo) => Promise<Reply>,
) => void;

/**
 * Alerts and notifications (docs/alerts.md#service-api, docs/private-streams.md#notifications):
 *
 *   GET    /v1/users/{user}/alerts              list the user's rules with their state
 *   POST   /v1/users/{user}/alerts              create a rule (body: a rule without `user`; optional `entitlements`)
 *   GET    /v1/users/{user}/alerts/{id}
 *   PUT    /v1/users/{user}/alerts/{id}         replace a rule (its state starts fresh)
 *   DELETE /v1/users/{user}/alerts/{id}
 *   POST   /v1/users/{user}/notifications       {id, type, title, body?, priority?, data?}: 201, a repeated id 200
 *   GET    /v1/users/{user}/notifications       ?unread=1 for unread ones only
 *   POST   /v1/users/{user}/notifications/read  {upTo} | {upToId} | {ids}
 */
function registerAlertRoutes(route: Route, opts: ServiceApiOptions, limit: number): void {
  const alerts = (): AlertsApi => {
    // the one code of an absent alert service, as the in-band ops and a NATS gateway answer it
    if (!opts.alerts) throw new AlertRequestError(503, AlertRequestCode.UNAVAILABLE, 'no alert service is configured here');
    return opts.alerts;
  };
  const notifications = (): NotificationService => {
    if (!opts.notifications) throw new HttpError(503, 'UNAVAILABLE', 'notifications are not configured here');
    return opts.notifications;
  };
  const idParam = (raw: string): string => {
    try {
      return decodeURIComponent(raw);
    } catch {
      throw new HttpError(400, 'BAD_REQUEST', 'id in the path is not valid percent-encoding', 'id');
    }
  };
  /** the caller may pass the user's entitlements (the token claim's shape); else auth.defaultEntitlement */
  const accessOf = (body: unknown): { rule: unknown; access: (symbol: unknown) => ReturnType<Entitlements['access']> } => {
    let ent = Entitlements.of(opts.auth?.defaultEntitlement ?? 'realtime');
    let rule = body;
    if (body !== null && typeof body === 'object' && !Array.isArray(body) && 'entitlements' in body) {
      const { entitlements, ...rest } = body as Record<string, unknown>;
      const parsed = Entitlements.parse(entitlements, 'entitlements');
      if (typeof parsed === 'string') throw new HttpError(400, 'BAD_REQUEST', parsed, 'entitlements');
      ent = parsed;
      rule = rest;
    }
    return { rule, access: (symbol) => accessFor(ent, symbol, opts.registry) };
  };

  route('get', '/v1/users/:user/alerts', 'alerts:read', 1, async (_res, { params }) => {
    const user = userParam(params[0]!);
    return { status: 200, body: { user, alerts: await alerts().list(user) } };
  });
  route('post', '/v1/users/:user/alerts', 'alerts:write', 1, async (res, { params, contentType }) => {
    const user = userParam(params[0]!);
    const { rule, access } = accessOf(await readJson(res, limit, contentType));
    const symbol = rule !== null && typeof rule === 'object' ? (rule as Record<string, unknown>).symbol : undefined;
    return { status: 201, body: await alerts().create(user, rule, access(symbol)) };
  });
  route('get', '/v1/users/:user/alerts/:id', 'alerts:read', 2, async (_res, { params }) => {
    const user = userParam(params[0]!);
    return { status: 200, body: await alerts().get(user, idParam(params[1]!)) };
  });
  route('put', '/v1/users/:user/alerts/:id', 'alerts:write', 2, async (res, { params, contentType }) => {
    const user = userParam(params[0]!);
    const { rule, access } = accessOf(await readJson(res, limit, contentType));
    const symbol = rule !== null && typeof rule === 'object' ? (rule as Record<string, unknown>).symbol : undefined;
    return { status: 200, body: await alerts().update(user, idParam(params[1]!), rule, access(symbol)) };
  });
  route('del', '/v1/users/:user/alerts/:id', 'alerts:write', 2, async (_res, { params }) => {
    const user = userParam(params[0]!);
    const id = idParam(params[1]!);
    await alerts().remove(user, id);
    return { status: 200, body: { user, id, deleted: true } };
  });

  route('post', '/v1/users/:user/notifications', 'notifications:write', 1, async (res, { params, contentType }) => {
    const user = userParam(params[0]!);
    const r = await notifications().post(user, await readJson(res, limit, contentType));
    return { status: r.duplicate ? 200 : 201, body: { user, id: r.id, seq: r.seq, duplicate: r.duplicate } };
  });
  route('get', '/v1/users/:user/notifications', 'notifications:read', 1, async (_res, { params, query }) => {
    const user = userParam(params[0]!);
    const unreadOnly = unreadParam(query);
    return { status: 200, body: { user, ...(await notifications().list(user, { unreadOnly })) } };
  });
  route('post', '/v1/users/:user/notifications/read', 'notifications:write', 1, async (res, { params, contentType }) => {
    const user = userParam(params[0]!);
    const r = await notifications().markRead(user, await readJson(res, limit, contentType));
    return { status: 200, body: { user, ...r } };
  });
}
