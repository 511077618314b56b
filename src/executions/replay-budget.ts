import { SharedKeyTable, tableKey } from '../gateway/connection-counts.js';

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
  constructor(
    readonly rate: number,
    public tokens: number,
    public at: number,
  ) {}
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

/** What one step of a budget decided: events taken (0: none), else how long each bucket wants to wait. */
export interface BudgetStep {
  took: number;
  userWait: number;
  gatewayWait: number;
}

/**
 * One step on a user's bucket `ub` and the gateway's `gb` (undefined: not limited), refilled to
 * `now`: take some of `want` (at least 1) when both hold a page (or one second of the smaller
 * rate), else say how long to wait; `force` takes `want` at once, into debt if need be.
 */
function step(ub: Bucket | undefined, gb: Bucket | undefined, want: number, now: number, force: boolean): BudgetStep {
  ub?.refill(now);
  gb?.refill(now);
  if (force) {
    if (ub) ub.tokens -= want;
    if (gb) gb.tokens -= want;
    return { took: want, userWait: 0, gatewayWait: 0 };
  }
  // wait for a whole page, or for what one second of the smaller budget allows
  const need = Math.max(1, Math.min(want, ub?.rate ?? want, gb?.rate ?? want));
  const userWait = ub ? ub.waitFor(need) : 0;
  const gatewayWait = gb ? gb.waitFor(need) : 0;
  if (userWait !== 0 || gatewayWait !== 0) return { took: 0, userWait, gatewayWait };
  const n = Math.max(1, Math.min(want, Math.floor(ub?.tokens ?? want), Math.floor(gb?.tokens ?? want)));
  if (ub) ub.tokens -= n;
  if (gb) gb.tokens -= n;
  return { took: n, userWait: 0, gatewayWait: 0 };
}

/**
 * Where a budget's buckets live: the refill, the check and the take of one step happen as one,
 * so that two takers (two connections, or two gateway worker threads) never both spend the same
 * tokens.
 */
export interface BudgetLedger {
  step(user: string, want: number, now: number, force: boolean): BudgetStep;
}

/** The buckets in this thread's memory: the budget of one event loop. */
export class LocalBudgetLedger implements BudgetLedger {
  readonly #opts: ReplayBudgetOptions;
  readonly #users = new Map<string, Bucket>();
  readonly #gateway: Bucket | undefined;
  #sweepAt = 0;

  constructor(opts: ReplayBudgetOptions, now: number) {
    this.#opts = opts;
    this.#gateway = opts.perGatewayPerSec > 0 ? new Bucket(opts.perGatewayPerSec, opts.perGatewayPerSec, now) : undefined;
  }

  step(user: string, want: number, now: number, force: boolean): BudgetStep {
    return step(this.#user(user, now), this.#gateway, want, now, force);
  }

  #user(user: string, now: number): Bucket | undefined {
    const rate = this.#opts.perUserPerSec;
    if (rate <= 0) return undefined;
    if (now - this.#sweepAt > SWEEP_MS) {
      // buckets that are full again hold nothing worth remembering
      this.#sweepAt = now;
      for (const [u, b] of this.#users) {
        b.refill(now);
        if (b.tokens >= b.rate) this.#users.delete(u);
      }
    }
    let b = this.#users.get(user);
    if (!b) this.#users.set(user, (b = new Bucket(rate, rate, now)));
    return b;
  }
}

/** Full buckets are forgotten this often. */
const SWEEP_MS = 60_000;
/** Key of the gateway's bucket in a shared ledger: no user id holds a C0 control (src/core/identity.ts). */
const GATEWAY_KEY = '\u0001gateway';
/** Int32 columns of a shared bucket: tokens in thousandths (two words, signed), refill time in ms since the epoch (two words), 1 for the gateway's */
const COLUMNS = 5;
const KIND = 4;
const SPLIT = 2 ** 30;

/** The budgets that gateway worker threads share (src/workers): bar-store reads, `executions` and `notifications` replays. */
export const SHARED_BUDGETS = ['barReads', 'executionReplays', 'notificationReplays'] as const;
export type SharedBudgetName = (typeof SHARED_BUDGETS)[number];

/** Users whose buckets a shared ledger holds at once (not full again yet); beyond them a new user is limited by the gateway's bucket only. */
export const SHARED_BUDGET_USERS = 40_000;

/**
 * The buckets in a SharedArrayBuffer, one ledger for the gateway worker threads of a process
 * (src/workers): a user's requests reach whichever worker the kernel gave each connection, and the
 * user, like the process, gets the configured rate once. Every step runs under the table's lock.
 */
export class SharedBudgetLedger implements BudgetLedger {
  readonly #table: SharedKeyTable;
  readonly #opts: ReplayBudgetOptions;
  readonly #epoch: number;
  #sweepAt = 0;

  static allocate(users = SHARED_BUDGET_USERS): SharedArrayBuffer {
    return SharedKeyTable.allocate(Math.ceil((users * 4) / 3), COLUMNS);
  }

  /** `self`: this thread's worker index (-1: the main thread); `epoch`: the same time origin in every thread. */
  constructor(buffer: SharedArrayBuffer, opts: ReplayBudgetOptions, self: number, epoch: number) {
    this.#table = new SharedKeyTable(buffer, COLUMNS, self);
    this.#opts = opts;
    this.#epoch = epoch;
  }

  /** A worker ended: free the lock of the ledger in `buffer` if it died holding it (main thread). */
  static breakLock(buffer: SharedArrayBuffer, worker: number): void {
    new SharedKeyTable(buffer, COLUMNS, -1).breakLock(worker);
  }

  /** buckets held (tests) */
  get size(): number {
    return this.#table.used;
  }

  step(user: string, want: number, now: number, force: boolean): BudgetStep {
    const { perUserPerSec, perGatewayPerSec } = this.#opts;
    const t = this.#table;
    return t.locked(() => {
      if (now - this.#sweepAt > SWEEP_MS) {
        this.#sweepAt = now;
        // full user buckets; the gateway's stays (it holds a slot from the first step on)
        t.sweep((at) => {
          if (t.words[at + KIND] === 1) return false;
          const b = this.#load(at, perUserPerSec);
          b.refill(now);
          return b.tokens >= b.rate;
        });
      }
      // the gateway's bucket first: taken at the first step, when the table has room
      const gAt = perGatewayPerSec > 0 ? this.#slot(GATEWAY_KEY, perGatewayPerSec, now, 1) : -1;
      const uAt = perUserPerSec > 0 ? this.#slot(user, perUserPerSec, now, 0) : -1;
      const gb = gAt < 0 ? undefined : this.#load(gAt, perGatewayPerSec);
      const ub = uAt < 0 ? undefined : this.#load(uAt, perUserPerSec);
      const r = step(ub, gb, want, now, force);
      if (gb) this.#store(gAt, gb);
      if (ub) this.#store(uAt, ub);
      return r;
    });
  }

  /** Under the lock: where the bucket of `key` is (a new one is full), or -1 when the table has no room. */
  #slot(key: string, rate: number, now: number, kind: number): number {
    const t = this.#table;
    const k = tableKey(key);
    let slot = t.find(k);
    if (slot < 0) {
      slot = t.insert(k);
      if (slot < 0) return -1;
      const at = t.values(slot);
      this.#store(at, new Bucket(rate, rate, now));
      t.words[at + KIND] = kind;
      return at;
    }
    return t.values(slot);
  }

  #load(at: number, rate: number): Bucket {
    const w = this.#table.words;
    return new Bucket(rate, (w[at]! * SPLIT + w[at + 1]!) / 1000, w[at + 2]! * SPLIT + w[at + 3]! + this.#epoch);
  }

  #store(at: number, b: Bucket): void {
    const w = this.#table.words;
    const milli = Math.round(b.tokens * 1000);
    const time = Math.round(b.at - this.#epoch);
    w[at] = Math.floor(milli / SPLIT);
    w[at + 1] = milli - w[at]! * SPLIT;
    w[at + 2] = Math.floor(time / SPLIT);
    w[at + 3] = time - w[at + 2]! * SPLIT;
  }
}

/**
 * How many replayed events the gateway sends per second: a token bucket per user (shared by all
 * of that user's connections) and one for the whole gateway, each holding at most one second of
 * its rate. A replay takes from both before each page; when either is spent it waits until both
 * have refilled enough for the page (or the smaller of the two rates), so replays of one user
 * cannot take more than the user's rate and all replays together not more than the gateway's.
 * The buckets are this event loop's, or, with gateway workers, the process's (`ledger`:
 * SharedBudgetLedger).
 */
export class ReplayBudget {
  readonly stats: ReplayBudgetStats = { userWaits: 0, gatewayWaits: 0 };
  readonly #clock: BudgetClock;
  readonly #ledger: BudgetLedger;

  constructor(opts: ReplayBudgetOptions, clock: BudgetClock = realBudgetClock, ledger?: BudgetLedger) {
    this.#clock = clock;
    this.#ledger = ledger ?? new LocalBudgetLedger(opts, clock.now());
  }

  /**
   * Wait until the budgets allow some of `want` events and take them: resolves with how many
   * (at least 1, at most `want`), or 0 when `signal` aborted meanwhile.
   */
  async acquire(user: string, want: number, signal?: AbortSignal): Promise<number> {
    if (want <= 0) return 0;
    for (;;) {
      if (signal?.aborted) return 0;
      const r = this.#ledger.step(user, want, this.#clock.now(), false);
      if (r.took > 0) return r.took;
      if (r.userWait >= r.gatewayWait) this.stats.userWaits++;
      else this.stats.gatewayWaits++;
      await this.#clock.sleep(Math.max(r.userWait, r.gatewayWait), signal);
    }
  }

  /**
   * Take `n` events without waiting, going into debt if needed: for the short tail of a replay
   * that holds the user's live feed (it must not wait there); later replays pay the debt.
   */
  charge(user: string, n: number): void {
    this.#ledger.step(user, n, this.#clock.now(), true);
  }
}
