import type { FeedLogger, FeedState } from '../../feeds/sdk/adapter.js';
import type { SourceSelector } from './tick-publisher.js';

/**
 * Per-symbol failover between two providers. The primary serves the symbol; when it has sent
 * nothing for that symbol for `staleAfterMs` (or its connection is down) and the backup is
 * fresh, the backup takes over and the symbol starts a new epoch, so clients see the switch as a
 * new `ep` on trade and quote payloads and keep their subscriptions. Once the primary has been
 * delivering again for `recoverAfterMs`, it takes the symbol back (another new epoch).
 *
 * Both feeds of a pair must run in the same process (the one whose publisher selects): in NATS
 * mode, run them together, e.g. `tickwire feed binance coinbase`.
 */
export interface FailoverRule {
  symbol: string;
  primary: string;
  backup: string;
  /** primary silent this long for the symbol -> switch to the backup */
  staleAfterMs: number;
  /** primary delivering again this long -> switch back */
  recoverAfterMs: number;
}

export interface FailoverStatus {
  symbol: string;
  primary: string;
  backup: string;
  active: string;
  /** when `active` last changed (ms) */
  since: number;
  switches: number;
  reason?: string;
  epoch?: number;
}

interface SymbolState {
  rule: FailoverRule;
  active: string;
  since: number;
  switches: number;
  reason?: string;
  epoch?: number;
  primaryLast: number;
  primaryStreakStart: number;
  backupLast: number;
}

const DOWN_STATES: ReadonlySet<FeedState> = new Set(['reconnecting', 'auth_failed', 'error', 'stopped', 'stale']);

export interface FailoverOptions {
  sequencer: { bumpEpoch(symbol: string): number };
  log: FeedLogger;
  /** how often staleness is checked; default a quarter of the smallest staleAfterMs (25..1000 ms) */
  checkMs?: number;
  now?: () => number;
  /** called after each switch (the feed host republishes health) */
  onSwitch?: (status: FailoverStatus) => void;
}

export class FailoverSelector implements SourceSelector {
  readonly #bySymbol = new Map<string, SymbolState>();
  readonly #feedState = new Map<string, FeedState>();
  readonly #opts: FailoverOptions;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  readonly #listeners = new Set<(status: FailoverStatus) => void>();

  constructor(rules: readonly FailoverRule[], opts: FailoverOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    const t = this.#now();
    for (const rule of rules) {
      this.#bySymbol.set(rule.symbol, {
        rule,
        active: rule.primary,
        since: t,
        switches: 0,
        // the primary gets one stale period of grace at start
        primaryLast: t,
        primaryStreakStart: t,
        backupLast: -Infinity,
      });
    }
  }

  /** Be told of every switch (the feed host republishes health at once). */
  onSwitch(listener: (status: FailoverStatus) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get rules(): FailoverRule[] {
    return [...this.#bySymbol.values()].map((s) => s.rule);
  }

  /** Start the staleness checks (idempotent). */
  start(): void {
    if (this.#timer || this.#bySymbol.size === 0) return;
    const smallest = Math.min(...this.rules.map((r) => r.staleAfterMs));
    const every = this.#opts.checkMs ?? Math.min(1000, Math.max(25, Math.floor(smallest / 4)));
    this.#timer = setInterval(() => this.check(), every);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  accept(feedId: string, symbol: string): boolean {
    const st = this.#bySymbol.get(symbol);
    if (!st) return true;
    const { primary, backup, staleAfterMs, recoverAfterMs } = st.rule;
    const now = this.#now();
    if (feedId === primary) {
      if (now - st.primaryLast > staleAfterMs) st.primaryStreakStart = now;
      st.primaryLast = now;
      if (st.active === backup && now - st.primaryStreakStart >= recoverAfterMs && this.#up(primary)) {
        this.#switch(st, primary, `${primary} delivering again for ${now - st.primaryStreakStart} ms`);
      }
    } else if (feedId === backup) {
      st.backupLast = now;
    } else {
      return false;
    }
    return feedId === st.active;
  }

  /** A feed's connection state changed: a primary going down fails over at once. */
  onFeedState(feedId: string, state: FeedState): void {
    this.#feedState.set(feedId, state);
    if (DOWN_STATES.has(state)) this.check();
  }

  /** Evaluate every symbol now (the timer calls this). */
  check(): void {
    const now = this.#now();
    for (const st of this.#bySymbol.values()) {
      const { primary, backup, staleAfterMs, recoverAfterMs } = st.rule;
      const primaryFresh = now - st.primaryLast <= staleAfterMs && this.#up(primary);
      const backupFresh = now - st.backupLast <= staleAfterMs && this.#up(backup);
      if (st.active === primary) {
        if (!primaryFresh && backupFresh) {
          const why = this.#up(primary) ? `${primary} silent for ${now - st.primaryLast} ms` : `${primary} is ${this.#feedState.get(primary)}`;
          this.#switch(st, backup, why);
        }
      } else if (primaryFresh && (now - st.primaryStreakStart >= recoverAfterMs || !backupFresh)) {
        this.#switch(st, primary, backupFresh ? `${primary} delivering again for ${now - st.primaryStreakStart} ms` : `${backup} is stale too`);
      }
    }
  }

  status(): FailoverStatus[] {
    return [...this.#bySymbol.values()].map((st) => {
      const s: FailoverStatus = {
        symbol: st.rule.symbol,
        primary: st.rule.primary,
        backup: st.rule.backup,
        active: st.active,
        since: st.since,
        switches: st.switches,
      };
      if (st.reason !== undefined) s.reason = st.reason;
      if (st.epoch !== undefined) s.epoch = st.epoch;
      return s;
    });
  }

  /** Roles of one feed, for its health snapshot. */
  rolesOf(feedId: string): { symbol: string; role: 'primary' | 'backup'; active: boolean }[] {
    const out: { symbol: string; role: 'primary' | 'backup'; active: boolean }[] = [];
    for (const st of this.#bySymbol.values()) {
      if (st.rule.primary === feedId) out.push({ symbol: st.rule.symbol, role: 'primary', active: st.active === feedId });
      else if (st.rule.backup === feedId) out.push({ symbol: st.rule.symbol, role: 'backup', active: st.active === feedId });
    }
    return out;
  }

  #up(feedId: string): boolean {
    const s = this.#feedState.get(feedId);
    return s === undefined || !DOWN_STATES.has(s);
  }

  #switch(st: SymbolState, to: string, reason: string): void {
    const from = st.active;
    st.active = to;
    st.since = this.#now();
    st.switches++;
    st.reason = reason;
    st.epoch = this.#opts.sequencer.bumpEpoch(st.rule.symbol);
    this.#opts.log.warn({ symbol: st.rule.symbol, from, to, reason, epoch: st.epoch }, `failover: ${st.rule.symbol} now served by ${to}`);
    const status = this.status().find((s) => s.symbol === st.rule.symbol)!;
    this.#opts.onSwitch?.(status);
    for (const l of this.#listeners) l(status);
  }
}

/**
 * The failover selector for the feeds running in this process, installed on the publisher and
 * started; undefined when no rule applies here. Rules whose two feeds do not both run in this
 * process are logged and skipped (the selector sees only the ticks of its own process).
 */
export function createFailover(
  file: { failover: readonly FailoverRule[] } | undefined,
  runningFeeds: readonly string[],
  publisher: { sequencer: { bumpEpoch(symbol: string): number }; setSelector(s: SourceSelector): void },
  log: FeedLogger,
): FailoverSelector | undefined {
  const rules = (file?.failover ?? []).filter((r) => {
    const here = runningFeeds.includes(r.primary) && runningFeeds.includes(r.backup);
    if (!here) {
      log.warn(
        { symbol: r.symbol, primary: r.primary, backup: r.backup, running: runningFeeds },
        'failover rule skipped: its primary and backup must run in the same process',
      );
    }
    return here;
  });
  if (rules.length === 0) return undefined;
  const selector = new FailoverSelector(rules, { sequencer: publisher.sequencer, log });
  publisher.setSelector(selector);
  selector.start();
  log.info({ rules: rules.map((r) => `${r.symbol}: ${r.primary} -> ${r.backup}`) }, 'failover active');
  return selector;
}
