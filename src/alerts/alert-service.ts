import type { Bus, Unsubscribe } from '../bus/bus.js';
import { marketSubject } from '../bus/subjects.js';
import { decodeTick } from '../codec/tick-codec.js';
import type { Config } from '../core/config.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import { TickwireError } from '../core/errors.js';
import type { Tick } from '../core/schema.js';
import type { AlertChanges, AlertFiring, HoldReason, StoredAlert } from './alert-engine.js';
import { AlertEngine } from './alert-engine.js';
import type { AlertStore } from './alert-store.js';
import type { AlertRule } from './rule.js';
import { parseAlertRule } from './rule.js';
import { FireLatency } from './alert-metrics.js';
import { mergeSince } from './rolling-window.js';

export interface AlertServiceOptions {
  bus: Bus;
  registry: InstrumentRegistry;
  store: AlertStore;
  config: Config['alerts'];
  /**
   * Called once per firing, after the firing and the state change it caused are committed. A
   * throw (or rejection) leaves the firing in the store's outbox: it is delivered again, with the
   * same id, when the service next starts. `redelivery` is true when the firing may have been
   * delivered before (from the outbox at start, or a retry after a failed delivery: a delivery
   * that failed may still have been stored), so a consumer whose deduplication is bounded looks
   * for its id (e.g. the notifications log's `redeliveredSince`).
   */
  onFire: (firing: AlertFiring, info: { redelivery: boolean }) => void | Promise<void>;
  log?: { warn(obj: object, msg: string): void };
  /** clock for rule creation and expiry sweeps (ms); tick evaluation uses the tick's receive time */
  now?: () => number;
  /** how often expired rules are swept when no tick comes, ms (default 1000) */
  sweepMs?: number;
  /** a firing whose delivery failed is tried again this much later, ms (default 1000) */
  redeliverMs?: number;
}

/**
 * The alert service role: holds the rules in an AlertEngine, subscribes to the trade and quote
 * subjects of the symbols that have rules (and lets go of a symbol when its last rule goes),
 * evaluates each tick, and every `alerts.flushMs` commits what changed to the AlertStore, then
 * delivers the firings of that commit and acknowledges them. On start it restores rules, states
 * and stream values from the store and delivers the firings left in its outbox.
 */
export class AlertService {
  readonly engine: AlertEngine;
  readonly stats = { ticks: 0, badPayloads: 0, commits: 0, delivered: 0, deliveryErrors: 0, commitErrors: 0, ackErrors: 0 };
  /** tick-to-notification latency of delivered firings (/metrics) */
  readonly latency = new FireLatency();
  readonly #o: AlertServiceOptions;
  readonly #now: () => number;
  readonly #subs = new Map<string, Unsubscribe[]>();
  #flushTimer: NodeJS.Timeout | undefined;
  #retryTimer: NodeJS.Timeout | undefined;
  /** a batch whose commit failed, committed with the next one */
  #retry: AlertChanges | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** firings whose delivery failed: tried again while running (and from the outbox on the next start) */
  #undelivered: AlertFiring[] = [];
  #redeliverTimer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #started = false;
  #seenVersion = -1;
  #closed = false;

  constructor(opts: AlertServiceOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
    this.engine = new AlertEngine({ registry: opts.registry, limits: opts.config });
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('AlertService already started');
    this.#started = true;
    const snap = await this.#o.store.load();
    this.engine.restore(snap.alerts, snap.marks, this.#now(), snap.windows ?? []);
    // rules that expired while stopped are deleted from the store by the first commit
    await this.#deliver(
      snap.outbox.sort((a, b) => a.at - b.at),
      true,
    );
    this.#reconcile();
    this.#sweepTimer = setInterval(() => {
      // on the ticks' clock, not #now(): a delayed service's ticks are auth.delayMs behind it
      this.engine.forgetFullBudgets();
      if (this.engine.sweep(this.#now()) > 0) {
        this.#reconcile();
        this.#schedule();
      }
    }, this.#o.sweepMs ?? 1000);
    this.#sweepTimer.unref();
    if (this.engine.hasChanges) await this.flush();
  }

  /**
   * Validate and add a rule; resolves once it is committed. Throws AlertRuleError for a bad rule,
   * and TickwireError `ALERT_STORE` when the store could not take it (the rule is then not kept:
   * a rule is accepted only once it is durable).
   */
  async add(input: unknown): Promise<AlertRule> {
    this.#assertOpen();
    const rule = this.engine.add(input, this.#now());
    this.#reconcile();
    if (!(await this.flush())) {
      this.engine.remove(rule.id);
      this.#reconcile();
      throw new TickwireError('ALERT_STORE', `alert rule "${rule.id}" was not stored: the alert store is unavailable, try again`);
    }
    return rule;
  }

  /** Validate a rule as `add` would (registry, `alerts.*` limits, expiry), without adding it. Throws AlertRuleError. */
  validate(input: unknown): AlertRule {
    return parseAlertRule(input, { registry: this.#o.registry, limits: this.#o.config, nowMs: this.#now() });
  }

  /**
   * Put back a rule removed by a replacement that could not be applied, with its state (its
   * firing count goes on). Resolves after the commit is tried: when the store is down the rule is
   * evaluated meanwhile and its commit retried with the next batch.
   */
  async reinstate(a: StoredAlert): Promise<void> {
    this.#assertOpen();
    this.engine.reinstate(a);
    this.#reconcile();
    await this.flush();
  }

  /**
   * Delete a user's rule; false when there is none. Resolves after the commit; when the store is
   * down the deletion stays queued and is retried (the rule is no longer evaluated meanwhile).
   */
  async remove(id: string, user: string): Promise<boolean> {
    this.#assertOpen();
    const ok = this.engine.remove(id, user);
    if (ok) {
      this.#reconcile();
      await this.flush();
    }
    return ok;
  }

  list(user: string): StoredAlert[] {
    return this.engine.list(user);
  }

  /**
   * Hold rules (a reason: not evaluated, kept and listed) or release them (undefined: evaluated
   * again from their next value, which only arms them). Resolves after the commit of what
   * changed (a commit that fails is retried with the next batch; the rules are held meanwhile).
   * Returns how many rules changed.
   */
  async setHeld(changes: Iterable<readonly [id: string, reason: HoldReason | undefined]>): Promise<number> {
    this.#assertOpen();
    let n = 0;
    for (const [id, reason] of changes) if (reason === undefined ? this.engine.release(id) : this.engine.hold(id, reason)) n++;
    if (n > 0) {
      this.#reconcile();
      await this.flush();
    }
    return n;
  }

  /** Symbols whose trade and quote subjects the service listens to. */
  get watching(): string[] {
    return [...this.#subs.keys()];
  }

  /** Firings whose delivery failed and wait to be tried again. */
  get outbox(): number {
    return this.#undelivered.length;
  }

  /** A batch whose commit failed and waits to be retried (its firings are not delivered yet). */
  get pendingRetry(): boolean {
    return this.#retry !== undefined;
  }

  /**
   * Commit what changed and deliver its firings (serialized with other flushes). Resolves false
   * when the commit failed (the batch is kept and retried).
   */
  flush(): Promise<boolean> {
    if (this.#flushTimer) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    const run = async (): Promise<boolean> => {
      if (!this.engine.hasChanges && !this.#retry) return true;
      const fresh = this.engine.takeChanges();
      const changes = this.#retry ? mergeChanges(this.#retry, fresh) : fresh;
      this.#retry = undefined;
      try {
        await this.#o.store.commit(changes);
      } catch (err) {
        // not committed, so not delivered: keep the batch and commit it with the next one
        this.#retry = changes;
        this.stats.commitErrors++;
        this.#o.log?.warn({ err, pendingFirings: changes.firings.length }, 'alert store commit failed: will retry');
        if (!this.#closed)
          this.#retryTimer ??= setTimeout(
            () => {
              this.#retryTimer = undefined;
              void this.flush();
            },
            Math.max(100, this.#o.config.flushMs),
          );
        return false;
      }
      this.stats.commits++;
      await this.#deliver(changes.firings, false);
      return true;
    };
    const next = this.#chain.then(run, run);
    this.#chain = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  async #deliver(firings: AlertFiring[], redelivery: boolean): Promise<void> {
    if (firings.length === 0) return;
    const acked: string[] = [];
    for (const f of firings) {
      try {
        await this.#o.onFire(f, { redelivery });
        acked.push(f.id);
        this.stats.delivered++;
        this.latency.observeMs(this.#now() - f.at);
      } catch (err) {
        this.stats.deliveryErrors++;
        this.#undelivered.push(f);
        this.#o.log?.warn({ err, firing: f.id }, 'alert delivery failed: kept in the outbox, tried again');
      }
    }
    if (this.#undelivered.length > 0) this.#scheduleRedelivery();
    try {
      await this.#o.store.ack(acked);
    } catch (err) {
      // delivered but not acknowledged: delivered again after a restart (same ids)
      this.stats.ackErrors++;
      this.#o.log?.warn({ err }, 'alert outbox ack failed');
    }
  }

  /** Try failed deliveries again (serialized with the flushes), same ids, until they go through. */
  #scheduleRedelivery(): void {
    if (this.#redeliverTimer || this.#closed) return;
    this.#redeliverTimer = setTimeout(() => {
      this.#redeliverTimer = undefined;
      const run = async (): Promise<void> => {
        if (this.#closed) return;
        await this.#deliver(this.#undelivered.splice(0), true);
      };
      this.#chain = this.#chain.then(run, run).then(
        () => undefined,
        () => undefined,
      );
    }, this.#o.redeliverMs ?? 1000);
    this.#redeliverTimer.unref();
  }

  #schedule(): void {
    if (this.#flushTimer || this.#closed) return;
    const ms = this.#o.config.flushMs;
    this.#flushTimer = ms === 0 ? setTimeout(() => void this.flush(), 0) : setTimeout(() => void this.flush(), ms);
  }

  readonly #onMessage = (_subject: string, payload: Uint8Array): void => {
    let tick: Tick;
    try {
      tick = decodeTick(payload);
    } catch {
      this.stats.badPayloads++;
      return;
    }
    if (tick === null || typeof tick !== 'object' || typeof tick.sym !== 'string' || typeof tick.rt !== 'bigint') {
      this.stats.badPayloads++;
      return;
    }
    this.stats.ticks++;
    this.engine.onTick(tick);
    if (this.engine.hasChanges) {
      this.#reconcile();
      this.#schedule();
    }
  };

  /** Subscribe to symbols that gained rules, let go of those that lost their last one. */
  #reconcile(): void {
    if (this.#closed || this.engine.symbolVersion === this.#seenVersion) return;
    this.#seenVersion = this.engine.symbolVersion;
    for (const sym of this.#subs.keys()) {
      if (this.engine.watches(sym)) continue;
      for (const u of this.#subs.get(sym)!) u();
      this.#subs.delete(sym);
    }
    for (const sym of this.engine.symbols()) {
      if (this.#subs.has(sym)) continue;
      const inst = this.#o.registry.get(sym);
      if (!inst) continue;
      this.#subs.set(sym, [
        this.#o.bus.subscribe(marketSubject(inst.assetClass, 'trade', sym), this.#onMessage),
        this.#o.bus.subscribe(marketSubject(inst.assetClass, 'quote', sym), this.#onMessage),
      ]);
    }
  }

  #assertOpen(): void {
    if (!this.#started || this.#closed) throw new Error('AlertService is not running: call start() first');
  }

  /** Stop listening, commit and deliver what is pending. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    if (this.#redeliverTimer) clearTimeout(this.#redeliverTimer);
    for (const us of this.#subs.values()) for (const u of us) u();
    this.#subs.clear();
    await this.flush();
  }
}

/** An older uncommitted batch followed by a newer one, as one batch with the same effect. */
function mergeChanges(a: AlertChanges, b: AlertChanges): AlertChanges {
  const upserts = new Map(a.upserts.map((u) => [u.rule.id, u]));
  for (const id of b.deletes) upserts.delete(id);
  for (const u of b.upserts) upserts.set(u.rule.id, u);
  const marks = new Map(a.marks.map((m) => [m.stream, m]));
  for (const m of b.marks) marks.set(m.stream, m);
  // a window's newer handover (or its deletion) replaces the older one; two handovers of the same
  // window are merged, so the segments written cover the changes of both
  const windows = new Map((a.windows ?? []).map((w) => [w.window, w]));
  for (const w of b.windows ?? []) {
    const old = windows.get(w.window)?.source;
    const cur = w.source;
    windows.set(
      w.window,
      old && cur && old.window === cur.window ? { window: w.window, source: { window: cur.window, since: mergeSince(old.since, cur.since) } } : w,
    );
  }
  return {
    upserts: [...upserts.values()],
    // deletes apply before upserts in a commit: a rule deleted then re-created ends up upserted
    deletes: [...new Set([...a.deletes, ...b.deletes])],
    marks: [...marks.values()],
    firings: [...a.firings, ...b.firings],
    windows: [...windows.values()],
  };
}
