import { randomBytes } from 'node:crypto';
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { CODECS } from '../codec/frames.js';
import type { Config } from '../core/config.js';
import { bodyCollector, HttpError, remoteAddress, sendJson, sendRefusal, statusLine } from '../http/http.js';
import { NOSNIFF } from '../http/security-headers.js';
import { CloseCode } from '../protocol/index.js';
import { answerVerifierFailed, tokenOf } from './auth-check.js';
import type { Authenticator } from './auth-hook.js';
import { sessionVerdict } from './auth-hook.js';
import type { AddressAdmission } from './limits.js';
import type { Connection, ConnectionInit, GatewayCounters } from './connection.js';
import type { LocalTopics, TopicSink, Transport } from './transport.js';

/**
 * The HTTP-streaming fallback transport (docs/protocol.md#http-streaming-fallback), for clients
 * whose network refuses WebSocket upgrades: protocol v1 frames as JSON in a
 * `text/event-stream` response (Server-Sent Events framing), client frames by POST.
 *
 * - `GET /v1/stream/sse` (token as `Authorization: Bearer` or `?token=`) opens a session: the
 *   stream starts with an `event: session` naming its id, then carries the frames a WebSocket
 *   would (`welcome` first), each as one `data:` line; it ends with an `event: close` carrying
 *   the close code and reason a WebSocket would have got.
 * - `POST /v1/stream/sse` with header `X-Tickwire-Session` sends client frames: one JSON frame
 *   per line; an empty body is a keep-alive. 204, replies come on the stream. With gateway
 *   workers, a POST that lands on a worker other than the session's is handed to that worker
 *   (`forward`) before it is answered, so a client's POSTs stay in order.
 *
 * The session is an ordinary `Connection` on an `HttpStreamTransport`: the same auth,
 * entitlements, limits (it counts as a connection of its user), throttling and slow-consumer
 * policy. The response's backpressure is the transport's buffered amount.
 */
export const HTTP_STREAM_PATH = '/v1/stream/sse';
export const SESSION_HEADER = 'x-tickwire-session';
/** The form of the session ids `#start` issues (18 random bytes, base64url). */
const SESSION_ID = /^[A-Za-z0-9_-]{24}$/;
/** An SSE comment line sent this often keeps proxies from closing a quiet stream. */
export const HEARTBEAT_MS = 15_000;
/** How often sessions are looked at (heartbeats, uWS's send timer, idle sessions). */
const TICK_MS = 4000;

/**
 * CORS: a dashboard served from another origin may use the stream, as it may open a WebSocket
 * from any origin. Tokens travel in a header or the query, never in cookies, so a page can only
 * use a token it holds.
 */
const CORS: Readonly<Record<string, string>> = { 'access-control-allow-origin': '*', 'access-control-expose-headers': SESSION_HEADER };

const SSE_DATA = Buffer.from('data: ');
const SSE_END = Buffer.from('\n\n');
/** an SSE comment: ignored by readers, used for heartbeats and to flush uWS's buffer */
const SSE_COMMENT = Buffer.from(':\n\n');
/** the body of a keep-alive POST */
const EMPTY = new Uint8Array(0);

export interface HttpStreamHost {
  config: Readonly<Config>;
  log: { info(obj: object | string, msg?: string): void; error(obj: object | string, msg?: string): void };
  topics: LocalTopics;
  counters: GatewayCounters;
  authenticator: Authenticator;
  accepting(): boolean;
  /** answers 503 and returns true at the connection ceiling */
  refuseAtCapacity(res: HttpResponse): boolean;
  /** answers 403 (with `headers`) and returns true when gateway.allowedOrigins does not allow the page */
  refuseOrigin(res: HttpResponse, req: HttpRequest, headers: Record<string, string>): boolean;
  /** hold (+1) or release (-1) a connection slot while a token is verified */
  hold(delta: number): void;
  /** the per-IP limits of a new connection, before its token is verified (see GatewayOptions.admitAddress) */
  admitAddress(ip: string, verifying: boolean): AddressAdmission;
  admit(ip: string, init: ConnectionInit): { status: number; message: string; retryAfter?: number } | undefined;
  admitMessage(conn: Connection): boolean;
  /** `closed`: called once the connection closed (frees the address's slot, see AddressAdmission.close) */
  attach(transport: Transport, init: ConnectionInit, closed?: () => void): Connection;
  detach(conn: Connection, code: number): void;
  /**
   * The other gateways (workers sharing the port, other gateway processes on the bus): a POST
   * whose session is not here goes to the one holding it; true when one did.
   */
  forward?: (session: string, body: Uint8Array) => Promise<boolean>;
  /**
   * A session opened here: make it reachable from the other gateways (`forward` there) until
   * `stop` is called, when it ends. `ready` settles once the others can reach it: the session's id
   * goes to the client only then, since the client may POST through any of them at once.
   */
  announce?: (session: string, deliver: (body: Uint8Array) => boolean) => { ready: Promise<void>; stop: () => void };
}

/**
 * A uWS HTTP response carrying SSE events. uWS buffers whatever `write` could not send at once
 * and says so by returning false; it has no buffered-amount getter for responses, so the bytes
 * written since the last complete write stand for it (an upper bound). While it is over
 * `maxBuffered`, further frames are skipped, as uWS skips publishes to a WebSocket over its
 * maxBackpressure; the slow-consumer policy pauses and closes long before.
 */
export class HttpStreamTransport implements Transport, TopicSink {
  readonly remoteAddress: string;
  readonly #res: HttpResponse;
  readonly #topics: LocalTopics;
  readonly #maxBuffered: number;
  readonly #joined = new Set<string>();
  #buffered = 0;
  #lastWrite = Date.now();
  #corked = false;
  #ended = false;
  /** called once the response is over (ended here or aborted by the peer), with the close code */
  onEnd: ((code: number) => void) | undefined;
  /** called when uWS drained what it held (the writable callback) */
  onWritable: (() => void) | undefined;

  constructor(res: HttpResponse, remoteAddress: string, topics: LocalTopics, maxBuffered: number) {
    this.#res = res;
    this.remoteAddress = remoteAddress;
    this.#topics = topics;
    this.#maxBuffered = maxBuffered;
    res.onWritable(() => {
      if (this.#buffered === 0 || this.#ended) return true;
      // uWS does not drain its own buffer while an onWritable handler is set: a write does
      const ok = this.#write(SSE_COMMENT, true);
      if (ok) this.onWritable?.();
      return ok;
    });
  }

  get ended(): boolean {
    return this.#ended;
  }

  send(bytes: Uint8Array): void {
    this.#frame(bytes);
  }

  deliver(bytes: Uint8Array): void {
    this.#frame(bytes);
  }

  /** a named event (`session`, `close`): not a protocol frame */
  event(name: string, data: object): void {
    this.#write(Buffer.from(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`), true);
  }

  /**
   * Every few seconds: a comment line as a heartbeat after HEARTBEAT_MS without writes; and,
   * while uWS holds data back, a comment now: uWS ends a response that stays unwritable for 10 s
   * after a write it could not complete, and each such write starts that time again, so the
   * slow-consumer policy (slow.stuckMs, slow.hardLimitBytes), not uWS, decides when to close.
   */
  tick(now: number): void {
    if (this.#buffered > 0 || now - this.#lastWrite >= HEARTBEAT_MS) this.#write(SSE_COMMENT, true);
  }

  subscribe(topic: string): void {
    if (this.#ended) return;
    this.#joined.add(topic);
    this.#topics.join(topic, this);
  }

  unsubscribe(topic: string): void {
    this.#joined.delete(topic);
    this.#topics.leave(topic, this);
  }

  cork(fn: () => void): void {
    if (this.#corked || this.#ended) {
      fn();
      return;
    }
    this.#res.cork(() => {
      this.#corked = true;
      try {
        fn();
      } finally {
        this.#corked = false;
      }
    });
  }

  bufferedAmount(): number {
    return this.#buffered;
  }

  /** End the stream with an `event: close` carrying what a WebSocket close frame would. */
  end(code: number, reason: string): void {
    if (this.#ended) return;
    this.cork(() => {
      this.event('close', { code, reason: reason.slice(0, 120) });
      this.#finish();
      this.#res.end();
    });
    this.onEnd?.(code);
  }

  /** The peer went away (uWS onAborted): the response must not be touched again. */
  aborted(): void {
    if (this.#ended) return;
    this.#finish();
    this.onEnd?.(CloseCode.ABNORMAL);
  }

  #finish(): void {
    this.#ended = true;
    for (const t of this.#joined) this.#topics.leave(t, this);
    this.#joined.clear();
  }

  #frame(json: Uint8Array): void {
    // JSON text has no raw line breaks, so one `data:` line holds one frame
    this.#write(Buffer.concat([SSE_DATA, json, SSE_END]), false);
  }

  /** Write (corked); false when uWS is holding data back. `force`: even over maxBuffered. */
  #write(chunk: Buffer, force: boolean): boolean {
    if (this.#ended) return false;
    if (!force && this.#buffered > this.#maxBuffered) return false;
    let ok = false;
    if (this.#corked) ok = this.#res.write(chunk);
    else this.#res.cork(() => (ok = this.#res.write(chunk)));
    // a write that went through completely also sent everything uWS held before it
    this.#buffered = ok ? 0 : this.#buffered + chunk.byteLength;
    this.#lastWrite = Date.now();
    return ok;
  }
}

interface Session {
  readonly id: string;
  readonly transport: HttpStreamTransport;
  conn: Connection | undefined;
  /** last POST (command or keep-alive), ms */
  lastSeen: number;
}

/** The routes and sessions of the HTTP-streaming transport (one per gateway). */
export class HttpStreamRoutes {
  readonly #host: HttpStreamHost;
  readonly #sessions = new Map<string, Session>();
  /** sessions with a POST body being read here (one at a time) */
  readonly #reading = new Set<string>();
  #timer: NodeJS.Timeout | undefined;

  constructor(host: HttpStreamHost) {
    this.#host = host;
  }

  /** gateway.allowedOrigins: true when the request was refused (403 ORIGIN_NOT_ALLOWED, readable cross-origin). */
  #refusedOrigin(res: HttpResponse, req: HttpRequest): boolean {
    return this.#host.refuseOrigin(res, req, CORS);
  }

  /** open sessions */
  get size(): number {
    return this.#sessions.size;
  }

  install(app: TemplatedApp): void {
    app.get(HTTP_STREAM_PATH, (res, req) => {
      if (this.#refusedOrigin(res, req)) return;
      const authorization = req.getHeader('authorization');
      const queryToken = req.getQuery('token');
      this.#open(res, authorization, queryToken, remoteAddress(res));
    });
    app.post(HTTP_STREAM_PATH, (res, req) => {
      if (!this.#refusedOrigin(res, req)) this.#post(res, req.getHeader(SESSION_HEADER));
    });
    // the preflight of a cross-origin GET with Authorization, or POST with the session header
    app.options(HTTP_STREAM_PATH, (res, req) => {
      if (this.#refusedOrigin(res, req)) return;
      res.cork(() => {
        res.writeStatus(statusLine(204)).writeHeader('access-control-allow-origin', '*');
        res
          .writeHeader('access-control-allow-methods', 'GET, POST')
          .writeHeader('access-control-allow-headers', `authorization, content-type, ${SESSION_HEADER}`);
        res.writeHeader('access-control-max-age', '600').end();
      });
    });
    app.any(HTTP_STREAM_PATH, (res, req) => {
      sendJson(
        res,
        405,
        { error: 'METHOD_NOT_ALLOWED', message: `${req.getMethod().toUpperCase()} ${HTTP_STREAM_PATH}: use GET to open a stream and POST to send frames` },
        { ...CORS, allow: 'GET, POST' },
      );
    });
    const every = Math.min(TICK_MS, (this.#host.config.gateway.idleTimeoutSec * 1000) / 4);
    this.#timer = setInterval(() => this.#sweep(Date.now()), every);
    this.#timer.unref();
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Heartbeats, uWS's send timer, and the end of sessions that sent nothing for `gateway.idleTimeoutSec`. */
  #sweep(now: number): void {
    const idleMs = this.#host.config.gateway.idleTimeoutSec * 1000;
    for (const s of this.#sessions.values()) {
      if (now - s.lastSeen > idleMs)
        s.transport.end(CloseCode.GOING_AWAY, `idle session: no POST (command or keep-alive) for ${this.#host.config.gateway.idleTimeoutSec} s`);
      else s.transport.tick(now);
    }
  }

  #open(res: HttpResponse, authorization: string, queryToken: string, ip: string): void {
    const host = this.#host;
    let aborted = false;
    let session: Session | undefined;
    res.onAborted(() => {
      aborted = true;
      session?.transport.aborted();
    });
    if (!host.accepting()) {
      sendJson(res, 503, { error: 'SHUTTING_DOWN', message: 'gateway is shutting down' }, CORS);
      return;
    }
    if (host.refuseAtCapacity(res)) return;
    const token = tokenOf(authorization, queryToken);
    const base = { id: randomBytes(9).toString('base64url'), codec: CODECS.json, ip };
    // every way out but a started session frees the address's slot (limits.connectionsPerIp)
    // the gateway began to close while the token was checked (or the session announced): no
    // session starts on it (Gateway.close() would cut it without its close event)
    const refuseClosing = (): boolean => {
      if (host.accepting()) return false;
      res.cork(() => sendJson(res, 503, { error: 'SHUTTING_DOWN', message: 'gateway is shutting down' }, CORS));
      return true;
    };
    const finish = (init: ConnectionInit, closed: () => void): void => {
      if (aborted || refuseClosing() || host.refuseAtCapacity(res)) return closed();
      const id = randomBytes(18).toString('base64url');
      const announced = host.announce?.(id, (body) => this.deliver(id, body));
      // the admission and the start stay in one turn (no other stream of the user in between)
      const start = (): void => {
        if (aborted || refuseClosing() || host.refuseAtCapacity(res)) {
          announced?.stop();
          closed();
          return;
        }
        const refusal = host.admit(ip, init);
        if (refusal) {
          announced?.stop();
          closed();
          res.cork(() => sendRefusal(res, refusal, CORS));
          return;
        }
        session = this.#start(res, init, id, announced?.stop, closed);
      };
      if (!announced) {
        start();
        return;
      }
      announced.ready.then(start).catch((err: unknown) => {
        // outside uWS's handler nothing else would catch it: answer as a route that throws does
        announced.stop();
        host.log.error({ err }, 'HTTP stream open failed');
        if (session === undefined) closed();
        if (aborted || session !== undefined) return;
        try {
          res.cork(() => sendJson(res, 500, { error: 'INTERNAL', message: 'the stream could not be opened (the error is logged)' }, CORS));
        } catch {
          // the response had started or ended: nothing more can be said on it
        }
      });
    };
    const mode = host.authenticator.mode;
    const verify = !(mode === 'off' || (mode === 'optional' && token === undefined));
    // as at the WebSocket upgrade: the per-IP limits before the token is looked at
    const admission = host.admitAddress(ip, verify);
    if (!admission.ok) {
      sendRefusal(res, { status: 429, message: admission.message, retryAfter: admission.retryAfter }, CORS);
      return;
    }
    if (!verify) {
      admission.release();
      finish({ ...base, principal: {}, expiresAt: undefined }, admission.close);
      return;
    }
    host.hold(1);
    host.authenticator.authenticate(token).then(
      (verified) => {
        const result = sessionVerdict(verified);
        host.hold(-1);
        admission.release();
        if (aborted) return admission.close();
        if (!result.ok) {
          admission.close();
          host.log.info({ ip, reason: result.code }, 'HTTP stream refused: authentication failed');
          host.counters.protocolErrors[`auth:${result.code}`] = (host.counters.protocolErrors[`auth:${result.code}`] ?? 0) + 1;
          sendJson(
            res,
            401,
            { error: 'UNAUTHENTICATED', code: result.code, message: `token refused: ${result.reason}` },
            { ...CORS, 'www-authenticate': 'Bearer' },
          );
          return;
        }
        finish({ ...base, principal: result.principal, expiresAt: result.expiresAt }, admission.close);
      },
      (err: unknown) => {
        host.hold(-1);
        admission.close();
        if (aborted) return;
        host.log.error({ err }, 'authenticator failed');
        host.counters.protocolErrors['auth:jwks_unavailable'] = (host.counters.protocolErrors['auth:jwks_unavailable'] ?? 0) + 1;
        answerVerifierFailed(res, CORS);
      },
    );
  }

  /**
   * `unannounce`: ends what HttpStreamHost.announce started for `id`, when the session ends;
   * `closed`: frees the address's slot then.
   */
  #start(res: HttpResponse, init: ConnectionInit, id: string, unannounce: (() => void) | undefined, closed: () => void): Session {
    const host = this.#host;
    const transport = new HttpStreamTransport(res, init.ip, host.topics, host.config.slow.hardLimitBytes * 2);
    const session: Session = { id, transport, conn: undefined, lastSeen: Date.now() };
    this.#sessions.set(id, session);
    transport.onEnd = (code) => {
      this.#sessions.delete(id);
      unannounce?.();
      if (session.conn) host.detach(session.conn, code);
    };
    transport.onWritable = () => session.conn?.checkBackpressure(Date.now());
    transport.cork(() => {
      res
        .writeStatus(statusLine(200))
        .writeHeader('content-type', 'text/event-stream; charset=utf-8')
        .writeHeader('x-content-type-options', NOSNIFF['x-content-type-options'])
        .writeHeader('cache-control', 'no-cache, no-transform')
        // nginx and similar proxies buffer responses unless told not to
        .writeHeader('x-accel-buffering', 'no')
        .writeHeader(SESSION_HEADER, id);
      for (const [k, v] of Object.entries(CORS)) res.writeHeader(k, v);
      transport.event('session', { session: id, post: HTTP_STREAM_PATH, idle_timeout_ms: host.config.gateway.idleTimeoutSec * 1000 });
      session.conn = host.attach(transport, init, closed);
    });
    return session;
  }

  /**
   * A POST carries no token: its session id is the credential. So nothing of its body is read
   * (up to 16 frames' worth, 1 MiB at the defaults) until a gateway is known to hold the session,
   * here or, with workers or NATS, elsewhere (asked with a keep-alive, an empty body); and a
   * session's bodies are read one at a time on each gateway (the SDK sends one POST at a time).
   * Before, every POST was read whole first: anyone could make the gateway hold 1 MiB per open
   * request (test/hostile/http-stream-posts.test.ts).
   */
  #post(res: HttpResponse, id: string): void {
    const host = this.#host;
    const maxFrame = host.config.gateway.maxFrameBytes;
    let aborted = false;
    let reading = false;
    const done = (): void => {
      if (reading) this.#reading.delete(id);
      reading = false;
    };
    res.onAborted(() => {
      aborted = true;
      done();
    });
    const answer = (status: number, body: object, headers: Record<string, string> = {}): void => {
      if (!aborted) sendJson(res, status, body, { ...CORS, ...headers });
    };
    if (!id) {
      answer(400, {
        error: 'NO_SESSION',
        message: `POST ${HTTP_STREAM_PATH} needs the ${SESSION_HEADER} header: the session id from the stream's "session" event`,
      });
      return;
    }
    const unknown = (): void =>
      answer(404, {
        error: 'UNKNOWN_SESSION',
        message: `no open session "${id.slice(0, 40)}": it expired or its stream ended; open a new stream with GET ${HTTP_STREAM_PATH}`,
      });
    const here = this.#holds(id);
    // only an id this gateway could have issued is worth asking the other gateways about
    if (!here && (!host.forward || !SESSION_ID.test(id))) return unknown();
    if (this.#reading.has(id)) {
      answer(429, { error: 'RATE_LIMIT', message: `one POST at a time per session: send the next when the previous one is answered` }, { 'retry-after': '1' });
      return;
    }
    reading = true;
    this.#reading.add(id);
    const accepted = (): void => {
      if (!aborted) res.cork(() => res.writeStatus(statusLine(204)).writeHeader('access-control-allow-origin', '*').end());
    };
    // a body holds up to 16 frames' worth: the client batches what it has queued
    const body = bodyCollector(maxFrame * 16);
    body.done.then(
      (bytes) => {
        done();
        if (aborted) return;
        if (this.deliver(id, bytes)) accepted();
        else if (!host.forward) unknown();
        else
          host.forward(id, bytes).then(
            (delivered) => (delivered ? accepted() : unknown()),
            () => unknown(),
          );
      },
      (err: unknown) => {
        done();
        if (aborted) return;
        const e = err instanceof HttpError ? err : new HttpError(400, 'BAD_REQUEST', String(err));
        // and the connection is closed: the rest of a body over the limit is not read
        res.cork(() =>
          res
            .writeStatus(statusLine(e.status))
            .writeHeader('access-control-allow-origin', '*')
            .writeHeader('content-type', 'application/json')
            .writeHeader('x-content-type-options', NOSNIFF['x-content-type-options'])
            .end(JSON.stringify({ error: e.code, message: e.message }), true),
        );
      },
    );
    if (here) {
      res.onData(body.add);
      return;
    }
    // Another gateway's session, if any: its holder must say so (asked with an empty body, a
    // keep-alive there as the client's own would be) before the body is taken. uWS hands the body
    // only to an onData set now: the socket is paused meanwhile, so what is held is at most what
    // uWS had read with the headers, for the time of the question. Those bytes are copied (uWS
    // lends its chunks for the call only) into one buffer, handed to the collector once the holder
    // answered. Before, each chunk was kept as an ArrayBuffer of its own: a POST in chunked
    // transfer encoding of one-byte chunks, with a made-up session id, held hundreds of bytes per
    // byte while the question ran (100 such POSTs: 659 MiB; test/hostile/trickled-bodies.test.ts)
    let verdict: 'pending' | 'read' | 'refused' = 'pending';
    const limit = maxFrame * 16;
    let early = Buffer.alloc(0);
    let earlySize = 0;
    let earlyLast = false;
    res.onData((chunk, isLast) => {
      if (verdict === 'read') return body.add(chunk, isLast);
      if (verdict !== 'pending') return;
      earlyLast = isLast;
      // one byte past the limit is enough for the collector to refuse the body (413)
      const n = Math.min(chunk.byteLength, limit + 1 - earlySize);
      if (n <= 0) return;
      if (earlySize + n > early.length) {
        const grown = Buffer.allocUnsafe(Math.min(limit + 1, Math.max(earlySize + n, early.length * 2, 1024)));
        early.copy(grown, 0, 0, earlySize);
        early = grown;
      }
      early.set(new Uint8Array(chunk, 0, n), earlySize);
      earlySize += n;
    });
    res.pause();
    const refuse = (): void => {
      verdict = 'refused';
      early = Buffer.alloc(0);
      done();
      // the rest of the body is read and dropped, so the connection can carry the next request
      // (resumed before the answer: an ended response must not be touched)
      res.resume();
      unknown();
    };
    host.forward!(id, EMPTY).then(
      (held) => {
        if (aborted) return;
        if (!held) return refuse();
        // resumed first: the last chunk may complete the body, and its answer end the response
        res.resume();
        verdict = 'read';
        const kept = early.subarray(0, earlySize);
        early = Buffer.alloc(0);
        if (kept.length > 0 || earlyLast) body.adopt(kept.buffer.slice(kept.byteOffset, kept.byteOffset + kept.length), earlyLast);
      },
      () => {
        if (!aborted) refuse();
      },
    );
  }

  /** True when this gateway holds the open session `id`. */
  #holds(id: string): boolean {
    const s = this.#sessions.get(id);
    return s !== undefined && s.conn !== undefined && !s.conn.closed && !s.transport.ended;
  }

  /**
   * A POST's body for session `id`, if this gateway holds it (open): its frames go to the
   * connection and the session is seen (idle timer). False when the session is not here.
   */
  deliver(id: string, body: Uint8Array): boolean {
    const s = this.#sessions.get(id);
    const conn = s?.conn;
    if (!s || !conn || conn.closed || s.transport.ended) return false;
    s.lastSeen = Date.now();
    this.#deliver(conn, Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength), this.#host.config.gateway.maxFrameBytes);
    return true;
  }

  /** Hand each line of a POST body to the connection as one client frame. */
  #deliver(conn: Connection, body: Buffer, maxFrame: number): void {
    const host = this.#host;
    if (body.length === 0) {
      host.admitMessage(conn); // a keep-alive counts toward the frame rate like a frame
      return;
    }
    let start = 0;
    while (start < body.length && !conn.closed) {
      // blank lines (no frames, not counted) are stepped over here, byte by byte: an indexOf and a
      // view each cost a 1 MiB body of line breaks about 100 ms of the event loop
      // (test/hostile/http-stream-blank-lines.test.ts)
      const b = body[start]!;
      if (b === 0x0a || (b === 0x0d && (start + 1 === body.length || body[start + 1] === 0x0a))) {
        start++;
        continue;
      }
      let nl = body.indexOf(0x0a, start);
      if (nl < 0) nl = body.length;
      const line = body.subarray(start, nl);
      start = nl + 1;
      if (line.length === 1 && line[0] === 0x0d) continue;
      if (line.length > maxFrame) {
        conn.sendError('BAD_FRAME', `frame of ${line.length} bytes is over the limit of ${maxFrame}`);
        conn.end(CloseCode.TOO_LARGE, 'frame too large');
        return;
      }
      if (!host.admitMessage(conn)) continue;
      conn.onMessage(line.buffer.slice(line.byteOffset, line.byteOffset + line.length) as ArrayBuffer, false);
    }
  }
}
