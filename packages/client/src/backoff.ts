import { checkAll } from './check.js';

/**
 * Reconnect delays: exponential backoff with full jitter. The n-th retry (0-based) waits a
 * uniformly random time in [0, min(maxDelayMs, initialDelayMs * factor^n)], which spreads a crowd
 * of clients reconnecting after the same outage instead of having them arrive in waves.
 */
export interface BackoffOptions {
  /** cap of the first retry's delay, ms (default 250) */
  initialDelayMs?: number | undefined;
  /** largest delay, ms (default 15000) */
  maxDelayMs?: number | undefined;
  /** growth per attempt (default 2) */
  factor?: number | undefined;
  /**
   * give up after this many consecutive failed attempts (default Infinity); for the client, a
   * connection closed less than `maxDelayMs` after its welcome is one (docs/client-sdk.md#reconnect)
   */
  maxRetries?: number | undefined;
}

export class Backoff {
  // (`declare`: set in the constructor, not defined again as class fields: bytes of the bundle budget)
  declare readonly initialDelayMs: number;
  declare readonly maxDelayMs: number;
  declare readonly factor: number;
  declare readonly maxRetries: number;
  #attempt = 0;
  readonly #random: () => number;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    this.initialDelayMs = options.initialDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 15_000;
    this.factor = options.factor ?? 2;
    this.maxRetries = options.maxRetries ?? Infinity;
    // (named as the client's option `reconnect`; a timer's delay is at most MAX_DELAY_MS)
    checkAll(this, 'reconnect.', { initialDelayMs: [0], maxDelayMs: [this.initialDelayMs], factor: [1, Infinity], maxRetries: [0, Infinity] });
    this.#random = random;
  }

  /** consecutive attempts made since the last reset */
  get attempt(): number {
    return this.#attempt;
  }

  get exhausted(): boolean {
    return this.#attempt >= this.maxRetries;
  }

  /** upper bound of the delay for attempt n */
  ceiling(n: number): number {
    return Math.min(this.maxDelayMs, this.initialDelayMs * this.factor ** n);
  }

  /** Delay before the next attempt; advances the attempt counter. */
  next(): number {
    const delay = Math.floor(this.#random() * this.ceiling(this.#attempt));
    this.#attempt++;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
