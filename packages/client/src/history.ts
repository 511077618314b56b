/**
 * `@tickwire/client/history`: bar history over HTTP, one page of `GET /v1/bars` at a time
 * (docs/protocol.md#get-v1bars), typed, with the route's errors as TickwireClientError.
 *
 * An entry of its own: the main entry, which every streaming front end loads, does not grow.
 * The error class is the main entry's (imported from it, not bundled again), so `instanceof
 * TickwireClientError` holds for both.
 */
import { TickwireClientError, type Bar, type TokenSource } from './index.js';

/** Bar intervals `GET /v1/bars` serves. */
export type BarsInterval = '1s' | '1m' | '5m' | '1h' | '1d';

/** The page asked for: closed bars with `from` ≤ `t` < `to` (ms since the epoch), the newest `limit` of them. */
export interface BarsQuery {
  /** a canonical symbol (case-sensitive) */
  symbol: string;
  interval: BarsInterval;
  /** bars with `t` ≥ `from` (inclusive) */
  from?: number | undefined;
  /** bars with `t` < `to` (exclusive): to page back, the `t` of the oldest bar held */
  to?: number | undefined;
  /** at most this many bars, 1 to 1000 (the server's default: 500) */
  limit?: number | undefined;
}

export interface BarsRequestOptions {
  /** a JWT, or a function returning one (called once per request); sent as `Authorization: Bearer` */
  token?: TokenSource | undefined;
  /** aborts the request: the promise rejects with the signal's reason (an `AbortError`), as fetch does */
  signal?: AbortSignal | undefined;
  /** the fetch to use (default: the global one) */
  fetch?: typeof fetch | undefined;
}

/** One page: closed bars oldest first (`empty` ones included, not to be drawn), and where the next page back starts. */
export interface BarsPage {
  symbol: string;
  interval: BarsInterval;
  bars: Bar[];
  /** the `t` of the newest bar older than every bar of `bars` (older than `from` when `bars` is empty); null: no older bar is kept */
  next: number | null;
}

/**
 * `GET /v1/bars` answered something else than a page. `code` is the body's `error`
 * (`BAD_REQUEST`, `UNAUTHENTICATED`, `FORBIDDEN`, `RATE_LIMIT`, `UNAVAILABLE`), `reason` its
 * `code` (why a token was refused: `expired`, ...), `param` the parameter a 400 names, `status`
 * the HTTP status, `retryAfter` the seconds of `Retry-After` (429, 503). No answer at all, or one
 * without a JSON error body (a proxy's 502): `code` `TRANSPORT` (`status` 0 without an answer). A
 * 200 that is not a page: `BAD_SERVER_FRAME`. The `token` function threw or rejected: `TOKEN`
 * (`status` 0, its error as `cause`).
 */
export class BarsRequestError extends TickwireClientError {
  declare readonly status: number;
  declare readonly param: string | undefined;
  declare readonly retryAfter: number | undefined;
  constructor(
    code: string,
    message: string,
    options: { status: number; param?: string | undefined; reason?: string | undefined; retryAfter?: number | undefined; cause?: unknown },
  ) {
    super(code, message, {
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(options.reason === undefined ? {} : { reason: options.reason }),
    });
    this.name = 'BarsRequestError';
    this.status = options.status;
    this.param = options.param;
    this.retryAfter = options.retryAfter;
  }
}

/**
 * `base` split into the gateway's HTTP root and the `token` of its query. A stream URL may carry a
 * query (`?token=<jwt>`, which the upgrade accepts) and a fragment: neither belongs to the route's
 * address. Before, `/v1/bars?...` was appended after them: `ws://host/v1/stream?token=JWT` gave
 * `http://host/v1/stream?token=JWT/v1/bars?...`, a GET of the WebSocket route with the token in its
 * URL, and with `#frag` the route's path went into the fragment (test/hostile/history-client-base.test.ts).
 */
function splitBase(base: string): { root: string; token: string | undefined } {
  const hash = base.indexOf('#');
  const noFragment = hash < 0 ? base : base.slice(0, hash);
  const q = noFragment.indexOf('?');
  const path = q < 0 ? noFragment : noFragment.slice(0, q);
  const token = q < 0 ? null : new URLSearchParams(noFragment.slice(q + 1)).get('token');
  const root = path
    .replace(/^ws(s?):/i, 'http$1:')
    .replace(/\/v1\/stream(\/sse)?\/?$/, '')
    .replace(/\/+$/, '');
  return { root, token: token || undefined };
}

/**
 * The address of `GET /v1/bars` on a gateway: `base` is its HTTP address (`https://md.example.com`,
 * `''` for the page's own origin) or the stream URL a client connects to (`wss://host/v1/stream`,
 * or the HTTP stream's `.../v1/stream/sse`). Its query and fragment are not carried over: a
 * `token` there goes in `Authorization` (fetchBars), never in this address.
 */
export function barsUrl(base: string, query: BarsQuery): string {
  const q = new URLSearchParams({ symbol: query.symbol, interval: query.interval });
  for (const k of ['from', 'to', 'limit'] as const) if (query[k] !== undefined) q.set(k, String(query[k]));
  return `${splitBase(base).root}/v1/bars?${q}`;
}

/**
 * One page of closed bars. Page back from the oldest bar held with `to: oldest.t` until `next` is
 * null (`to` is exclusive, so pages meet without a gap or a duplicate); with an empty `bars` and a
 * number in `next`, go on with `to: next + 1`.
 */
export async function fetchBars(base: string, query: BarsQuery, options: BarsRequestOptions = {}): Promise<BarsPage> {
  const f = options.fetch ?? (globalThis as { fetch?: typeof fetch }).fetch;
  if (!f) throw new BarsRequestError('TRANSPORT', 'no fetch: pass options.fetch', { status: 0 });
  // the token option; else the one a stream URL given as `base` carries (`?token=`), as a header
  let token: string | undefined;
  try {
    token = (typeof options.token === 'function' ? await options.token() : options.token) || splitBase(base).token;
  } catch (cause) {
    // as the client reports its own token function's failure (ClientErrorCode.TOKEN)
    throw new BarsRequestError('TOKEN', `token function failed: ${String(cause)}`, { status: 0, cause });
  }
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await f(barsUrl(base, query), { headers, ...(options.signal ? { signal: options.signal } : {}), cache: 'no-store' });
  } catch (cause) {
    if (options.signal?.aborted) throw cause; // aborted by the caller: its AbortError, as fetch
    throw new BarsRequestError('TRANSPORT', `GET /v1/bars failed: ${String(cause)}`, { status: 0, cause });
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch (cause) {
    if (options.signal?.aborted) throw cause;
    body = undefined;
  }
  const b = (body ?? {}) as { bars?: unknown; next?: unknown; error?: unknown; param?: unknown; code?: unknown; message?: unknown };
  if (res.status === 200) {
    if (Array.isArray(b.bars) && (b.next === null || typeof b.next === 'number')) return body as BarsPage;
    throw new BarsRequestError('BAD_SERVER_FRAME', 'GET /v1/bars: the answer is not a page of bars', { status: 200 });
  }
  const seconds = Number(res.headers.get('retry-after') ?? NaN);
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const code = str(b.error);
  throw new BarsRequestError(code ?? 'TRANSPORT', str(b.message) ?? `GET /v1/bars answered ${res.status}${code ? ` ${code}` : ''}`, {
    status: res.status,
    param: str(b.param),
    reason: str(b.code),
    retryAfter: Number.isFinite(seconds) && seconds >= 0 ? seconds : undefined,
  });
}
