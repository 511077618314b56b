import { Backoff, type BackoffOptions } from './backoff.js';
import { checkAll, checkIn, fail, type Allowed } from './check.js';
import { codecFor, type ClientCodec, type Encoding } from './codec.js';
import { callAll, Emitter } from './emitter.js';
import { ClientErrorCode, TickwireClientError } from './errors.js';
import {
  AUTH_CHECK_PATH,
  authFailureIsTerminal,
  CloseCode,
  ErrorCode,
  eventKindOf,
  parseChannel,
  MAX_CHANNELS_PER_REQUEST,
  CLIENT_OPS,
  TOKEN_SUBPROTOCOL_PREFIX,
  type AckFrame,
  type AlertRuleRequest,
  type AnyUpdate,
  type AlertView,
  type ExtensionReply,
  type NotificationsReadMark,
  type OutgoingFrame,
  type OutgoingSubscribe,
  type DataFrame,
  type ErrorFrame,
  type PayloadByKind,
  type PayloadOf,
  type PongFrame,
  type RejectedChannel,
  type RequestId,
  type Update,
  type WelcomeFrame,
} from './types.js';

/** An op of an extension (`alert.create`, ...), not one of protocol v1's core ops. */
const isExtensionOp = (op: unknown): op is string => typeof op === 'string' && op !== '' && !(CLIENT_OPS as readonly string[]).includes(op);

// ---- transport -----------------------------------------------------------------------------

/** The part of the WHATWG WebSocket API the client uses; the `ws` package implements it too. */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  binaryType: string;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  /** `retryAfter`: the Retry-After header of a refused attempt, where the transport can read it (the HTTP fallback) */
  onclose: ((ev: { code: number; reason: string; wasClean?: boolean; retryAfter?: string | null | undefined }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string | string[], options?: { headers?: Record<string, string> }) => WebSocketLike;

/** The socket constructor, URL and options of a connection attempt; `bearer_`: the token as a subprotocol. */
interface SocketArgs {
  ctor_: WebSocketConstructor;
  url_: string;
  init_: { headers?: Record<string, string> } | undefined;
  token_: string | undefined;
  bearer_?: string | undefined;
}

const WS_OPEN = 1;

/** What the `ws` package adds that the client reads: a refused upgrade's response. */
interface NodeWebSocket {
  on?(
    event: 'unexpected-response',
    listener: (req: { destroy(err: Error): void }, res: { statusCode?: number; headers: Record<string, string | undefined> }) => void,
  ): void;
}

/** A token, or a function called before every (re)connect that returns a fresh one. */
export type TokenSource = string | (() => string | undefined | Promise<string | undefined>);

export interface ClientOptions {
  /** `ws://host:port/v1/stream` (or `wss://`) */
  url: string;
  /**
   * JWT, or a function that returns a fresh one. A function is called before each connection
   * attempt, before the token expires (then sent in band with `auth`), and after a refusal.
   */
  token?: TokenSource | undefined;
  /** Same as a function `token`: called for a (fresh) token; wins over `token` when both are set. */
  getToken?: (() => string | undefined | Promise<string | undefined>) | undefined;
  /**
   * With a token function: ask for a new token this long (ms) before the current one expires
   * (default 60000; at most half of the token's remaining lifetime). 0 turns it off.
   */
  refreshBeforeExpiryMs?: number | undefined;
  /**
   * Where to ask why a connection attempt was refused (`GET /v1/auth/check`, protocol
   * extension). Default: derived from `url`; `false` turns the check off (a refusal is then
   * retried like any failed attempt).
   */
  authCheckUrl?: string | false | undefined;
  /**
   * How the token travels on a WebSocket: `protocol` (one more offered subprotocol,
   * `tickwire.bearer.<jwt>`: kept out of URLs, logs and history; a token with characters a
   * subprotocol cannot hold goes as `query`), `query` (`?token=`, for gateways older than the token subprotocol) or
   * `header` (`Authorization: Bearer`, needs the `ws` package). Default: `protocol` with the
   * global WebSocket, `header` otherwise (and always on the HTTP-streaming fallback). Any other
   * value is taken as unset (never the URL).
   */
  tokenIn?: 'protocol' | 'query' | 'header' | undefined;
  /** wire encoding (default `msgpack`) */
  encoding?: Encoding | undefined;
  /**
   * WebSocket implementation. Default: the global `WebSocket` (browsers, Node 22+), else the
   * `ws` package imported on demand (Node 20).
   */
  WebSocket?: WebSocketConstructor | undefined;
  /**
   * reconnect with exponential backoff and full jitter (default on); `false` to turn off. The
   * backoff starts again only after a connection that stayed open `maxDelayMs`: one dropped sooner
   * after its welcome counts as a failed attempt
   */
  reconnect?: boolean | BackoffOptions | undefined;
  /** ms between pings (default 15000); 0 turns the heartbeat off */
  heartbeatIntervalMs?: number | undefined;
  /** a ping unanswered this long (ms) means the connection is dead (default 10000) */
  heartbeatTimeoutMs?: number | undefined;
  /** reject a request that has no reply after this many ms on an open connection (default 10000) */
  requestTimeoutMs?: number | undefined;
  /** give up a connection attempt that has not been welcomed after this many ms (default 10000) */
  connectTimeoutMs?: number | undefined;
  /**
   * The HTTP-streaming fallback for networks that refuse WebSocket upgrades (default on). A
   * client never welcomed over WebSocket streams over HTTP (JSON frames) from the attempt after a
   * WebSocket attempt that failed before the server's welcome; one that has been welcomed over
   * WebSocket takes a failure for an outage (a gateway restart) and tries WebSocket
   * `outageAttempts` times first. While on the stream it tries WebSocket again every
   * `retryWebSocketMs` (sooner after an outage: `outageProbeMs`). `false` turns it off; it is off
   * by default when `WebSocket` is given.
   */
  fallback?: boolean | FallbackOptions | undefined;
  /**
   * Follow `document.visibilityState` and tell the server when the page is hidden, so it pauses
   * latest-value channels (docs/protocol.md#visibility), from connect() until close(). Default:
   * true where `document` exists.
   */
  trackPageVisibility?: boolean | undefined;
}

export interface FallbackOptions {
  /** the stream's URL (default: the WebSocket URL with http(s) and `/sse` appended) */
  url?: string | undefined;
  /** while on the fallback, try a WebSocket again this often, ms (default 60000; 0 = never) */
  retryWebSocketMs?: number | undefined;
  /**
   * Once the client has been welcomed over WebSocket, a failed attempt means an outage (a
   * gateway restart, a deploy), not a network that refuses upgrades: WebSocket is tried this many
   * times in a row (with the reconnect backoff) before one attempt over the fallback (default 6:
   * under the default backoff the sixth retry starts about 8 s after the drop on average, at
   * most 15.75 s). 1 = fall back after the first failure, as a client never welcomed does.
   */
  outageAttempts?: number | undefined;
  /**
   * When an outage ends on the fallback, the first WebSocket probe comes after this many ms, and
   * each further one after twice the time before, up to `retryWebSocketMs` (default 5000; 0 =
   * no sooner than `retryWebSocketMs`).
   */
  outageProbeMs?: number | undefined;
}

/**
 * What each option takes (checkAll). 0 turns heartbeats, request timeouts and the token refresh
 * off; a connect timeout of 0, or no time for a pong, would give up on every attempt.
 */
const OPTIONS: { readonly [K in keyof ClientOptions]?: Allowed } = {
  token: 'a string or a function',
  getToken: 'a function',
  refreshBeforeExpiryMs: [0],
  tokenIn: '"protocol" or "query" or "header"',
  encoding: '"msgpack" or "json"',
  WebSocket: 'a function',
  reconnect: 'true or false or an object',
  heartbeatIntervalMs: [0],
  heartbeatTimeoutMs: [1],
  requestTimeoutMs: [0],
  connectTimeoutMs: [1],
  fallback: 'true or false or an object',
  trackPageVisibility: 'true or false',
};
const FALLBACK_OPTIONS: { readonly [K in keyof FallbackOptions]?: Allowed } = {
  retryWebSocketMs: [0],
  outageAttempts: [1, Infinity],
  outageProbeMs: [0],
};

/** Which transport the connection uses: `websocket`, or `http` (the fallback stream). */
export type TransportKind = 'websocket' | 'http';

export type ConnectionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface SubscribeOptions {
  /** at most one update per channel per this many ms (0 = as fast as they come) */
  throttle?: number | undefined;
  /** ask for the current value right after the ack (default true) */
  snapshot?: boolean | undefined;
  /** `executions` and `notifications` only: replay every event after this sequence number */
  since?: number | undefined;
  /**
   * bar channels: this many closed bars (1 to 1000) with the snapshot, in its update's `history`;
   * asked again after every reconnect and gap refresh, so a chart can refill itself
   */
  history?: number | undefined;
  /**
   * false: the channels are off screen (latest-value channels get the server's slow tier until
   * `setVisible(..., true)`; docs/protocol.md#visibility). Default true.
   */
  visible?: boolean | undefined;
  /** `book:SYM` channels: levels per side (rounded up to a depth the server offers, e.g. 10, 25, 100) */
  depth?: number | undefined;
}

export interface SubscribeResult {
  subscribed: string[];
  rejected: RejectedChannel[];
  /** throttle tier the server applies (ms), when it says */
  throttle?: number;
}

export interface UnsubscribeResult {
  unsubscribed: string[];
}

export interface GapEvent {
  channel: string;
  /** the seq that should have come next */
  expected: number;
  /** the seq that came */
  received: number;
  /** how many updates were missed */
  missed: number;
}

export interface LatencySample {
  /** round trip of the last ping, ms */
  rttMs: number;
  /** server clock when it answered, ms since epoch */
  serverTime: number;
  /** estimated server clock minus local clock, ms */
  clockOffsetMs: number;
}

export interface CloseEvent {
  code: number;
  reason: string;
  willReconnect: boolean;
}

export interface ReconnectEvent {
  /** 1 for the first retry after a drop */
  attempt: number;
  delayMs: number;
}

export interface EpochEvent {
  channel: string;
  previous: number;
  current: number;
}

/**
 * `executions` / `notifications`: the server's log started again below the resume point (an
 * embedded engine's memory log after a restart, a store that lost its data). The replay sends
 * what the new log holds, numbered from 1 again; the client follows the new numbering from here.
 */
export interface ResetEvent {
  channel: string;
  /** the resume point sent (the last seq seen) */
  since: number;
  /** the seq that came, at or below it */
  received: number;
}

export interface ClientEvents {
  state: { state: ConnectionState; previous: ConnectionState };
  welcome: WelcomeFrame;
  close: CloseEvent;
  reconnecting: ReconnectEvent;
  /** every update, discriminated by `kind` (`if (u.kind === 'quote') u.d.bp`) */
  data: AnyUpdate;
  trade: Update<PayloadByKind['trade']>;
  quote: Update<PayloadByKind['quote']>;
  ticker: Update<PayloadByKind['ticker']>;
  bar: Update<PayloadByKind['bar']>;
  portfolio: Update<PayloadByKind['portfolio']>;
  execution: Update<PayloadByKind['execution']>;
  system: Update<PayloadByKind['system']>;
  status: Update<PayloadByKind['status']>;
  /**
   * an item of op `correction` on a trade channel; like `cancel` it is not a trade, so it goes
   * neither to `data`, `trade` nor the channel's listeners
   */
  correction: Update<PayloadByKind['correction']>;
  cancel: Update<PayloadByKind['cancel']>;
  gap: GapEvent;
  /** the feed epoch (`ep`) of a trade/quote channel changed: the source restarted or switched */
  epoch: EpochEvent;
  /** a durable channel's log started again below the resume point (see ResetEvent) */
  reset: ResetEvent;
  rejected: RejectedChannel;
  latency: LatencySample;
  error: TickwireClientError;
}

// ---- internals -----------------------------------------------------------------------------
// Fields of the client's own objects end in `_`: the package build shortens them (esbuild
// `mangleProps`, scripts/build-package.mjs), as it does local names; fields of frames and of
// the public API keep their names.

interface Pending {
  id: number;
  frame_: OutgoingFrame;
  /** made by the client itself (resubscribe, gap refresh): nobody awaits it */
  internal_: boolean;
  resolve_(value: unknown): void;
  reject_(err: TickwireClientError): void;
  timer_?: ReturnType<typeof setTimeout>;
  sentAt_?: number;
  /** sends on this connection (a subscribe without a reply goes out again, see #send) */
  tries_?: number;
  /** a subscribe's channel its ack refused: true when the channel keeps what it had (see #subscribe) */
  keep_?: ((channel: string) => boolean) | undefined;
}

/** What a channel was before a subscribe: its settings then (`want_`), those it set (`set_`), its state. */
interface Before {
  set_: Desired;
  want_: Desired | undefined;
  st_: ChannelState | undefined;
  lastSeq_: number | undefined;
}

/** A channel's subscribe settings (what its subscribe frames carry; undefined: not sent). */
interface Desired {
  throttle: number | undefined;
  snapshot: boolean;
  history?: number | undefined;
  /** on screen (undefined: true) */
  visible?: boolean | undefined;
  depth?: number | undefined;
}

interface ChannelState {
  lastSeq_?: number | undefined;
  ep_?: number | undefined;
  /** a refresh (re-subscribe) after a gap is in flight */
  refreshing_?: boolean;
  /** durable channels: the next item starts the replay a subscribe (with `since`) asked for */
  replayStart_?: boolean;
  /** durable channels: the `since` of that subscribe (undefined when it had none) */
  replaySince_?: number | undefined;
  /** durable channels: the resume point a gap was reported and asked again for */
  holeAt_?: number;
}

const closedError = (): TickwireClientError => new TickwireClientError(ClientErrorCode.CLOSED, 'client closed');

/** Retry-After (RFC 9110, 10.2.3: delay-seconds or an HTTP-date) in ms from now; 0 without one. */
const retryAfterMs = (v: string | null | undefined): number =>
  // (none: Date.parse(undefined) is NaN)
  Math.min(2 ** 31 - 1, (/^\d+$/.test(v!) ? +v! * 1000 : Date.parse(v!) - Date.now()) || 0);

/**
 * Detach a socket and close it; `done` (if given) runs when it has closed, or at once if it cannot
 * be closed. Its error handler stays: the Node `ws` package emits an error when a socket still
 * connecting is closed, thrown as an uncaught exception where nothing listens.
 */
const shut = (ws: WebSocketLike, code: number, reason: string, done?: () => void): void => {
  ws.onclose = done ?? null;
  ws.onmessage = null;
  ws.onerror = () => undefined;
  try {
    ws.close(code, reason);
  } catch {
    done?.();
  }
};

/**
 * an `error` frame answered the request: the server refused it as a whole and changed nothing (a
 * request rejects with TickwireClientErrors only: the server's codes, or the client's own)
 */
const refusedByServer = (err: unknown): boolean => !(Object.values(ClientErrorCode) as string[]).includes((err as TickwireClientError).code);
/**
 * channels where every event matters (durable per-user logs): a gap is repaired by replay,
 * duplicates are dropped, and a reconnect resumes with `since` = the last seq seen
 */
const isResumable = (ch: string): boolean => ch === 'executions' || ch === 'notifications';
/** order books (`book:SYM`): updates are deltas, rebuilt from a snapshot (LocalBook) */
const isBook = (ch: string): boolean => ch.startsWith('book:');

/** The part of `document` page-visibility tracking uses. */
interface PageDocument {
  readonly visibilityState: string;
  addEventListener(type: 'visibilitychange', listener: () => void): void;
  removeEventListener(type: 'visibilitychange', listener: () => void): void;
}

async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const g = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (g) return g;
  // Kept out of browser bundles: a non-literal specifier is not followed by bundlers.
  const spec = 'ws';
  const mod = (await import(/* @vite-ignore */ spec)) as { default?: WebSocketConstructor; WebSocket?: WebSocketConstructor };
  const ctor = mod.WebSocket ?? mod.default;
  if (!ctor) throw new TickwireClientError(ClientErrorCode.TRANSPORT, 'no WebSocket implementation: pass options.WebSocket');
  return ctor;
}

/**
 * Client of the tickwire protocol v1: one WebSocket, many channels, kept alive across drops.
 *
 * ```ts
 * const client = new TickwireClient({ url: 'ws://127.0.0.1:8080/v1/stream' });
 * client.channel('ticker:AAPL', (t) => console.log(t.p));
 * await client.connect();
 * await client.subscribe(['ticker:AAPL'], { throttle: 250 });
 * ```
 */
export class TickwireClient extends Emitter<ClientEvents> {
  // (`declare`: set in the constructor, not defined again as class fields: bytes of the bundle budget)
  declare readonly options: Readonly<ClientOptions>;
  declare readonly codec: ClientCodec;

  #state: ConnectionState = 'idle';
  #ws: WebSocketLike | undefined;
  #wsCtor: WebSocketConstructor | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, Pending>();
  #outbox: Pending[] = [];
  readonly #desired = new Map<string, Desired>();
  readonly #channels = new Map<string, ChannelState>();
  readonly #listeners = new Map<string, Set<(d: never, u: Update<never>) => void>>();
  readonly #backoff: Backoff | undefined;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #pingOutstanding: { id: number; sentAt_: number } | undefined;
  #closing = false;
  /** counts close() calls: an attempt started before one does not go on after it */
  #run = 0;
  #connectWaiters: { resolve_(w: WelcomeFrame): void; reject_(e: unknown): void }[] = [];
  #welcome: WelcomeFrame | undefined;
  #latency: LatencySample | undefined;
  /** connection attempts since the last successful welcome */
  #attempts = 0;
  /** the transport of the current (or next) attempt, and the codec on its wire */
  #transport: TransportKind = 'websocket';
  #wire: ClientCodec;
  #welcomes = 0;
  #welcomesAtAttempt = 0;
  /** welcomed over WebSocket at least once: a failed attempt is then an outage, not a refusing network */
  #wsWelcomed = false;
  /** failed WebSocket attempts in a row (since the last welcome or the last attempt over the fallback) */
  #wsFailures = 0;
  #probeTimer: ReturnType<typeof setTimeout> | undefined;
  /** the delay of the next WebSocket probe while on the fallback (grows after an outage) */
  #probeDelay = Infinity;
  /** the page is hidden (setPageVisible / document.visibilityState) */
  #pageHidden = false;
  #stopPageTracking: (() => void) | undefined;
  /** a transport error was emitted for the current outage: one error per outage, not per retry */
  #outageReported = false;
  /** the token of the current connection (or attempt) */
  #currentToken: string | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshing: Promise<void> | undefined;
  /** no attempt before this time (ms): the pause a refusal's Retry-After or a 4008 asked for */
  #holdUntil = 0;
  /** when the current connection was welcomed (ms; NaN once it closed): see #afterClose */
  #welcomedAt?: number;

  constructor(options: ClientOptions) {
    super();
    // a bad option is a clear error now (docs/client-sdk.md#bad-input), not a silent default or
    // attempts that fail for ever: a URL that is not one, `encoding: 'jsno'` (was MessagePack), ...
    if (!/^(wss?|https?):\/\/[^/?#]/i.test(options?.url)) fail('options.url', options?.url, 'a ws(s):// or http(s):// URL');
    checkAll(options, 'options.', OPTIONS);
    const f = options.fallback;
    if (f && typeof f == 'object') checkAll(f, 'options.fallback.', FALLBACK_OPTIONS);
    this.options = Object.freeze({ ...options });
    this.codec = codecFor(options.encoding!); // (checked: unset or `msgpack` is MessagePack)
    this.#wire = this.codec;
    const rc = options.reconnect ?? true;
    this.#backoff = rc === false ? undefined : new Backoff(rc === true ? {} : rc);
  }

  /**
   * Follow `document.visibilityState`, and the `online` event (the network is back: retry now,
   * not at the end of a backoff delay), from connect() until close(): a client made and never
   * connected (a render React throws away) leaves no listener behind.
   */
  #trackPage(): void {
    if (this.#stopPageTracking) return;
    const g = globalThis as {
      document?: PageDocument;
      addEventListener?: (type: 'online' | 'offline', listener: () => void) => void;
      removeEventListener?: (type: 'online' | 'offline', listener: () => void) => void;
    };
    const doc = (this.options.trackPageVisibility ?? true) && typeof g.document?.addEventListener === 'function' ? g.document : undefined;
    const onChange = (): void => void this.setPageVisible(doc!.visibilityState !== 'hidden').catch(() => undefined);
    const onOnline = (): void => this.#retryNow();
    // (the page's state now: not sent, connect() has not opened yet)
    if (doc) {
      doc.addEventListener('visibilitychange', onChange);
      onChange();
    }
    // the network gone (the browser knows): so is the connection, whatever its socket says (a
    // dropped network leaves it open, and its data stale, until the heartbeat gives up on it)
    const onOffline = (): void => {
      if (this.#state === 'open') this.#drop(this.#ws!, 4000, 'offline'); // (open: a socket)
    };
    g.addEventListener?.('online', onOnline);
    g.addEventListener?.('offline', onOffline);
    this.#stopPageTracking = () => {
      doc?.removeEventListener('visibilitychange', onChange);
      g.removeEventListener?.('online', onOnline);
      g.removeEventListener?.('offline', onOffline);
    };
  }

  /** false while the page is hidden (as last told by setPageVisible or the document) */
  get pageVisible(): boolean {
    return !this.#pageHidden;
  }

  /**
   * Mark subscribed channels on or off screen (docs/protocol.md#visibility): off screen, quotes,
   * tickers, status and portfolio come at the server's slow tier; on screen again, a fresh
   * snapshot and their own throttle. Trades, bars and executions are not affected. Kept across
   * reconnects. A server without visibility answers UNKNOWN_OP: then nothing changes and this
   * resolves all the same.
   */
  async setVisible(channels: readonly string[], visible: boolean): Promise<void> {
    checkIn(visible ?? String(visible), 'setVisible: visible', 'true or false');
    const list = this.#checkChannels(channels).filter((c) => {
      const want = this.#desired.get(c);
      if (!want || (want.visible ?? true) === visible) return false;
      want.visible = visible;
      return true;
    });
    if (list.length === 0 || this.#state !== 'open') return; // sent with the subscribe after (re)connect
    await Promise.all(this.#chunks(list).map((channels) => this.#visibilityRequest({ op: 'visibility', id: this.#nextId++, channels, visible })));
  }

  /**
   * Tell the server whether the page is shown: hidden pauses latest-value channels (trades and
   * executions keep flowing); shown again sends their snapshots. Browsers do this by themselves
   * from `document.visibilityState` (option `trackPageVisibility`).
   */
  async setPageVisible(visible: boolean): Promise<void> {
    checkIn(visible ?? String(visible), 'setPageVisible: visible', 'true or false');
    if (this.#pageHidden === !visible) return;
    this.#pageHidden = !visible;
    // shown again while waiting out a backoff delay: the user looks at the page now, retry now
    // (a hidden tab's timers may also have been slowed down)
    if (visible) this.#retryNow();
    if (this.#state !== 'open') return; // sent on the next welcome
    await this.#visibilityRequest({ op: 'visibility', id: this.#nextId++, page: visible ? 'visible' : 'hidden' });
  }

  /**
   * Retry at once if waiting out a backoff delay (the network is back, the page is shown again),
   * but not within a pause the server asked for (Retry-After, 4008): that does not end it.
   */
  #retryNow(): void {
    if (this.#reconnectTimer && Date.now() >= this.#holdUntil) {
      clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = undefined;
      void this.#open();
    }
  }

  async #visibilityRequest(frame: OutgoingFrame): Promise<void> {
    try {
      await this.#request(frame, false);
    } catch (err) {
      // an older server: visibility is an optimisation, everything keeps flowing (a request
      // rejects with TickwireClientErrors only)
      if ((err as TickwireClientError).code !== 'UNKNOWN_OP') throw err;
    }
  }

  /** current connection state */
  get state(): ConnectionState {
    return this.#state;
  }

  /** the last `welcome` received (connection id, limits) */
  get welcome(): WelcomeFrame | undefined {
    return this.#welcome;
  }

  /** the transport in use (or tried next): `http` while on the HTTP-streaming fallback */
  get transport(): TransportKind {
    return this.#transport;
  }

  /** the last measured round trip, or undefined before the first pong */
  get latency(): LatencySample | undefined {
    return this.#latency;
  }

  /** channels the client keeps subscribed (re-established after each reconnect) */
  get subscriptions(): string[] {
    return [...this.#desired.keys()];
  }

  /** last seq seen on a channel (for `executions` and `notifications`, the resume point) */
  lastSeq(channel: string): number | undefined {
    return this.#channels.get(channel)?.lastSeq_;
  }

  /**
   * Ask again for a fresh snapshot of subscribed channels, as the client does by itself after a
   * gap: e.g. when a LocalBook's checksum does not match (`book:SYM` items after it are held
   * back until the snapshot comes).
   */
  resync(channels: readonly string[]): void {
    for (const ch of channels) {
      const st = this.#channels.get(ch);
      if (st && !st.refreshing_) this.#refresh(ch, undefined);
    }
  }

  /**
   * Listen to one channel's updates with its payload typed from the channel name.
   * Returns a function that removes the listener. Does not subscribe.
   */
  channel<C extends string>(channel: C, listener: (d: PayloadOf<C>, update: Update<PayloadOf<C>>) => void): () => void {
    let set = this.#listeners.get(channel);
    if (!set) this.#listeners.set(channel, (set = new Set()));
    const l = listener as (d: never, u: Update<never>) => void;
    set.add(l);
    return () => {
      // the channel's entry goes with its last listener: a long session looks at many channels
      if (set.delete(l) && !set.size && this.#listeners.get(channel) === set) this.#listeners.delete(channel);
    };
  }

  /**
   * Open the connection (and keep it open until `close()`). Resolves on the first `welcome`;
   * rejects if the client is closed first or reconnecting gives up.
   */
  connect(): Promise<WelcomeFrame> {
    if (this.#state === 'open') return Promise.resolve(this.#welcome!); // (set before the state is)
    const p = new Promise<WelcomeFrame>((resolve, reject) => this.#connectWaiters.push({ resolve_: resolve, reject_: reject }));
    if (this.#state === 'idle' || this.#state === 'closed') {
      this.#closing = false;
      this.#trackPage();
      this.#backoff?.reset();
      this.#attempts = this.#wsFailures = 0;
      void this.#open();
    }
    return p;
  }

  /** Close for good (code 1000). Pending requests are rejected with CLOSED. */
  async close(): Promise<void> {
    this.#stop(closedError());
    this.#stopPageTracking?.();
    this.#stopPageTracking = undefined;
    const ws = this.#ws;
    this.#ws = undefined;
    this.#pingOutstanding = undefined;
    this.#setState('closed');
    if (!ws) return;
    return new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        resolve();
      };
      const t = setTimeout(done, 2000);
      shut(ws, CloseCode.NORMAL, 'client closed', done);
      if (ws.readyState === 3) done();
    });
  }

  /**
   * Subscribe to channels. Resolves with the server's ack: `subscribed` and `rejected` (each with
   * code and reason; rejected channels are also emitted as `rejected` events and not retried).
   * Rejects on an `error` reply (e.g. BAD_REQUEST, RATE_LIMIT after three sends). More than 1000
   * channels go in requests of at most 1000, answered together. Before the connection is open the
   * request waits for it. The subscription is re-established, with a snapshot, after reconnects.
   */
  subscribe(channels: readonly string[], options: SubscribeOptions = {}): Promise<SubscribeResult> {
    const list = this.#checkChannels(channels);
    // (the gateway refuses a bad throttle, since, history, depth or snapshot with BAD_REQUEST)
    checkIn(options.visible, 'subscribe: options.visible', 'true or false');
    return this.#subscribe(list, options, false);
  }

  /** `left`: the channels were just unsubscribed on this connection (setThrottle). */
  #subscribe(list: string[], options: SubscribeOptions, left: boolean): Promise<SubscribeResult> {
    // closed (close(), a refused token, reconnecting given up): nothing would send it; change nothing
    if (this.#state === 'closed') return Promise.reject(closedError());
    const snapshot = options.snapshot ?? true;
    const welcomes = this.#welcomes;
    // what each channel was before: a request the server refuses as a whole changes nothing there
    const before = new Map<string, Before>();
    // one object per channel: setVisible changes a channel's own, and #restore tells them apart
    const desired = (): Desired => ({
      throttle: options.throttle,
      snapshot,
      history: options.history,
      visible: options.visible && undefined, // (false, or undefined for true)
      depth: options.depth,
    });
    for (const ch of list) {
      const want = desired();
      const prev = this.#channels.get(ch);
      before.set(ch, { set_: want, want_: this.#desired.get(ch), st_: prev, lastSeq_: prev?.lastSeq_ });
      this.#desired.set(ch, want);
      const st = this.#chan(ch);
      st.refreshing_ = false;
      if (isResumable(ch)) {
        if (options.since !== undefined) st.lastSeq_ = options.since;
      } else {
        st.lastSeq_ = undefined;
      }
    }
    const undo = (channels: Iterable<string>): void => {
      const restored = this.#restore(before, channels);
      // the server does not hold them (left just before, or a new connection's resubscribe
      // skipped them for this request): join again with the settings kept
      if ((left || this.#welcomes !== welcomes) && this.#state === 'open') {
        for (const [ch, want] of restored) this.#sendInternal(this.#subFrame([ch], want, isResumable(ch) ? this.#channels.get(ch)?.lastSeq_ : undefined));
      }
    };
    // a channel the ack refuses (e.g. a book depth over the largest) keeps, on the server, the
    // subscription it had: so does the client
    const keep = (ch: string): boolean => {
      const b = before.get(ch);
      if (!b?.want_ || this.#desired.get(ch) !== b.set_) return false;
      undo([ch]);
      return true;
    };
    // in requests one may carry (#chunks: at most 1000 channels, under the frame limit), each sent
    // again (#send) and undone (below) on its own, as the resubscribe after a reconnect sends them;
    // one result of them all. A part refused as a whole rejects the call; the parts acked stay
    return Promise.all(
      this.#chunks(list).map((part) =>
        (this.#request(this.#subFrame(part, desired(), options.since), false, keep) as Promise<SubscribeResult>).catch((err: unknown) => {
          // refused, or never answered: the client keeps what it had, not what the request asked
          if (refusedByServer(err) || (err as TickwireClientError).code === ClientErrorCode.TIMEOUT) undo(part);
          throw err;
        }),
      ),
    ).then((rs) => ({ ...rs[0]!, subscribed: rs.flatMap((r) => r.subscribed), rejected: rs.flatMap((r) => r.rejected) }));
  }

  /**
   * Undo what a subscribe the server refused (an `error` frame) set, for each channel no later
   * request has set since: the client keeps (and after a reconnect re-establishes) exactly what
   * the server holds, not the refused settings, and forgets channels the request would have added.
   */
  #restore(before: ReadonlyMap<string, Before>, channels: Iterable<string>): Map<string, Desired> {
    const restored = new Map<string, Desired>();
    for (const ch of channels) {
      const b = before.get(ch);
      if (!b || this.#desired.get(ch) !== b.set_) continue;
      if (b.want_) {
        restored.set(ch, b.want_);
        this.#desired.set(ch, b.want_);
      } else this.#desired.delete(ch);
      const st = this.#channels.get(ch);
      if (!b.st_) {
        if (st && !b.want_) this.#channels.delete(ch);
      } else if (st === b.st_ && isResumable(ch)) st.lastSeq_ = b.lastSeq_;
    }
    return restored;
  }

  /**
   * Change the throttle of channels already subscribed: unsubscribes and subscribes again with
   * the new setting (a fresh snapshot follows). Book channels keep the `depth` of the first
   * channel given: change books of different depths in separate calls.
   */
  async setThrottle(channels: readonly string[], throttle: number): Promise<SubscribeResult> {
    const list = this.#checkChannels(channels);
    const snapshot = list.every((c) => this.#desired.get(c)?.snapshot ?? true);
    const visible = list.some((c) => this.#desired.get(c)?.visible ?? true);
    const depth = this.#desired.get(list[0]!)?.depth;
    const open = this.#state === 'open';
    if (open) for (const channels of this.#chunks(list)) this.#sendInternal({ op: 'unsubscribe', id: this.#nextId++, channels });
    // refused, the channels are joined again with the settings they had (see #subscribe)
    return this.#subscribe(list, { throttle, snapshot, visible, depth } as SubscribeOptions, open);
  }

  /** Queued subscribes lose the channels unsubscribed since they were made (see #prune). */
  #pruneQueued(): void {
    this.#outbox = this.#outbox.filter((p) => this.#prune(p));
  }

  /**
   * A subscribe about to go out (queued, or sent again: #send) loses the channels unsubscribed
   * since it was made, an unsubscribe those subscribed again (that subscribe went after it: it
   * wins), a visibility frame the channels no longer subscribed or since marked the other way
   * (its page state: sent only if the page still is so); one left with nothing resolves now
   * (false: not to be sent).
   */
  #prune(p: Pending): boolean | undefined {
    const f = p.frame_;
    const sub = f.op === 'subscribe';
    if (f.op === 'visibility') {
      if (
        f.page
          ? this.#pageHidden === (f.page === 'hidden')
          : (f.channels = f.channels!.filter((c) => this.#desired.has(c) && (this.#desired.get(c)!.visible ?? true) === f.visible)).length
      )
        return true;
    } else if (!sub && f.op !== 'unsubscribe') return true;
    else if ((f.channels = f.channels.filter((c) => this.#desired.has(c) === sub)).length) return true;
    p.resolve_(sub ? { subscribed: [], rejected: [] } : { unsubscribed: [] });
  }

  /** Unsubscribe; resolves with the ack. Updates of these channels stop being delivered at once. */
  unsubscribe(channels: readonly string[]): Promise<UnsubscribeResult> {
    const list = this.#checkChannels(channels);
    for (const ch of list) this.#forget(ch);
    this.#pruneQueued();
    if (this.#state !== 'open') return Promise.resolve({ unsubscribed: list });
    return Promise.all(this.#chunks(list).map((channels) => this.#request({ op: 'unsubscribe', id: this.#nextId++, channels }, false))).then((rs) => ({
      unsubscribed: (rs as UnsubscribeResult[]).flatMap((r) => r.unsubscribed),
    }));
  }

  /** Measure the round trip now; resolves with it in ms. */
  async ping(): Promise<number> {
    if (this.#state !== 'open') throw new TickwireClientError(ClientErrorCode.CONNECTION_LOST, 'not connected');
    return this.#request({ op: 'ping', id: this.#nextId++ }, false) as Promise<number>;
  }

  /**
   * Send an extension op of protocol v1 (`alert.create`, `notifications.read`, ...: docs/protocol.md,
   * "Alerts and notifications") on this connection. Resolves with the server's answer (a frame
   * with the same `op` and `id`); rejects with a TickwireClientError carrying the code of the
   * server's `error` frame (`UNAUTHENTICATED` without a token, `ALERT_INVALID`, ...), or
   * CONNECTION_LOST when the connection drops before the answer (not sent again: check, then
   * retry). Before connect() and while the client reconnects, the op waits for the connection.
   */
  async request(op: string, fields: Record<string, unknown> = {}): Promise<ExtensionReply> {
    if (!isExtensionOp(op)) throw new TypeError(`request: "${String(op)}" is not an extension op`);
    return this.#request({ ...fields, op, id: this.#nextId++ } as unknown as OutgoingFrame, false) as Promise<ExtensionReply>;
  }

  /** Create a price alert of this connection's user (docs/alerts.md); resolves with the rule as stored. */
  async createAlert(rule: AlertRuleRequest): Promise<AlertView> {
    return (await this.request('alert.create', { rule })).alert as AlertView;
  }

  /** The user's alert rules, with their state. */
  async listAlerts(): Promise<AlertView[]> {
    return (await this.request('alert.list')).alerts as AlertView[];
  }

  /** Replace the rule with the same `id` (its state starts fresh). */
  async updateAlert(rule: AlertRuleRequest): Promise<AlertView> {
    return (await this.request('alert.update', { rule })).alert as AlertView;
  }

  /** Delete a rule; resolves with its id. */
  async deleteAlert(id: string): Promise<string> {
    return (await this.request('alert.delete', { rule: id })).deleted as string;
  }

  /** Mark the user's notifications read: up to a seq, up to an id, or by ids. Every connection of the user sees the marker. */
  async markNotificationsRead(mark: NotificationsReadMark): Promise<{ seq: number; unread: number }> {
    const r = await this.request('notifications.read', mark as Record<string, unknown>);
    return { seq: r.seq as number, unread: r.unread as number };
  }

  /** Send a fresh token (from the token function) to replace the connection's token before it expires. */
  async refreshAuth(token?: string): Promise<void> {
    checkIn(token, 'refreshAuth: token', 'a string');
    const t = token ?? (await this.#token());
    if (!t) throw new TickwireClientError(ClientErrorCode.TOKEN, 'no token to send');
    if (this.#state !== 'open') {
      // a fixed token is this one from now on (else the next connection would present the one it
      // replaces, maybe expired); a token function is asked anyway (#open sets #currentToken)
      if (token) this.#currentToken = token;
      return;
    }
    if (t === this.#currentToken && token === undefined) {
      // the token function had nothing newer: try again closer to expiry
      this.#scheduleRefresh(tokenExpiry(t));
      return;
    }
    const ack = (await this.#request({ op: 'auth', id: this.#nextId++, token: t }, false)) as AckFrame;
    this.#currentToken = t;
    this.#scheduleRefresh(ack?.expires ?? tokenExpiry(t));
  }

  // ---- connection lifecycle ----------------------------------------------------------------

  #setState(state: ConnectionState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.emit('state', { state, previous });
  }

  /** whether tokens come from a function (so a refused or expiring one can be replaced) */
  get #tokenIsRenewable(): boolean {
    return this.options.getToken != null || typeof this.options.token === 'function';
  }

  async #token(): Promise<string | undefined> {
    const src = this.options.getToken ?? this.options.token;
    if (src == null) return undefined;
    // a fixed token: the last the server accepted (refreshAuth(token) replaces it in band), so a
    // reconnect does not present the first, maybe expired, one
    if (typeof src === 'string') return this.#currentToken ?? src;
    return await src();
  }

  get #fallback(): FallbackOptions | undefined {
    // a WebSocket implementation of the application's own is its choice of transport
    const f = this.options.fallback ?? this.options.WebSocket === undefined;
    return f === false ? undefined : f === true ? {} : f;
  }

  /** The socket constructor, URL and options of an attempt over `transport`. */
  async #socketArgs(transport: TransportKind): Promise<SocketArgs> {
    const http = transport === 'http';
    // the fallback is a chunk of its own: loaded on the first attempt over HTTP, never before
    const ctor = http ? (await import('./http-stream.js')).HttpStreamSocket : (this.#wsCtor ??= this.options.WebSocket ?? (await defaultWebSocket()));
    const token = await this.#token().catch((cause: unknown) => {
      throw new TickwireClientError(ClientErrorCode.TOKEN, `token function failed: ${String(cause)}`, { cause });
    });
    const global = (globalThis as { WebSocket?: unknown }).WebSocket;
    // (checked at construction: a typo is an error there, never the URL)
    const tokenIn = this.options.tokenIn ?? (ctor === global ? 'protocol' : 'header');
    let url = (http && this.#fallback?.url) || this.options.url;
    let init: { headers?: Record<string, string> } | undefined;
    let bearer: string | undefined;
    if (token) {
      if (tokenIn === 'header' || (http && tokenIn === 'protocol')) init = { headers: { Authorization: `Bearer ${token}` } };
      // a subprotocol is an RFC 9110 token: a JWT is one (base64url and dots)
      else if (tokenIn === 'protocol' && /^[\w!#$%&'*+.^`|~-]+$/.test(token)) bearer = TOKEN_SUBPROTOCOL_PREFIX + token;
      else {
        const u = new URL(url);
        u.searchParams.set('token', token);
        url = u.toString();
      }
    }
    return { ctor_: ctor, url_: url, init_: init, token_: token, bearer_: bearer };
  }

  /** A socket of an attempt, offering `subprotocol` (the encoding) and the token's, if it goes as one. */
  #newSocket(a: SocketArgs, subprotocol: string): WebSocketLike {
    const p = a.bearer_ ? [subprotocol, a.bearer_] : [subprotocol];
    return a.init_ ? new a.ctor_(a.url_, p, a.init_) : new a.ctor_(a.url_, p);
  }

  async #open(): Promise<void> {
    this.#setState(this.#attempts === 0 && !this.#welcome ? 'connecting' : 'reconnecting');
    this.#attempts++;
    this.#welcomesAtAttempt = this.#welcomes;
    const run = this.#run;
    let ws: WebSocketLike;
    let token: string | undefined;
    try {
      const args = await this.#socketArgs(this.#transport);
      if (run !== this.#run) return; // closed meanwhile (close() and #fail count runs)
      token = args.token_;
      this.#currentToken = token;
      // the fallback stream carries JSON whatever the configured encoding
      this.#wire = this.#transport === 'http' ? codecFor('json') : this.codec;
      ws = this.#newSocket(args, this.#wire.subprotocol);
    } catch (err) {
      if (run !== this.#run) return; // closed meanwhile (close() and #fail count runs)
      this.#reportOutage(err);
      this.#alternateTransport();
      this.#afterClose(1006, 'connect failed', false);
      return;
    }
    this.#ws = ws;
    let opened = false;
    let transportMessage: string | undefined;
    let retryAfter: string | undefined;
    // the `ws` package (Node): the status and Retry-After of a refused upgrade, which a browser's
    // WebSocket hides; refused the way `ws` refuses by itself (an error, then a 1006 close)
    (ws as NodeWebSocket).on?.('unexpected-response', (req, res) => {
      retryAfter = res.headers['retry-after'];
      req.destroy(new Error(`Unexpected server response: ${res.statusCode}`));
    });
    ws.onopen = () => {
      opened = true;
    };
    ws.binaryType = 'arraybuffer';
    const timeout = this.options.connectTimeoutMs ?? 10_000;
    this.#connectTimer = setTimeout(() => {
      if (this.#ws !== ws || this.#state === 'open') return;
      // an outage (a gateway or proxy that hangs): one error, and a close event only for a socket that opened
      this.#reportOutage('connect timeout');
      this.#drop(ws, 4000, 'connect timeout', opened);
    }, timeout);
    ws.onmessage = (ev) => {
      if (this.#ws === ws) this.#onMessage(ev.data);
    };
    ws.onerror = (ev) => {
      if (this.#ws !== ws) return;
      const msg = (ev as { message?: string; error?: { message?: string } })?.message ?? (ev as { error?: { message?: string } })?.error?.message;
      transportMessage = msg ? `WebSocket error: ${msg}` : 'WebSocket error';
      // an attempt that never opened is judged at its close (refused token or outage)
      if (opened) this.#reportOutage(transportMessage);
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#ws = undefined;
      if (opened || this.#closing) this.#afterClose(ev.code, ev.reason, opened);
      else void this.#afterFailedAttempt(ev.code, ev.reason, token, transportMessage, retryAfter ?? ev.retryAfter);
    };
  }

  /**
   * An attempt closed before it opened: a refused upgrade (the browser is not told why), or the
   * server is unreachable. The auth check tells which. A refused token is final unless the token
   * function yields another one; anything else is an outage, retried with backoff.
   */
  async #afterFailedAttempt(code: number, reason: string, token: string | undefined, message: string | undefined, retryAfter?: string | null): Promise<void> {
    // an attempt of this run: a close() (and connect()) while it waits for the check ends it
    const run = this.#run;
    // the verdict (auth-check.ts, in the fallback's chunk, loaded now if not yet: not loaded, the
    // page's own server unreachable too, no verdict, as when the check cannot be had): the 1008
    // the HTTP fallback closes with before opening when it reads a 401, else the auth check
    const verdict = await import('./http-stream.js').then(
      (m) => m.checkAuth(this.options, token, AUTH_CHECK_PATH, code === CloseCode.POLICY ? reason : undefined),
      () => undefined,
    );
    if (run !== this.#run) return;
    if (verdict && !verdict.ok && authFailureIsTerminal(verdict.reason)) {
      const err = new TickwireClientError(ErrorCode.UNAUTHENTICATED, `token refused (${verdict.reason}): ${verdict.message}`, { reason: verdict.reason });
      let next: string | undefined;
      if (this.#tokenIsRenewable) next = await this.#token().catch(() => undefined);
      if (run !== this.#run) return;
      if (next === undefined || next === token) return this.#fail(err);
      // the token function had a new token: try it at once (not an outage). Refused again in a
      // row, the next one waits for the backoff: a token source that hands out tokens the gateway
      // refuses (expired: a clock behind) is not asked in a loop
      return this.#afterClose(code, reason, false, this.#attempts > 1 ? undefined : 0);
    }
    this.#reportOutage(message ?? `connection failed (${code}${reason ? ' ' + reason : ''})`);
    this.#alternateTransport();
    this.#afterClose(code, reason, false, undefined, retryAfter);
  }

  /**
   * One transport error per outage: the first failure reports it, retries do not. `err`: the
   * client's error, or what failed (a message, or the cause of a TRANSPORT error).
   */
  #reportOutage(err: unknown): void {
    if (this.#outageReported) return;
    this.#outageReported = true;
    this.emit(
      'error',
      err instanceof TickwireClientError ? err : new TickwireClientError(ClientErrorCode.TRANSPORT, String(err), typeof err === 'string' ? {} : { cause: err }),
    );
  }

  /** Give up for good: one error, one state change to `closed`; pending requests are rejected. */
  #fail(err: TickwireClientError): void {
    this.#stop(err);
    this.emit('error', err);
    this.#setState('closed');
  }

  /**
   * Stop for good (close() or #fail): timers cleared, requests and connect() waiters rejected. An
   * attempt still waiting for its token belongs to this run: a connect() right after (React
   * StrictMode mounts twice) must not find it going on.
   */
  #stop(err: TickwireClientError): void {
    this.#closing = true;
    this.#run++;
    this.#clearTimers();
    for (const p of [...this.#pending.values(), ...this.#outbox]) {
      clearTimeout(p.timer_);
      if (!p.internal_) p.reject_(err);
    }
    for (const w of this.#connectWaiters.splice(0)) w.reject_(err);
    this.#pending.clear();
    this.#outbox = [];
  }

  /** With a token function: get a new token before this one expires and send it in band. */
  #scheduleRefresh(expires: number | undefined): void {
    clearTimeout(this.#refreshTimer);
    const lead = this.options.refreshBeforeExpiryMs ?? 60_000;
    if (!this.#tokenIsRenewable || expires === undefined || !(lead > 0)) return;
    const remaining = expires - Date.now();
    const delay = Math.max(1000, remaining - lead, remaining / 2);
    this.#refreshTimer = setTimeout(() => void this.#refreshNow(), Math.min(delay, 2 ** 31 - 1));
  }

  /** Refresh once at a time; a failure is one error, and the connection keeps its token. */
  #refreshNow(): Promise<void> {
    this.#refreshing ??= this.refreshAuth()
      .catch((err: unknown) => {
        this.emit(
          'error',
          err instanceof TickwireClientError ? err : new TickwireClientError(ClientErrorCode.TOKEN, `token refresh failed: ${String(err)}`, { cause: err }),
        );
      })
      .finally(() => {
        this.#refreshing = undefined;
      });
    return this.#refreshing;
  }

  /**
   * An attempt that failed before the welcome, not for its token. A browser cannot tell a refused
   * upgrade from a server that is down, so history decides. Never welcomed over WebSocket: the
   * next attempt uses the other transport (WebSocket and the HTTP-streaming fallback alternate
   * until one gets a welcome), so a network that refuses upgrades connects quickly. Welcomed
   * over WebSocket before: an outage (a gateway restart), so WebSocket is retried
   * `outageAttempts` times in a row before one attempt over the fallback; a failed attempt over
   * the fallback goes back to WebSocket.
   */
  #alternateTransport(): void {
    const f = this.#fallback;
    if (this.#welcomes !== this.#welcomesAtAttempt || !f || this.#closing) return;
    if (this.#transport === 'websocket' && this.#wsWelcomed && ++this.#wsFailures < (f.outageAttempts ?? 6)) return;
    this.#wsFailures = 0;
    this.#transport = this.#transport === 'websocket' ? 'http' : 'websocket';
  }

  /** Abandon a socket now (dead peer, timeout): detach, close, and go through the close path. */
  #drop(ws: WebSocketLike, code: number, reason: string, wasOpen?: boolean): void {
    shut(ws, code, reason);
    if (this.#ws === ws) {
      this.#ws = undefined;
      this.#alternateTransport(); // a connect timeout
      this.#afterClose(code, reason, wasOpen);
    }
  }

  #clearTimers(): void {
    // (the heartbeat's is an interval: one list of timers for both, in HTML and in Node)
    [this.#reconnectTimer, this.#connectTimer, this.#heartbeatTimer, this.#refreshTimer, this.#probeTimer].map(clearTimeout);
    // (only the reconnect timer is ever read: the others are cleared, never tested)
    this.#reconnectTimer = undefined;
  }

  /**
   * While on the fallback: try a WebSocket every `retryWebSocketMs` (after an outage: first after
   * `outageProbeMs`, then twice as long each time, up to `retryWebSocketMs`); when one opens,
   * close it and move the connection over (a reconnect, with resubscriptions and snapshots).
   */
  #scheduleProbe(): void {
    const every = this.#fallback?.retryWebSocketMs ?? 60_000;
    if (!(every > 0) || this.#transport !== 'http') return;
    const delay = Math.min(every, this.#probeDelay);
    this.#probeDelay = delay * 2;
    this.#probeTimer = setTimeout(() => void this.#probe(), delay);
  }

  async #probe(): Promise<void> {
    const current = this.#ws;
    let probe: WebSocketLike;
    try {
      const args = await this.#socketArgs('websocket');
      if (this.#ws !== current || this.#closing) return;
      probe = this.#newSocket(args, this.codec.subprotocol);
    } catch {
      this.#scheduleProbe();
      return;
    }
    probe.onerror = () => undefined; // (a new socket has no onmessage)
    probe.onclose = () => {
      if (this.#ws === current && !this.#closing) this.#scheduleProbe();
    };
    probe.onopen = () => {
      shut(probe, CloseCode.NORMAL, 'probe');
      if (this.#ws !== current || this.#closing || !current) return;
      this.#transport = 'websocket';
      // not a failure: the backoff starts again (#afterClose), however soon after the welcome
      this.#welcomedAt = 0;
      this.#drop(current, CloseCode.NORMAL, 'leaving the fallback');
    };
  }

  /**
   * `wasOpen`: a connection that had opened closed (else a failed attempt, already reported).
   * `delayMs`: reconnect after this long instead of the backoff's next delay. `retryAfter`: the
   * refusal's Retry-After: the next attempt waits at least that long.
   */
  #afterClose(code: number, reason: string, wasOpen = true, delayOverride?: number, retryAfter?: string | null): void {
    this.#clearTimers();
    this.#pingOutstanding = undefined;
    // Requests in flight on the dead socket: subscribes go out again on the next connection,
    // the rest are settled now (the server forgets a connection's subscriptions with it).
    const requeue: Pending[] = [];
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer_);
      delete p.timer_;
      p.tries_ = 0; // a subscribe sent again on the next connection has its three sends there
      const op = p.frame_.op;
      if (op === 'subscribe' && !p.internal_) requeue.push(p);
      else if (op === 'unsubscribe') p.resolve_({ unsubscribed: p.frame_.channels });
      else if (!p.internal_) p.reject_(new TickwireClientError(ClientErrorCode.CONNECTION_LOST, `connection closed (${code}) before the reply`));
    }
    this.#pending.clear();
    this.#outbox = [...requeue.sort((a, b) => a.id - b.id), ...this.#outbox];
    // (an unsubscribe sent after one of them took its channels back: the new connection must not join them)
    this.#pruneQueued();
    for (const [ch, st] of this.#channels) {
      st.refreshing_ = false;
      if (!isResumable(ch)) st.lastSeq_ = undefined;
    }
    if (this.#closing) {
      this.#setState('closed');
      return;
    }
    const b = this.#backoff;
    // a welcome is not a recovery: a connection dropped at once (a gateway that fails each one,
    // a 4009 again after the snapshots) keeps the backoff growing; one up for maxDelayMs resets it
    if (b && Date.now() - this.#welcomedAt! >= b.maxDelayMs) b.reset();
    this.#welcomedAt = NaN;
    const fatal = code === CloseCode.POLICY && !this.#tokenIsRenewable;
    const willReconnect = !!b && !b.exhausted && !fatal;
    if (wasOpen || !willReconnect) this.emit('close', { code, reason, willReconnect });
    if (!willReconnect) {
      const why = `connection closed (${code}${reason ? ' ' + reason : ''}) and not reconnecting`;
      // 1008 with a token that cannot be renewed: say why, as for a refused token. The reasons are
      // docs/protocol.md#close-codes': `token expired`, else an entitlement withdrawn or an operator
      const expired = reason === 'token expired';
      const err = fatal
        ? new TickwireClientError(
            expired ? ErrorCode.UNAUTHENTICATED : ErrorCode.FORBIDDEN,
            `${why}: the token cannot be renewed`,
            expired ? { reason: 'expired' } : {},
          )
        : new TickwireClientError(b?.exhausted ? ClientErrorCode.RETRIES_EXHAUSTED : ClientErrorCode.CONNECTION_LOST, why);
      if (fatal) this.emit('error', err);
      this.#stop(err);
      this.#setState('closed');
      return;
    }
    // closed for flooding (4008): reconnect after a pause (docs/protocol.md#close-codes), between
    // half and all of maxDelayMs, not at once (each welcome resets the backoff, so a client that
    // kept flooding would come back every few seconds)
    const hold = Math.max(retryAfterMs(retryAfter), code === CloseCode.RATE_LIMIT ? (b.maxDelayMs / 2) * (1 + Math.random()) : 0);
    this.#holdUntil = Date.now() + hold;
    const delayMs = delayOverride ?? Math.max(b.next(), hold);
    this.#setState('reconnecting');
    this.emit('reconnecting', { attempt: b.attempt, delayMs });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (!this.#closing) void this.#open();
    }, delayMs);
  }

  #onWelcome(w: WelcomeFrame): void {
    clearTimeout(this.#connectTimer);
    this.#welcome = w;
    this.#welcomes++;
    this.#attempts = this.#wsFailures = 0;
    this.#outageReported = false;
    if (this.#transport === 'websocket') this.#wsWelcomed = true;
    // on the fallback after an outage (once welcomed over WebSocket), probe WebSocket soon
    const soon = this.#fallback?.outageProbeMs ?? 5000;
    this.#probeDelay = this.#wsWelcomed && soon > 0 ? soon : Infinity;
    this.#scheduleProbe();
    this.#welcomedAt = Date.now();
    if (this.#currentToken) this.#scheduleRefresh(tokenExpiry(this.#currentToken));
    this.#setState('open');
    this.emit('welcome', w);
    // before the subscribes: a hidden page's latest-value channels then start paused
    if (this.#pageHidden) this.#sendInternal({ op: 'visibility', id: this.#nextId++, page: 'hidden' });
    this.#resubscribe();
    const outbox = this.#outbox;
    this.#outbox = [];
    for (const p of outbox) this.#send(p);
    // channels marked off screen while their subscribe waited in the outbox (it carries the flag
    // of when it was made)
    const off = outbox.flatMap((p) =>
      p.frame_.op === 'subscribe' && p.frame_.visible !== false ? p.frame_.channels.filter((c) => this.#desired.get(c)?.visible === false) : [],
    );
    if (off.length > 0) this.#sendInternal({ op: 'visibility', id: this.#nextId++, channels: off, visible: false });
    this.#startHeartbeat();
    for (const c of this.#connectWaiters.splice(0)) c.resolve_(w);
  }

  /** After a (re)connect: subscribe again to everything not already queued, with snapshots. */
  #resubscribe(): void {
    const queued = new Set<string>();
    for (const p of this.#outbox) if (p.frame_.op === 'subscribe') for (const c of p.frame_.channels) queued.add(c);
    const groups = new Map<string, OutgoingSubscribe>();
    for (const [ch, want] of this.#desired) {
      if (queued.has(ch)) continue;
      if (isResumable(ch)) {
        this.#sendInternal(this.#subFrame([ch], want, this.#channels.get(ch)?.lastSeq_));
        continue;
      }
      // (every Desired has the same keys in the same order: see #subscribe)
      const key = JSON.stringify({ ...want, visible: want.visible ?? true });
      const g = groups.get(key);
      if (g) g.channels.push(ch);
      else groups.set(key, this.#subFrame([ch], want));
    }
    for (const frame of groups.values()) for (const channels of this.#chunks(frame.channels)) this.#sendInternal({ ...frame, id: this.#nextId++, channels });
  }

  /**
   * `channels` in runs one request may carry: a gateway may allow more subscriptions per
   * connection than channels per request (more are refused with LIMIT), and a frame over its
   * size limit closes the connection.
   */
  #chunks(channels: string[]): string[][] {
    const maxBytes = (this.#welcome?.limits?.max_frame_bytes ?? 65_536) - 512;
    const out: string[][] = [];
    let chunk: string[] = [];
    let bytes = 0;
    for (const ch of channels) {
      if (!chunk.length || chunk.length >= MAX_CHANNELS_PER_REQUEST || bytes + ch.length + 3 > maxBytes) {
        out.push((chunk = []));
        bytes = 0;
      }
      chunk.push(ch);
      bytes += ch.length + 3;
    }
    return out;
  }

  /** A subscribe of `channels` with the settings `w` (fields left undefined are not sent: both encoders skip them). */
  #subFrame(channels: string[], w: Desired, since?: number): OutgoingSubscribe {
    // (a Desired holds the fields of a subscribe only; `visible` goes only when false)
    return { op: 'subscribe', id: this.#nextId++, channels, ...w, since, visible: w.visible && undefined } as OutgoingSubscribe;
  }

  /**
   * Send a request of the client's own (resubscribe, refresh, ping): nobody awaits it. Only a
   * subscribe's three sends unanswered reject it (#send): its channels stay wanted (and are joined
   * again after the next reconnect), a book no longer waits for that refresh, and an `error`
   * event names them.
   */
  #sendInternal(frame: OutgoingFrame): void {
    const reject = (err: TickwireClientError): void => {
      for (const c of err.channels ?? []) {
        const st = this.#channels.get(c);
        if (st) st.refreshing_ = false;
      }
      this.emit('error', err);
    };
    this.#send({ id: frame.id, frame_: frame, internal_: true, resolve_: () => undefined, reject_: reject });
  }

  #startHeartbeat(): void {
    const every = this.options.heartbeatIntervalMs ?? 15_000;
    if (!(every > 0)) return;
    const deadAfter = this.options.heartbeatTimeoutMs ?? 10_000;
    let lastPing = 0;
    const beat = (): void => {
      const ws = this.#ws;
      if (!ws || this.#state !== 'open') return;
      const now = Date.now();
      const out = this.#pingOutstanding;
      if (out) {
        if (now - out.sentAt_ >= deadAfter) this.#drop(ws, 4000, 'heartbeat timeout');
        return;
      }
      if (now - lastPing < every) return;
      lastPing = now;
      const id = this.#nextId++;
      this.#pingOutstanding = { id, sentAt_: now };
      this.#sendInternal({ op: 'ping', id });
    };
    // check often enough to notice a dead peer on time; ping once at once for a first latency
    this.#heartbeatTimer = setInterval(beat, Math.max(50, Math.min(every, deadAfter) / 2));
    beat();
  }

  // ---- requests ----------------------------------------------------------------------------

  #checkChannels(channels: readonly string[]): string[] {
    if (!Array.isArray(channels) || !channels.length || channels.some((c) => typeof c !== 'string' || !c))
      fail('channels', channels, 'a non-empty array of non-empty strings');
    return [...new Set(channels)];
  }

  #request(frame: OutgoingFrame, internal: boolean, keep?: Pending['keep_']): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const p: Pending = { id: frame.id, frame_: frame, internal_: internal, resolve_: resolve, reject_: reject, keep_: keep };
      // (open without a socket: #send queues it in the outbox)
      if (this.#state === 'open') this.#send(p);
      // closed: no connect() is coming (a component calling after its provider unmounted); the
      // other ops that reach here (subscribes, extension ops: the rest return before unless
      // open) wait for the connection, from before the first connect() too
      else if (this.#state === 'closed') reject(closedError());
      else this.#outbox.push(p);
    });
  }

  #send(p: Pending): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== WS_OPEN) {
      this.#outbox.push(p);
      return;
    }
    p.sentAt_ = Date.now();
    this.#pending.set(p.id, p);
    const timeout = this.options.requestTimeoutMs ?? 10_000;
    const op = p.frame_.op;
    // (sends are counted for these only: #onError refuses the rest for good)
    const again = op === 'subscribe' || op === 'unsubscribe' || op === 'visibility';
    const tries = again ? (p.tries_ = (p.tries_ ?? 0) + 1) : 1;
    const channels = again ? (p.frame_ as { channels?: string[] }).channels : undefined;
    if (timeout > 0 && (again || !p.internal_)) {
      // A subscribe, unsubscribe or visibility frame without a reply (or refused for now: #onError)
      // goes out again (same id, pruned to what is still wanted: #prune), after twice the wait
      // each time, up to three sends: a gateway over its message rate drops frames unanswered (a
      // RATE_LIMIT notice without id says so). Then TIMEOUT: #subscribe undoes what it set; the
      // client's own (resubscribe, gap refresh, the welcome's visibility frames) report it
      // (#sendInternal).
      p.timer_ = setTimeout(
        () => {
          if (this.#pending.get(p.id) !== p) return;
          this.#pending.delete(p.id);
          if (again && tries < 3) {
            if (this.#prune(p)) this.#send(p);
          } else
            p.reject_(
              new TickwireClientError(
                ClientErrorCode.TIMEOUT,
                `no reply to ${p.frame_.op} #${p.id}${channels ? ` (${channels})` : ''} within ${(2 ** tries - 1) * timeout} ms`,
                { requestId: p.id, channels },
              ),
            );
        },
        timeout * 2 ** (tries - 1),
      );
    }
    try {
      ws.send(this.#wire.encode(p.frame_));
    } catch (err) {
      this.emit('error', new TickwireClientError(ClientErrorCode.TRANSPORT, `send failed: ${String(err)}`, { cause: err }));
    }
  }

  #settle(id: RequestId | undefined): Pending | undefined {
    // this client sends numeric ids only: anything else (a string "5" too: map keys compare
    // without conversion) is not an answer to one of its requests
    const p = this.#pending.get(id as number);
    if (p) {
      this.#pending.delete(p.id);
      clearTimeout(p.timer_);
    }
    return p;
  }

  // ---- inbound -----------------------------------------------------------------------------

  #onMessage(raw: unknown): void {
    let frame: unknown;
    try {
      frame = this.#wire.decode(raw);
    } catch (err) {
      this.emit('error', new TickwireClientError(ClientErrorCode.BAD_SERVER_FRAME, `undecodable server frame: ${String(err)}`, { cause: err }));
      return;
    }
    if (!frame) return; // (a string or number: no op, no ch, so nothing below takes it)
    const f = frame as { op?: unknown };
    switch (f.op) {
      case 'batch': {
        const items = (frame as { items?: unknown }).items;
        // (#onData delivers nothing once a listener has closed the client mid-batch)
        if (Array.isArray(items)) for (const it of items) if (it) this.#onData(it as DataFrame);
        break;
      }
      case 'welcome':
        this.#onWelcome(frame as WelcomeFrame);
        break;
      case 'ack':
        this.#onAck(frame as AckFrame);
        break;
      case 'pong':
        this.#onPong(frame as PongFrame);
        break;
      case 'error':
        this.#onError(frame as ErrorFrame);
        break;
      default: {
        // a data item (`data`, `correction`, `cancel`, a kind this client does not know), or the
        // answer to an extension op: same op and id as the request
        const id = (frame as ExtensionReply).id;
        if (typeof id === 'number' && this.#pending.get(id)?.frame_.op === f.op) this.#settle(id)!.resolve_(frame);
        else this.#onData(frame as DataFrame);
      }
    }
  }

  #onAck(a: AckFrame): void {
    const p = this.#settle(a.id);
    const rejected = Array.isArray(a.rejected) ? a.rejected : [];
    for (const r of rejected) {
      if (!p?.keep_?.(r.channel)) this.#forget(r.channel);
      this.emit('rejected', r);
    }
    if (!p) return;
    if (p.frame_.op === 'subscribe') {
      for (const c of p.frame_.channels) {
        const st = this.#channels.get(c);
        if (!st) continue;
        st.refreshing_ = false;
        if (isResumable(c)) {
          st.replayStart_ = true;
          st.replaySince_ = (p.frame_ as OutgoingSubscribe).since;
        }
      }
      const result: SubscribeResult = {
        subscribed: a.subscribed ?? p.frame_.channels.filter((c) => !rejected.some((r) => r.channel === c)),
        rejected,
      };
      if (typeof a.throttle === 'number') result.throttle = a.throttle;
      p.resolve_(result);
    } else if (p.frame_.op === 'unsubscribe') {
      p.resolve_({ unsubscribed: a.unsubscribed ?? a.subscribed ?? p.frame_.channels });
    } else {
      p.resolve_(a);
    }
  }

  #onPong(pong: PongFrame): void {
    const p = this.#settle(pong.id);
    if (this.#pingOutstanding?.id === pong.id) this.#pingOutstanding = undefined;
    // (the heartbeat's ping is a request of the client's own: #send set its sentAt)
    if (!p) return;
    const sentAt = p.sentAt_!;
    const rttMs = Date.now() - sentAt;
    const sample: LatencySample = {
      rttMs,
      serverTime: pong.server_time,
      clockOffsetMs: typeof pong.server_time === 'number' ? pong.server_time - (sentAt + rttMs / 2) : 0,
    };
    this.#latency = sample;
    this.emit('latency', sample);
    if (!p.internal_) p.resolve_(rttMs);
  }

  #onError(e: ErrorFrame): void {
    if (e.id === undefined && e.code === ErrorCode.UNAUTHENTICATED && typeof e.expires === 'number' && this.#tokenIsRenewable) {
      // the server's expiry warning: a token function gives the fresh token it asks for
      void this.#refreshNow();
      return;
    }
    // an unsubscribe refused for now (LIMIT while an auth is verified, ...): the gateway still
    // sends its channels; so is a subscribe or visibility frame of more channels than the
    // message rate has left (RATE_LIMIT): their timer sends them again (#send; only these three
    // ops count tries). One refused for what it is, or without a timer (requestTimeoutMs 0), is final
    const u = this.#pending.get(e.id as number);
    if (u?.timer_ && u.tries_! < 3 && e.code !== ErrorCode.BAD_REQUEST && (u.frame_.op === 'unsubscribe' || e.code === ErrorCode.RATE_LIMIT)) return;
    const err = new TickwireClientError(String(e.code ?? 'ERROR'), String(e.message ?? 'server error'), typeof e.id === 'number' ? { requestId: e.id } : {});
    const p = this.#settle(e.id);
    if (p && !p.internal_) p.reject_(err);
    else this.emit('error', err);
  }

  /** No longer wanted (unsubscribed, refused): a durable channel keeps its resume point. */
  #forget(ch: string): void {
    this.#desired.delete(ch);
    if (!isResumable(ch)) this.#channels.delete(ch);
  }

  #chan(ch: string): ChannelState {
    let st = this.#channels.get(ch);
    if (!st) this.#channels.set(ch, (st = {}));
    return st;
  }

  #onData(item: DataFrame): void {
    const ch = item.ch;
    if (this.#closing || !this.#desired.has(ch)) return; // closed, unsubscribed meanwhile, or not a channel name
    const st = this.#chan(ch);
    const seq = typeof item.seq === 'number' ? item.seq : undefined;
    const snapshot = item.snapshot === true;
    if (seq !== undefined) {
      if (isResumable(ch)) {
        // Durable stream: drop what we already have; on a hole, replay from the last seen.
        // (comparisons with an undefined lastSeq or replaySince are false)
        if (st.replayStart_ && seq <= st.replaySince_!) {
          // the first item of a replay after `since` is above it, unless the server's log
          // started again below it: follow the new numbering (docs/client-sdk.md#reconnect)
          this.emit('reset', { channel: ch, since: st.replaySince_!, received: seq });
          st.lastSeq_ = undefined;
          delete st.holeAt_;
        }
        if (seq <= st.lastSeq_!) return;
        if (seq > st.lastSeq_! + 1) {
          if (st.refreshing_) return;
          const again = st.holeAt_ === st.lastSeq_;
          if (!again) this.emit('gap', { channel: ch, expected: st.lastSeq_! + 1, received: seq, missed: seq - st.lastSeq_! - 1 });
          // a replay asked for again that starts past the resume point once more: the log no
          // longer holds the events in between (retention), and asking again would bring the
          // same hole back; carry on from here
          if (!(again && st.replayStart_)) {
            st.holeAt_ = st.lastSeq_!;
            this.#refresh(ch, st.lastSeq_);
            return;
          }
        }
        st.replayStart_ = false;
        st.lastSeq_ = seq;
      } else if (snapshot) {
        st.lastSeq_ = seq;
      } else {
        const gap = seq > st.lastSeq_! + 1;
        if (gap && !st.refreshing_) {
          this.emit('gap', { channel: ch, expected: st.lastSeq_! + 1, received: seq, missed: seq - st.lastSeq_! - 1 });
          this.#refresh(ch, undefined);
        }
        // an order book update only applies on top of the one before it: after a gap, nothing
        // until the refresh's snapshot
        if (isBook(ch) && (gap || st.refreshing_ || st.lastSeq_ === undefined)) return;
        if (st.lastSeq_ === undefined || seq > st.lastSeq_) st.lastSeq_ = seq;
      }
    }
    // an item kind this client does not know still counted in seq (above); it is not delivered
    const op = item.op === undefined ? 'data' : item.op;
    if (op !== 'data' && op !== 'correction' && op !== 'cancel') return;
    const { kind, symbol } = parseChannel(ch);
    const d = item.d as { ep?: unknown } | undefined;
    if (d && typeof d.ep === 'number') {
      if (st.ep_ !== undefined && st.ep_ !== d.ep) this.emit('epoch', { channel: ch, previous: st.ep_, current: d.ep });
      st.ep_ = d.ep;
    }
    const update: Update = {
      channel: ch,
      kind,
      symbol,
      seq,
      snapshot,
      coalesced: typeof item.coalesced === 'number' ? item.coalesced : 1,
      op,
      d: item.d,
    };
    if (Array.isArray(item.history)) update.history = item.history;
    if (op !== 'data') {
      this.emit(op, update as never);
      return;
    }
    this.emit('data', update as AnyUpdate); // (a channel the client subscribed: a kind of protocol v1)
    const ev = eventKindOf(kind);
    if (ev) this.emit(ev, update as never);
    callAll(this.#listeners.get(ch), update.d, update);
  }

  /**
   * Re-subscribe one channel: a fresh snapshot for market data, a replay after `since` for
   * executions. It leaves and joins again, so the server starts a fresh cursor either way (a
   * repeated subscribe to a channel it already serves need not send a snapshot).
   */
  #refresh(ch: string, since: number | undefined): void {
    const want = this.#desired.get(ch);
    const st = this.#chan(ch);
    if (!want || this.#state !== 'open') return;
    st.refreshing_ = true;
    this.#sendInternal({ op: 'unsubscribe', id: this.#nextId++, channels: [ch] });
    this.#sendInternal(this.#subFrame([ch], isResumable(ch) ? want : { ...want, snapshot: true }, since));
  }
}

/** The `exp` of a JWT in ms (read, not verified: the server verifies), or undefined. */
export function tokenExpiry(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    // base64url (atob needs no padding) of UTF-8 JSON; text that is not UTF-8 throws, as the gateway refuses it
    const bytes = Uint8Array.from(atob(part.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
    const exp = (JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as { exp?: unknown }).exp;
    return Number.isFinite(exp) ? (exp as number) * 1000 : undefined; // (false for anything but a finite number)
  } catch {
    return undefined;
  }
}
