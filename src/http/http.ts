import { HttpError } from '../core/errors.js';
import { MAX_JSON_DEPTH, MAX_JSON_VALUES, nestsDeeperThan } from '../core/json-depth.js';
import { jsonShapeProblem } from '../codec/frame-shape.js';
import type { HttpResponse } from 'uWebSockets.js';
import { NOSNIFF } from './security-headers.js';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  421: 'Misdirected Request',
  426: 'Upgrade Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function statusLine(code: number): string {
  return `${code} ${STATUS_TEXT[code] ?? 'Status'}`;
}

/** The peer's address as text (IPv4 or IPv6; uWS answers it as bytes). */
export function remoteAddress(res: HttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString();
}

/**
 * Send a JSON response (corked), with `X-Content-Type-Options: nosniff` like every answer of
 * sendText (src/http/security-headers.ts). Safe to call after the request was aborted. `head`: answer a
 * HEAD request, with the same status and headers (Content-Length of the body) but no body.
 */
export function sendJson(res: HttpResponse, status: number, body: unknown, headers: Record<string, string> = {}, head = false): void {
  sendText(res, status, JSON.stringify(body), 'application/json', headers, head);
}

/**
 * A refused request as JSON: `RATE_LIMIT` for a 429, `REFUSED` otherwise, with `Retry-After`
 * (seconds) when the refusal gives one; `headers` are sent too (CORS).
 */
export function sendRefusal(res: HttpResponse, refusal: { status: number; message: string; retryAfter?: number }, headers: Record<string, string> = {}): void {
  const all = refusal.retryAfter !== undefined ? { ...headers, 'retry-after': String(refusal.retryAfter) } : headers;
  sendJson(res, refusal.status, { error: refusal.status === 429 ? 'RATE_LIMIT' : 'REFUSED', message: refusal.message }, all);
}

/**
 * 403 ORIGIN_NOT_ALLOWED: a web page whose origin gateway.allowedOrigins does not list asked to
 * open a stream. Counted with the protocol errors (`tickwire_protocol_errors_total`).
 */
export function refuseOrigin(
  res: HttpResponse,
  origin: string,
  counts: Record<string, number>,
  headers: Record<string, string> = {},
  /** what the page may not do here */
  what = 'open a stream',
): void {
  counts.ORIGIN_NOT_ALLOWED = (counts.ORIGIN_NOT_ALLOWED ?? 0) + 1;
  sendJson(
    res,
    403,
    { error: 'ORIGIN_NOT_ALLOWED', message: `pages from ${JSON.stringify(origin.slice(0, 200))} may not ${what} here (gateway.allowedOrigins)` },
    headers,
  );
}

export function sendText(
  res: HttpResponse,
  status: number,
  body: string | Uint8Array,
  contentType: string,
  headers: Record<string, string> = {},
  head = false,
): void {
  res.cork(() => {
    res.writeStatus(statusLine(status)).writeHeader('content-type', contentType).writeHeader('x-content-type-options', NOSNIFF['x-content-type-options']);
    for (const [k, v] of Object.entries(headers)) res.writeHeader(k, v);
    // endWithoutBody(length) aborts the process in uWS 20.30: the header is written by hand
    if (head) res.writeHeader('content-length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength)).endWithoutBody();
    else res.end(body);
  });
}

export { HttpError } from '../core/errors.js';

/**
 * Read a request body up to `limit` bytes. The response's onAborted must be registered by the
 * caller before awaiting (uWS requires it); `aborted()` tells whether it fired.
 */
export function readBody(res: HttpResponse, limit: number): Promise<Buffer> {
  const body = bodyCollector(limit);
  res.onData(body.add);
  return body.done;
}

/**
 * A request body gathered from the chunks `add` is given (uWS's onData: it lends each chunk for
 * the call only), up to `limit` bytes: `done` is the body, or a 413 error. `adopt` takes a chunk
 * the caller copied already (while it held the body back); it is read the same way.
 *
 * The bytes are copied into one buffer grown by doubling (at most `limit`), so what a body holds
 * is at most twice its bytes however it arrives. Before, each chunk was kept as a Buffer of its
 * own: a body sent a byte per TCP segment (uWS hands each segment over as a chunk) cost a few
 * hundred bytes per byte, over 300 MiB for one 1 MiB HTTP-stream POST
 * (test/hostile/trickled-bodies.test.ts).
 */
export function bodyCollector(limit: number): {
  add: (chunk: ArrayBuffer, isLast: boolean) => void;
  adopt: (chunk: ArrayBuffer, isLast: boolean) => void;
  done: Promise<Buffer>;
} {
  let buf = Buffer.alloc(0);
  let size = 0;
  let failed = false;
  let settle: { resolve(b: Buffer): void; reject(e: Error): void } | undefined;
  const done = new Promise<Buffer>((resolve, reject) => (settle = { resolve, reject }));
  const add = (chunk: ArrayBuffer, isLast: boolean): void => {
    if (failed) return;
    const n = chunk.byteLength;
    if (size + n > limit) {
      failed = true;
      buf = Buffer.alloc(0);
      settle!.reject(new HttpError(413, 'TOO_LARGE', `request body larger than ${limit} bytes`));
      return;
    }
    if (size + n > buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(limit, Math.max(size + n, buf.length * 2, 1024)));
      buf.copy(grown, 0, 0, size);
      buf = grown;
    }
    buf.set(new Uint8Array(chunk), size);
    size += n;
    if (isLast) {
      // only the bytes written (the rest of an allocUnsafe buffer is old memory)
      const body = buf.subarray(0, size);
      buf = Buffer.alloc(0);
      settle!.resolve(body);
    }
  };
  return { add, adopt: add, done };
}

/**
 * Read and parse a JSON body; 400 BAD_JSON with a clear message when it is not JSON, when it
 * nests deeper than MAX_JSON_DEPTH levels (no request needs that; see src/core/json-depth.ts), or
 * when it holds more than `maxValues` values (array elements and object entries at every level).
 * Depth and values are read from the bytes before JSON.parse runs: the parse of a body costs by
 * its values, so a 1 MiB body nesting half a million deep held the event loop 90 ms
 * (test/hostile/json-bodies.test.ts).
 */
export async function readJson(res: HttpResponse, limit: number, contentType: string, maxValues: number = MAX_JSON_VALUES): Promise<unknown> {
  if (contentType && !/^application\/json\b/i.test(contentType)) {
    throw new HttpError(415, 'UNSUPPORTED_MEDIA_TYPE', `content-type must be application/json, got "${contentType}"`);
  }
  const body = await readBody(res, limit);
  const shape = jsonShapeProblem(body, { depth: MAX_JSON_DEPTH, values: maxValues, keys: maxValues });
  if (shape === 'depth') throw new HttpError(400, 'BAD_JSON', `body nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels`);
  if (shape !== undefined) throw new HttpError(400, 'BAD_JSON', `body holds more than ${maxValues} values (array items and object entries)`);
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'BAD_JSON', `body is not valid JSON: ${(err as Error).message}`);
  }
  // the scan checks the depth of items: an empty container one level too deep is found here
  if (nestsDeeperThan(value, MAX_JSON_DEPTH)) throw new HttpError(400, 'BAD_JSON', `body nests objects or arrays deeper than ${MAX_JSON_DEPTH} levels`);
  return value;
}
