/** Time source and sleep of the replay budget, injectable so tests can drive it. */
export interface BudgetClock {
  now(): number;
  /** resolve after `ms` (or at once when `signal` aborts) */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realBudgetClock: BudgetClock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        clearTimeout(t);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const t = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export interface ReplayBudgetOptions {
  /** replayed events per second per user, across all of that user's connections (0 = unlimited) */
  perUserPerSec: number;
  /** replayed events per second for the whole gateway (0 = unlimited) */
  perGatewayPerSec: number;
}

export interface ReplayBudgetStats {
  /** times a replay page waited because its user's budget was spent */
  userWaits: number;
  /** times a replay page waited because the gateway's budget was spent */
  gatewayWaits: number;
}

/** A token bucket holding at most one second of its rate; it may go into debt (see `charge`). */
class Bucket {
  tokens: number;
  at: number;
  constructor(
    readonly rate: number,
    now: number,
  ) {
    this.tokens = rate;
    this.at = now;
  }
  refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.rate, this.tokens + ((now - this.at) / 1000) * this.rate);
      this.at = now;
    }
  }
  /** ms until `n` tokens are there */
  waitFor(n: number): number {
    return this.tokens >= n ? 0 : Math.ceil(((n - this.tokens) / this.rate) * 1000);
  }
}

/**
 * How many replayed events the gateway sends per second: a token bucket per user (shared by all
 * of that user's connections) and one for the whole gateway, each holding at most one second of
 * its rate. A replay takes from both before each page; when either is spent it waits until both
 * have refilled enough for the page (or the smaller of the two rates), so replays of one user
 * cannot take more than the user's rate and all replays together not more than the gateway's.
 */
export class ReplayBudget {
  readonly stats: ReplayBudgetStats = { userWaits: 0, gatewayWaits: 0 };
  readonly #opts: ReplayBudgetOptions;
  readonly #clock: BudgetClock;
  readonly #users = new Map<string, Bucket>();
  readonly #gateway: Bucket | undefined;
  #sweepAt = 0;

  constructor(opts: ReplayBudgetOptions, clock: BudgetClock = realBudgetClock) {
    this.#opts = opts;
    this.#clock = clock;
    this.#gateway = opts.perGatewayPerSec > 0 ? new Bucket(opts.perGatewayPerSec, clock.now()) : undefined;
  }

  /**
   * Wait until the budgets allow some of `want` events and take them: resolves with how many
   * (at least 1, at most `want`), or 0 when `signal` aborted meanwhile.
   */
  async acquire(user: string, want: number, signal?: AbortSignal): Promise<number> {
    if (want <= 0) return 0;
    for (;;) {
      if (signal?.aborted) return 0;
      const now = this.#clock.now();
      const ub = this.#user(user, now);
      const gb = this.#gateway;
      ub?.refill(now);
      gb?.refill(now);
      // wait for a whole page, or for what one second of the smaller budget allows
      const need = Math.max(1, Math.min(want, ub?.rate ?? want, gb?.rate ?? want));
      const userWait = ub ? ub.waitFor(need) : 0;
      const gatewayWait = gb ? gb.waitFor(need) : 0;
      if (userWait === 0 && gatewayWait === 0) {
        const n = Math.max(1, Math.min(want, Math.floor(ub?.tokens ?? want), Math.floor(gb?.tokens ?? want)));
        if (ub) ub.tokens -= n;
        if (gb) gb.tokens -= n;
        return n;
      }
      if (userWait >= gatewayWait) this.stats.userWaits++;
      else this.stats.gatewayWaits++;
      await this.#clock.sleep(Math.max(userWait, gatewayWait), signal);
    }
  }

  /**
   * Take `n` events without waiting, going into debt if needed: for the short tail of a replay
   * that holds the user's live feed (it must not wait there); later replays pay the debt.
   */
  charge(user: string, n: number): void {
    const now = this.#clock.now();
    const ub = this.#user(user, now);
    ub?.refill(now);
    this.#gateway?.refill(now);
    if (ub) ub.tokens -= n;
    if (this.#gateway) this.#gateway.tokens -= n;
  }

  #user(user: string, now: number): Bucket | undefined {
    const rate = this.#opts.perUserPerSec;
    if (rate <= 0) return undefined;
    if (now - this.#sweepAt > 60_000) {
      // buckets that are full again hold nothing worth remembering
      this.#sweepAt = now;
      for (const [u, b] of this.#users) {
        b.refill(now);
        if (b.tokens >= b.rate) this.#users.delete(u);
      }
    }
    let b = this.#users.get(user);
    if (!b) this.#users.set(user, (b = new Bucket(rate, now)));
    return b;
  }
}
