import type { Bus, BusHandler, Unsubscribe } from '../bus/bus.js';
import type { MarketDelay } from './market-delay.js';
import { DELAYED_PREFIX, EXEC_LIVE_PREFIX, PF_VALUE_PREFIX, portfolioKickSubject, userOf } from '../bus/private-subjects.js';

const EMPTY = new Uint8Array(0);

/** A per-user live feed served locally (the executions router implements it). */
export interface LocalUserFeed {
  subscribe(user: string, handler: (payload: Uint8Array) => void): Unsubscribe;
}

/**
 * The bus as the gateway hub sees it: the real bus, plus gateway-local subjects that never go
 * over NATS — `delayed.<subject>` (delay lines for delayed entitlements) and `exec.live.<user>`
 * (the contiguous executions feed) — and, when a portfolio channel is subscribed upstream, a
 * `pf.kick.<user>` so the portfolio service publishes the current valuation for the snapshot.
 */
export class GatewayBus implements Bus {
  readonly #inner: Bus;
  readonly #delay: MarketDelay | undefined;
  readonly #executions: LocalUserFeed | undefined;

  constructor(inner: Bus, opts: { delay?: MarketDelay; executions?: LocalUserFeed }) {
    this.#inner = inner;
    this.#delay = opts.delay;
    this.#executions = opts.executions;
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
    if (pattern.startsWith(PF_VALUE_PREFIX)) {
      const user = userOf(pattern, PF_VALUE_PREFIX);
      if (user !== undefined) this.#inner.publish(portfolioKickSubject(user), EMPTY);
    }
    return unsubscribe;
  }

  flush(): Promise<void> {
    return this.#inner.flush();
  }

  /** The engine closes the real bus; this only forgets the local routes. */
  async close(): Promise<void> {}
}
