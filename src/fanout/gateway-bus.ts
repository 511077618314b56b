import type { Bus, BusHandler, Unsubscribe } from '../bus/bus.js';
import type { MarketDelay } from './market-delay.js';
import { DELAYED_PREFIX, EXEC_LIVE_PREFIX, PF_KICK_RENEW, PF_KICK_RENEW_MS, PF_VALUE_PREFIX, portfolioKickSubject, userOf } from '../bus/private-subjects.js';

const EMPTY = new Uint8Array(0);
const RENEW = Uint8Array.of(PF_KICK_RENEW);

/** A per-user live feed served locally (the executions router implements it). */
export interface LocalUserFeed {
  subscribe(user: string, handler: (payload: Uint8Array) => void): Unsubscribe;
}

/**
 * The bus as the gateway hub sees it: the real bus, plus gateway-local subjects that never go
 * over NATS — `delayed.<subject>` (delay lines for delayed entitlements) and `exec.live.<user>`
 * (the contiguous executions feed) — and, when a portfolio channel is subscribed upstream, a
 * `pf.kick.<user>` so the portfolio service publishes the current valuation for the snapshot,
 * renewed every `renewMs` while subscribed (the service keeps the book of a watched user in memory).
 */
export class GatewayBus implements Bus {
  readonly #inner: Bus;
  readonly #delay: MarketDelay | undefined;
  readonly #executions: LocalUserFeed | undefined;
  /** users whose portfolio is subscribed upstream -> subscriptions */
  readonly #watched = new Map<string, number>();
  readonly #renewMs: number;
  #renewTimer: NodeJS.Timeout | undefined;

  constructor(inner: Bus, opts: { delay?: MarketDelay; executions?: LocalUserFeed; renewMs?: number }) {
    this.#inner = inner;
    this.#delay = opts.delay;
    this.#executions = opts.executions;
    this.#renewMs = opts.renewMs ?? PF_KICK_RENEW_MS;
  }

  get connected(): boolean {
    return this.#inner.connected;
  }

  publish(subject: string, payload: Uint8Array): void {
    this.#inner.publish(subject, payload);
  }

  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe {
    if (this.#delay && pattern.startsWith(DELAYED_PREFIX)) {
      return this.#delay.subscribe(pattern.slice(DELAYED_PREFIX.length), (_s, p) => onMessage(pattern, p));
    }
    if (this.#executions && pattern.startsWith(EXEC_LIVE_PREFIX)) {
      const user = userOf(pattern, EXEC_LIVE_PREFIX);
      if (user !== undefined) return this.#executions.subscribe(user, (p) => onMessage(pattern, p));
    }
    const unsubscribe = this.#inner.subscribe(pattern, onMessage);
    const user = pattern.startsWith(PF_VALUE_PREFIX) ? userOf(pattern, PF_VALUE_PREFIX) : undefined;
    if (user === undefined) return unsubscribe;
    this.#inner.publish(portfolioKickSubject(user), EMPTY);
    this.#watched.set(user, (this.#watched.get(user) ?? 0) + 1);
    if (!this.#renewTimer) {
      this.#renewTimer = setInterval(() => {
        for (const u of this.#watched.keys()) this.#inner.publish(portfolioKickSubject(u), RENEW);
      }, this.#renewMs);
      this.#renewTimer.unref();
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      unsubscribe();
      const n = (this.#watched.get(user) ?? 1) - 1;
      if (n > 0) this.#watched.set(user, n);
      else this.#watched.delete(user);
      if (this.#watched.size === 0) this.#stopRenewing();
    };
  }

  #stopRenewing(): void {
    clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
  }

  flush(): Promise<void> {
    return this.#inner.flush();
  }

  /** The engine closes the real bus; this only forgets the local routes. */
  async close(): Promise<void> {
    this.#watched.clear();
    this.#stopRenewing();
  }
}
