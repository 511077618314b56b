import { createHash, timingSafeEqual } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import type { z } from 'zod';
import type { ExecutionService } from '../executions/execution-service.js';
import { EventRequestError } from '../executions/execution-service.js';
import { identityProblem } from '../core/identity.js';
import { AnnouncementSchema, describeIssue, ExecutionRequestSchema, PositionsSchema } from '../executions/schemas.js';
import type { PortfolioApi } from '../portfolio/portfolio-api.js';
import { PortfolioRequestError } from '../portfolio/portfolio-api.js';
import { HttpError, readJson, sendJson } from '../http/http.js';

export interface ServiceApiOptions {
  /** TICKWIRE_SERVICE_TOKEN; unset: every request is refused with 401 */
  serviceToken: string | undefined;
  executions: ExecutionService;
  /** positions (in process or over NATS); unset: 503 */
  portfolio: PortfolioApi | undefined;
  log?: { warn(obj: object, msg: string): void };
  /** largest request body, bytes */
  bodyLimit?: number;
}

interface Reply {
  status: number;
  body: unknown;
}

interface RequestInfo {
  params: string[];
  contentType: string;
}

export const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time check of `Authorization: Bearer <token>` (hashing first hides the length too). */
export function bearerMatches(header: string, expected: Buffer | undefined): boolean {
  if (!expected) return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  const given = digest(m?.[1] ?? '');
  return timingSafeEqual(given, expected) && m !== null;
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const { field, message } = describeIssue(r.error);
  throw Object.assign(new HttpError(400, message, 'BAD_REQUEST'), { field });
}

function userParam(raw: string): string {
  let user: string;
  try {
    user = decodeURIComponent(raw);
  } catch {
    throw Object.assign(new HttpError(400, 'user in the path is not valid percent-encoding', 'BAD_REQUEST'), { field: 'user' });
  }
  const problem = identityProblem(user);
  if (problem !== undefined) throw Object.assign(new HttpError(400, `user in the path ${problem}`, 'BAD_REQUEST'), { field: 'user' });
  return user;
}

/**
 * The service API on the gateway's HTTP port, for order systems and operators:
 *
 *   POST /v1/executions                 {user, id, order, sym, side, qty, p, fee?, t}
 *   PUT  /v1/users/{user}/positions     {ccy, positions: [{sym, qty, cost}]}
 *   GET  /v1/users/{user}/positions
 *   POST /v1/announcements              {level, title, message}
 *
 * Every request needs `Authorization: Bearer <TICKWIRE_SERVICE_TOKEN>` (401 otherwise). Bodies
 * are JSON, validated; a 400 names the field: {"error":"BAD_REQUEST","field":"qty","message":...}.
 */
export function registerServiceApi(app: TemplatedApp, opts: ServiceApiOptions): void {
  const expected = opts.serviceToken ? digest(opts.serviceToken) : undefined;
  const limit = opts.bodyLimit ?? 1024 * 1024;

  const route = (
    method: 'get' | 'post' | 'put',
    pattern: string,
    params: number,
    handler: (res: HttpResponse, info: RequestInfo) => Promise<Reply>,
  ): void => {
    app[method](pattern, (res: HttpResponse, req: HttpRequest) => {
      const authorization = req.getHeader('authorization');
      const info: RequestInfo = {
        params: Array.from({ length: params }, (_, i) => req.getParameter(i) ?? ''),
        contentType: req.getHeader('content-type'),
      };
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      if (!bearerMatches(authorization, expected)) {
        const message = expected
          ? 'service API: send Authorization: Bearer <service token>'
          : 'service API is disabled: set TICKWIRE_SERVICE_TOKEN on the gateway';
        sendJson(res, 401, { error: 'UNAUTHENTICATED', message }, { 'www-authenticate': 'Bearer' });
        return;
      }
      handler(res, info).then(
        (reply) => {
          if (!aborted) sendJson(res, reply.status, reply.body);
        },
        (err: unknown) => {
          if (aborted) return;
          if (err instanceof HttpError) {
            const field = (err as HttpError & { field?: string }).field;
            sendJson(res, err.status, { error: err.code, ...(field !== undefined ? { field } : {}), message: err.message });
          } else if (err instanceof EventRequestError || err instanceof PortfolioRequestError) {
            sendJson(res, err.status, { error: err.code, ...(err.field !== undefined ? { field: err.field } : {}), message: err.message });
          } else {
            opts.log?.warn({ err }, `service API ${method.toUpperCase()} ${pattern} failed`);
            sendJson(res, 503, { error: 'UNAVAILABLE', message: 'the request could not be completed; retry (the execution log or the portfolio service is unreachable)' });
          }
        },
      );
    });
  };

  route('post', '/v1/executions', 0, async (res, { contentType }) => {
    const body = parse(ExecutionRequestSchema, await readJson(res, limit, contentType));
    const { user, ...execution } = body;
    const r = await opts.executions.record(user, execution);
    return { status: r.duplicate ? 200 : 201, body: { user, id: execution.id, seq: r.seq, duplicate: r.duplicate } };
  });

  route('put', '/v1/users/:user/positions', 1, async (res, { params, contentType }) => {
    const user = userParam(params[0]!);
    const body = parse(PositionsSchema, await readJson(res, limit, contentType));
    if (!opts.portfolio) throw new HttpError(503, 'no portfolio service is configured', 'UNAVAILABLE');
    return { status: 200, body: await opts.portfolio.putPositions(user, body) };
  });

  route('get', '/v1/users/:user/positions', 1, async (_res, { params }) => {
    const user = userParam(params[0]!);
    if (!opts.portfolio) throw new HttpError(503, 'no portfolio service is configured', 'UNAVAILABLE');
    const v = await opts.portfolio.getPositions(user);
    if (!v) throw new HttpError(404, `no positions for user "${user}"`, 'NOT_FOUND');
    return { status: 200, body: v };
  });

  route('post', '/v1/announcements', 0, async (res, { contentType }) => {
    const body = parse(AnnouncementSchema, await readJson(res, limit, contentType));
    const t = opts.executions.announce(body);
    return { status: 202, body: { ...body, t } };
  });
}
