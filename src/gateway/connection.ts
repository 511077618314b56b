import { encodeWellFormed } from '../codec/frames.js';
import type { FrameCodec } from '../codec/frames.js';
import type { Config } from '../core/config.js';
import type { Authenticator } from './auth-hook.js';
import { sessionVerdict } from './auth-hook.js';
import type { ChannelResolver, ChannelSpec, Principal } from '../fanout/channels.js';
import { isPlausibleChannelName } from '../fanout/channels.js';
import type { Hub, HubSubscriber, SubscribeOptions } from '../fanout/hub.js';
import {
  authAck,
  CloseCode,
  dataItem,
  ErrorCode,
  errorFrame,
  itemsFrame,
  MARKET_KINDS,
  parseRequest,
  PLAIN_CHANNELS,
  pongFrame,
  ProtocolLimits,
  ProtocolError,
  visibilityAck,
  requestIdOf,
  subscribeAck,
  throttleTier,
  TickwireError,
  unsubscribeAck,
} from '../protocol/index.js';
import type {
  AuthRequest,
  DataItem,
  ExtensionReply,
  ExtensionRequest,
  RejectedChannel,
  RequestId,
  ServerFrame,
  SubscribeRequest,
  UnsubscribeRequest,
  VisibilityRequest,
} from '../protocol/index.js';
import type { CostlyQueues } from './costly-queue.js';
import { ReadLagProbe } from './read-lag.js';
import type { Transport } from './transport.js';

export interface ConnectionUserData {
  conn?: Connection;
  /** set at upgrade */
  init: ConnectionInit;
  /** frees the address's slot (limits.connectionsPerIp) once the connection closed */
  closed?: () => void;
}

export interface ConnectionInit {
  id: string;
  codec: FrameCodec;
  principal: Principal;
  expiresAt: number | undefined;
  /** the client's address at the upgrade (or stream open), for admission hooks */
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

/** Counters of a gateway that has seen nothing yet. */
export function newGatewayCounters(): GatewayCounters {
  return {
    connectionsOpened: 0,
    connectionsClosed: 0,
    protocolErrors: {},
    slowEpisodes: 0,
    slowDisconnects: 0,
    resyncs: 0,
    subscribes: 0,
    unsubscribes: 0,
    maxBufferedBytes: 0,
    lagEpisodes: 0,
  };
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
  /**
   * Before an in-band `auth`'s token is verified: a message refuses it with RATE_LIMIT (the
   * connection's budget of auth frames) and the token is not looked at; undefined goes on.
   */
  admitAuthAttempt?: (conn: Connection) => string | undefined;
  /**
   * Before a subscribe, unsubscribe or visibility naming `channels` channels is handled: a message
   * refuses it with RATE_LIMIT (the frames it counts as, see GatewayLimits.admitChannels) and
   * nothing of it is done; undefined goes on.
   */
  admitChannels?: (conn: Connection, channels: number) => string | undefined;
  /**
   * Before an extension op with a `cost` is served: a message refuses it with RATE_LIMIT (the
   * connection's frame budget is spent, see GatewayLimits.admitCostly) and nothing of it is done.
   */
  admitCostly?: (conn: Connection, what: string) => string | undefined;
  /** An extension op with a `cost` was answered: the frames its answer counts as (GatewayLimits.chargeFrames). */
  chargeFrames?: (conn: Connection, frames: number) => void;
  /** the requests of costly extension ops, one user's at a time (one for all the gateway's connections) */
  costlyQueues: CostlyQueues;
  /** additive ops served by engine modules (alerts, notifications), by op name */
  extensions?: ReadonlyMap<string, ExtensionOp>;
  /** the names of `extensions` (what parseRequest accepts besides the core ops) */
  extensionNames?: ReadonlySet<string>;
}

/**
 * An additive in-band op: gets the connection's principal and the frame, resolves to the fields of
 * the reply (sent as `{"op": <name>, "id": ..., ...fields}`), or rejects with an error carrying a
 * string `code` (sent as an `error` frame with that code and the request's id).
 */
export type ExtensionOp = ((principal: Principal, frame: Readonly<Record<string, unknown>>) => Promise<Record<string, unknown>>) & {
  /**
   * An op whose answer costs in proportion to what it holds (`alert.list`: every rule of the
   * user). Its requests on one connection are served one after another; each answer counts as one
   * frame of `limits.messagesPerSec` per started `perFrame` items (`items` counts them in the
   * reply), charged when it is built; a request that finds the budget spent is refused with
   * RATE_LIMIT before anything is read. `what` describes the rule for that refusal.
   */
  cost?: {
    perFrame: number;
    items: (reply: Record<string, unknown>) => number;
    what: string;
    /**
     * A request still waiting `afterMs` after it arrived (those before it took as long: a backend
     * that does not answer) is answered with this error, unserved, instead of waiting its turn.
     */
    late?: { afterMs: number; code: string; message: string };
  };
};

export const CLOSE_SLOW_CONSUMER = CloseCode.SLOW_CONSUMER;
export const CLOSE_POLICY = CloseCode.POLICY;

interface Subscription {
  spec: ChannelSpec;
  /** the hub tier this subscription is on now (its effective tier; meaningless while paused) */
  tier: number;
  /** the tier its `throttle` asked for */
  requested: number;
  /** on screen (op visibility); off screen a latest-value channel drops to throttle.offscreenMs */
  visible: boolean;
  /** off the hub while the page is hidden (latest-value channels only) */
  paused: boolean;
  /** while the connection is paused as a slow consumer: the tier and seq it had been sent up to */
  sentBeforePause?: { tier: number; seq: number | undefined; started?: boolean } | undefined;
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
  readonly #transport: Transport;
  readonly #deps: ConnectionDeps;
  readonly #subs = new Map<string, Subscription>();
  readonly #topics = new Set<string>();
  #slowSince: number | undefined;
  /** durable replays waiting for this paused connection to drain */
  readonly #writableWaiters: (() => void)[] = [];
  /** what paused the connection: bytes buffered in the transport, or read lag measured by pings */
  #slowCause: 'buffer' | 'lag' | undefined;
  readonly #lag = new ReadLagProbe();
  /** the client said its page is hidden (op visibility): latest-value channels are paused */
  #pageHidden = false;
  /**
   * Client frames that came while an `auth` was being verified: processed after its answer, in
   * order, so that a request sent after an `auth` runs with the identity that `auth` set (and its
   * answer follows the auth's). Undefined while no auth is pending.
   */
  #heldByAuth: { data: ArrayBuffer; isBinary: boolean }[] | undefined;
  #heldBytes = 0;

  constructor(transport: Transport, init: ConnectionInit, deps: ConnectionDeps) {
    this.#transport = transport;
    this.#deps = deps;
    this.id = init.id;
    this.codec = init.codec;
    this.ip = transport.remoteAddress;
    this.principal = init.principal;
    this.expiresAt = init.expiresAt;
  }

  get subscriptionCount(): number {
    return this.#subs.size;
  }

  get slow(): boolean {
    return this.#slowSince !== undefined;
  }

  /** bytes uWS holds for this connection, not yet written to the socket (the operator's console shows it) */
  get bufferedBytes(): number {
    return this.closed ? 0 : this.#transport.bufferedAmount();
  }

  subscriptions(): string[] {
    return [...this.#subs.keys()];
  }

  /** The first `max` channel names, in the order they were subscribed (the operator's console lists a few). */
  subscriptionsHead(max: number): string[] {
    const out: string[] = [];
    for (const name of this.#subs.keys()) {
      if (out.length >= max) break;
      out.push(name);
    }
    return out;
  }

  /** The channel key a subscription is served under (`delayed:quote:AAPL` for delayed access), if held. */
  subscribedKey(name: string): string | undefined {
    return this.#subs.get(name)?.spec.key;
  }

  // HubSubscriber
  join(topic: string): void {
    if (this.closed) return;
    this.#topics.add(topic);
    if (this.#slowSince === undefined) this.#transport.subscribe(topic);
  }

  leave(topic: string): void {
    if (this.closed) return;
    this.#topics.delete(topic);
    if (this.#slowSince === undefined) this.#transport.unsubscribe(topic);
  }

  /**
   * The hub sent a snapshot itself (e.g. the first value a subscription waited for): while this
   * connection is paused as a slow consumer, the resync must not repeat that seq.
   */
  servedSnapshot(key: string, tier: number): void {
    if (this.#slowSince === undefined) return;
    for (const s of this.#subs.values()) if (s.spec.key === key && s.tier === tier) this.#notePausedSnapshot(s);
  }

  send(bytes: Uint8Array): void {
    if (this.closed) return;
    this.#transport.send(bytes, this.codec.binary);
  }

  /**
   * Durable replays ask before each page: undefined when the connection is under its high-water
   * mark, else it is paused as a slow consumer now (if not already) and the promise resolves
   * when it drained (resync) or closed. A client that never reads is closed 4009 meanwhile.
   */
  whenWritable(): Promise<void> | undefined {
    if (this.closed) return undefined;
    if (this.#slowSince === undefined) {
      if (this.#transport.bufferedAmount() < this.#deps.config.slow.highWaterBytes) return undefined;
      this.checkBackpressure(Date.now());
      if (this.closed || this.#slowSince === undefined) return undefined;
    }
    return new Promise((resolve) => this.#writableWaiters.push(resolve));
  }

  #wakeWriters(): void {
    for (const w of this.#writableWaiters.splice(0)) w();
  }

  /** The gateway's own frames (acks, errors, pongs, extension replies): they may quote client text, cut anywhere. */
  sendFrame(frame: ServerFrame | ExtensionReply): void {
    this.send(encodeWellFormed(this.codec, frame));
  }

  sendError(code: ErrorCode, message: string, id?: RequestId): void {
    this.#deps.counters.protocolErrors[code] = (this.#deps.counters.protocolErrors[code] ?? 0) + 1;
    this.sendFrame(errorFrame(code, message, id));
  }

  /** Close with a WebSocket close code (1008 policy, 4008 rate, 4009 slow, 1001 shutdown). */
  end(code: number, reason: string): void {
    if (this.closed) return;
    this.#transport.end(code, reason.slice(0, 120));
  }

  onMessage(data: ArrayBuffer, isBinary: boolean): void {
    if (this.#lapsed()) return;
    if (this.#heldByAuth) {
      // bounded in frames and in bytes (as much as one HTTP-stream POST may carry)
      const maxBytes = this.#deps.config.gateway.maxFrameBytes * 16;
      if (this.#heldByAuth.length >= ProtocolLimits.MAX_FRAMES_HELD_BY_AUTH || this.#heldBytes + data.byteLength > maxBytes) {
        let id: RequestId | undefined;
        try {
          id = requestIdOf(this.codec.decode(data, isBinary));
        } catch {
          // not decodable: no id to echo
        }
        this.sendError(
          ErrorCode.LIMIT,
          `at most ${ProtocolLimits.MAX_FRAMES_HELD_BY_AUTH} frames (${maxBytes} bytes) wait for the answer to an auth: wait for it`,
          id,
        );
        return;
      }
      // (uWS lends the message's memory for the callback only)
      this.#heldByAuth.push({ data: data.slice(0), isBinary });
      this.#heldBytes += data.byteLength;
      return;
    }
    let frame: unknown;
    try {
      frame = this.codec.decode(data, isBinary);
    } catch (err) {
      if (err instanceof ProtocolError) this.sendError(err.code, err.message);
      else this.sendError(ErrorCode.BAD_FRAME, 'frame could not be decoded');
      return;
    }
    let req;
    try {
      req = parseRequest(frame, this.#deps.extensionNames);
    } catch (err) {
      const e = err instanceof ProtocolError ? err : new ProtocolError(ErrorCode.BAD_REQUEST, String(err));
      this.sendError(e.code, e.message, requestIdOf(frame));
      return;
    }
    // what the frame costs: the channels it names, and for a visibility frame that hides or shows
    // the page every subscription of the connection (each is paused, or resumed with a snapshot)
    const moved = req.op === 'visibility' && req.page !== undefined && (req.page === 'hidden') !== this.#pageHidden ? this.#subs.size : 0;
    const named = req.op === 'subscribe' || req.op === 'unsubscribe' || req.op === 'visibility' ? (req.channels?.length ?? 0) + moved : 0;
    const limited = named > 0 ? this.#deps.admitChannels?.(this, named) : undefined;
    if (limited !== undefined) {
      this.sendError(ErrorCode.RATE_LIMIT, limited, req.id);
      return;
    }
    this.#transport.cork(() => {
      switch (req.op) {
        case 'subscribe':
          return this.#subscribe(req);
        case 'unsubscribe':
          return this.#unsubscribe(req);
        case 'ping':
          return this.sendFrame(pongFrame(req.id, Date.now()));
        case 'auth':
          return void this.#auth(req);
        case 'extension':
          return void this.#extension(req);
        case 'visibility':
          return this.#visibility(req);
      }
    });
  }

  /**
   * The token's `exp` has passed: the session policy closes the connection with a timer at `exp`,
   * but frames read in the same turn of the event loop (a busy gateway, or frames held for an
   * `auth`) would be handled with the lapsed identity first. Nothing more is: closed 1008 now.
   */
  #lapsed(): boolean {
    if (this.expiresAt === undefined || Date.now() < this.expiresAt || this.closed) return false;
    this.end(CloseCode.POLICY, 'token expired');
    return true;
  }

  async #extension(req: ExtensionRequest): Promise<void> {
    const handler = this.#deps.extensions?.get(req.name);
    if (!handler) return;
    if (!handler.cost) return this.#serveExtension(req, handler);
    // one answer of a costly op at a time for the user, across its connections (CostlyQueues): each
    // is charged before the next is admitted, so a burst of them cannot all be built on the budget
    // of one frame each, nor many connections' answers be built together
    const queues = this.#deps.costlyQueues;
    const who = this.principal.user !== undefined ? `user:${this.principal.user}` : `conn:${this.id}`;
    const late = handler.cost.late;
    const run = queues.enqueue(
      `${req.name}\u0000${who}`,
      () => this.#serveExtension(req, handler),
      late && { afterMs: late.afterMs, answer: () => void (this.closed || this.sendError(late.code as ErrorCode, late.message, req.id)) },
    );
    if (run) return run;
    this.sendError(
      ErrorCode.RATE_LIMIT,
      `${handler.cost.what}, and ${queues.maxWaiting} ${req.name} requests of this user wait already: nothing was done; send it again when one has been answered`,
      req.id,
    );
  }

  /** Serve an extension request; never rejects (a failure is answered with an error frame). */
  async #serveExtension(req: ExtensionRequest, handler: ExtensionOp): Promise<void> {
    if (this.closed) return;
    const cost = handler.cost;
    if (cost) {
      const refused = this.#deps.admitCostly?.(this, cost.what);
      if (refused !== undefined) return this.sendError(ErrorCode.RATE_LIMIT, refused, req.id);
    }
    try {
      const fields = await handler(this.principal, req.frame);
      if (cost) this.#deps.chargeFrames?.(this, Math.max(1, Math.ceil(cost.items(fields) / cost.perFrame)));
      if (this.closed) return;
      const reply: ExtensionReply = { op: req.name };
      if (req.id !== undefined) reply.id = req.id;
      this.sendFrame({ ...reply, ...fields });
    } catch (err) {
      if (this.closed) return;
      const code = (err instanceof TickwireError ? err.code : 'INTERNAL') as ErrorCode;
      this.sendError(code, err instanceof TickwireError ? err.message : `${req.name} failed; retry`, req.id);
    }
  }

  #subscribe(req: SubscribeRequest): void {
    const { config, resolvers, hub } = this.#deps;
    const tier = throttleTier(req.throttle, config.throttle.tiers, config.throttle.minMs);
    const subscribed: string[] = [];
    const rejected: RejectedChannel[] = [];
    const accepted: ChannelSpec[] = [];
    // channels this request adds: a channel already held is replaced and does not count again
    let added = 0;
    const seen = new Set<string>();
    for (const name of req.channels) {
      if (seen.has(name)) continue;
      seen.add(name);
      if (!isPlausibleChannelName(name)) {
        rejected.push({
          channel: name.slice(0, 128),
          code: ErrorCode.UNKNOWN_CHANNEL,
          reason: 'channel names are 1-128 printable ASCII characters, e.g. quote:AAPL',
        });
        continue;
      }
      let result;
      for (const r of resolvers) {
        result = r.resolve(name, this.principal, req.depth === undefined ? undefined : { depth: req.depth });
        if (result) break;
      }
      if (!result) {
        rejected.push({
          channel: name,
          code: ErrorCode.UNKNOWN_CHANNEL,
          reason: `unknown channel "${name}": use KIND:SYMBOL (${MARKET_KINDS.join(', ')}) or ${PLAIN_CHANNELS.join(', ')}`,
        });
        continue;
      }
      if (!result.ok) {
        rejected.push({ channel: name, code: result.code, reason: result.reason });
        continue;
      }
      if (!this.#subs.has(name)) {
        if (this.#subs.size + added >= config.gateway.maxSubscriptions) {
          rejected.push({ channel: name, code: ErrorCode.LIMIT, reason: `at most ${config.gateway.maxSubscriptions} subscriptions per connection` });
          continue;
        }
        added++;
      }
      accepted.push(result.spec);
      subscribed.push(name);
    }
    // Subscribing again replaces a subscription (docs/protocol.md#subscribe). The old one ends
    // before the ack with what its throttle window owed it (Hub.handOff), so that no trade or
    // closed bar published while subscribed is lost and a latest-value channel is not left on an
    // older value; the new one starts after the ack as a new subscribe does. One that stays where
    // it is without a new snapshot (same channel and tier, snapshot:false) simply continues.
    const next = new Map<string, Subscription>();
    const kept = new Set<string>();
    for (const spec of accepted) {
      const sub: Subscription = { spec, tier, requested: tier, visible: req.visible ?? true, paused: false };
      Object.assign(sub, this.#effective(sub));
      next.set(spec.name, sub);
      const prev = this.#subs.get(spec.name);
      if (!prev || prev.paused) continue;
      if (this.#continues(prev, sub, req)) kept.add(spec.name);
      else if (this.#slowSince === undefined) hub.handOff(this, prev.spec.key, prev.tier);
    }
    this.sendFrame(subscribeAck(req.id, subscribed, rejected, tier));
    for (const [name, sub] of next) {
      const { spec } = sub;
      const prev = this.#subs.get(name);
      this.#subs.set(name, sub);
      this.#deps.counters.subscribes++;
      if (kept.has(name)) continue;
      // the same (channel, tier) is left before it is joined again (one topic); another is joined
      // first, so that the channel's upstream and last value are never released in between
      const old = prev && !prev.paused ? prev : undefined;
      const sameTier = old !== undefined && !sub.paused && old.spec.key === spec.key && old.tier === sub.tier;
      if (old && (sameTier || sub.paused)) hub.unsubscribe(this, old.spec.key, old.tier);
      if (!sub.paused) {
        const opts: SubscribeOptions = req.since === undefined ? { snapshot: req.snapshot } : { snapshot: req.snapshot, since: req.since };
        if (req.history !== undefined && spec.history) opts.history = req.history;
        hub.subscribe(this, spec, sub.tier, opts);
        this.#notePausedSnapshot(sub);
      }
      if (old && !sameTier && !sub.paused) hub.unsubscribe(this, old.spec.key, old.tier);
    }
  }

  /**
   * Whether a subscribe of a channel already held leaves its hub subscription as it is: the same
   * channel and tier, live, and no snapshot, `since` or `history` asked. Order books and durable
   * streams always start again as asked.
   */
  #continues(prev: Subscription, sub: Subscription, req: SubscribeRequest): boolean {
    const { spec } = sub;
    if (spec.replay || spec.coalescer || req.snapshot || req.since !== undefined || req.history !== undefined) return false;
    return !sub.paused && prev.spec.key === spec.key && prev.tier === sub.tier;
  }

  /**
   * A subscription (re)started while this connection is paused as a slow consumer was sent its
   * snapshot directly, at its tier's current seq: the resync must not send that value again
   * under the same seq, only what its tier emits after it.
   */
  #notePausedSnapshot(s: Subscription): void {
    if (this.#slowSince !== undefined && !s.paused) {
      s.sentBeforePause = { tier: s.tier, seq: this.#deps.hub.emittedSeq(s.spec.key, s.tier, this), started: true };
    }
  }

  /**
   * Where a subscription should be given its visibility and the page's (docs/protocol.md#visibility).
   * Only latest-value channels move: trades, bars and durable streams keep their tier (and so
   * their never-dropped, in-order guarantees) whatever the client shows.
   */
  #effective(s: Subscription): { tier: number; paused: boolean } {
    if (s.spec.mode !== 'latest' || s.spec.replay) return { tier: s.requested, paused: false };
    if (this.#pageHidden) return { tier: s.requested, paused: true };
    if (s.visible) return { tier: s.requested, paused: false };
    const { tiers, minMs, offscreenMs } = this.#deps.config.throttle;
    return { tier: Math.max(s.requested, throttleTier(offscreenMs, tiers, minMs)), paused: false };
  }

  /**
   * Move a subscription to where its visibility puts it. Coming back (paused to live, or to
   * another tier) takes a fresh snapshot at the new tier: its `seq` is that tier's, and live
   * updates continue from seq + 1 (the client restarts gap detection at a snapshot). The new
   * tier is joined before the old one is left, so the channel's upstream is never released.
   */
  #move(s: Subscription): void {
    const next = this.#effective(s);
    if (next.paused === s.paused && (next.paused || next.tier === s.tier)) return;
    const { hub } = this.#deps;
    const wasLive = !s.paused;
    const oldTier = s.tier;
    s.tier = next.tier;
    s.paused = next.paused;
    if (!next.paused) hub.subscribe(this, s.spec, next.tier, { snapshot: true });
    if (wasLive) hub.unsubscribe(this, s.spec.key, oldTier);
    this.#notePausedSnapshot(s);
  }

  #visibility(req: VisibilityRequest): void {
    const updated: string[] = [];
    const rejected: RejectedChannel[] = [];
    if (req.channels !== undefined && req.visible !== undefined) {
      for (const name of new Set(req.channels)) {
        const s = this.#subs.get(name);
        if (!s) {
          rejected.push({
            channel: name.slice(0, 128),
            code: ErrorCode.UNKNOWN_CHANNEL,
            reason: `not subscribed to "${name.slice(0, 128)}" on this connection`,
          });
          continue;
        }
        s.visible = req.visible;
        updated.push(name);
      }
    }
    if (req.page !== undefined) this.#pageHidden = req.page === 'hidden';
    this.sendFrame(visibilityAck(req.id, updated, rejected, this.#pageHidden ? 'hidden' : 'visible'));
    // after the ack, like subscribe: snapshots of channels coming back follow it
    for (const s of this.#subs.values()) this.#move(s);
  }

  #unsubscribe(req: UnsubscribeRequest): void {
    const unsubscribed: string[] = [];
    for (const name of new Set(req.channels)) {
      const s = this.#subs.get(name);
      if (s) {
        if (!s.paused) this.#deps.hub.unsubscribe(this, s.spec.key, s.tier);
        this.#subs.delete(name);
        this.#deps.counters.unsubscribes++;
      }
      unsubscribed.push(name);
    }
    this.sendFrame(unsubscribeAck(req.id, unsubscribed));
  }

  async #auth(req: AuthRequest): Promise<void> {
    this.#heldByAuth = [];
    try {
      await this.#authenticate(req);
    } finally {
      this.#releaseHeld();
    }
  }

  /** The frames held while an auth was verified, in order (another auth among them holds the rest again). */
  #releaseHeld(): void {
    const held = this.#heldByAuth ?? [];
    this.#heldByAuth = undefined;
    this.#heldBytes = 0;
    for (let i = 0; i < held.length && !this.closed; i++) {
      if (this.#heldByAuth) {
        (this.#heldByAuth as { data: ArrayBuffer; isBinary: boolean }[]).push(...held.slice(i));
        return;
      }
      this.onMessage(held[i]!.data, held[i]!.isBinary);
    }
  }

  async #authenticate(req: AuthRequest): Promise<void> {
    const limited = this.#deps.admitAuthAttempt?.(this);
    if (limited !== undefined) {
      this.sendError(ErrorCode.RATE_LIMIT, limited, req.id);
      return;
    }
    let result;
    try {
      // past its exp (accepted within the clock tolerance) it is refused as expired: it cannot
      // carry a session, which ends at exp; the connection keeps the identity and expiry it has
      result = sessionVerdict(await this.#deps.authenticator.authenticate(req.token));
    } catch {
      // the verifier failed (a custom authenticator's backend down): not a verdict on the token,
      // as the upgrade's 503 says; the connection keeps its identity
      if (!this.closed) this.sendError(ErrorCode.UNAUTHENTICATED, 'token refused: the token could not be checked now: retry later', req.id);
      return;
    }
    if (this.closed) return;
    if (!result.ok) {
      this.sendError(ErrorCode.UNAUTHENTICATED, `token refused: ${result.reason}`, req.id);
      return;
    }
    if (this.principal.user !== undefined && result.principal.user !== this.principal.user) {
      this.sendError(ErrorCode.FORBIDDEN, 'a refreshed token must be for the same user (sub) as the connection', req.id);
      return;
    }
    const refusal = this.#deps.admitAuth?.(this, result.principal);
    if (refusal !== undefined) {
      this.sendError(ErrorCode.LIMIT, refusal, req.id);
      return;
    }
    this.principal = result.principal;
    this.expiresAt = result.expiresAt;
    const ack = authAck(req.id, result.expiresAt);
    this.#transport.cork(() => this.sendFrame(ack));
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
    const buffered = this.#transport.bufferedAmount();
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
      this.end(
        CLOSE_SLOW_CONSUMER,
        lagging && buffered < slow.hardLimitBytes
          ? `slow consumer: not reading for ${Math.round(lag / 1000)} s`
          : 'slow consumer: could not keep up even with conflation',
      );
      return buffered;
    }
    if (buffered <= slow.lowWaterBytes && (this.#slowCause === 'buffer' || !this.#lag.pending)) this.#resync();
    return buffered;
  }

  /**
   * A pong from the client: when it answers our ping, the lag it closed may end a pause at once.
   * False when it answers none of our read-lag pings (unsolicited, or an answer to uWS's own
   * empty pings): the gateway counts those as client frames.
   */
  onPong(message: ArrayBuffer, now: number): boolean {
    if (this.closed) return true;
    if (!this.#lag.onPong(Buffer.from(message).toString('latin1'))) return false;
    if (this.#slowCause === 'lag') this.checkBackpressure(now);
    return true;
  }

  /** Send the periodic lag ping when due (connections with subscriptions only); the lag now. */
  #readLag(now: number): number {
    const { lagMs, pingMs } = this.#deps.config.slow;
    if (lagMs === 0 || !this.#transport.ping) return 0;
    // an idle connection has no backlog to measure, and pings would keep uWS's idle timeout off it;
    // paused for lag, the pause's own ping is the one awaited (a new one would hold the resync back)
    const tag = this.#subs.size > 0 && this.#slowCause !== 'lag' ? this.#lag.due(now, pingMs) : undefined;
    if (tag !== undefined) this.#transport.ping(tag);
    return this.#lag.lag(now);
  }

  #pause(now: number, cause: 'buffer' | 'lag'): void {
    this.#slowSince = now;
    this.#slowCause = cause;
    this.#deps.counters.slowEpisodes++;
    for (const t of this.#topics) this.#transport.unsubscribe(t);
    // what went out before the pause was published while this connection was on its topics
    for (const s of this.#subs.values()) s.sentBeforePause = { tier: s.tier, seq: this.#deps.hub.emittedSeq(s.spec.key, s.tier, this) };
    if (cause === 'lag') {
      this.#deps.counters.lagEpisodes++;
      this.#transport.ping?.(this.#lag.mark(now));
    }
  }

  /** Back from slow: latest value of each conflatable channel (seq shows the gap), then live. */
  #resync(): void {
    this.#slowSince = undefined;
    this.#slowCause = undefined;
    this.#deps.counters.resyncs++;
    const items: DataItem[] = [];
    for (const [name, s] of this.#subs) {
      const before = s.sentBeforePause;
      s.sentBeforePause = undefined;
      if (s.spec.mode === 'ordered' || s.paused) continue;
      const cur = this.#deps.hub.current(s.spec.key, s.tier, this);
      // nothing emitted on its tier during the pause: the client holds the current value already,
      // and resending it would repeat a seq
      if (!cur || (before?.tier === s.tier && before.seq === cur.seq)) continue;
      // (an order book's current value is a whole view: flagged as a snapshot, it replaces the client's book;
      // so is the value of a subscription started in the pause, whose own snapshot may have come with this seq)
      items.push(dataItem('data', name, cur.seq, cur.d, cur.snapshot === true || before?.started === true));
    }
    this.#transport.cork(() => {
      if (items.length > 0) this.sendFrame(itemsFrame(items));
      for (const t of this.#topics) this.#transport.subscribe(t);
    });
    this.#wakeWriters();
  }

  onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.#subs.values()) if (!s.paused) this.#deps.hub.unsubscribe(this, s.spec.key, s.tier);
    this.#subs.clear();
    this.#topics.clear();
    this.#wakeWriters();
  }
}
