import { readFileSync } from 'node:fs';
import { CloseCode, ErrorCode } from '../protocol/index.js';
import type { Config } from '../core/config.js';
import type { Principal } from '../fanout/channels.js';
import type { Connection, ConnectionInit } from './connection.js';
import { LocalConnectionCounts } from './connection-counts.js';
import type { ConnectionCounts } from './connection-counts.js';

/** Per-IP token buckets kept outside this gateway (shared by the worker threads of a process). */
export interface IpBuckets {
  /** 0: a token (`n` tokens) was taken; else the ms until they are there */
  take(ip: string, rate: number, burst: number, now?: number, n?: number): number;
  sweep(rate: number, burst: number): void;
}

/**
 * Limit state shared with the other gateway workers of the process (src/workers): the per-user
 * counts (which also hold the per-IP counts of upgrades verifying a token), the per-IP buckets of
 * new connections and those of costly HTTP requests.
 */
export interface SharedLimits {
  counts: ConnectionCounts;
  ipBuckets?: IpBuckets;
  httpIpBuckets?: IpBuckets;
  /** client frames per address (limits.messagesPerIpPerSec) */
  frameIpBuckets?: IpBuckets;
}

/**
 * The per-address check of a new connection, before its token is verified (`admitAddress`):
 * refused (429 with Retry-After), or admitted with `release`, to be called once its token was
 * verified (or at once when there is none): it frees the address's verifying slot; and `close`,
 * to be called once the connection closed or was refused after all: it frees the address's open
 * connection slot (limits.connectionsPerIp), and the verifying slot if still held. Both may be
 * called more than once.
 */
export type AddressAdmission = { ok: true; release(): void; close(): void } | { ok: false; retryAfter: number; message: string };

/** An admission with nothing to release (an exempt address, no token to verify, no limits). */
export const ADMITTED: AddressAdmission = { ok: true, release: () => undefined, close: () => undefined };

/** Close code for a connection that stays over its message rate (protocol v1). */
export const CLOSE_RATE_LIMIT = CloseCode.RATE_LIMIT;

/** A token bucket: `rate` tokens per second, at most `burst` stored. */
export class TokenBucket {
  #tokens: number;
  #at: number;
  constructor(
    readonly rate: number,
    readonly burst: number,
    now = Date.now(),
  ) {
    this.#tokens = burst;
    this.#at = now;
  }

  take(now = Date.now(), n = 1): boolean {
    this.#refill(now);
    if (this.#tokens < n) return false;
    this.#tokens -= n;
    return true;
  }

  /**
   * Take `n` tokens whatever the bucket holds: it may go below zero, and then refuses until it
   * has refilled past that (an answer whose cost is known only once it is built).
   */
  charge(now = Date.now(), n = 1): void {
    this.#refill(now);
    this.#tokens -= n;
  }

  /** Whether the bucket is below zero (charged beyond what it held). */
  inDebt(now = Date.now()): boolean {
    this.#refill(now);
    return this.#tokens < 0;
  }

  /** How long until one token is there (0 when one is). */
  waitMs(now = Date.now()): number {
    this.#refill(now);
    return this.#tokens >= 1 ? 0 : ((1 - this.#tokens) / this.rate) * 1000;
  }

  /** Whether the bucket is full again (nothing to remember about this key). */
  full(now = Date.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.burst;
  }

  #refill(now: number): void {
    if (now > this.#at) {
      this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) / 1000) * this.rate);
      this.#at = now;
    }
  }
}

/** What the limits need of a connection. */
export type LimitedConnection = Pick<Connection, 'principal' | 'sendError' | 'end' | 'closed'> & {
  /** the client's address: its frames count toward limits.messagesPerIpPerSec too (none: not counted) */
  readonly ip?: string;
};

interface MessageState {
  bucket: TokenBucket;
  /** start of the current over-limit episode */
  overSince: number | undefined;
  lastRefusedAt: number;
  lastErrorAt: number;
  /** the budget key of the connection's address (clientAddressKey), null: not counted (exempt, no address) */
  ipKey?: string | null;
}

export interface LimitStats {
  rateLimitedFrames: number;
  rateLimitCloses: number;
  refusedPerUser: number;
  refusedPerIp: number;
  /** costly HTTP requests refused 429 (limits.httpRequestsPerIpPerSec) */
  refusedHttpPerIp: number;
  /** new connections refused 429 while their address had limits.verifyingPerIp tokens being verified */
  refusedVerifyingPerIp: number;
  /** new connections refused 429 while their address held limits.connectionsPerIp open connections */
  refusedOpenPerIp: number;
  /** in-band auth frames refused RATE_LIMIT before verification (limits.authsPerConnectionPerMin) */
  refusedAuthsPerConnection: number;
  /** client frames dropped because their address's frame budget was spent (limits.messagesPerIpPerSec) */
  rateLimitedFramesPerIp: number;
}

/**
 * A subscribe, unsubscribe or visibility frame counts as one frame of `limits.messagesPerSec` per
 * started this many channels it names (docs/protocol.md#limits): the gateway resolves, subscribes
 * and acknowledges each of them, so a frame of 1000 channels costs about what 1000 pings cost.
 */
export const CHANNELS_PER_FRAME = 100;

/** How long without a refused frame ends an over-limit episode. */
const EPISODE_GAP_MS = 1000;
/** At most one RATE_LIMIT error frame per connection this often. */
const ERROR_INTERVAL_MS = 1000;
/** Per-IP buckets kept at most (full buckets are swept; beyond this the oldest go). */
const MAX_IP_ENTRIES = 100_000;
/**
 * The per-user count table also counts each address's upgrades verifying a token, under this
 * prefix and the address key: a NUL never starts a token's `sub` an identity provider issues.
 */
const VERIFYING_KEY = '\u0000verifying:';
/** ...and each address's open connections (WebSocket, HTTP stream) and upgrades in progress. */
const OPEN_KEY = '\u0000open:';

/**
 * Gateway limits (protocol codes in brackets):
 * - client frames per second per connection: excess frames are dropped with a RATE_LIMIT error
 *   (at most one per second); a connection over its rate for `rateLimitCloseMs` is closed 4008;
 * - new connections per second per client IP, upgrades of one IP verifying a token at once, and
 *   open connections per client IP: 429 before the token is verified (`admitAddress`);
 * - open connections per token subject: 429 at the upgrade after the token was verified
 *   (`admit`), LIMIT for an in-band `auth`;
 * - costly HTTP requests per second per client IP: 429 (`admitHttp`).
 * Subscriptions per connection (LIMIT) are enforced by the connection itself.
 */
export class GatewayLimits {
  readonly stats: LimitStats = {
    rateLimitedFrames: 0,
    rateLimitCloses: 0,
    refusedPerUser: 0,
    refusedPerIp: 0,
    refusedHttpPerIp: 0,
    refusedVerifyingPerIp: 0,
    refusedOpenPerIp: 0,
    refusedAuthsPerConnection: 0,
    rateLimitedFramesPerIp: 0,
  };
  readonly #cfg: Config['limits'];
  readonly #messages = new WeakMap<LimitedConnection, MessageState>();
  readonly #pongs = new WeakMap<LimitedConnection, TokenBucket>();
  /** in-band auth frames per connection (limits.authsPerConnectionPerMin) */
  readonly #auths = new WeakMap<LimitedConnection, TokenBucket>();
  /** open connections per user: this gateway's, or shared by the worker threads of the process */
  readonly #perUser: ConnectionCounts;
  /** the user each open connection was counted under */
  readonly #counted = new WeakMap<LimitedConnection, string>();
  /**
   * Upgrades admitted and counted in `admit`, by their principal object (the connection opened
   * from them carries the same one): `onOpen` takes the count over instead of counting again.
   */
  readonly #reserved = new WeakMap<object, string>();
  readonly #perIp = new Map<string, TokenBucket>();
  /** costly HTTP requests per IP (see admitHttp) */
  readonly #httpPerIp = new Map<string, TokenBucket>();
  /** shared per-IP buckets (gateway workers), used instead of #perIp and #httpPerIp */
  readonly #sharedIp: IpBuckets | undefined;
  readonly #sharedHttpIp: IpBuckets | undefined;
  /** client frames per IP (limits.messagesPerIpPerSec): this gateway's, or shared by the workers */
  readonly #framesPerIp = new Map<string, TokenBucket>();
  readonly #sharedFrameIp: IpBuckets | undefined;
  /** upgrades verifying a token per address (VERIFYING_KEY + address key) */
  readonly #verifying: ConnectionCounts;
  readonly #exempt: ReadonlySet<string>;
  readonly #sweeper: NodeJS.Timeout;

  constructor(cfg: Config['limits'], shared?: SharedLimits) {
    this.#cfg = cfg;
    this.#perUser = shared?.counts ?? new LocalConnectionCounts();
    this.#sharedIp = shared?.ipBuckets;
    this.#sharedHttpIp = shared?.httpIpBuckets;
    this.#sharedFrameIp = shared?.frameIpBuckets;
    this.#verifying = shared?.counts ?? new LocalConnectionCounts();
    this.#exempt = new Set(cfg.exemptIps.map(clientAddressKey));
    this.#sweeper = setInterval(() => this.#sweep(), 30_000);
    this.#sweeper.unref();
  }

  /**
   * The `admitAddress` hook of the gateway: a new connection (WebSocket upgrade, HTTP-stream open)
   * from `ip`, before its token is verified (`verifying`: it has one to verify), so that one
   * address reaches the verifier (signature checks, JWKS fetches) only at its connection rate:
   * - at most `limits.connectionsPerIp` of its connections are open (or being opened) at once:
   *   each is a file descriptor of the process, and the per-user limit does not bind an address
   *   without tokens (auth off or optional) or with many of them; held until `close`;
   * - at most `limits.verifyingPerIp` of its upgrades wait for their tokens at once (each holds
   *   a socket and a slot of `gateway.maxConnections`; a stalled JWKS fetch holds them 5 s);
   * - one token of its bucket per new connection (`limits.connectionsPerIpPerSec`), verified or not.
   * All are shared by the worker threads of the process. Exempt addresses pass.
   */
  admitAddress(ip: string, verifying: boolean, now = Date.now()): AddressAdmission {
    const key = clientAddressKey(ip);
    if (this.#exempt.has(key)) return ADMITTED;
    const maxOpen = this.#cfg.connectionsPerIp;
    const open = maxOpen > 0 ? OPEN_KEY + key : undefined;
    if (open !== undefined && !this.#verifying.tryAdd(open, maxOpen)) {
      this.stats.refusedOpenPerIp++;
      // a slot frees when one of the address's connections closes: 5-10 s, spread as at capacity
      return {
        ok: false,
        retryAfter: 5 + Math.floor(Math.random() * 6),
        message: `too many open connections from this address: at most ${maxOpen} at a time (limits.connectionsPerIp)`,
      };
    }
    const maxVerifying = this.#cfg.verifyingPerIp;
    const held = verifying && maxVerifying > 0 ? VERIFYING_KEY + key : undefined;
    if (held !== undefined && !this.#verifying.tryAdd(held, maxVerifying)) {
      if (open !== undefined) this.#verifying.remove(open);
      this.stats.refusedVerifyingPerIp++;
      return {
        ok: false,
        retryAfter: 1,
        message: `too many connections from this address waiting for their token to be checked: at most ${maxVerifying} at a time (limits.verifyingPerIp)`,
      };
    }
    const waitMs = this.#takeConnection(key, now);
    if (waitMs > 0) {
      if (held !== undefined) this.#verifying.remove(held);
      if (open !== undefined) this.#verifying.remove(open);
      this.stats.refusedPerIp++;
      return {
        ok: false,
        retryAfter: Math.max(1, Math.ceil(waitMs / 1000)),
        message: `too many new connections from this address: at most ${this.#cfg.connectionsPerIpPerSec} per second (limits.connectionsPerIpPerSec)`,
      };
    }
    if (held === undefined && open === undefined) return ADMITTED;
    let released = held === undefined;
    let closed = open === undefined;
    const release = (): void => {
      if (released) return;
      released = true;
      this.#verifying.remove(held!);
    };
    return {
      ok: true,
      release,
      close: () => {
        release();
        if (closed) return;
        closed = true;
        this.#verifying.remove(open!);
      },
    };
  }

  /** One token of the address's new-connection bucket: 0 when taken, else the ms until one is there. */
  #takeConnection(key: string, now: number): number {
    const rate = this.#cfg.connectionsPerIpPerSec;
    if (rate <= 0) return 0;
    const burst = this.#cfg.connectionBurstPerIp;
    if (this.#sharedIp) return this.#sharedIp.take(key, rate, burst);
    return takeLocal(this.#perIp, key, rate, burst, now);
  }

  /** Open connections (and upgrades in progress) of the address `ip`, as limits.connectionsPerIp counts them (tests, metrics). */
  openOf(ip: string): number {
    return this.#verifying.get(OPEN_KEY + clientAddressKey(ip));
  }

  /** Upgrades of the address `ip` whose token is being verified now (tests, metrics). */
  verifyingOf(ip: string): number {
    return this.#verifying.get(VERIFYING_KEY + clientAddressKey(ip));
  }

  /**
   * The `admit` hook of the gateway: a new connection whose token was verified (after
   * `admitAddress`), refused when its user has `limits.connectionsPerUser` open. An admitted
   * upgrade of a user is counted here, in the same step as the check (the gateway upgrades at
   * once, and `onOpen` takes the count over), so that concurrent upgrades on other worker
   * threads see it.
   */
  admit(_ip: string, init: Pick<ConnectionInit, 'principal'>): { status: number; message: string; retryAfter?: number } | undefined {
    const user = init.principal.user;
    if (user === undefined) return undefined;
    const maxUser = this.#cfg.connectionsPerUser;
    if (!this.#perUser.tryAdd(user, maxUser)) {
      this.stats.refusedPerUser++;
      // a slot frees when one of the user's connections closes: 5-10 s, spread as at capacity
      return {
        status: 429,
        message: `too many connections for this user: at most ${maxUser} at a time (limits.connectionsPerUser)`,
        retryAfter: 5 + Math.floor(Math.random() * 6),
      };
    }
    this.#reserved.set(init.principal, user);
    return undefined;
  }

  /**
   * The `admitHttp` hook: a costly HTTP request (a bar store read, a token verification, stats
   * gathered from every worker) from `ip`. Refused, the seconds after which one more would pass
   * (Retry-After) and the message of the 429. With gateway workers the buckets are shared, so an
   * address gets the rate once, whichever workers its connections reach.
   */
  admitHttp(ip: string, now = Date.now()): { retryAfter: number; message: string } | undefined {
    const rate = this.#cfg.httpRequestsPerIpPerSec;
    const key = clientAddressKey(ip);
    if (rate <= 0 || this.#exempt.has(key)) return undefined;
    const burst = this.#cfg.httpBurstPerIp;
    const waitMs = this.#sharedHttpIp ? this.#sharedHttpIp.take(key, rate, burst) : takeLocal(this.#httpPerIp, key, rate, burst, now);
    if (waitMs === 0) return undefined;
    this.stats.refusedHttpPerIp++;
    return {
      retryAfter: Math.max(1, Math.ceil(waitMs / 1000)),
      message: `too many requests from this address: at most ${rate} per second (limits.httpRequestsPerIpPerSec)`,
    };
  }

  onOpen(conn: LimitedConnection): void {
    const user = conn.principal.user;
    if (user === undefined) return;
    if (this.#reserved.get(conn.principal) === user) {
      this.#reserved.delete(conn.principal);
      this.#counted.set(conn, user);
      return;
    }
    this.#count(conn, user);
  }

  #count(conn: LimitedConnection, user: string): void {
    this.#counted.set(conn, user);
    this.#perUser.tryAdd(user, 0);
  }

  /**
   * The `admitAuthAttempt` hook: an open connection's `{"op":"auth"}`, before its token is
   * verified. Each costs a verification (a signature, perhaps a JWKS fetch) and the frame rate
   * alone let one connection ask for 50 a second; a client needs one per token it gets (a refresh
   * before expiry). Refused: the message of a RATE_LIMIT error.
   */
  admitAuthAttempt(conn: LimitedConnection, now = Date.now()): string | undefined {
    const perMin = this.#cfg.authsPerConnectionPerMin;
    if (perMin <= 0) return undefined;
    let b = this.#auths.get(conn);
    if (!b) {
      b = new TokenBucket(perMin / 60, perMin, now);
      this.#auths.set(conn, b);
    }
    if (b.take(now)) return undefined;
    this.stats.refusedAuthsPerConnection++;
    return `too many auth frames on this connection: at most ${perMin} per minute (limits.authsPerConnectionPerMin); the next in ${Math.ceil(b.waitMs(now) / 1000)} s, the connection stays as it was`;
  }

  /**
   * The `admitAuth` hook: an open connection's `{"op":"auth"}` verified a token for `principal`.
   * Refuses (the message of a LIMIT error) when that would put the user over
   * `connectionsPerUser`; otherwise counts the connection under the user at once, in the same
   * turn as the check, so concurrent in-band auths cannot overshoot. A connection already counted
   * under that user (a refreshed token) is not counted twice.
   */
  admitAuth(conn: LimitedConnection, principal: Pick<Principal, 'user'>): string | undefined {
    const user = principal.user;
    if (user === undefined || this.#counted.get(conn) === user) return undefined;
    const maxUser = this.#cfg.connectionsPerUser;
    if (!this.#perUser.tryAdd(user, maxUser)) {
      this.stats.refusedPerUser++;
      return `too many connections for this user: at most ${maxUser} at a time; the connection stays as it was`;
    }
    // counted under `user` by tryAdd; no longer under the user it had
    this.onClose(conn);
    this.#counted.set(conn, user);
    return undefined;
  }

  /** A connection that authenticated in band counts from now on (when admitAuth did not already). */
  onAuthChanged(conn: LimitedConnection): void {
    const user = conn.principal.user;
    if (user !== undefined && this.#counted.get(conn) !== user) this.#countAs(conn, user);
  }

  /** Count the connection under `user` from now on (no longer under the user it had). */
  #countAs(conn: LimitedConnection, user: string): void {
    this.onClose(conn);
    this.#count(conn, user);
  }

  onClose(conn: LimitedConnection): void {
    const user = this.#counted.get(conn);
    if (user === undefined) return;
    this.#counted.delete(conn);
    this.#perUser.remove(user);
  }

  /**
   * The `admitPong` hook, for a pong that answers none of the gateway's read-lag pings: RFC 6455
   * 5.5.3 allows such pongs (a one-way heartbeat, a few a minute), and uWS calls into JavaScript
   * for each. They have a bucket of their own, of the frame rate (limits.messagesPerSec, burst
   * limits.messageBurst), and a connection that empties it is closed 4008 at once: no client
   * sends pongs at that rate but to flood, and the grace of the frame rate (rateLimitCloseMs)
   * let four connections hold a worker's event loop up for its 3 s (a bystander's ping 170-570 ms).
   */
  admitPong(conn: LimitedConnection, now = Date.now()): boolean {
    const rate = this.#cfg.messagesPerSec;
    if (rate <= 0) return true;
    let bucket = this.#pongs.get(conn);
    if (!bucket) {
      bucket = new TokenBucket(rate, this.#cfg.messageBurst, now);
      this.#pongs.set(conn, bucket);
    }
    if (bucket.take(now)) return true;
    this.stats.rateLimitCloses++;
    conn.end(CLOSE_RATE_LIMIT, 'unsolicited pongs over the frame rate');
    return false;
  }

  /** The `admitMessage` hook: false drops the frame. */
  admitMessage(conn: LimitedConnection, now = Date.now()): boolean {
    const rate = this.#cfg.messagesPerSec;
    if (rate <= 0) return true;
    let st = this.#messages.get(conn);
    if (!st) {
      st = { bucket: new TokenBucket(rate, this.#cfg.messageBurst, now), overSince: undefined, lastRefusedAt: 0, lastErrorAt: 0 };
      this.#messages.set(conn, st);
    }
    if (st.bucket.take(now)) {
      if (st.overSince !== undefined && now - st.lastRefusedAt > EPISODE_GAP_MS) st.overSince = undefined;
      return this.#admitIpFrames(conn, st, 1, now);
    }
    this.stats.rateLimitedFrames++;
    if (st.overSince === undefined || now - st.lastRefusedAt > EPISODE_GAP_MS) st.overSince = now;
    st.lastRefusedAt = now;
    if (now - st.overSince >= this.#cfg.rateLimitCloseMs) {
      this.stats.rateLimitCloses++;
      conn.end(CLOSE_RATE_LIMIT, 'rate limit exceeded');
      return false;
    }
    if (now - st.lastErrorAt >= ERROR_INTERVAL_MS) {
      st.lastErrorAt = now;
      conn.sendError(
        ErrorCode.RATE_LIMIT,
        `more than ${rate} frames per second: frames are being dropped; keep going and the connection is closed (${CloseCode.RATE_LIMIT})`,
      );
    }
    return false;
  }

  /**
   * A frame (`frames` frames) the connection's own budget admitted, against the budget of its
   * address (limits.messagesPerIpPerSec, limits.messageBurstPerIp), shared by the worker threads:
   * the per-connection rate binds one connection, but an address may hold limits.connectionsPerIp
   * of them (256), each at its own rate. 128 connections of one address, each sending 50
   * subscribe/unsubscribe frames of 100 channels a second (within its own rate), took a worker's
   * event loop whole: a bystander's ping got no answer in 7 s. Refused: the frame is dropped,
   * with a RATE_LIMIT error at most once a second per connection (none with `tell` false); the
   * connection is not closed for it (its neighbours may be the ones flooding). Exempt addresses pass.
   */
  #admitIpFrames(conn: LimitedConnection, st: MessageState, frames: number, now: number, tell = true): boolean {
    const rate = this.#cfg.messagesPerIpPerSec;
    if (rate <= 0) return true;
    if (st.ipKey === undefined) {
      const key = conn.ip === undefined ? undefined : clientAddressKey(conn.ip);
      st.ipKey = key === undefined || this.#exempt.has(key) ? null : key;
    }
    if (st.ipKey === null) return true;
    const burst = this.#cfg.messageBurstPerIp;
    const n = Math.min(frames, burst);
    const wait = this.#sharedFrameIp ? this.#sharedFrameIp.take(st.ipKey, rate, burst, now, n) : takeLocal(this.#framesPerIp, st.ipKey, rate, burst, now, n);
    if (wait === 0) return true;
    this.stats.rateLimitedFramesPerIp++;
    if (tell && now - st.lastErrorAt >= ERROR_INTERVAL_MS) {
      st.lastErrorAt = now;
      conn.sendError(
        ErrorCode.RATE_LIMIT,
        `the connections from this address send more than ${rate} frames per second together (limits.messagesPerIpPerSec): frames are being dropped`,
      );
    }
    return false;
  }

  /**
   * The `admitChannels` hook: a frame admitted by `admitMessage` names `channels` channels (a
   * `visibility` that hides or shows the page counts every subscription it moves); it
   * counts as one frame per started CHANNELS_PER_FRAME of them (at most `limits.messageBurst`),
   * and takes the frames beyond the first from the same bucket. Refused (they are not all there: none is taken), the message of a
   * RATE_LIMIT error answering the request: nothing of it is done.
   */
  admitChannels(conn: LimitedConnection, channels: number, now = Date.now()): string | undefined {
    const rate = this.#cfg.messagesPerSec;
    // never more than the whole burst: a frame the protocol allows (1000 channels) must be
    // admitted by a full bucket whatever limits.messageBurst is
    const extra = Math.min(Math.ceil(channels / CHANNELS_PER_FRAME), this.#cfg.messageBurst) - 1;
    if (rate <= 0 || extra <= 0) return undefined;
    const st = this.#messages.get(conn);
    if (!st) return undefined;
    if (st.bucket.take(now, extra)) {
      if (this.#admitIpFrames(conn, st, extra, now)) return undefined;
      return (
        `a frame naming (or, a visibility page change, moving) ${channels} channels counts as ${extra + 1} frames (one per ${CHANNELS_PER_FRAME} channels) and the connections ` +
        `from this address have not that many left together (limits.messagesPerIpPerSec ${this.#cfg.messagesPerIpPerSec}): nothing of it was done; send it again later or in smaller frames`
      );
    }
    this.stats.rateLimitedFrames++;
    return (
      `a frame naming (or, a visibility page change, moving) ${channels} channels counts as ${extra + 1} frames (one per ${CHANNELS_PER_FRAME} channels) and this connection has not that many left ` +
      `(limits.messagesPerSec ${rate}, limits.messageBurst ${this.#cfg.messageBurst}): nothing of it was done; send it again in ${Math.ceil((extra + 1) / rate)} s or in smaller frames`
    );
  }

  /**
   * The `admitCostly` hook: before an in-band op whose answer costs in proportion to what it holds
   * (`alert.list`: every rule of the user) is built. Refused while the connection's frame budget
   * is below zero (earlier answers charged it, see `chargeFrames`): the message of a RATE_LIMIT
   * error answering the request, before anything is read.
   */
  admitCostly(conn: LimitedConnection, what: string, now = Date.now()): string | undefined {
    const rate = this.#cfg.messagesPerSec;
    const st = this.#messages.get(conn);
    if (rate <= 0 || !st || !st.bucket.inDebt(now)) return undefined;
    this.stats.rateLimitedFrames++;
    return (
      `${what}, and this connection's frame budget is spent (limits.messagesPerSec ${rate}, limits.messageBurst ${this.#cfg.messageBurst}): ` +
      `nothing was done; send it again in ${Math.max(1, Math.ceil(st.bucket.waitMs(now) / 1000))} s`
    );
  }

  /**
   * The `chargeFrames` hook: an answer admitted by `admitCostly` counts as `frames` frames; those
   * beyond the first (the request's own, taken by `admitMessage`) are taken from the connection's
   * budget now, below zero if need be, so its next frames wait until it has refilled.
   */
  chargeFrames(conn: LimitedConnection, frames: number, now = Date.now()): void {
    const st = this.#messages.get(conn);
    if (this.#cfg.messagesPerSec <= 0 || !st || frames <= 1) return;
    st.bucket.charge(now, Math.min(frames, this.#cfg.messageBurst) - 1);
    // the address pays too, when its budget holds them (a token bucket shared by the workers
    // cannot go below zero; the connection's own is in debt and holds its next frames back); no error: the answer was sent
    this.#admitIpFrames(conn, st, Math.min(frames, this.#cfg.messageBurst) - 1, now, false);
  }

  /** Open connections of a user (tests, metrics). */
  connectionsOf(user: string): number {
    return this.#perUser.get(user);
  }

  close(): void {
    clearInterval(this.#sweeper);
  }

  #sweep(): void {
    const now = Date.now();
    for (const [ip, b] of this.#perIp) if (b.full(now)) this.#perIp.delete(ip);
    for (const [ip, b] of this.#httpPerIp) if (b.full(now)) this.#httpPerIp.delete(ip);
    for (const [ip, b] of this.#framesPerIp) if (b.full(now)) this.#framesPerIp.delete(ip);
    if (this.#sharedFrameIp && this.#cfg.messagesPerIpPerSec > 0) this.#sharedFrameIp.sweep(this.#cfg.messagesPerIpPerSec, this.#cfg.messageBurstPerIp);
    if (this.#sharedIp && this.#cfg.connectionsPerIpPerSec > 0) this.#sharedIp.sweep(this.#cfg.connectionsPerIpPerSec, this.#cfg.connectionBurstPerIp);
    if (this.#sharedHttpIp && this.#cfg.httpRequestsPerIpPerSec > 0) this.#sharedHttpIp.sweep(this.#cfg.httpRequestsPerIpPerSec, this.#cfg.httpBurstPerIp);
  }
}

/** One token of `key`'s bucket in `buckets` (this gateway's): 0 when taken, else the ms until one is there. */
function takeLocal(buckets: Map<string, TokenBucket>, key: string, rate: number, burst: number, now: number, n = 1): number {
  let b = buckets.get(key);
  if (!b) {
    if (buckets.size >= MAX_IP_ENTRIES) buckets.delete(buckets.keys().next().value!);
    b = new TokenBucket(rate, burst, now);
    buckets.set(key, b);
  }
  return b.take(now, n) ? 0 : Math.max(1, Math.ceil(b.waitMs(now)));
}

/**
 * The key per-IP limits count a client under. `::ffff:127.0.0.1` and `127.0.0.1` are the same
 * client. An IPv6 client counts under its /64: one subscriber line or host is routinely given a
 * whole /64 (RFC 6177 and the usual ISP practice), so keying by the full address would give an
 * attacker a fresh budget per address it picks from its own prefix. Loopback stays `::1`.
 */
export function clientAddressKey(ip: string): string {
  const v4 = /^(?:0{0,4}:){0,5}(?:0{0,4}:)?ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (v4) return v4[1]!;
  // uWS prints IPv4-mapped addresses in full hex: 0000:...:ffff:7f00:0001
  const hex = /^(?:0{1,4}:){5}ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(ip);
  if (hex) {
    const hi = parseInt(hex[1]!, 16);
    const lo = parseInt(hex[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  if (/^[0:]+:0*1$/.test(ip)) return '::1';
  const groups = ipv6Groups(ip);
  if (groups) return `${groups.slice(0, 4).join(':')}::/64`;
  return ip.toLowerCase();
}

/** The eight 16-bit groups of an IPv6 address (`::` expanded, no zone), or undefined. */
function ipv6Groups(ip: string): string[] | undefined {
  const addr = ip.toLowerCase().replace(/%.*$/, '');
  if (!/^[0-9a-f:]+$/.test(addr) || !addr.includes(':')) return undefined;
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  if (groups.some((g) => g.length === 0 || g.length > 4)) return undefined;
  return groups.map((g) => parseInt(g, 16).toString(16));
}

/** File descriptors kept back from the connection ceiling for the rest of the process. */
const FD_RESERVE = 256;
/** The soft open-file limit assumed when /proc/self/limits cannot be read (not Linux). */
const FALLBACK_NOFILE = 1024;

/**
 * The connection ceiling when `gateway.maxConnections` is unset: every WebSocket is a file
 * descriptor, so the soft open-file limit (RLIMIT_NOFILE, which Node raises to the hard limit
 * at start-up) less 256 for everything else the process opens (bus and store connections,
 * HTTP requests, upgrades in progress, files), and at least 64. `limitsText` is the content
 * of /proc/self/limits (read when undefined).
 */
export function defaultMaxConnections(limitsText?: string): number {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/limits', 'utf8');
    } catch {
      text = '';
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  const soft = !m ? FALLBACK_NOFILE : m[1] === 'unlimited' ? 1_048_576 : Number(m[1]);
  return Math.max(64, soft - FD_RESERVE);
}
