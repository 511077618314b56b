import type { WebSocket } from 'uWebSockets.js';
import type { FrameCodec } from '../codec/frames.js';
import { ProtocolError } from '../core/errors.js';
import type { Config } from '../core/config.js';
import type { Authenticator } from './auth-hook.js';
import type { ChannelResolver, ChannelSpec, Principal } from '../fanout/channels.js';
import { isPlausibleChannelName } from '../fanout/channels.js';
import type { Hub, HubSubscriber } from '../fanout/hub.js';
import { parseRequest, requestIdOf, throttleTier } from './protocol.js';
import { ReadLagProbe } from './read-lag.js';
import type { AuthRequest, RequestId, SubscribeRequest, UnsubscribeRequest } from './protocol.js';

export interface ConnectionUserData {
  conn?: Connection;
  /** set at upgrade */
  init: ConnectionInit;
}

export interface ConnectionInit {
  id: string;
  codec: FrameCodec;
  principal: Principal;
  expiresAt: number | undefined;
  ip: string;
}

export interface GatewayCounters {
  connectionsOpened: number;
  connectionsClosed: number;
  protocolErrors: Record<string, number>;
  slowEpisodes: number;
  slowDisconnects: number;
  /** slow episodes started by read lag (slow.lagMs) rather than by buffered bytes; also in slowEpisodes */
  lagEpisodes: number;
  resyncs: number;
  /** frames a slow connection did not get while paused are not counted per frame: see slowEpisodes */
  subscribes: number;
  unsubscribes: number;
  /** largest send buffer seen on any connection (bytes): bounded by slow.hardLimitBytes */
  maxBufferedBytes: number;
}

export interface ConnectionDeps {
  hub: Hub;
  resolvers: readonly ChannelResolver[];
  config: Readonly<Config>;
  counters: GatewayCounters;
  authenticator: Authenticator;
  /** connection lifecycle hooks (auth expiry, limits, private streams) */
  onAuthChanged?: (conn: Connection) => void;
  /**
   * Before an in-band `auth` replaces the principal: a message refuses it with LIMIT (per-user
   * connection limit) and the connection keeps its identity; undefined admits it.
   */
  admitAuth?: (conn: Connection, principal: Principal) => string | undefined;
}

export const CLOSE_SLOW_CONSUMER = 4009;
export const CLOSE_POLICY = 1008;

interface Subscription {
  spec: ChannelSpec;
  tier: number;
}

/**
 * One client connection: protocol handling, its subscriptions, and the slow-consumer policy.
 * Topics the connection should receive are remembered so that a slow connection can be taken
 * off all of them and put back after a resync.
 */
export class Connection implements HubSubscriber {
  readonly id: string;
  readonly codec: FrameCodec;
  readonly ip: string;
  principal: Principal;
  expiresAt: number | undefined;
  closed = false;
  readonly openedAt = Date.now();
  readonly #ws: WebSocket<ConnectionUserData>;
  readonly #deps: ConnectionDeps;
  readonly #subs = new Map<string, Subscription>();
  readonly #topics = new Set<string>();
  #slowSince: number | undefined;
  /** durable replays waiting for this paused connection to drain */
  readonly #writableWaiters: (() => void)[] = [];
  /** what paused the connection: bytes buffered in uWS, or read lag measured by pings */
  #slowCause: 'buffer' | 'lag' | undefined;
  readonly #lag = new ReadLagProbe();

  constructor(ws: WebSocket<ConnectionUserData>, init: ConnectionInit, deps: ConnectionDeps) {
    this.#ws = ws;
    this.#deps = deps;
    this.id = init.id;
    this.codec = init.codec;
    this.ip = init.ip;
    this.principal = init.principal;
    this.expiresAt = init.expiresAt;
  }

  get subscriptionCount(): number {
    return this.#subs.size;
  }

  get slow(): boolean {
    return this.#slowSince !== undefined;
  }

  subscriptions(): string[] {
    return [...this.#subs.keys()];
  }

  // HubSubscriber
  join(topic: string): void {
    if (this.closed) return;
    this.#topics.add(topic);
    if (this.#slowSince === undefined) this.#ws.subscribe(topic);
  }

  leave(topic: string): void {
    if (this.closed) return;
    this.#topics.delete(topic);
    if (this.#slowSince === undefined) this.#ws.unsubscribe(topic);
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.#ws.send(bytes, this.codec.binary);
  }

  /**
   * Durable replays ask before each page: undefined when the connection is under its high-water
   * mark, else it is paused as a slow consumer now (if not already) and the promise resolves
   * when it drained (resync) or closed. A client that never reads is closed 4009 meanwhile.
   */
  whenWritable(): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (this.#slowSince === undefined) {
      if (this.#ws.getBufferedAmount() < this.#deps.config.slow.highWaterBytes) return undefined;
      this.checkBackpressure(Date.now());
      if (this.closed || this.#slowSince === undefined) return undefined;
    }
    return new Promise((resolve) => this.#writableWaiters.push(resolve));
  }

  #wakeWriters(): void {
    for (const w of this.#writableWaiters.splice(0)) w();
  }

  sendFrame(frame: object): void {
    this.send(this.codec.encode(frame));
  }

  sendError(code: string, message: string, id?: RequestId): void {
    this.#deps.counters.protocolErrors[code] = (this.#deps.counters.protocolErrors[code] ?? 0) + 1;
    const frame: Record<string, unknown> = { op: 'error' };
    if (id !== undefined) frame.id = id;
    frame.code = code;
    frame.message = message;
    this.sendFrame(frame);
  }

  /** Close with a WebSocket close code (1008 policy, 4008 rate, 4009 slow, 1001 shutdown). */
  end(code: number, reason: string): void {
    if (this.closed) return;
    try {
      this.#ws.end(code, reason.slice(0, 120));
    } catch {
      // already closed by the peer
    }
  }

  onMessage(data: ArrayBuffer, isBinary: boolean): void {
    let frame: unknown;
    try {
      frame = this.codec.decode(data, isBinary);
    } catch (err) {
      if (err instanceof ProtocolError) this.sendError(err.code, err.message);
      else this.sendError('BAD_FRAME', 'frame could not be decoded');
      return;
    }
    let req;
    try {
      req = parseRequest(frame);
    } catch (err) {
      const e = err instanceof ProtocolError ? err : new ProtocolError('BAD_REQUEST', String(err));
      this.sendError(e.code, e.message, requestIdOf(frame));
      return;
    }
    this.#ws.cork(() => {
      switch (req.op) {
        case 'subscribe':
          return this.#subscribe(req);
        case 'unsubscribe':
          return this.#unsubscribe(req);
        case 'ping': {
          const pong: Record<string, unknown> = { op: 'pong' };
          if (req.id !== undefined) pong.id = req.id;
          pong.server_time = Date.now();
          return this.sendFrame(pong);
        }
        case 'auth':
          return void this.#auth(req);
      }
    });
  }

  #subscribe(req: SubscribeRequest): void {
    const { config, resolvers, hub } = this.#deps;
    const tier = throttleTier(req.throttle, config.throttle.tiers, config.throttle.minMs);
    const subscribed: string[] = [];
    const rejected: { channel: string; code: string; reason: string }[] = [];
    const accepted: ChannelSpec[] = [];
    const seen = new Set<string>();
    for (const name of req.channels) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (!isPlausibleChannelName(name)) {
        rejected.push({ channel: name.slice(0, 128), code: 'UNKNOWN_CHANNEL', reason: 'channel names are 1-128 printable ASCII characters, e.g. quote:AAPL' });
        continue;
      }
      let result;
      for (const r of resolvers) {
        result = r.resolve(name, this.principal);
        if (result) break;
      }
      if (!result) {
        rejected.push({ channel: name, code: 'UNKNOWN_CHANNEL', reason: `unknown channel "${name}": use KIND:SYMBOL (trade, quote, ticker, bar.1s, bar.1m) or portfolio, executions, system` });
        continue;
      }
      if (!result.ok) {
        rejected.push({ channel: name, code: result.code, reason: result.reason });
        continue;
      }
      if (!this.#subs.has(name) && this.#subs.size + accepted.length >= config.gateway.maxSubscriptions) {
        rejected.push({ channel: name, code: 'LIMIT', reason: `at most ${config.gateway.maxSubscriptions} subscriptions per connection` });
        continue;
      }
      accepted.push(result.spec);
      subscribed.push(name);
    }
    const ack: Record<string, unknown> = { op: 'ack' };
    if (req.id !== undefined) ack.id = req.id;
    ack.subscribed = subscribed;
    ack.rejected = rejected;
    ack.throttle = tier;
    this.sendFrame(ack);
    for (const spec of accepted) {
      const prev = this.#subs.get(spec.name);
      if (prev) hub.unsubscribe(this, prev.spec.key, prev.tier);
      this.#subs.set(spec.name, { spec, tier });
      this.#deps.counters.subscribes++;
      const opts = req.since === undefined ? { snapshot: req.snapshot } : { snapshot: req.snapshot, since: req.since };
      hub.subscribe(this, spec, tier, opts);
    }
  }

  #unsubscribe(req: UnsubscribeRequest): void {
    const unsubscribed: string[] = [];
    for (const name of new Set(req.channels)) {
      const s = this.#subs.get(name);
      if (s) {
        this.#deps.hub.unsubscribe(this, s.spec.key, s.tier);
        this.#subs.delete(name);
        this.#deps.counters.unsubscribes++;
      }
      unsubscribed.push(name);
    }
    const ack: Record<string, unknown> = { op: 'ack' };
    if (req.id !== undefined) ack.id = req.id;
    ack.unsubscribed = unsubscribed;
    ack.rejected = [];
    this.sendFrame(ack);
  }

  async #auth(req: AuthRequest): Promise<void> {
    const result = await this.#deps.authenticator.authenticate(req.token);
    if (this.closed) return;
    if (!result.ok) {
      this.sendError('UNAUTHENTICATED', `token refused: ${result.reason}`, req.id);
      return;
    }
    if (this.principal.user !== undefined && result.principal.user !== this.principal.user) {
      this.sendError('FORBIDDEN', 'a refreshed token must be for the same user (sub) as the connection', req.id);
      return;
    }
    const refusal = this.#deps.admitAuth?.(this, result.principal);
    if (refusal !== undefined) {
      this.sendError('LIMIT', refusal, req.id);
      return;
    }
    this.principal = result.principal;
    this.expiresAt = result.expiresAt;
    const ack: Record<string, unknown> = { op: 'ack' };
    if (req.id !== undefined) ack.id = req.id;
    ack.subscribed = [];
    ack.rejected = [];
    if (result.expiresAt !== undefined) ack.expires = result.expiresAt;
    this.#ws.cork(() => this.sendFrame(ack));
    this.#deps.onAuthChanged?.(this);
  }

  /**
   * Slow-consumer policy, run periodically and on drain. Returns the bytes buffered. A connection
   * is paused (taken off its topics) when uWS buffers more than high water for it, or when its
   * read lag reaches `slow.lagMs`; it is resynced when it has drained (and, paused for lag, read
   * everything sent before the pause), and closed with 4009 over the hard limit, stuck above
   * water for `slow.stuckMs`, or `slow.lagCloseMs` behind.
   */
  checkBackpressure(now: number): number {
    if (this.closed) return 0;
    const { slow } = this.#deps.config;
    const buffered = this.#ws.getBufferedAmount();
    if (buffered > this.#deps.counters.maxBufferedBytes) this.#deps.counters.maxBufferedBytes = buffered;
    const lag = this.#readLag(now);
    if (this.#slowSince === undefined) {
      // over high water: stop per-update frames; the latest values follow when it drains
      if (buffered >= slow.highWaterBytes) this.#pause(now, 'buffer');
      // reading far behind with little buffered in uWS: the backlog sits in the kernel's socket
      // buffers, and stops growing here; the pause is marked with a ping, answered once it is read
      else if (slow.lagMs > 0 && lag >= slow.lagMs) this.#pause(now, 'lag');
      return buffered;
    }
    const stuck = this.#slowCause === 'buffer' && now - this.#slowSince > slow.stuckMs;
    const lagging = slow.lagMs > 0 && lag >= slow.lagCloseMs;
    if (buffered >= slow.hardLimitBytes || stuck || lagging) {
      this.#deps.counters.slowDisconnects++;
      this.end(CLOSE_SLOW_CONSUMER, lagging && buffered < slow.hardLimitBytes ? `slow consumer: not reading for ${Math.round(lag / 1000)} s` : 'slow consumer: could not keep up even with conflation');
      return buffered;
    }
    if (buffered <= slow.lowWaterBytes && (this.#slowCause === 'buffer' || !this.#lag.pending)) this.#resync();
    return buffered;
  }

  /** A pong from the client: when it answers our ping, the lag it closed may end a pause at once. */
  onPong(message: ArrayBuffer, now: number): void {
    if (this.closed || !this.#lag.onPong(Buffer.from(message).toString('latin1'))) return;
    if (this.#slowCause === 'lag') this.checkBackpressure(now);
  }

  /** Send the periodic lag ping when due (connections with subscriptions only); the lag now. */
  #readLag(now: number): number {
    const { lagMs, pingMs } = this.#deps.config.slow;
    if (lagMs === 0) return 0;
    // an idle connection has no backlog to measure, and pings would keep uWS's idle timeout off it;
    // paused for lag, the pause's own ping is the one awaited (a new one would hold the resync back)
    const tag = this.#subs.size > 0 && this.#slowCause !== 'lag' ? this.#lag.due(now, pingMs) : undefined;
    if (tag !== undefined) this.#ws.ping(tag);
    return this.#lag.lag(now);
  }

  #pause(now: number, cause: 'buffer' | 'lag'): void {
    this.#slowSince = now;
    this.#slowCause = cause;
    this.#deps.counters.slowEpisodes++;
    for (const t of this.#topics) this.#ws.unsubscribe(t);
    if (cause === 'lag') {
      this.#deps.counters.lagEpisodes++;
      this.#ws.ping(this.#lag.mark(now));
    }
  }

  /** Back from slow: latest value of each conflatable channel (seq shows the gap), then live. */
  #resync(): void {
    this.#slowSince = undefined;
    this.#slowCause = undefined;
    this.#deps.counters.resyncs++;
    const items: object[] = [];
    for (const [name, s] of this.#subs) {
      if (s.spec.mode === 'ordered') continue;
      const cur = this.#deps.hub.current(s.spec.key, s.tier);
      if (cur) items.push({ op: 'data', ch: name, seq: cur.seq, d: cur.d });
    }
    this.#ws.cork(() => {
      if (items.length === 1) this.sendFrame(items[0]!);
      else if (items.length > 1) this.sendFrame({ op: 'batch', items });
      for (const t of this.#topics) this.#ws.subscribe(t);
    });
    this.#wakeWriters();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.#subs.values()) this.#deps.hub.unsubscribe(this, s.spec.key, s.tier);
    this.#subs.clear();
    this.#topics.clear();
    this.#wakeWriters();
  }
}
