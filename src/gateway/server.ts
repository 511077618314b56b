import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { HttpRequest, HttpResponse, TemplatedApp, us_listen_socket } from 'uWebSockets.js';
import type { Bus } from '../bus/bus.js';
import { MAX_SUBPROTOCOLS, negotiateSubprotocol } from '../codec/frames.js';
import type { Config } from '../core/config.js';
import { TickwireError } from '../core/errors.js';
import { LogSampler } from '../core/log-sampler.js';
import { AUTH_CHECK_PATH, CloseCode, PROTOCOL_VERSION } from '../protocol/index.js';
import type { LastValueStore } from '../store/last-value-store.js';
import { anonymousAuthenticator, sessionVerdict } from './auth-hook.js';
import { answerVerifierFailed, registerAuthCheck, tokenOf } from './auth-check.js';
import type { Authenticator } from './auth-hook.js';
import type { ChannelResolver } from '../fanout/channels.js';
import { Connection, newGatewayCounters } from './connection.js';
import type { ConnectionDeps, ConnectionInit, ConnectionUserData, GatewayCounters } from './connection.js';
import { CostlyQueues } from './costly-queue.js';
import { refuseOrigin, remoteAddress, sendJson, sendRefusal, sendText } from '../http/http.js';
import { READ_CORS, staticFileHeaders } from '../http/security-headers.js';
import { answerUnrouted, headResponse, recordRoutes, RouteTable, withParameters } from '../http/route-table.js';
import { framingProblem, guardHandlerErrors, guardHttpFraming, listHeader, refuseFraming } from '../http/http-framing.js';
import { Hub } from '../fanout/hub.js';
import type { HubSubscriber } from '../fanout/hub.js';
import { ADMITTED, defaultMaxConnections } from './limits.js';
import type { AddressAdmission } from './limits.js';
import { loadUws } from './uws.js';
import { HTTP_STREAM_PATH, HttpStreamRoutes } from './http-stream.js';
import { originCheck } from '../core/origins.js';
import { hostCheck } from '../core/hosts.js';
import { guardHost, refuseHost } from '../http/host-guard.js';
import type { HttpStreamHost } from './http-stream.js';
import { LocalTopics, UwsTransport } from './transport.js';
import type { Transport } from './transport.js';

export interface GatewayLogger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

export interface GatewayOptions {
  config: Readonly<Config>;
  bus: Bus;
  store?: LastValueStore;
  resolvers: readonly ChannelResolver[];
  authenticator?: Authenticator;
  log: GatewayLogger;
  /** extra HTTP routes (service API, metrics, feed health), registered before the 404 fallback */
  routes?: (app: TemplatedApp, gateway: Gateway) => void;
  /** extra fields for /health */
  health?: () => Record<string, unknown>;
  /** whether dependencies are reachable, for /ready */
  ready?: () => { ready: boolean; checks: Record<string, boolean> };
  onConnectionOpen?: (conn: Connection) => void;
  /** after a connection closed, with its WebSocket close code */
  onConnectionClose?: (conn: Connection, code: number) => void;
  /**
   * Called for a new connection (WebSocket upgrade, HTTP-stream open) before its token is
   * verified (`verifying`: there is one to verify): a refusal is answered 429 RATE_LIMIT with
   * `Retry-After` (per-IP limits), so that one address reaches the verifier only at its
   * connection rate. Admitted, `release` is called once the token was verified (at once without one).
   */
  admitAddress?: (ip: string, verifying: boolean) => AddressAdmission;
  /**
   * Called at upgrade after authentication; return an HTTP status and message to refuse
   * (e.g. 429 for a user's connection limit; `retryAfter`: seconds, sent as Retry-After), or
   * undefined to accept.
   */
  admit?: (ip: string, init: ConnectionInit) => { status: number; message: string; retryAfter?: number } | undefined;
  /**
   * Called before a costly HTTP request (COSTLY_HTTP_ROUTES) is served: a refusal is answered 429
   * RATE_LIMIT with `Retry-After` (per-IP limit), undefined serves it.
   */
  admitHttp?: (ip: string) => { retryAfter: number; message: string } | undefined;
  /** Called for each client frame before it is handled; false drops it (rate limits). */
  admitMessage?: (conn: Connection) => boolean;
  /** Called for each pong that answers none of the gateway's read-lag pings; false: it closed the connection. */
  admitPong?: (conn: Connection) => boolean;
  /**
   * Before a `history` subscribe of `conn` reads `bars` closed bars from the bar store: a promise
   * to wait for (the read budget), or undefined to read at once; `signal` aborts when the request
   * is superseded or dropped (stop waiting: it will not read).
   */
  historyGate?: (conn: Connection, bars: number, signal: AbortSignal) => Promise<unknown> | undefined;
  /** Called after a connection replaced its token with `{"op":"auth"}` (expiry, entitlements). */
  onAuthChanged?: (conn: Connection) => void;
  /** Called before an in-band `{"op":"auth"}` takes effect; a message refuses it with LIMIT. */
  admitAuth?: ConnectionDeps['admitAuth'];
  /** Called before an in-band `{"op":"auth"}`'s token is verified; a message refuses it with RATE_LIMIT. */
  admitAuthAttempt?: ConnectionDeps['admitAuthAttempt'];
  /** Called before a frame naming many channels is handled; a message refuses it with RATE_LIMIT. */
  admitChannels?: ConnectionDeps['admitChannels'];
  /** Called before a costly in-band answer (`alert.list`) is built; a message refuses it with RATE_LIMIT. */
  admitCostly?: ConnectionDeps['admitCostly'];
  /** Called when a costly in-band answer was built: the frames it counts as. */
  chargeFrames?: ConnectionDeps['chargeFrames'];
  /** additive in-band ops (alerts, notifications), by op name */
  extensions?: ConnectionDeps['extensions'];
  /**
   * The other gateways of this process (worker threads serving the same port, see
   * src/workers): `held()` is the connections and verifying upgrades they hold, which count
   * against `gateway.maxConnections` here too; `report` publishes this gateway's own.
   */
  peers?: { held(): number; report(open: number, verifying: number): void };
  /**
   * The other gateways of this process (src/workers): a POST of the HTTP-streaming fallback
   * whose session one of them holds goes there (`deliverHttpStream` on that gateway).
   */
  forwardHttpStream?: (session: string, body: Uint8Array) => Promise<boolean>;
  /** Make a session of this gateway reachable from other gateway processes (the bus): see HttpStreamHost.announce. */
  announceHttpStream?: HttpStreamHost['announce'];
  /** The answer of GET /v1/stats from this gateway's own figures (workers: the sum over all of them). */
  stats?: (local: GatewayStats) => Promise<object>;
}

/** GET /v1/stats of one gateway. */
export interface GatewayStats {
  connections: number;
  channels: ReturnType<Hub['channelStats']>;
  hub: Hub['stats'];
  gateway: GatewayCounters;
  capacity: Gateway['capacity'];
}

/**
 * The frame size uWS itself accepts: above the configured maximum so that frames a little over
 * it get a proper 1009 close; frames beyond this bound are cut off by uWS (1006).
 */
export function uwsPayloadLimit(maxFrameBytes: number): number {
  return Math.min(Math.max(maxFrameBytes * 4, 1024 * 1024), 64 * 1024 * 1024);
}

/**
 * The GET routes whose every request costs the gateway something beyond a constant answer: a bar
 * store read (/v1/bars), a token verification, perhaps a JWKS fetch (/v1/auth/check, opening the
 * HTTP stream), figures gathered from every worker (/v1/stats, /metrics). They are subject to
 * `admitHttp` (limits.httpRequestsPerIpPerSec), HEAD too. Not: /health and /ready (probes), the
 * pages (in memory), the service API and /admin/api (service tokens; a backend may post at
 * volume), the HTTP stream's POSTs (frames of a session, under limits.messagesPerSec).
 */
export const COSTLY_HTTP_ROUTES: ReadonlySet<string> = new Set(['/v1/bars', AUTH_CHECK_PATH, HTTP_STREAM_PATH, '/v1/stats', '/metrics']);

/** Route GET handlers of `pattern`s in `costly` through `admit` first (a refusal: 429 with Retry-After). */
function limitCostlyRoutes(app: TemplatedApp, costly: ReadonlySet<string>, admit: NonNullable<GatewayOptions['admitHttp']>): TemplatedApp {
  const target = app as unknown as { get: (pattern: string, handler: Parameters<TemplatedApp['get']>[1]) => TemplatedApp };
  const register = target.get.bind(app);
  target.get = (pattern, handler) =>
    register(
      pattern,
      !costly.has(pattern)
        ? handler
        : (res, req) => {
            const refusal = admit(remoteAddress(res));
            if (!refusal) return handler(res, req);
            // CORS as the routes' own answers: a page on another origin (a chart reading
            // /v1/bars with fetch) reads the refusal and its Retry-After, not a network error
            sendRefusal(res, { status: 429, message: refusal.message, retryAfter: refusal.retryAfter }, READ_CORS);
            return undefined;
          },
    );
  return app;
}

/**
 * How long `Gateway.close()` lets the close frames of its connections go out before it closes
 * every socket left (ms).
 */
export const CLOSE_GRACE_MS = 50;
/** At most one log line per this many ms for requests refused for their framing (the rest: `suppressed`). */
export const FRAMING_LOG_INTERVAL_MS = 10_000;

/** uSockets LIBUS_LISTEN_EXCLUSIVE_PORT: fail instead of sharing a port that is in use. */
const LISTEN_EXCLUSIVE_PORT = 1;

const MIME: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * The WebSocket gateway on uWebSockets.js: protocol v1 at /v1/stream, health routes, the
 * dashboard's static files, and the slow-consumer sweeper.
 */
export class Gateway {
  readonly hub: Hub;
  readonly counters: GatewayCounters = newGatewayCounters();
  readonly connections = new Set<Connection>();
  /**
   * The connection ceiling (`gateway.maxConnections`, 503 beyond it) and the most memory one
   * connection's buffers can hold: uWS reassembles a message, fragments included, up to
   * `receiveBytes` and cuts the connection beyond; the send buffer stays under `sendBytes` plus
   * one frame (the slow-consumer policy). Shown in /v1/stats.
   */
  readonly capacity: {
    maxConnections: number;
    refused: number;
    perConnection: { receiveBytes: number; sendBytes: number; totalBytes: number; subscriptions: number };
  };
  readonly app: TemplatedApp;
  readonly startedAt = Date.now();
  #listenSocket: us_listen_socket | undefined;
  #port = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #accepting = true;
  /** upgrades waiting for their token to be verified: they hold a socket and a slot */
  #verifying = 0;
  readonly #opts: GatewayOptions;
  /** hub topics of connections on other transports than uWS WebSockets (the HTTP stream) */
  readonly #localTopics = new LocalTopics();
  readonly #httpStream: HttpStreamRoutes;
  readonly #uws: ReturnType<typeof loadUws>;
  readonly #authenticator: Authenticator;
  /** gateway.allowedOrigins: whether a request's Origin may open a stream here */
  readonly #originAllowed: (origin: string, host: string) => boolean;
  /** gateway.allowedHosts: whether the gateway answers a request sent to this Host (DNS rebinding) */
  readonly #hostAllowed: (host: string) => boolean;
  /** log lines of requests refused for their Host: one per FRAMING_LOG_INTERVAL_MS */
  readonly #hostLog = new LogSampler(FRAMING_LOG_INTERVAL_MS);
  readonly #static = new Map<string, { body: Buffer; type: string; headers: Readonly<Record<string, string>> }>();
  readonly #routeTable = new RouteTable();
  #closing: Promise<void> | undefined;
  /** per open connection: frees its address's slot of limits.connectionsPerIp (admitAddress) */
  readonly #addressSlots = new Map<Connection, () => void>();
  #socketsClosed = false;
  /** log lines of requests refused for their framing: one per FRAMING_LOG_INTERVAL_MS */
  readonly #framingLog = new LogSampler(FRAMING_LOG_INTERVAL_MS);

  constructor(opts: GatewayOptions) {
    this.#opts = opts;
    const { config } = opts;
    this.#uws = loadUws(config.gateway.allowUwsFallback);
    this.#authenticator = opts.authenticator ?? anonymousAuthenticator;
    this.#originAllowed = originCheck(config.gateway.allowedOrigins);
    this.#hostAllowed = hostCheck(config.gateway.allowedHosts, config.host);
    const receiveBytes = uwsPayloadLimit(config.gateway.maxFrameBytes);
    const sendBytes = config.slow.hardLimitBytes * 2;
    this.capacity = {
      maxConnections: config.gateway.maxConnections ?? defaultMaxConnections(),
      refused: 0,
      perConnection: { receiveBytes, sendBytes, totalBytes: receiveBytes + sendBytes, subscriptions: config.gateway.maxSubscriptions },
    };
    // every HTTP route, including those registered by `routes`, refuses ambiguous framing first,
    // and a route that throws answers 500 instead of taking the process down
    // and every route is recorded, so that a method a path does not take gets 405 with Allow
    // and the costly routes take their per-IP budget first (outermost: HEAD, answered through the
    // recorded GET handler, is limited too)
    const app = recordRoutes(
      guardHandlerErrors(
        // the Host after the framing (a request with two Hosts is refused as ambiguous first)
        guardHost(
          guardHttpFraming(this.#uws.App(), (problem) => this.#refusedFraming(problem)),
          this.#hostAllowed,
          (host) => this.#refusedHost(host),
        ),
        (err, where) => this.#opts.log.error({ err, route: where }, 'HTTP route handler threw: answered 500'),
      ),
      this.#routeTable,
    );
    this.app = opts.admitHttp ? limitCostlyRoutes(app, COSTLY_HTTP_ROUTES, opts.admitHttp) : app;
    this.hub = new Hub({
      bus: opts.bus,
      publisher: {
        publish: (topic, bytes, binary) => {
          this.app.publish(topic, bytes, binary);
          if (this.#localTopics.size > 0) this.#localTopics.publish(topic, bytes, binary);
        },
      },
      ...(opts.store ? { store: opts.store } : {}),
      upstreamReleaseMs: config.gateway.upstreamReleaseMs,
      batchMs: config.throttle.batchMs,
      lanes: config.throttle.lanes,
      ...(opts.historyGate
        ? { historyGate: (sub: HubSubscriber, bars: number, signal: AbortSignal) => opts.historyGate!(sub as Connection, bars, signal) }
        : {}),
    });
    this.#httpStream = new HttpStreamRoutes({
      config,
      log: opts.log,
      topics: this.#localTopics,
      counters: this.counters,
      authenticator: this.#authenticator,
      accepting: () => this.#accepting,
      refuseAtCapacity: (res) => this.#atCapacity(res),
      refuseOrigin: (res, req, headers) => this.#refusedOrigin(res, req, headers),
      hold: (delta) => {
        this.#verifying += delta;
        // the other gateway workers count it too (gateway.maxConnections binds across them), as
        // for a WebSocket upgrade being verified
        this.#reportHeld();
      },
      admitAddress: (ip, verifying) => this.#admitAddress(ip, verifying),
      admit: (ip, init) => this.#opts.admit?.(ip, init),
      admitMessage: (conn) => !this.#opts.admitMessage || this.#opts.admitMessage(conn),
      attach: (transport, init, closed) => this.#attach(transport, init, closed),
      detach: (conn, code) => this.#detach(conn, code),
      ...(opts.forwardHttpStream ? { forward: opts.forwardHttpStream } : {}),
      ...(opts.announceHttpStream ? { announce: opts.announceHttpStream } : {}),
    });
    this.#loadStatic();
    this.#routes();
  }

  /**
   * A transport's connection is open: count it, welcome it, and tell the hooks. `closed` is called
   * once it closed (it frees the address's slot of limits.connectionsPerIp).
   */
  #attach(transport: Transport, init: ConnectionInit, closed?: () => void): Connection {
    const { config } = this.#opts;
    const conn = new Connection(transport, init, this.#deps);
    this.connections.add(conn);
    if (closed) this.#addressSlots.set(conn, closed);
    this.#reportHeld();
    this.counters.connectionsOpened++;
    conn.sendFrame({
      op: 'welcome',
      conn: conn.id,
      protocol: PROTOCOL_VERSION,
      server_time: Date.now(),
      limits: {
        max_frame_bytes: config.gateway.maxFrameBytes,
        max_subscriptions: config.gateway.maxSubscriptions,
        throttle_tiers: config.throttle.tiers,
        min_throttle: config.throttle.minMs,
      },
    });
    this.#opts.onConnectionOpen?.(conn);
    this.#opts.log.debug({ conn: conn.id, ip: conn.ip, user: conn.principal.user, enc: conn.codec.encoding }, 'connection open');
    return conn;
  }

  /**
   * A connection's transport closed (with this protocol close code). The hooks run before the
   * close is reported to the other gateway workers: once a peer thread sees the connection gone
   * (/v1/stats, /health, the connection ceiling), its per-user slot is free too.
   */
  #detach(conn: Connection, code: number): void {
    conn.onClose();
    this.connections.delete(conn);
    this.#addressSlots.get(conn)?.();
    this.#addressSlots.delete(conn);
    this.counters.connectionsClosed++;
    this.#opts.onConnectionClose?.(conn, code);
    this.#reportHeld();
    this.#opts.log.debug({ conn: conn.id, code }, 'connection closed');
  }

  get #deps(): ConnectionDeps {
    return (this.#depsCache ??= {
      hub: this.hub,
      resolvers: this.#opts.resolvers,
      config: this.#opts.config,
      counters: this.counters,
      authenticator: this.#authenticator,
      costlyQueues: new CostlyQueues(),
      ...(this.#opts.onAuthChanged ? { onAuthChanged: this.#opts.onAuthChanged } : {}),
      ...(this.#opts.admitAuth ? { admitAuth: this.#opts.admitAuth } : {}),
      ...(this.#opts.admitAuthAttempt ? { admitAuthAttempt: this.#opts.admitAuthAttempt } : {}),
      ...(this.#opts.admitChannels ? { admitChannels: this.#opts.admitChannels } : {}),
      ...(this.#opts.admitCostly ? { admitCostly: this.#opts.admitCostly } : {}),
      ...(this.#opts.chargeFrames ? { chargeFrames: this.#opts.chargeFrames } : {}),
      ...(this.#opts.extensions ? { extensions: this.#opts.extensions, extensionNames: new Set(this.#opts.extensions.keys()) } : {}),
    });
  }

  #depsCache: ConnectionDeps | undefined;

  get port(): number {
    return this.#port;
  }

  get authenticator(): Authenticator {
    return this.#authenticator;
  }

  #loadStatic(): void {
    const dir = this.#opts.config.gateway.webDir ?? join(process.cwd(), 'dist', 'web');
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (!statSync(path).isFile()) continue;
      const body = readFileSync(path);
      this.#static.set('/' + name, { body, type: MIME[extname(name)] ?? 'application/octet-stream', headers: staticFileHeaders(name, body) });
    }
    const index = this.#static.get('/index.html');
    if (index) this.#static.set('/', index);
  }

  #routes(): void {
    const { config } = this.#opts;
    this.app.ws<ConnectionUserData>('/v1/stream', {
      compression: this.#uws.DISABLED,
      // uWS drops an oversized frame's connection without a close frame (1006); it accepts frames
      // up to this larger bound so that we can close properly with 1009 (see onMessage)
      maxPayloadLength: uwsPayloadLimit(config.gateway.maxFrameBytes),
      idleTimeout: config.gateway.idleTimeoutSec,
      // uWS skips publishes to a socket above this; twice the hard limit leaves room for what
      // arrives between two sweeps and for the 4009 close frame itself (worst-case buffer per
      // connection: 2 x slow.hardLimitBytes + one bounded frame)
      maxBackpressure: config.slow.hardLimitBytes * 2,
      closeOnBackpressureLimit: 0,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => this.#upgrade(res, req, context),
      open: (ws) => {
        const data = ws.getUserData();
        data.conn = this.#attach(new UwsTransport(ws, data.init.ip), data.init, data.closed);
      },
      message: (ws, message, isBinary) => {
        const conn = ws.getUserData().conn;
        if (!conn) return;
        if (message.byteLength > config.gateway.maxFrameBytes) {
          conn.sendError('BAD_FRAME', `frame of ${message.byteLength} bytes is over the limit of ${config.gateway.maxFrameBytes}`);
          conn.end(CloseCode.TOO_LARGE, 'frame too large');
          return;
        }
        if (this.#opts.admitMessage && !this.#opts.admitMessage(conn)) return;
        conn.onMessage(message, isBinary);
      },
      // answers to the read-lag pings (slow.lagMs); browsers and the ws package send them by themselves.
      // Any other pong (RFC 6455 5.5.3 allows unsolicited ones, a one-way heartbeat) goes to
      // admitPong: each is a call into JavaScript, and a flood of 6-byte pongs held every other
      // connection of the worker up (test/hostile/pong-flood.test.ts)
      pong: (ws, message) => {
        const conn = ws.getUserData().conn;
        if (conn && !conn.onPong(message, Date.now())) this.#opts.admitPong?.(conn);
      },
      drain: (ws) => {
        ws.getUserData().conn?.checkBackpressure(Date.now());
      },
      close: (ws, code) => {
        const conn = ws.getUserData().conn;
        if (conn) this.#detach(conn, code);
      },
    });

    // HEAD answers like GET without a body (load balancers and uptime checks probe with HEAD)
    const health = (res: HttpResponse, head: boolean): void => {
      sendJson(
        res,
        200,
        {
          status: 'ok',
          uptime_s: Math.round((Date.now() - this.startedAt) / 1000),
          connections: this.connections.size,
          ...this.#opts.health?.(),
        },
        {},
        head,
      );
    };
    const ready = (res: HttpResponse, head: boolean): void => {
      const r = this.#opts.ready?.() ?? { ready: this.#opts.bus.connected, checks: { bus: this.#opts.bus.connected } };
      const ok = r.ready && this.#accepting;
      sendJson(res, ok ? 200 : 503, { ready: ok, checks: { ...r.checks, accepting: this.#accepting } }, {}, head);
    };
    this.app.get('/health', (res) => health(res, false));
    this.app.head('/health', (res) => health(res, true));
    this.app.get('/ready', (res) => ready(res, false));
    this.app.head('/ready', (res) => ready(res, true));
    this.app.get('/v1/stats', (res) => {
      const stats = this.#opts.stats;
      if (!stats) {
        sendJson(res, 200, this.stats());
        return;
      }
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      stats(this.stats()).then(
        (body) => {
          if (!aborted) res.cork(() => sendJson(res, 200, body));
        },
        (err: unknown) => {
          // the error (a worker's, a store's) goes to the log, never to the client
          this.#opts.log.warn({ err }, 'collecting /v1/stats failed: answered 503');
          if (!aborted)
            res.cork(() => sendJson(res, 503, { error: 'STATS', message: 'collecting stats failed (the error is logged): retry' }, { 'retry-after': '5' }));
        },
      );
    });
    registerAuthCheck(this.app, this.#authenticator);
    this.#httpStream.install(this.app);
    this.#opts.routes?.(this.app, this);
    this.app.get('/v1/stream', (res) => {
      sendJson(
        res,
        426,
        { error: 'UPGRADE_REQUIRED', message: 'this endpoint speaks WebSocket: connect with ws:// and an Upgrade header' },
        { upgrade: 'websocket' },
      );
    });
    const staticFile = (res: HttpResponse, req: HttpRequest, head: boolean): void => {
      const path = req.getUrl();
      const file = this.#static.get(path);
      if (file) return void sendText(res, 200, file.body, file.type, file.headers, head);
      // a GET route without a HEAD route of its own answers HEAD too, without its body (RFC 9110 9.3.2)
      const get = head ? this.#routeTable.getRoute(path) : undefined;
      if (get) return void get.handler(headResponse(res), withParameters(req, get.params));
      answerUnrouted(res, head ? 'HEAD' : 'GET', path, this.#allowed(path));
    };
    this.app.get('/*', (res, req) => staticFile(res, req, false));
    this.app.head('/*', (res, req) => staticFile(res, req, true));
    this.app.any('/*', (res, req) => {
      const path = req.getUrl();
      answerUnrouted(res, req.getMethod().toUpperCase(), path, this.#allowed(path));
    });
  }

  /** The methods with a route for `path` (a static file: GET and HEAD), for 405 and OPTIONS. */
  #allowed(path: string): string[] {
    return this.#static.has(path) ? ['GET', 'HEAD'] : this.#routeTable.allowed(path);
  }

  /** A POST body of the HTTP-streaming fallback for session `id`, if it is open here (from another worker). */
  deliverHttpStream(id: string, body: Uint8Array): boolean {
    return this.#httpStream.deliver(id, body);
  }

  /** This gateway's own figures (GET /v1/stats answers them, or their sum over the workers). */
  stats(): GatewayStats {
    return {
      connections: this.connections.size,
      channels: this.hub.channelStats(),
      hub: this.hub.stats,
      gateway: this.counters,
      capacity: this.capacity,
    };
  }

  #reportHeld(): void {
    this.#opts.peers?.report(this.connections.size, this.#verifying);
  }

  /**
   * gateway.allowedOrigins, for the other routes that serve the feed's data to pages (GET
   * /v1/bars): answers 403 ORIGIN_NOT_ALLOWED with `headers` and returns true for a page it does
   * not allow, counted as at the upgrade.
   */
  refuseOrigin(res: HttpResponse, req: HttpRequest, headers: Record<string, string>, what: string): boolean {
    return this.#refusedOrigin(res, req, headers, what);
  }

  /** gateway.allowedOrigins: answers 403 ORIGIN_NOT_ALLOWED and returns true for a page it does not allow. */
  #refusedOrigin(res: HttpResponse, req: HttpRequest, headers: Record<string, string> = {}, what?: string): boolean {
    const origin = req.getHeader('origin');
    if (this.#originAllowed(origin, req.getHeader('host'))) return false;
    refuseOrigin(res, origin, this.counters.protocolErrors, headers, what);
    return true;
  }

  /** gateway.allowedHosts refused a request: counted each, logged at most once per FRAMING_LOG_INTERVAL_MS. */
  #refusedHost(host: string): void {
    this.counters.protocolErrors.HOST_NOT_ALLOWED = (this.counters.protocolErrors.HOST_NOT_ALLOWED ?? 0) + 1;
    const line = this.#hostLog.take(Date.now());
    if (line)
      this.#opts.log.warn(
        { host: host.slice(0, 200), ...(line.suppressed > 0 ? { suppressed: line.suppressed } : {}) },
        'HTTP request refused (421): its Host is not a name the gateway answers; if the gateway is reached at it, add it to gateway.allowedHosts',
      );
  }

  #refusedFraming(problem: string): void {
    this.counters.protocolErrors.BAD_HTTP_FRAMING = (this.counters.protocolErrors.BAD_HTTP_FRAMING ?? 0) + 1;
    // any client can send these as fast as it connects, before any limit: counted each, logged
    // at most once per FRAMING_LOG_INTERVAL_MS (a line per request was 1.4 MB of log a second)
    const line = this.#framingLog.take(Date.now());
    if (line) this.#opts.log.info({ problem, ...(line.suppressed > 0 ? { suppressed: line.suppressed } : {}) }, 'HTTP request refused: ambiguous framing');
  }

  #upgrade(res: HttpResponse, req: HttpRequest, context: unknown): void {
    const problem = framingProblem(req);
    if (problem !== undefined) {
      this.#refusedFraming(problem);
      refuseFraming(res, problem);
      return;
    }
    const host = req.getHeader('host');
    if (!this.#hostAllowed(host)) {
      this.#refusedHost(host);
      refuseHost(res, host);
      return;
    }
    const secKey = req.getHeader('sec-websocket-key');
    // RFC 6455 11.3.4: the header may come as several lines, which are one list
    const secProtocol = listHeader(req, 'sec-websocket-protocol');
    const secExtensions = req.getHeader('sec-websocket-extensions');
    const secVersion = req.getHeader('sec-websocket-version');
    const authorization = req.getHeader('authorization');
    const queryToken = req.getQuery('token');
    const ip = remoteAddress(res);
    if (!this.#accepting) {
      sendJson(res, 503, { error: 'SHUTTING_DOWN', message: 'gateway is shutting down' });
      return;
    }
    if (this.#refusedOrigin(res, req)) return;
    if (this.#atCapacity(res)) return;
    // uWS upgrades whatever version the client names; RFC 6455 4.2.2 wants a 426 naming ours
    if (secVersion !== '13') {
      sendJson(
        res,
        426,
        {
          error: 'BAD_WEBSOCKET_VERSION',
          message: `Sec-WebSocket-Version "${secVersion.slice(0, 20)}" is not supported: this server speaks version 13 (RFC 6455)`,
        },
        { 'sec-websocket-version': '13' },
      );
      return;
    }
    const negotiated = negotiateSubprotocol(secProtocol);
    if ('offered' in negotiated) {
      sendJson(res, 400, {
        error: 'BAD_SUBPROTOCOL',
        message:
          negotiated.problem !== undefined
            ? `${negotiated.problem}: offer tickwire.v1.msgpack or tickwire.v1.json (at most ${MAX_SUBPROTOCOLS} entries)`
            : `unsupported subprotocol "${negotiated.offered.slice(0, 100)}": offer tickwire.v1.msgpack or tickwire.v1.json`,
      });
      return;
    }
    // the header wins, then the token subprotocol (browsers), then ?token= (v1's browser way)
    const token = tokenOf(authorization, negotiated.token ?? queryToken);
    const mode = this.#authenticator.mode;
    const verify = !(mode === 'off' || (mode === 'optional' && token === undefined));
    // the per-IP limits come before the token is looked at: one address reaches the verifier
    // only at its connection rate, with at most limits.verifyingPerIp tokens in it at once
    const admission = this.#admitAddress(ip, verify);
    if (!admission.ok) {
      sendRefusal(res, { status: 429, message: admission.message, retryAfter: admission.retryAfter });
      return;
    }
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    // every way out but the upgrade frees the address's slot (limits.connectionsPerIp)
    const finish = (init: ConnectionInit): void => {
      // close() began while the token was checked: no connection opens on a closing gateway (it
      // would be welcomed, then cut without a close frame when close() closes every socket)
      if (!this.#accepting) {
        admission.close();
        res.cork(() => sendJson(res, 503, { error: 'SHUTTING_DOWN', message: 'gateway is shutting down' }));
        return;
      }
      if (this.#atCapacity(res)) return admission.close();
      const refusal = this.#opts.admit?.(ip, init);
      if (refusal) {
        admission.close();
        res.cork(() => sendRefusal(res, refusal));
        return;
      }
      // never inside res.cork: after its callback, cork uncorks and sets timeouts through the HTTP
      // response it was called on, and an upgrade frees that (the socket is reallocated as a
      // WebSocket, HttpResponse::upgrade in uWebSockets v20.30, which uWebSockets.js 20.30 builds
      // on). After a token check (async) that use after free closed fresh or older connections at
      // random (1006), whose per-user slots were then free again; uWebSockets fixed it in v20.38
      // ("Fix async upgrade inside cork"). Uncorked, the upgrade writes the 101 and the open
      // handler's welcome by itself; inside the upgrade handler uWS has corked the socket already.
      res.upgrade<ConnectionUserData>({ init, closed: admission.close }, secKey, negotiated.accept, secExtensions, context as never);
    };
    const base = { id: randomBytes(9).toString('base64url'), codec: negotiated.codec, ip };
    if (!verify) {
      admission.release();
      finish({ ...base, principal: {}, expiresAt: undefined });
      return;
    }
    // the slot is held while the token is verified, so racing upgrades never overshoot
    this.#verifying++;
    this.#reportHeld();
    this.#authenticator.authenticate(token).then(
      (verified) => {
        const result = sessionVerdict(verified);
        this.#verifying--;
        this.#reportHeld();
        admission.release();
        if (aborted) return admission.close();
        if (!result.ok) {
          admission.close();
          this.#opts.log.info({ ip, reason: result.code }, 'upgrade refused: authentication failed');
          this.counters.protocolErrors[`auth:${result.code}`] = (this.counters.protocolErrors[`auth:${result.code}`] ?? 0) + 1;
          res.cork(() => res.writeStatus('401 Unauthorized').writeHeader('www-authenticate', 'Bearer').end());
          return;
        }
        finish({ ...base, principal: result.principal, expiresAt: result.expiresAt });
      },
      (err: unknown) => {
        this.#verifying--;
        this.#reportHeld();
        admission.close();
        if (aborted) return;
        this.#opts.log.error({ err }, 'authenticator failed');
        // counted with its reason like a 401 (tickwire_auth_failures_total{reason="jwks_unavailable"})
        this.counters.protocolErrors['auth:jwks_unavailable'] = (this.counters.protocolErrors['auth:jwks_unavailable'] ?? 0) + 1;
        answerVerifierFailed(res);
      },
    );
  }

  #admitAddress(ip: string, verifying: boolean): AddressAdmission {
    return this.#opts.admitAddress?.(ip, verifying) ?? ADMITTED;
  }

  /**
   * At the connection ceiling (open connections and upgrades whose token is being verified):
   * 503 with Retry-After (5-10 s, spread so refused clients do not return together).
   */
  #atCapacity(res: HttpResponse): boolean {
    const max = this.capacity.maxConnections;
    if (this.connections.size + this.#verifying + (this.#opts.peers?.held() ?? 0) < max) return false;
    this.capacity.refused++;
    const retryAfter = 5 + Math.floor(Math.random() * 6);
    sendJson(
      res,
      503,
      { error: 'AT_CAPACITY', message: `this gateway holds its maximum of ${max} connections (gateway.maxConnections): retry in ${retryAfter} s` },
      { 'retry-after': String(retryAfter) },
    );
    return true;
  }

  /**
   * Listen on host:port. `shared`: bind with SO_REUSEPORT, so that the gateway worker threads of
   * one process serve the same port (the kernel spreads connections over them); their
   * supervisor checks beforehand that no other process holds the port.
   */
  async listen(host: string, port: number, opts: { shared?: boolean } = {}): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      // exclusive: without it uSockets binds with SO_REUSEPORT, and a second gateway on the same
      // port would start silently and split the connections
      (this.app.listen as unknown as (h: string, p: number, opts: number, cb: (s: us_listen_socket | false) => void) => void)(
        host,
        port,
        opts.shared ? 0 : LISTEN_EXCLUSIVE_PORT,
        (socket) => {
          if (!socket) {
            reject(new TickwireError('LISTEN', `cannot listen on ${host}:${port}: the port is in use or the address is not local (PORT, HOST)`));
            return;
          }
          this.#listenSocket = socket;
          this.#port = this.#uws.us_socket_local_port(socket as never);
          resolve();
        },
      );
    });
    const checkMs = this.#opts.config.slow.checkMs;
    this.#sweeper = setInterval(() => {
      const now = Date.now();
      for (const c of this.connections) c.checkBackpressure(now);
    }, checkMs);
    this.#sweeper.unref();
    return this.#port;
  }

  /** Stop accepting new connections (first step of graceful shutdown). */
  stopAccepting(): void {
    this.#accepting = false;
    if (this.#listenSocket) {
      this.#uws.us_listen_socket_close(this.#listenSocket);
      this.#listenSocket = undefined;
    }
  }

  /**
   * Close every socket of the app at once, without a close handshake: idle HTTP keep-alive
   * connections too, which nothing else closes before uWS's idle timeout (about 10 s). `close`
   * ends with it; a gateway worker thread (src/workers) calls it last: a thread that ends with uWS
   * sockets open aborts the process.
   */
  closeSockets(): void {
    this.stopAccepting();
    if (this.#socketsClosed) return;
    this.#socketsClosed = true;
    // uWebSockets.js 20.30 has App.close() in its native build (not in its index.d.ts): it closes
    // every socket of the app (us_socket_context_close), listen socket included
    (this.app as unknown as { close?: () => void }).close?.();
  }

  /**
   * Close every client with `code` (1001 on shutdown) and stop; then, `graceMs` later (so that
   * the close frames and HTTP-stream close events are on their way), close every socket left:
   * HTTP keep-alive connections, connections that never sent a request, WebSocket clients that
   * did not answer the close frame. Resolves when no socket of the gateway is open; called again,
   * the same promise.
   */
  close(code: number = CloseCode.GOING_AWAY, reason = 'server shutting down', graceMs = CLOSE_GRACE_MS): Promise<void> {
    return (this.#closing ??= this.#close(code, reason, graceMs));
  }

  async #close(code: number, reason: string, graceMs: number): Promise<void> {
    this.stopAccepting();
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#httpStream.close();
    const ended = this.connections.size;
    for (const c of [...this.connections]) c.end(code, reason);
    this.hub.close();
    // uWS calls a WebSocket's close handler inside end() and keeps the socket to send the close
    // frame and wait for the answer: there is no event for "sent", only this short wait
    if (ended > 0 && graceMs > 0) await new Promise((r) => setTimeout(r, graceMs));
    this.closeSockets();
  }
}
