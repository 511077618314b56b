import type { InstrumentRegistry } from '../core/instruments.js';
import { midOf, percentOf, priceDiff } from '../core/numbers.js';
import type { QuoteTick, Tick, TradeTick } from '../core/schema.js';
import type { AlertLimits, AlertRule, PriceSource } from './rule.js';
import {
  AlertErrorCode,
  AlertRuleError,
  DEFAULT_ALERT_LIMITS,
  DEFAULT_MAX_WINDOWS_PER_SYMBOL,
  DEFAULT_MAX_WINDOWS_PER_SYMBOL_ALL_USERS,
  parseAlertRule,
} from './rule.js';
import { RollingMinMax } from './rolling-window.js';
import type { StoredWindow, WindowSince } from './rolling-window.js';
import type { Side } from './threshold-stream.js';
import { ThresholdStream } from './threshold-stream.js';

/**
 * Where a rule is in its life:
 *   fresh    created, waits for its first observation of the watched value (which only arms it)
 *   armed    fires on the next crossing
 *   waiting  fired (or had a crossing swallowed by its cooldown); re-arms once the value went back
 *            by `rearmBy` (mode `rearm` only)
 *   done     a `once` rule that fired; kept (not evaluated) until deleted or expired
 */
export type RulePhase = 'fresh' | 'armed' | 'waiting' | 'done';

/**
 * Why a rule is held (kept and listed, not evaluated, so it cannot fire): its user's current
 * entitlements, as the gateways last reported them, give its symbol
 *   not-entitled   neither in real time nor delayed
 *   delayed-only   delayed only, and the rule runs on real-time data
 */
export type HoldReason = 'not-entitled' | 'delayed-only';

/** The evaluation state of one rule: plain JSON, stored with the rule (AlertStore). */
export interface RuleState {
  phase: RulePhase;
  /** firings delivered so far; the n-th firing has id `<ruleId>:<n>` */
  fired: number;
  /** crossings swallowed by the cooldown */
  suppressed: number;
  /** time of the last firing, ms (tick receive time) */
  lastFiredAt?: number;
  /** the watched value at the last state change (arm, fire, re-arm) */
  seen?: number;
  /** set while the rule is held: not evaluated (its user's entitlements no longer cover it) */
  held?: HoldReason;
}

export interface StoredAlert {
  rule: AlertRule;
  state: RuleState;
}

/** The last value of one watched stream (`AAPL|trade`, `AAPL|mid`, `AAPL|spread`, `AAPL|change:trade:60000:up`). */
export interface StreamMark {
  stream: string;
  value: number;
}

/**
 * A percent-change window as committed: `<symbol>|change:<source>:<windowMs>`, the live window and
 * what changed in it since the last handover (null: the window has no rule left, delete it). A
 * store writes `source.window.delta(source.since)`, read at commit time: a store commits before
 * the engine sees another tick (a batch whose commit failed is merged with the next: mergeSince).
 */
export interface WindowMark {
  window: string;
  source: { window: RollingMinMax; since: WindowSince } | null;
}

export interface AlertFiring {
  /** `<ruleId>:<n>`: unique per firing, stable across a restart (consumers dedupe on it) */
  id: string;
  ruleId: string;
  user: string;
  symbol: string;
  kind: AlertRule['kind'];
  /** the watched value after the crossing: price, percent change, or spread */
  value: number;
  /** the watched value before it */
  previous: number;
  /** the rule's level, percent or threshold */
  level: number;
  /** tick receive time, ms since the epoch */
  at: number;
  /** the tick that fired it */
  tick: { k: 'trade' | 'quote'; seq: number; ep: number };
}

/** What changed since the last `takeChanges()`: one atomic commit for an AlertStore. */
export interface AlertChanges {
  upserts: StoredAlert[];
  deletes: string[];
  marks: StreamMark[];
  firings: AlertFiring[];
  /** the percent-change windows that moved (or lost their last rule) */
  windows?: WindowMark[];
}

export interface AlertEngineStats {
  rules: number;
  /** fresh rules armed by their first observation */
  armed: number;
  fired: number;
  suppressed: number;
  /** of `suppressed`: crossings swallowed because the user's firing budget was spent (alerts.firingsPerUserPerMin) */
  overBudget: number;
  rearmed: number;
  expired: number;
  ticks: number;
  /** rules held for their user's entitlements (not evaluated) */
  held: number;
}

interface Slot {
  readonly n: number;
  readonly rule: AlertRule;
  state: RuleState;
  stream: ThresholdStream | undefined;
  readonly side: Side;
  /** the level compared with the stream value (price level, percent, or spread threshold) */
  readonly level: number;
  /** where a fired rule waits to re-arm */
  readonly waitKey: number;
  live: boolean;
  /**
   * phase `waiting`, but in its stream's `parked` list, not in a wait set: its last crossing was
   * swallowed by its user's spent firing budget (see #park)
   */
  parked: boolean;
}

interface ChangeGroup {
  readonly key: string;
  readonly source: PriceSource;
  readonly windowMs: number;
  window: RollingMinMax;
  readonly rise: ThresholdStream;
  readonly fall: ThresholdStream;
}

interface SymbolIndex {
  readonly symbol: string;
  trade: ThresholdStream | undefined;
  mid: ThresholdStream | undefined;
  spread: ThresholdStream | undefined;
  changes: ChangeGroup[];
  needsCleanup: boolean;
  /**
   * Event time (ns) of the last trade taken as the last price. A later-arriving trade with an
   * earlier event time is not the last price (the ticker's `p`: the latest trade in event time,
   * ties in arrival order), so it moves no last-price or change rule.
   */
  lastTradeTs: bigint | undefined;
}

export interface AlertEngineOptions {
  registry: InstrumentRegistry;
  limits?: AlertLimits;
  /** called synchronously for each firing, in the order of evaluation */
  onFire?: (firing: AlertFiring) => void;
}

/**
 * The evaluation index: every live rule sits in exactly one sorted set (or fresh list) of the
 * stream it watches, so a tick costs O(log n + rules crossed) per stream it updates (a trade
 * updates the trade-price stream and the rise/fall streams of each percent-change window of its
 * symbol; a quote the mid and spread streams and the mid windows). Expiry is a min-heap checked
 * before each tick. Synchronous and single-threaded; persistence is the caller's (takeChanges).
 */
export class AlertEngine {
  readonly #registry: InstrumentRegistry;
  readonly #limits: AlertLimits;
  readonly #onFire: ((f: AlertFiring) => void) | undefined;
  readonly #slots: (Slot | undefined)[] = [];
  readonly #free: number[] = [];
  readonly #byId = new Map<string, Slot>();
  readonly #byUser = new Map<string, Set<Slot>>();
  /** firings each user may still have now (alerts.firingsPerUserPerMin), refilled with tick time */
  readonly #budgets = new Map<string, { tokens: number; at: number }>();
  /** the latest tick time evaluated (ms): the clock the firing budgets refill with */
  #tickMs = -Infinity;
  readonly #symbols = new Map<string, SymbolIndex>();
  #symbolVersion = 0;
  // expiry min-heap of (time, slot object)
  readonly #heapT: number[] = [];
  readonly #heapS: Slot[] = [];
  // changes since the last takeChanges()
  #dirty = new Set<Slot>();
  #deletes = new Set<string>();
  #dirtyStreams = new Set<ThresholdStream>();
  #dirtyWindows = new Set<ChangeGroup>();
  #droppedWindows = new Set<string>();
  #firings: AlertFiring[] = [];
  // scratch arrays reused per update
  readonly #crossed: number[] = [];
  readonly #rearmed: number[] = [];
  readonly #armed: number[] = [];
  readonly stats: AlertEngineStats = { rules: 0, armed: 0, fired: 0, suppressed: 0, overBudget: 0, rearmed: 0, expired: 0, ticks: 0, held: 0 };

  constructor(opts: AlertEngineOptions) {
    this.#registry = opts.registry;
    this.#limits = opts.limits ?? DEFAULT_ALERT_LIMITS;
    this.#onFire = opts.onFire;
  }

  readonly #levelOf = (n: number): number => this.#slots[n]!.level;

  /** Validate and add a rule (fresh: its first observation arms it). Throws AlertRuleError. */
  add(input: unknown, nowMs: number = Date.now()): AlertRule {
    const rule = parseAlertRule(input, { registry: this.#registry, limits: this.#limits, nowMs });
    if (this.#byId.has(rule.id)) {
      throw new AlertRuleError(AlertErrorCode.DUPLICATE, `alert rule "${rule.id}" exists: delete it first or use another id`, [
        { path: 'id', message: 'already exists' },
      ]);
    }
    const held = this.#byUser.get(rule.user)?.size ?? 0;
    if (held >= this.#limits.maxRulesPerUser) {
      throw new AlertRuleError(
        AlertErrorCode.LIMIT,
        `user "${rule.user}" holds ${held} alert rules, the limit (alerts.maxRulesPerUser) is ${this.#limits.maxRulesPerUser}: delete some first`,
      );
    }
    if (rule.kind === 'change') this.#checkWindows(rule);
    const slot = this.#attach(rule, { phase: 'fresh', fired: 0, suppressed: 0 });
    this.#dirty.add(slot);
    return rule;
  }

  /**
   * A percent-change rule on a window (source, length) its user's rules on the symbol do not use
   * yet: refused beyond `alerts.maxWindowsPerSymbol` of them. Each window is a rolling min/max that
   * every tick of the symbol is pushed into (and committed), holding every tick of its length in a
   * steady rise or fall: one user with a thousand rules of a thousand lengths made each tick cost
   * a thousand pushes. Rules on a window the user has cost one ordered-set update per tick, as
   * other rules do. Counted over all the user's rules (held and fired ones too, as maxRulesPerUser).
   */
  #checkWindows(rule: Extract<AlertRule, { kind: 'change' }>): void {
    const max = this.#limits.maxWindowsPerSymbol ?? DEFAULT_MAX_WINDOWS_PER_SYMBOL;
    const windows = new Set<string>();
    for (const s of this.#byUser.get(rule.user) ?? []) {
      const r = s.rule;
      if (r.kind === 'change' && r.symbol === rule.symbol) windows.add(`${r.source}:${r.windowMs}`);
    }
    if (windows.has(`${rule.source}:${rule.windowMs}`)) return;
    if (windows.size < max) return this.#checkSymbolWindows(rule);
    throw new AlertRuleError(
      AlertErrorCode.LIMIT,
      `user "${rule.user}" has percent-change rules on ${windows.size} windows of ${rule.symbol}, the limit (alerts.maxWindowsPerSymbol) is ${max}: ` +
        `use a windowMs (and source) one of them has, or delete those rules first`,
      [{ path: 'windowMs', message: `a new window on ${rule.symbol}: at most ${max} per symbol (alerts.maxWindowsPerSymbol)` }],
    );
  }

  /**
   * A window (source, length) no rule on the symbol watches yet, whoever's: refused beyond
   * `alerts.maxWindowsPerSymbolAllUsers` windows on the symbol. The per-user bound alone let many
   * users (or one service token posting for many user ids) add windows without end: 125 users of
   * 8 windows each made a tick of the symbol cost 384 µs instead of 8.5 µs (measured on the engine
   * alone; test/hostile/alert-windows.test.ts). Rules on a window the symbol has are accepted.
   */
  #checkSymbolWindows(rule: Extract<AlertRule, { kind: 'change' }>): void {
    const max = this.#limits.maxWindowsPerSymbolAllUsers ?? DEFAULT_MAX_WINDOWS_PER_SYMBOL_ALL_USERS;
    const idx = this.#symbols.get(rule.symbol);
    if (!idx) return;
    let live = 0;
    for (const g of idx.changes) {
      if (g.rise.rules + g.fall.rules === 0) continue;
      if (g.source === rule.source && g.windowMs === rule.windowMs) return;
      live++;
    }
    if (live < max) return;
    throw new AlertRuleError(
      AlertErrorCode.LIMIT,
      `${rule.symbol} has percent-change rules on ${live} windows (all users), the limit (alerts.maxWindowsPerSymbolAllUsers) is ${max}: ` +
        `use a windowMs (and source) your rules on ${rule.symbol} already use`,
      [{ path: 'windowMs', message: `a new window on ${rule.symbol}: at most ${max} per symbol for all users (alerts.maxWindowsPerSymbolAllUsers)` }],
    );
  }

  /**
   * Load stored rules and stream marks (after a restart), before any tick. Rules keep their phase,
   * so a rule that fired is not fired again and one that was armed fires on the first crossing
   * from its stream's stored last value. Limits are not re-applied: accepted rules are kept.
   */
  restore(records: Iterable<StoredAlert>, marks: Iterable<StreamMark> = [], nowMs: number = Date.now(), windows: Iterable<StoredWindow> = []): void {
    for (const r of records) {
      if (this.#byId.has(r.rule.id)) continue;
      if (r.rule.expiresAt !== undefined && r.rule.expiresAt <= nowMs) {
        this.#deletes.add(r.rule.id);
        this.stats.expired++;
        continue;
      }
      if (!this.#registry.has(r.rule.symbol)) {
        // the instrument left the registry: keep the rule stored, it cannot be evaluated
        continue;
      }
      this.#attach(r.rule, { ...r.state });
    }
    const byKey = new Map<string, ThresholdStream>();
    for (const idx of this.#symbols.values()) for (const s of this.#streamsOf(idx)) byKey.set(s.key, s);
    for (const m of marks) {
      const s = byKey.get(m.stream);
      if (s && Number.isFinite(m.value)) s.last = m.value;
    }
    // percent-change windows hold the prices they had at the last commit, every one (segments): a
    // restart neither starts them empty (a rise or a fall fired late, or never) nor coarsens them
    // (one fired early: docs/alerts.md, State and restarts)
    const groups = new Map<string, ChangeGroup>();
    for (const idx of this.#symbols.values()) for (const g of idx.changes) groups.set(g.key, g);
    for (const w of windows) {
      const g = groups.get(w.window);
      if (g) g.window = RollingMinMax.fromStored(g.windowMs, w);
    }
  }

  /**
   * Put back a rule taken out by `remove` with the state it had (a replacement that could not be
   * applied): its firing count goes on, so its next firing never repeats an earlier firing's id.
   * Marked changed, so the next commit stores it again. Limits are not re-applied.
   */
  reinstate(a: StoredAlert): void {
    if (this.#byId.has(a.rule.id)) return;
    this.#dirty.add(this.#attach(a.rule, { ...a.state }));
  }

  /** Delete a rule; false when there is none with this id (or it belongs to another user). */
  remove(id: string, user?: string): boolean {
    const slot = this.#byId.get(id);
    if (!slot || (user !== undefined && slot.rule.user !== user)) return false;
    this.#detach(slot);
    this.#deletes.add(id);
    return true;
  }

  /**
   * Stop evaluating a rule, keeping it (listed, stored with `state.held`): its user's entitlements
   * no longer cover its symbol at its level. False when it is held for this reason already (or
   * there is no such rule). Its state stays as it was until `release`.
   */
  hold(id: string, reason: HoldReason): boolean {
    const slot = this.#byId.get(id);
    if (!slot || slot.state.held === reason) return false;
    if (slot.state.held === undefined) {
      this.#unlink(slot);
      const idx = this.#symbols.get(slot.rule.symbol);
      if (idx?.needsCleanup) this.#cleanup(idx);
      this.stats.held++;
    }
    slot.state.held = reason;
    this.#dirty.add(slot);
    return true;
  }

  /**
   * Evaluate a held rule again. It starts `fresh` (a `once` rule that fired stays `done`): its
   * next value only arms it, so a crossing that happened while it was held never fires it. Its
   * firing count goes on. False when it is not held.
   */
  release(id: string): boolean {
    const slot = this.#byId.get(id);
    if (!slot || slot.state.held === undefined) return false;
    delete slot.state.held;
    this.stats.held--;
    this.#dirty.add(slot);
    if (slot.state.phase === 'done') return true;
    slot.state.phase = 'fresh';
    slot.stream = this.#streamFor(this.#indexFor(slot.rule.symbol), slot.rule);
    this.#link(slot);
    return true;
  }

  get(id: string): StoredAlert | undefined {
    const s = this.#byId.get(id);
    return s ? { rule: s.rule, state: { ...s.state } } : undefined;
  }

  list(user: string): StoredAlert[] {
    return [...(this.#byUser.get(user) ?? [])].map((s) => ({ rule: s.rule, state: { ...s.state } }));
  }

  /** Every rule with its state (a full snapshot for a store). */
  all(): StoredAlert[] {
    return [...this.#byId.values()].map((s) => ({ rule: s.rule, state: { ...s.state } }));
  }

  /** Last value of every watched stream. */
  marks(): StreamMark[] {
    const out: StreamMark[] = [];
    for (const idx of this.#symbols.values()) for (const s of this.#streamsOf(idx)) if (s.last !== undefined) out.push({ stream: s.key, value: s.last });
    return out;
  }

  /** Evaluate one tick. `nowMs` defaults to the tick's receive time. Returns rules fired. */
  onTick(tick: Tick, nowMs?: number): number {
    const idx = this.#symbols.get(tick.sym);
    if (idx === undefined) return 0;
    const now = nowMs ?? Number(tick.rt / 1_000_000n);
    if (now > this.#tickMs) this.#tickMs = now;
    if (this.#heapT.length > 0 && this.#heapT[0]! <= now) this.sweep(now);
    const before = this.stats.fired;
    this.stats.ticks++;
    if (tick.k === 'trade') this.#onTrade(idx, tick, now);
    else if (tick.k === 'quote') this.#onQuote(idx, tick, now);
    else return 0;
    if (idx.needsCleanup) this.#cleanup(idx);
    return this.stats.fired - before;
  }

  #onTrade(idx: SymbolIndex, tick: TradeTick, now: number): void {
    // a trade whose sale conditions set no price (odd lot, average price) is not a last price
    if (tick.volumeOnly) return;
    const p = tick.p;
    if (!(p > 0) || !Number.isFinite(p)) return;
    // a late trade, printed before one already seen: not the last price (docs/alerts.md, Semantics)
    if (idx.lastTradeTs !== undefined && tick.ts < idx.lastTradeTs) return;
    idx.lastTradeTs = tick.ts;
    if (idx.trade) this.#update(idx.trade, p, now, tick);
    for (const g of idx.changes) if (g.source === 'trade') this.#updateChange(g, p, now, tick);
  }

  #onQuote(idx: SymbolIndex, tick: QuoteTick, now: number): void {
    const { bp, ap } = tick;
    // a one-sided quote (an empty book side is published without it) has no mid and no spread
    if (bp === undefined || ap === undefined) return;
    if (!(bp > 0) || !(ap > 0) || !Number.isFinite(bp) || !Number.isFinite(ap)) return;
    // as quoted, not as doubles: the mid of 3.3 and 3.4 is 3.35, the spread of 1.1 and 1.3 is 0.2
    const mid = midOf(bp, ap);
    if (idx.mid) this.#update(idx.mid, mid, now, tick);
    if (idx.spread) this.#update(idx.spread, priceDiff(ap, bp), now, tick);
    for (const g of idx.changes) if (g.source === 'mid') this.#updateChange(g, mid, now, tick);
  }

  #updateChange(g: ChangeGroup, p: number, now: number, tick: TradeTick | QuoteTick): void {
    g.window.push(now, p);
    this.#dirtyWindows.add(g);
    const min = g.window.min!;
    const max = g.window.max!;
    if (g.rise.rules > 0) this.#update(g.rise, percentOf(priceDiff(p, min), min), now, tick);
    if (g.fall.rules > 0) this.#update(g.fall, percentOf(priceDiff(max, p), max), now, tick);
  }

  #update(stream: ThresholdStream, v: number, now: number, tick: TradeTick | QuoteTick): void {
    const crossed = this.#crossed;
    const rearmed = this.#rearmed;
    // (setting length is not free: only when needed)
    if (crossed.length !== 0) crossed.length = 0;
    if (rearmed.length !== 0) rearmed.length = 0;
    const prev = stream.last;
    if (stream.parked.size > 0) this.#unpark(stream, now);
    stream.update(v, crossed, rearmed, this.#levelOf);
    this.#dirtyStreams.add(stream);
    for (let i = 0; i < rearmed.length; i++) {
      const s = this.#slots[rearmed[i]!]!;
      s.state.phase = 'armed';
      s.state.seen = v;
      this.stats.rearmed++;
      this.#dirty.add(s);
    }
    for (let i = 0; i < crossed.length; i++) this.#cross(this.#slots[crossed[i]!]!, v, prev!, now, tick);
    if (stream.fresh.length > 0) {
      const armed = this.#armed;
      if (armed.length !== 0) armed.length = 0;
      stream.armFresh(armed);
      for (let i = 0; i < armed.length; i++) {
        const s = this.#slots[armed[i]!]!;
        this.stats.armed++;
        s.state.phase = 'armed';
        s.state.seen = v;
        this.#dirty.add(s);
      }
    }
  }

  /** A rule's value crossed its level; it has already been taken out of its armed set. */
  #cross(s: Slot, v: number, prev: number, now: number, tick: TradeTick | QuoteTick): void {
    const rule = s.rule;
    const st = s.state;
    this.#dirty.add(s);
    st.seen = v;
    const cooling = st.lastFiredAt !== undefined && now - st.lastFiredAt < rule.cooldownMs;
    let overBudget = false;
    if (cooling || (overBudget = !this.#takeFiring(rule.user, now))) {
      // swallowed (cooldown, or the user's firing budget): counts as a firing for re-arming (the
      // value must go back first), not delivered
      st.suppressed++;
      this.stats.suppressed++;
      if (overBudget) this.stats.overBudget++;
    } else {
      st.fired++;
      st.lastFiredAt = now;
      this.stats.fired++;
      const firing: AlertFiring = {
        id: `${rule.id}:${st.fired}`,
        ruleId: rule.id,
        user: rule.user,
        symbol: rule.symbol,
        kind: rule.kind,
        value: v,
        previous: prev,
        level: s.level,
        at: now,
        tick: { k: tick.k, seq: tick.seq, ep: tick.ep },
      };
      this.#firings.push(firing);
      this.#onFire?.(firing);
      if (rule.mode === 'once') {
        st.phase = 'done';
        this.#leaveStream(s);
        return;
      }
    }
    st.phase = 'waiting';
    const stream = s.stream!;
    if (overBudget) return this.#park(s, stream);
    if (s.side === 'up') stream.waitUp.insert(s.waitKey, s.n);
    else stream.waitDown.insert(s.waitKey, s.n);
  }

  /**
   * A rule whose crossing its user's spent firing budget swallowed leaves the stream's sets until
   * the budget holds a firing again (#unpark, on the stream's next value). Re-armed and crossed on
   * every bounce of the value, such rules cost work on every tick that no firing could come of:
   * one user's 1,000 `rearm` rules at one level cost 216 µs a tick of a value going back and forth
   * over it, 100 such users 31.6 ms (test/hostile/alert-firings.test.ts). Parked, a rule costs
   * nothing a tick; the crossings it misses meanwhile are not counted in `suppressed`.
   */
  #park(s: Slot, stream: ThresholdStream): void {
    s.parked = true;
    const mine = stream.parked.get(s.rule.user);
    if (mine) mine.push(s.n);
    else stream.parked.set(s.rule.user, [s.n]);
  }

  /**
   * Put back the parked rules of each user whose firing budget holds a firing again, where the
   * stream's value has them: armed if it is back past their re-arm point (as if they had re-armed
   * while parked), else waiting for it.
   */
  #unpark(stream: ThresholdStream, now: number): void {
    const v = stream.last;
    for (const [user, slots] of stream.parked) {
      if (!this.#hasFiring(user, now)) continue;
      stream.parked.delete(user);
      for (const n of slots) {
        const s = this.#slots[n];
        if (!s || !s.live || !s.parked || s.stream !== stream) continue;
        s.parked = false;
        const back = v !== undefined && (s.side === 'up' ? v <= s.waitKey : v >= s.waitKey);
        if (back) {
          (s.side === 'up' ? stream.armedUp : stream.armedDown).insert(s.level, s.n);
          s.state.phase = 'armed';
          this.stats.rearmed++;
          this.#dirty.add(s);
        } else (s.side === 'up' ? stream.waitUp : stream.waitDown).insert(s.waitKey, s.n);
      }
    }
  }

  /** `user` may fire now (alerts.firingsPerUserPerMin): #takeFiring would not refuse, nothing taken. */
  #hasFiring(user: string, now: number): boolean {
    const perMin = this.#limits.firingsPerUserPerMin;
    if (!perMin) return true;
    const b = this.#budgets.get(user);
    return !b || Math.min(perMin, b.tokens + (now > b.at ? ((now - b.at) / 60_000) * perMin : 0)) >= 1;
  }

  /**
   * One firing of `user`'s budget (alerts.firingsPerUserPerMin), false when it is spent. Every
   * firing is a notification appended to the durable log: `rearm` rules without a cooldown at one
   * level of a symbol that goes back and forth over it fired each rule on each crossing (200 rules,
   * 20 crossings: 4000 appends). The budget refills with the ticks' time (deterministic for a tick
   * sequence); it is not stored, so it starts full after a restart.
   */
  #takeFiring(user: string, now: number): boolean {
    const perMin = this.#limits.firingsPerUserPerMin;
    if (!perMin) return true;
    let b = this.#budgets.get(user);
    if (!b) this.#budgets.set(user, (b = { tokens: perMin, at: now }));
    else if (now > b.at) {
      b.tokens = Math.min(perMin, b.tokens + ((now - b.at) / 60_000) * perMin);
      b.at = now;
    }
    if (b.tokens < 1) return false;
    b.tokens--;
    return true;
  }

  /**
   * Forget the firing budgets full again by `nowMs` (as good as none). A spent one is kept, also
   * for a user who deleted every rule: deleting and creating rules again does not refill it.
   * `nowMs` is tick time, the clock the budgets refill with: by default the latest tick evaluated.
   * Not the wall clock: the delayed rules' ticks are auth.delayMs behind it, and their budgets
   * would all look full again at every sweep.
   */
  forgetFullBudgets(nowMs: number = this.#tickMs): void {
    const perMin = this.#limits.firingsPerUserPerMin;
    if (!perMin) return;
    for (const [user, b] of this.#budgets) if (b.tokens + ((nowMs - b.at) / 60_000) * perMin >= perMin) this.#budgets.delete(user);
  }

  /** Users whose firing budget is held (spent, not yet full again): tests. */
  get budgetsHeld(): number {
    return this.#budgets.size;
  }

  /** Remove every rule whose expiry is <= now (also done before each tick). Returns how many. */
  sweep(nowMs: number = Date.now()): number {
    let n = 0;
    const ht = this.#heapT;
    while (ht.length > 0 && ht[0]! <= nowMs) {
      const s = this.#heapS[0]!;
      this.#heapPop();
      if (!s.live) continue;
      this.#detach(s);
      this.#deletes.add(s.rule.id);
      this.stats.expired++;
      n++;
    }
    return n;
  }

  /** Hand over what changed since the last call (rules, deletions, stream values, firings). */
  takeChanges(): AlertChanges {
    const upserts: StoredAlert[] = [];
    for (const s of this.#dirty) if (s.live) upserts.push({ rule: s.rule, state: { ...s.state } });
    const marks: StreamMark[] = [];
    for (const st of this.#dirtyStreams) if (st.last !== undefined) marks.push({ stream: st.key, value: st.last });
    const windows: WindowMark[] = [];
    for (const g of this.#dirtyWindows) {
      this.#droppedWindows.delete(g.key);
      windows.push({ window: g.key, source: { window: g.window, since: g.window.take() } });
    }
    for (const key of this.#droppedWindows) windows.push({ window: key, source: null });
    const out: AlertChanges = { upserts, deletes: [...this.#deletes], marks, firings: this.#firings, windows };
    this.#dirty = new Set();
    this.#deletes = new Set();
    this.#dirtyStreams = new Set();
    this.#dirtyWindows = new Set();
    this.#droppedWindows = new Set();
    this.#firings = [];
    return out;
  }

  /** Whether anything is waiting for takeChanges(). */
  get hasChanges(): boolean {
    return (
      this.#dirty.size > 0 ||
      this.#deletes.size > 0 ||
      this.#firings.length > 0 ||
      this.#dirtyStreams.size > 0 ||
      this.#dirtyWindows.size > 0 ||
      this.#droppedWindows.size > 0
    );
  }

  get size(): number {
    return this.#byId.size;
  }

  /** Symbols with at least one evaluated rule (the subjects a service subscribes to). */
  symbols(): string[] {
    return [...this.#symbols.keys()];
  }

  watches(symbol: string): boolean {
    return this.#symbols.has(symbol);
  }

  get symbolCount(): number {
    return this.#symbols.size;
  }

  /** Changes whenever a symbol gains its first or loses its last evaluated rule. */
  get symbolVersion(): number {
    return this.#symbolVersion;
  }

  // ---- wiring of slots into the index ----

  #attach(rule: AlertRule, state: RuleState): Slot {
    const idx = this.#indexFor(rule.symbol);
    const stream = this.#streamFor(idx, rule);
    let side: Side;
    let level: number;
    if (rule.kind === 'price') {
      side = rule.direction === 'above' ? 'up' : 'down';
      level = rule.level;
    } else if (rule.kind === 'spread') {
      side = 'up';
      level = rule.threshold;
    } else {
      side = 'up';
      level = rule.percent;
    }
    const rearmBy = rule.rearmBy ?? 0;
    const n = this.#free.pop() ?? this.#slots.length;
    const slot: Slot = { n, rule, state, stream, side, level, waitKey: side === 'up' ? level - rearmBy : level + rearmBy, live: true, parked: false };
    this.#slots[n] = slot;
    this.#byId.set(rule.id, slot);
    let mine = this.#byUser.get(rule.user);
    if (!mine) this.#byUser.set(rule.user, (mine = new Set()));
    mine.add(slot);
    this.stats.rules++;
    if (state.held !== undefined) this.stats.held++;
    if (rule.expiresAt !== undefined) this.#heapPush(rule.expiresAt, slot);
    if (state.held !== undefined || state.phase === 'done') {
      // not evaluated: held (its user's entitlements no longer cover it), or a `once` rule that fired
      slot.stream = undefined;
      idx.needsCleanup = true;
      this.#cleanup(idx);
      return slot;
    }
    this.#link(slot);
    return slot;
  }

  /** The stream a rule watches (created when it is the first). */
  #streamFor(idx: SymbolIndex, rule: AlertRule): ThresholdStream {
    if (rule.kind === 'price')
      return rule.source === 'trade' ? (idx.trade ??= new ThresholdStream(`${rule.symbol}|trade`)) : (idx.mid ??= new ThresholdStream(`${rule.symbol}|mid`));
    if (rule.kind === 'spread') return (idx.spread ??= new ThresholdStream(`${rule.symbol}|spread`));
    let g = idx.changes.find((c) => c.source === rule.source && c.windowMs === rule.windowMs);
    if (!g) {
      const base = `${rule.symbol}|change:${rule.source}:${rule.windowMs}`;
      g = {
        key: base,
        source: rule.source,
        windowMs: rule.windowMs,
        window: new RollingMinMax(rule.windowMs),
        rise: new ThresholdStream(`${base}:up`),
        fall: new ThresholdStream(`${base}:down`),
      };
      idx.changes.push(g);
    }
    return rule.direction === 'up' ? g.rise : g.fall;
  }

  /** Put a slot with a stream into the set of its phase (fresh, armed or waiting). */
  #link(s: Slot): void {
    const stream = s.stream!;
    stream.rules++;
    switch (s.state.phase) {
      case 'fresh':
        stream.addFresh(s.n, s.side, s.level);
        break;
      case 'armed':
        (s.side === 'up' ? stream.armedUp : stream.armedDown).insert(s.level, s.n);
        break;
      case 'waiting':
        (s.side === 'up' ? stream.waitUp : stream.waitDown).insert(s.waitKey, s.n);
        break;
      case 'done':
        break;
    }
  }

  /** Take a slot out of its stream's set (it is no longer evaluated). */
  #unlink(s: Slot): void {
    const stream = s.stream;
    if (!stream) return;
    let found: boolean;
    switch (s.state.phase) {
      case 'fresh':
        found = stream.removeFresh(s.n);
        break;
      case 'armed':
        found = (s.side === 'up' ? stream.armedUp : stream.armedDown).delete(s.level, s.n);
        break;
      case 'waiting':
        if (s.parked) {
          const mine = stream.parked.get(s.rule.user) ?? [];
          const i = mine.indexOf(s.n);
          found = i >= 0;
          if (found) mine.splice(i, 1);
          if (mine.length === 0) stream.parked.delete(s.rule.user);
          s.parked = false;
        } else found = (s.side === 'up' ? stream.waitUp : stream.waitDown).delete(s.waitKey, s.n);
        break;
      default:
        found = false;
    }
    if (!found) throw new Error(`alert index corrupt: rule ${s.rule.id} (${s.state.phase}) not in its set`);
    this.#leaveStream(s);
  }

  #detach(s: Slot): void {
    this.#unlink(s);
    const idx = this.#symbols.get(s.rule.symbol);
    if (idx?.needsCleanup) this.#cleanup(idx);
    s.live = false;
    this.#byId.delete(s.rule.id);
    const mine = this.#byUser.get(s.rule.user)!;
    mine.delete(s);
    if (mine.size === 0) this.#byUser.delete(s.rule.user);
    this.#slots[s.n] = undefined;
    this.#free.push(s.n);
    this.stats.rules--;
    if (s.state.held !== undefined) this.stats.held--;
  }

  #leaveStream(s: Slot): void {
    const stream = s.stream!;
    s.stream = undefined;
    if (--stream.rules === 0) this.#symbols.get(s.rule.symbol)!.needsCleanup = true;
  }

  #indexFor(symbol: string): SymbolIndex {
    let idx = this.#symbols.get(symbol);
    if (!idx) {
      this.#symbols.set(
        symbol,
        (idx = { symbol, trade: undefined, mid: undefined, spread: undefined, changes: [], needsCleanup: false, lastTradeTs: undefined }),
      );
      this.#symbolVersion++;
    }
    return idx;
  }

  *#streamsOf(idx: SymbolIndex): IterableIterator<ThresholdStream> {
    if (idx.trade) yield idx.trade;
    if (idx.mid) yield idx.mid;
    if (idx.spread) yield idx.spread;
    for (const g of idx.changes) {
      yield g.rise;
      yield g.fall;
    }
  }

  /** Drop streams without rules (their last value goes with them: a new rule starts fresh anyway). */
  #cleanup(idx: SymbolIndex): void {
    idx.needsCleanup = false;
    if (idx.trade?.rules === 0) idx.trade = undefined;
    if (idx.mid?.rules === 0) idx.mid = undefined;
    if (idx.spread?.rules === 0) idx.spread = undefined;
    idx.changes = idx.changes.filter((g) => {
      if (g.rise.rules + g.fall.rules > 0) return true;
      this.#dirtyWindows.delete(g);
      this.#droppedWindows.add(g.key);
      return false;
    });
    const empty = !idx.trade && !idx.mid && !idx.spread && idx.changes.length === 0;
    if (empty && this.#symbols.get(idx.symbol) === idx) {
      this.#symbols.delete(idx.symbol);
      this.#symbolVersion++;
    }
  }

  // ---- expiry heap ----

  #heapPush(t: number, s: Slot): void {
    const ht = this.#heapT;
    const hs = this.#heapS;
    let i = ht.length;
    ht.push(t);
    hs.push(s);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (ht[p]! <= t) break;
      ht[i] = ht[p]!;
      hs[i] = hs[p]!;
      i = p;
    }
    ht[i] = t;
    hs[i] = s;
  }

  #heapPop(): void {
    const ht = this.#heapT;
    const hs = this.#heapS;
    const t = ht.pop()!;
    const s = hs.pop()!;
    const n = ht.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && ht[r]! < ht[l]! ? r : l;
      if (ht[c]! >= t) break;
      ht[i] = ht[c]!;
      hs[i] = hs[c]!;
      i = c;
    }
    ht[i] = t;
    hs[i] = s;
  }
}
