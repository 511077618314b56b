import type { ChannelResolver, Principal, ResolveResult } from '../fanout/channels.js';
import type { Connection } from '../gateway/connection.js';
import { CloseCode, ErrorCode, errorFrame } from '../protocol/index.js';

/** What the policy needs of a connection (the gateway's Connection satisfies it). */
export type SessionConnection = Pick<Connection, 'principal' | 'expiresAt' | 'closed' | 'sendFrame' | 'end' | 'subscriptions' | 'subscribedKey'>;

export interface SessionPolicyOptions {
  /** warn this long before expiry (0 = no warning) */
  warnMs: number;
  /** the gateway's resolvers, to re-check subscriptions when a token is replaced */
  resolvers: readonly ChannelResolver[];
}

/**
 * Restricted private channels whose key names the token's entitlements (`~<id>`): what they show
 * depends on them (the portfolio's prices, the alerts' prices in notifications), so other
 * entitlements are another key and withdraw the subscription.
 */
const KEYED_BY_ENTITLEMENTS = ['delayed:portfolio@', 'delayed:notifications@'];

/** setTimeout cannot wait longer than this; longer waits are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Timers {
  warn?: NodeJS.Timeout;
  expire?: NodeJS.Timeout;
}

function resolve(resolvers: readonly ChannelResolver[], name: string, principal: Principal): ResolveResult | undefined {
  for (const r of resolvers) {
    const res = r.resolve(name, principal);
    if (res) return res;
  }
  return undefined;
}

/**
 * Token lifetime on open connections. Before `exp` the connection is sent
 *   {"op":"error","code":"UNAUTHENTICATED","message":"token expires in 30s: send auth","expires":<ms>}
 * and at `exp` it is closed with 1008 unless `{"op":"auth","token":...}` brought a fresh token.
 * A fresh token that no longer entitles the connection to a channel it is subscribed to (or only
 * delayed where it was real time) closes it with 1008 too ("entitlement withdrawn").
 */
export class SessionPolicy {
  readonly #opts: SessionPolicyOptions;
  readonly #timers = new Map<SessionConnection, Timers>();
  /** counters for metrics and tests */
  readonly stats = { warned: 0, expired: 0, refreshed: 0, withdrawn: 0 };

  constructor(opts: SessionPolicyOptions) {
    this.#opts = opts;
  }

  onOpen(conn: SessionConnection): void {
    this.#schedule(conn);
  }

  onClose(conn: SessionConnection): void {
    this.#clear(conn);
  }

  onAuthChanged(conn: SessionConnection): void {
    this.stats.refreshed++;
    for (const name of conn.subscriptions()) {
      const held = conn.subscribedKey(name);
      const now = resolve(this.#opts.resolvers, name, conn.principal);
      // refused now, or held in real time and only delayed now. Compared with the subscription as
      // held, not with the previous token: an upgrade to real time keeps a delayed subscription
      // until the client subscribes again, and a token delayed again withdraws nothing from it
      // (a restricted portfolio's key names its entitlements: other entitlements, another key)
      const downgraded =
        now?.ok === true &&
        held !== undefined &&
        now.spec.key.startsWith('delayed:') &&
        (!held.startsWith('delayed:') || (KEYED_BY_ENTITLEMENTS.some((k) => held.startsWith(k)) && held !== now.spec.key));
      if (!now || !now.ok || downgraded) {
        this.stats.withdrawn++;
        this.#clear(conn);
        conn.end(CloseCode.POLICY, `entitlement withdrawn: ${name}`);
        return;
      }
    }
    this.#schedule(conn);
  }

  /** Connections with a pending expiry (for tests and metrics). */
  get tracked(): number {
    return this.#timers.size;
  }

  close(): void {
    for (const c of [...this.#timers.keys()]) this.#clear(c);
  }

  #clear(conn: SessionConnection): void {
    const t = this.#timers.get(conn);
    if (!t) return;
    if (t.warn) clearTimeout(t.warn);
    if (t.expire) clearTimeout(t.expire);
    this.#timers.delete(conn);
  }

  #schedule(conn: SessionConnection): void {
    this.#clear(conn);
    const exp = conn.expiresAt;
    if (exp === undefined || conn.closed) return;
    const timers: Timers = {};
    this.#timers.set(conn, timers);
    const now = Date.now();
    // a token that comes inside the warning window is warned about half way to its expiry, not at
    // once: a client that answers each warning with a token as short (a token service issuing
    // 20 s tokens) would otherwise be warned and refresh in a loop, into the auth rate limit
    const warnAt = exp - this.#opts.warnMs > now ? exp - this.#opts.warnMs : now + (exp - now) / 2;
    if (this.#opts.warnMs > 0 && exp > now) {
      this.#at(timers, 'warn', warnAt, () => this.#warn(conn, exp));
    }
    this.#at(timers, 'expire', exp, () => {
      if (conn.closed || conn.expiresAt !== exp) return;
      this.stats.expired++;
      this.#clear(conn);
      conn.end(CloseCode.POLICY, 'token expired');
    });
  }

  #warn(conn: SessionConnection, exp: number): void {
    if (conn.closed || conn.expiresAt !== exp) return;
    this.stats.warned++;
    const secs = Math.max(0, Math.round((exp - Date.now()) / 1000));
    conn.sendFrame(errorFrame(ErrorCode.UNAUTHENTICATED, `token expires in ${secs}s: send {"op":"auth","token":"<fresh jwt>"}`, undefined, exp));
  }

  /** Run fn at wall time `when` (at once if past), re-arming beyond the timer range. */
  #at(timers: Timers, slot: keyof Timers, when: number, fn: () => void): void {
    const delay = Math.max(0, when - Date.now());
    const t = setTimeout(
      () => {
        if (Date.now() < when - 5) this.#at(timers, slot, when, fn);
        else fn();
      },
      Math.min(delay, MAX_TIMER_MS),
    );
    t.unref();
    timers[slot] = t;
  }
}
