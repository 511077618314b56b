/**
 * Exponential backoff with "full jitter" around the exponential value: the n-th retry waits a
 * random time in [base*(1-jitter), base] where base = min(max, initial * factor^n). Jitter keeps
 * a fleet of feed processes from reconnecting to a provider in lock step after an outage.
 */
export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
  factor: number;
  /** 0..1: share of the delay that is randomized */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 30_000, factor: 2, jitter: 0.5 };

export class Backoff {
  readonly #opts: BackoffOptions;
  readonly #random: () => number;
  #attempt = 0;

  constructor(opts: Partial<BackoffOptions> = {}, random: () => number = Math.random) {
    this.#opts = { ...DEFAULT_BACKOFF, ...opts };
    this.#random = random;
  }

  get attempt(): number {
    return this.#attempt;
  }

  /** Delay before the next attempt; each call counts one attempt. */
  next(): number {
    const { initialMs, maxMs, factor, jitter } = this.#opts;
    const base = Math.min(maxMs, initialMs * factor ** this.#attempt);
    this.#attempt++;
    return Math.round(base * (1 - jitter * this.#random()));
  }

  /** The longest delay (used after failures that retrying soon cannot fix, e.g. bad credentials). */
  max(): number {
    return this.#opts.maxMs;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
