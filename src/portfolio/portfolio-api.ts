import type { BusRequests, Unsubscribe } from '../bus/bus.js';
import { HttpError } from '../core/errors.js';
import type { HttpErrorCode } from '../core/errors.js';
import { identityProblem } from '../core/identity.js';
import type { PositionsInput } from '../executions/schemas.js';
import { describeIssue, PositionsSchema } from '../executions/schemas.js';
import { PF_RPC_SUBJECT } from '../bus/private-subjects.js';

/** A user's positions as the service API shows them. */
export interface PositionsView {
  user: string;
  ccy: string;
  /** last execution sequence included */
  seq: number;
  positions: { sym: string; qty: number; cost: number }[];
}

/** What the gateway's service API needs of the portfolio service (in process or over NATS). */
export interface PortfolioApi {
  getPositions(user: string): Promise<PositionsView | undefined>;
  putPositions(user: string, input: PositionsInput): Promise<PositionsView>;
}

/** A refused portfolio request, with the HTTP status the service API answers. */
export class PortfolioRequestError extends HttpError {
  constructor(status: number, code: HttpErrorCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(status, code, message, field, options);
    this.name = 'PortfolioRequestError';
  }
}

type RpcRequest = { op: 'get'; user: string } | { op: 'put'; user: string; body: PositionsInput };
type RpcResponse = { ok: true; result: PositionsView | null } | { ok: false; status: number; code: HttpErrorCode; message: string; field?: string };

/** Serve PortfolioApi requests on `pf.rpc` (queue group: several services share the load). */
export function servePortfolioRpc(requests: BusRequests, api: PortfolioApi): Unsubscribe {
  return requests.serve(PF_RPC_SUBJECT, 'tickwire-portfolio', async (data) => {
    const res = await (async (): Promise<RpcResponse> => {
      try {
        const req = JSON.parse(new TextDecoder().decode(data)) as RpcRequest;
        // requests come over the bus: the user follows the rules of every other entry point
        const problem = typeof req.user === 'string' ? identityProblem(req.user) : 'must be a string';
        if (problem !== undefined) return { ok: false, status: 400, code: 'BAD_REQUEST', message: `user ${problem}`, field: 'user' };
        if (req.op === 'get') return { ok: true, result: (await api.getPositions(req.user)) ?? null };
        if (req.op === 'put') {
          // the body too: the same checks as the service API (a bad one is a 400 naming the field)
          const body = PositionsSchema.safeParse(req.body);
          if (!body.success) {
            const { field, message } = describeIssue(body.error);
            return { ok: false, status: 400, code: 'BAD_REQUEST', message, field };
          }
          return { ok: true, result: await api.putPositions(req.user, body.data) };
        }
        return { ok: false, status: 400, code: 'BAD_REQUEST', message: 'unknown portfolio rpc op' };
      } catch (e) {
        if (e instanceof PortfolioRequestError) {
          return { ok: false, status: e.status, code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) };
        }
        return { ok: false, status: 500, code: 'INTERNAL', message: 'portfolio service error' };
      }
    })();
    return new TextEncoder().encode(JSON.stringify(res));
  });
}

/** PortfolioApi over bus request/reply to `tickwire portfolio`. */
export class BusPortfolioClient implements PortfolioApi {
  constructor(
    readonly requests: BusRequests,
    readonly timeoutMs: number,
  ) {}

  async #call(req: RpcRequest): Promise<PositionsView | undefined> {
    let data: Uint8Array;
    try {
      data = await this.requests.request(PF_RPC_SUBJECT, new TextEncoder().encode(JSON.stringify(req)), this.timeoutMs);
    } catch (err) {
      // the bus error stays out of the answer (it can name servers): the service API logs the cause
      throw new PortfolioRequestError(503, 'PORTFOLIO_UNAVAILABLE', 'the portfolio service did not answer (is `tickwire portfolio` running?)', undefined, {
        cause: err,
      });
    }
    const res = JSON.parse(new TextDecoder().decode(data)) as RpcResponse;
    if (!res.ok) throw new PortfolioRequestError(res.status, res.code, res.message, res.field);
    return res.result ?? undefined;
  }

  getPositions(user: string): Promise<PositionsView | undefined> {
    return this.#call({ op: 'get', user });
  }

  async putPositions(user: string, input: PositionsInput): Promise<PositionsView> {
    const r = await this.#call({ op: 'put', user, body: input });
    if (!r) throw new PortfolioRequestError(500, 'INTERNAL', 'portfolio service returned no positions');
    return r;
  }
}
