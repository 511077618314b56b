import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import type WebSocket from 'ws';
import { redactText } from '../../src/core/secrets.js';
import type { FeedContext, FeedState } from './adapter.js';
import { Backoff } from './backoff.js';
import type { BackoffOptions } from './backoff.js';

/**
 * The connection lifecycle every streaming adapter needs, written once: connect, let the protocol
 * authenticate and subscribe, keep the connection alive (pings, stale-data detection, a maximum
 * connection age), reconnect with exponential backoff and jitter when it drops, and stop cleanly
 * (no timer or socket left behind). An adapter supplies a `StreamProtocol`: what to send on open
 * and how to turn each provider message into ticks.
 *
 * Two transports: `ws` (WebSocket, text or binary frames) and `http-lines` (an HTTP response that
 * never ends, one JSON document per line, as OANDA's pricing stream).
 */
export interface StreamSession {
  /** the connection number, 1 for the first connection; grows by one per reconnect */
  readonly connection: number;
  readonly ctx: FeedContext;
  /** Send one frame (ws transport only). Ignored once this connection is gone. */
  send(data: string | Uint8Array): void;
  /** The provider confirmed the subscription (or the protocol has no handshake): state `connected`. */
  ready(detail?: string): void;
  /** Drop this connection and reconnect after the backoff delay (sequence gap, protocol error). */
  reconnect(reason: string, opts?: { immediate?: boolean }): void;
  /**
   * The provider refused us: bad credentials (`auth_failed`) or another condition that retrying
   * soon cannot fix (`error`). The state is shown in health; the runner retries after
   * `retryAfterMs` (default: the longest backoff delay), or never when `retry` is false.
   */
  fail(state: Extract<FeedState, 'auth_failed' | 'error'>, detail: string, opts?: { retry?: boolean }): void;
  /** whether this connection is still the current, open one */
  readonly open: boolean;
  /**
   * The symbols `url()` was given for this connection. Where the URL carries the subscription
   * (Binance), these are the ones the connection streams; `onOpen`'s `symbols` are the current
   * ones, which can differ when symbols were added or removed while it was being made.
   */
  readonly urlSymbols: readonly string[];
}

export interface StreamProtocol {
  /** URL to connect to; called before every attempt, so it may depend on the current symbols */
  url(symbols: readonly string[]): string;
  /** request headers (credentials in headers, content negotiation) */
  headers?(): Record<string, string>;
  /**
   * The transport is open: authenticate and subscribe; call `session.ready()` when confirmed.
   * `symbols` are the current symbols (`session.urlSymbols` the URL's).
   */
  onOpen(session: StreamSession, symbols: readonly string[]): void;
  /** One provider message (a ws frame, or one line of an HTTP stream). Throwing counts an error. */
  onMessage(data: Buffer, isBinary: boolean, session: StreamSession): void;
  /** Symbols added while connected (omit to reconnect with the new URL instead). */
  onSubscribe?(symbols: readonly string[], session: StreamSession): void;
  onUnsubscribe?(symbols: readonly string[], session: StreamSession): void;
  /** The HTTP upgrade or request was answered with a status other than 101/200. */
  onHttpError?(status: number, body: string, session: StreamSession): void;
}

export interface StreamRunnerOptions {
  transport?: 'ws' | 'http-lines';
  backoff?: Partial<BackoffOptions>;
  /** ws: send a ping frame this often (0 = never). Server pings are answered automatically. */
  pingIntervalMs?: number;
  /** nothing at all received (data, heartbeat, pong) for this long: state `stale`, then reconnect */
  staleAfterMs?: number;
  /** reconnect proactively once a connection is this old (Binance closes them at 24 h) */
  maxConnectionAgeMs?: number;
  /** TCP + TLS + upgrade must complete within this time */
  connectTimeoutMs?: number;
  /** after open, the protocol must call `ready()` within this time (auth + subscribe) */
  readyTimeoutMs?: number;
  /** retry delay after `fail()` (default: backoff max) */
  retryAfterFailMs?: number;
  /**
   * at least this long between the starts of two connection attempts, whatever the reason for the
   * reconnect (backoff, subscription change, ...): for providers that limit new connections (0 = no limit)
   */
  minConnectIntervalMs?: number;
  /**
   * runners with the same key (one provider's feeds in this process) space their attempts
   * together by minConnectIntervalMs: providers limit new connections per IP, not per connection,
   * and a provider's symbols may be split over several feeds (none: each runner on its own)
   */
  connectSpacingKey?: string;
  /** largest ws message accepted */
  maxPayloadBytes?: number;
}

const DEFAULTS = {
  transport: 'ws' as const,
  pingIntervalMs: 0,
  staleAfterMs: 30_000,
  maxConnectionAgeMs: 0,
  connectTimeoutMs: 10_000,
  readyTimeoutMs: 15_000,
  minConnectIntervalMs: 0,
  maxPayloadBytes: 16 * 1024 * 1024,
};

/**
 * `ws` is loaded on first use, so that processes running only non-WebSocket feeds (synthetic,
 * replay, OANDA) start even where it is not installed.
 */
type WsModule = typeof import('ws');
let wsModule: WsModule | undefined;
function loadWs(): WsModule {
  wsModule ??= createRequire(import.meta.url)('ws') as WsModule;
  return wsModule;
}
const WS_OPEN = 1;
const WS_CLOSED = 3;

type ResolvedOptions = Required<Omit<StreamRunnerOptions, 'backoff' | 'retryAfterFailMs' | 'connectSpacingKey'>> & {
  retryAfterFailMs?: number;
  connectSpacingKey?: string;
};

/** when the last connection attempt of the runners of each connectSpacingKey started (Date.now()) */
const lastConnectByKey = new Map<string, number>();

interface Conn {
  readonly id: number;
  ws?: WebSocket;
  req?: http.ClientRequest;
  res?: http.IncomingMessage;
  readonly timers: Set<NodeJS.Timeout>;
  closed: boolean;
  ready: boolean;
  openedAt: number;
  /** the symbols url() was built from */
  urlSymbols: readonly string[];
}

export class StreamRunner {
  readonly #protocol: StreamProtocol;
  readonly #opts: ResolvedOptions;
  readonly #backoff: Backoff;
  #ctx: FeedContext | undefined;
  #conn: Conn | undefined;
  #nextId = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = true;
  #state: FeedState = 'stopped';
  #lastActivity = 0;
  /** when the last connection attempt started (Date.now()), for minConnectIntervalMs */
  #lastConnectAt = -Infinity;
  #symbols = new Set<string>();
  #stopping: Promise<void> | undefined;

  constructor(protocol: StreamProtocol, opts: StreamRunnerOptions = {}) {
    this.#protocol = protocol;
    const { backoff, ...rest } = opts;
    this.#opts = { ...DEFAULTS, ...Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined)) } as ResolvedOptions;
    this.#backoff = new Backoff(backoff);
  }

  get state(): FeedState {
    return this.#state;
  }

  get symbols(): readonly string[] {
    return [...this.#symbols];
  }

  /**
   * Whether `symbol` is one of the feed's symbols now: subscribed, and not unsubscribed since (a
   * change counts from the call, before the provider has read the request). Data of any other
   * symbol still on the wire (in flight after an unsubscribe) is not the feed's.
   */
  has(symbol: string): boolean {
    return this.#symbols.has(symbol);
  }

  /** Start connecting; resolves at once (the connection is made in the background). */
  async start(ctx: FeedContext, symbols: readonly string[] = []): Promise<void> {
    if (!this.#stopped) throw new Error('runner already started');
    this.#ctx = ctx;
    this.#stopped = false;
    this.#stopping = undefined;
    for (const s of symbols) this.#symbols.add(s);
    ctx.signal.addEventListener('abort', () => void this.stop(), { once: true });
    this.#backoff.reset();
    this.#setState('connecting');
    this.#connect();
  }

  /** Add symbols: sent on the live connection when the protocol can, else applied by reconnecting. */
  subscribe(symbols: readonly string[]): void {
    const added = symbols.filter((s) => !this.#symbols.has(s));
    for (const s of added) this.#symbols.add(s);
    if (added.length === 0 || !this.#conn || this.#conn.closed) return;
    if (this.#protocol.onSubscribe && this.#conn.ready) this.#protocol.onSubscribe(added, this.#session(this.#conn));
    else if (!this.#protocol.onSubscribe) this.#drop(this.#conn, 'subscription changed', 0);
  }

  unsubscribe(symbols: readonly string[]): void {
    const removed = symbols.filter((s) => this.#symbols.delete(s));
    if (removed.length === 0 || !this.#conn || this.#conn.closed) return;
    if (this.#protocol.onUnsubscribe && this.#conn.ready) this.#protocol.onUnsubscribe(removed, this.#session(this.#conn));
    else if (!this.#protocol.onUnsubscribe) this.#drop(this.#conn, 'subscription changed', 0);
  }

  /** Close the connection and cancel every timer; resolves when the socket is closed. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      this.#stopped = true;
      if (this.#retryTimer) clearTimeout(this.#retryTimer);
      this.#retryTimer = undefined;
      const conn = this.#conn;
      this.#conn = undefined;
      if (conn) await this.#close(conn, true);
      if (this.#ctx && this.#state !== 'stopped') this.#setState('stopped');
    })();
    return this.#stopping;
  }

  #setState(state: FeedState, detail?: string): void {
    this.#state = state;
    this.#ctx?.status(state, detail);
  }

  #connect(): void {
    if (this.#stopped || !this.#ctx) return;
    const conn: Conn = { id: ++this.#nextId, timers: new Set(), closed: false, ready: false, openedAt: 0, urlSymbols: this.symbols };
    this.#conn = conn;
    let url: string;
    try {
      url = this.#protocol.url(conn.urlSymbols);
    } catch (err) {
      this.#failConn(conn, 'error', `cannot build the provider URL: ${(err as Error).message}`, { retry: false });
      return;
    }
    // stamped as the connection is opened, after the adapter built its URL (which can take a
    // moment under load): the next attempt's timer counts from here, so opens, not the steps
    // before them, are minConnectIntervalMs apart (stamped before url(), two url() calls could be
    // a millisecond less apart; feeds/oanda/test/oanda-connect-rate.test.ts reads url() times and
    // failed once in the shared test process at load ~8)
    this.#lastConnectAt = Date.now();
    if (this.#opts.connectSpacingKey !== undefined) lastConnectByKey.set(this.#opts.connectSpacingKey, this.#lastConnectAt);
    this.#lastActivity = Date.now();
    this.#timer(conn, this.#opts.connectTimeoutMs, () => {
      if (!conn.openedAt) this.#drop(conn, `connect timeout after ${this.#opts.connectTimeoutMs} ms (${redact(url)})`);
    });
    if (this.#opts.transport === 'ws') this.#connectWs(conn, url);
    else this.#connectHttp(conn, url);
  }

  #connectWs(conn: Conn, url: string): void {
    let Ws: WsModule['WebSocket'];
    try {
      Ws = loadWs().WebSocket;
    } catch (err) {
      this.#failConn(conn, 'error', `WebSocket feeds need the "ws" package (npm install ws): ${(err as Error).message}`, { retry: false });
      return;
    }
    let ws: WebSocket;
    try {
      ws = new Ws(url, {
        headers: this.#protocol.headers?.() ?? {},
        perMessageDeflate: false,
        maxPayload: this.#opts.maxPayloadBytes,
        handshakeTimeout: this.#opts.connectTimeoutMs,
      });
    } catch (err) {
      this.#failConn(conn, 'error', `bad provider URL ${redact(url)}: ${(err as Error).message}`, { retry: false });
      return;
    }
    conn.ws = ws;
    const activity = (): void => {
      if (this.#conn === conn) this.#lastActivity = Date.now();
    };
    ws.on('open', () => {
      if (conn.closed) return;
      this.#onOpen(conn);
      if (this.#opts.pingIntervalMs > 0) {
        this.#interval(conn, this.#opts.pingIntervalMs, () => {
          if (ws.readyState === WS_OPEN) ws.ping();
        });
      }
    });
    ws.on('message', (data: WebSocket.RawData, isBinary: boolean) => {
      if (conn.closed) return;
      activity();
      this.#deliver(conn, toBuffer(data), isBinary);
    });
    ws.on('ping', activity);
    ws.on('pong', activity);
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (body.length < 2000) body += c;
      });
      res.on('end', () => this.#httpError(conn, res.statusCode ?? 0, body));
      res.on('error', () => this.#httpError(conn, res.statusCode ?? 0, body));
    });
    ws.on('error', (err) => {
      if (conn.closed) return;
      this.#ctx?.metrics?.error(`socket: ${err.message}`);
      this.#drop(conn, `socket error: ${err.message}`);
    });
    ws.on('close', (code, reason) => {
      if (conn.closed) return;
      this.#drop(conn, `provider closed the connection (${code}${reason.length ? ' ' + reason.toString() : ''})`);
    });
  }

  #connectHttp(conn: Conn, url: string): void {
    let u: URL;
    try {
      u = new URL(url);
    } catch (err) {
      this.#failConn(conn, 'error', `bad provider URL ${redact(url)}: ${(err as Error).message}`, { retry: false });
      return;
    }
    const mod = u.protocol === 'https:' ? https : http;
    const req = mod.get(u, { headers: { accept: 'application/json', ...this.#protocol.headers?.() }, agent: false }, (res) => {
      conn.res = res;
      if (conn.closed) {
        res.destroy();
        return;
      }
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          if (body.length < 2000) body += c;
        });
        res.on('end', () => this.#httpError(conn, res.statusCode ?? 0, body));
        res.on('error', () => this.#httpError(conn, res.statusCode ?? 0, body));
        return;
      }
      this.#onOpen(conn);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (conn.closed) return;
        this.#lastActivity = Date.now();
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line.length > 0) this.#deliver(conn, Buffer.from(line, 'utf8'), false);
          if (conn.closed) return;
        }
        if (buf.length > this.#opts.maxPayloadBytes) this.#drop(conn, 'line longer than maxPayloadBytes');
      });
      res.on('end', () => this.#drop(conn, 'provider ended the stream'));
      res.on('close', () => this.#drop(conn, 'provider closed the stream'));
      res.on('error', (err) => this.#drop(conn, `stream error: ${err.message}`));
    });
    conn.req = req;
    req.on('error', (err) => {
      if (conn.closed) return;
      this.#ctx?.metrics?.error(`request: ${err.message}`);
      this.#drop(conn, `request error: ${err.message}`);
    });
  }

  #onOpen(conn: Conn): void {
    conn.openedAt = Date.now();
    this.#lastActivity = conn.openedAt;
    const { staleAfterMs, maxConnectionAgeMs, readyTimeoutMs } = this.#opts;
    if (staleAfterMs > 0) {
      this.#interval(conn, Math.max(10, Math.floor(staleAfterMs / 4)), () => {
        const idle = Date.now() - this.#lastActivity;
        if (idle >= staleAfterMs) {
          this.#setState('stale', `nothing received for ${idle} ms`);
          this.#drop(conn, `stale: nothing received for ${idle} ms`, 0);
        }
      });
    }
    if (maxConnectionAgeMs > 0) {
      this.#timer(conn, maxConnectionAgeMs, () => this.#drop(conn, `connection reached its maximum age (${maxConnectionAgeMs} ms)`, 0));
    }
    this.#timer(conn, readyTimeoutMs, () => {
      if (!conn.ready) this.#drop(conn, `provider did not confirm the subscription within ${readyTimeoutMs} ms`);
    });
    try {
      this.#protocol.onOpen(this.#session(conn), this.symbols);
    } catch (err) {
      this.#ctx?.metrics?.error(`onOpen: ${(err as Error).message}`);
      this.#drop(conn, `protocol error on open: ${(err as Error).message}`);
    }
  }

  #deliver(conn: Conn, data: Buffer, isBinary: boolean): void {
    this.#ctx?.metrics?.message();
    try {
      this.#protocol.onMessage(data, isBinary, this.#session(conn));
    } catch (err) {
      this.#ctx?.metrics?.error(`bad message: ${(err as Error).message}`);
      this.#ctx?.log.warn({ err: (err as Error).message, sample: data.subarray(0, 200).toString('utf8') }, 'feed: message could not be normalized');
    }
  }

  #httpError(conn: Conn, status: number, body: string): void {
    if (conn.closed) return;
    const session = this.#session(conn);
    if (this.#protocol.onHttpError) {
      this.#protocol.onHttpError(status, body, session);
      if (!conn.closed) this.#drop(conn, `HTTP ${status}`);
      return;
    }
    if (status === 401 || status === 403)
      session.fail('auth_failed', `provider refused the credentials (HTTP ${status}${body ? ': ' + body.slice(0, 200) : ''})`);
    else this.#drop(conn, `HTTP ${status}${body ? ': ' + body.slice(0, 200) : ''}`);
  }

  #session(conn: Conn): StreamSession {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const runner = this;
    return {
      connection: conn.id,
      ctx: this.#ctx!,
      urlSymbols: conn.urlSymbols,
      get open() {
        return !conn.closed && runner.#conn === conn;
      },
      send(data) {
        if (conn.closed || !conn.ws || conn.ws.readyState !== WS_OPEN) return;
        conn.ws.send(data);
      },
      ready(detail) {
        if (conn.closed) return;
        conn.ready = true;
        runner.#backoff.reset();
        runner.#setState('connected', detail);
      },
      reconnect(reason, opts) {
        runner.#drop(conn, reason, opts?.immediate ? 0 : undefined);
      },
      fail(state, detail, opts) {
        runner.#failConn(conn, state, detail, opts);
      },
    };
  }

  #failConn(conn: Conn, state: 'auth_failed' | 'error', detail: string, opts: { retry?: boolean } = {}): void {
    if (conn.closed) return;
    this.#ctx?.metrics?.error(detail);
    this.#ctx?.log.error({ state }, detail);
    void this.#close(conn, false);
    this.#setState(state, detail);
    if (opts.retry === false || this.#stopped) return;
    this.#scheduleConnect(this.#opts.retryAfterFailMs ?? this.#backoff.max());
  }

  /** The connection is gone (or must go): close it and plan the next attempt. */
  #drop(conn: Conn, reason: string, delayMs?: number): void {
    if (conn.closed || this.#stopped) {
      if (!conn.closed) void this.#close(conn, false);
      return;
    }
    void this.#close(conn, false);
    const delay = this.#spaced(delayMs ?? this.#backoff.next());
    this.#ctx?.metrics?.reconnect();
    this.#ctx?.log.warn({ reason, retryInMs: delay }, 'feed connection lost; reconnecting');
    this.#setState('reconnecting', `${reason}; next attempt in ${delay} ms`);
    this.#scheduleConnect(delay);
  }

  #scheduleConnect(delayMs: number): void {
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      // a timer can fire a millisecond early by Date.now() (it runs on another clock): wait out the rest
      if (this.#spaced(0) > 0) this.#scheduleConnect(0);
      else this.#connect();
    }, this.#spaced(delayMs));
  }

  /**
   * `delayMs`, lengthened so that attempts start at least `minConnectIntervalMs` apart: this
   * runner's, and those of every runner with its connectSpacingKey
   */
  #spaced(delayMs: number): number {
    const key = this.#opts.connectSpacingKey;
    const last = Math.max(this.#lastConnectAt, key === undefined ? -Infinity : (lastConnectByKey.get(key) ?? -Infinity));
    return Math.max(delayMs, Math.ceil(last + this.#opts.minConnectIntervalMs - Date.now()));
  }

  /** Close one connection: timers first, then the socket (gracefully when `graceful`). */
  async #close(conn: Conn, graceful: boolean): Promise<void> {
    if (conn.closed && !graceful) return;
    conn.closed = true;
    for (const t of conn.timers) {
      clearTimeout(t);
      clearInterval(t);
    }
    conn.timers.clear();
    const ws = conn.ws;
    if (ws) {
      if (ws.readyState === WS_CLOSED) return;
      if (graceful && ws.readyState === WS_OPEN) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            ws.terminate();
            resolve();
          }, 1000);
          ws.once('close', () => {
            clearTimeout(t);
            resolve();
          });
          ws.close(1000, 'client stopping');
        });
      } else {
        ws.terminate();
      }
    }
    if (conn.res) conn.res.destroy();
    if (conn.req) conn.req.destroy();
  }

  #timer(conn: Conn, ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      conn.timers.delete(t);
      if (!conn.closed) fn();
    }, ms);
    conn.timers.add(t);
  }

  #interval(conn: Conn, ms: number, fn: () => void): void {
    const t = setInterval(() => {
      if (!conn.closed) fn();
    }, ms);
    conn.timers.add(t);
  }
}

function toBuffer(data: WebSocket.RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * `staleAfterMs` for a provider that sends no heartbeat of its own: the connection is taken as
 * dead after this many of our pings went unanswered. A WebSocket server answers every Ping with
 * a Pong (RFC 6455, 5.5.2) and a pong counts as activity, so a quiet market never trips it, while
 * a half-open connection (the path died without a close) no longer looks connected forever.
 */
export function staleAfterUnansweredPings(pingIntervalMs: number, pings = 3): number {
  return pingIntervalMs > 0 ? pings * pingIntervalMs : 0;
}

/** A provider URL fit for a message: keys in its query and a password in it hidden (src/core/secrets.ts). */
export const redact = redactText;
