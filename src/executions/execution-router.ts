import type { Unsubscribe } from '../bus/bus.js';
import { decodeBusMessage, encodeBusMessage } from '../codec/tick-codec.js';
import type { Update } from '../fanout/coalescer.js';
import type { Payload } from '../fanout/payloads.js';
import type { EventLog, LogPayload, StoredEvent } from './event-log.js';
import type { ExecutionPayload } from './schemas.js';
import { ReplayBudget, realBudgetClock } from './replay-budget.js';
import type { BudgetClock, BudgetLedger, ReplayBudgetOptions } from './replay-budget.js';

export interface ExecutionRouterOptions<P extends LogPayload = ExecutionPayload> {
  log: EventLog<P>;
  /** events replayed on subscribe without `since` */
  snapshotEvents: number;
  /** re-check the log head of watched users this often, ms (safety net for missed live events; 0 = off) */
  reconcileMs?: number;
  /** events read from the log and sent per page of a replay; the replay yields to the event loop between pages */
  pageSize?: number;
  /** replayed events per second per user and per gateway (0 = unlimited); default unlimited */
  budget?: ReplayBudgetOptions;
  /** clock of the budget (tests) */
  budgetClock?: BudgetClock;
  /** where the budget's buckets live (gateway workers: the process's SharedBudgetLedger); default this router's own */
  budgetLedger?: BudgetLedger;
}

/** What a replay needs of the subscriber it serves (all optional: a bare callback works too). */
export interface ReplayControl {
  /** aborted when the replay is superseded (a new subscribe of the same channel) or the subscriber left */
  readonly signal?: AbortSignal;
  /**
   * undefined when the subscriber can take more frames now; else a promise that resolves when it
   * can (it drained below its low-water mark) or closed
   */
  writable?(): Promise<void> | undefined;
  /** put everything handed to the hub so far on the channel's live topics (the seam, see ExecutionRouter) */
  flush?(): void;
  /** join the subscriber to the live topic (the seam); without it the caller joins when the replay resolves */
  join?(): void;
}

export interface ReplayStats {
  handedOff: number;
  dropped: number;
  filled: number;
  /** replays started */
  replays: number;
  /** events sent by replays */
  replayed: number;
  /** replays stopped before the end: superseded by a new subscribe, or the subscriber left */
  aborted: number;
  /** replays running now */
  active: number;
  /** times a replay paused because its subscriber was over its high-water mark */
  paused: number;
  /** replays whose `since` was past the log's newest event (the log started again): sent from the start */
  restarts: number;
}

/**
 * At most `perTurn` replayed events per event-loop turn for the whole gateway: a page takes its
 * share of the current turn, or queues (first come, first served) for a later one. So however many
 * replays run, one turn does at most one page of replay work, and I/O (other clients' frames,
 * pings, /health) is served between pages.
 */
class TurnGate {
  #used = 0;
  #scheduled = false;
  readonly #waiters: { n: number; go: () => void }[] = [];
  constructor(readonly perTurn: number) {}

  take(n: number): Promise<void> | undefined {
    if (this.#waiters.length === 0 && (this.#used === 0 || this.#used + n <= this.perTurn)) {
      this.#used += n;
      this.#schedule();
      return undefined;
    }
    return new Promise((go) => {
      this.#waiters.push({ n, go });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#used = 0;
      while (this.#waiters.length > 0) {
        const w = this.#waiters[0]!;
        if (this.#used > 0 && this.#used + w.n > this.perTurn) break;
        this.#waiters.shift();
        this.#used += w.n;
        w.go();
      }
      if (this.#used > 0 || this.#waiters.length > 0) this.#schedule();
    });
  }
}

type Handler = (payload: Uint8Array) => void;

/** Hub channel key of a user's executions channel. */
export const executionsKey = (user: string): string => `executions@${user}`;

interface UserFeed<P extends LogPayload> {
  readonly user: string;
  readonly handlers: Set<Handler>;
  /** last sequence handed to the hub */
  last: number;
  ready: Promise<void>;
  isReady: boolean;
  /** received, not yet handed on */
  queue: StoredEvent<P>[];
  /** replays in their seam: hand-offs wait */
  holds: number;
  filling: boolean;
  retry: NodeJS.Timeout | undefined;
}

/** Bus payload of one live execution on the gateway-local `exec.live.<user>` subject. */
export function encodeLiveExecution(ev: StoredEvent<LogPayload>): Uint8Array {
  return encodeBusMessage({ seq: ev.seq, d: ev.d });
}

export function decodeLiveExecution(payload: Uint8Array): Update<Payload> {
  const ev = decodeBusMessage<StoredEvent<LogPayload>>(payload);
  return { d: ev.d as unknown as Payload, seq: ev.seq };
}

/**
 * The gateway side of the executions channel. For each user with subscribers on this gateway it
 * keeps a contiguous live feed for the hub (sequence N+1 only after N; a hole is filled from the
 * log; anything at or below what was handed on is dropped), and it serves `since` replays with
 * an exact seam:
 *
 * 1. the hub has subscribed upstream (the feed exists) before it asks for the replay;
 * 2. the replay holds the feed (new events queue here, none reaches the hub) and asks the hub to
 *    flush the channel (`ctl.flush`): every event handed on so far is now on the live topics,
 *    which the subscriber has not joined;
 * 3. it delivers from the log every event in (since, last handed on];
 * 4. it joins the subscriber to the topic (`ctl.join`) and releases the feed in the same
 *    synchronous step, so every later event reaches the subscriber through the topic.
 * Nothing is sent twice and nothing is skipped, and no step waits on a timer.
 */
export class ExecutionRouter<P extends LogPayload = ExecutionPayload> {
  readonly #opts: Required<Omit<ExecutionRouterOptions<P>, 'budgetClock' | 'budgetLedger'>>;
  readonly #feeds = new Map<string, UserFeed<P>>();
  readonly #unfollow: Unsubscribe;
  readonly #reconciler: NodeJS.Timeout | undefined;
  readonly stats: ReplayStats = { handedOff: 0, dropped: 0, filled: 0, replays: 0, replayed: 0, aborted: 0, active: 0, paused: 0, restarts: 0 };
  readonly budget: ReplayBudget;
  readonly #turns: TurnGate;

  constructor(opts: ExecutionRouterOptions<P>) {
    this.#opts = {
      reconcileMs: 5000,
      pageSize: 200,
      budget: { perUserPerSec: 0, perGatewayPerSec: 0 },
      ...opts,
    };
    this.#turns = new TurnGate(this.#opts.pageSize);
    this.budget = new ReplayBudget(this.#opts.budget, opts.budgetClock ?? realBudgetClock, opts.budgetLedger);
    this.#unfollow = opts.log.follow((user, ev) => this.#onEvent(user, ev));
    if (this.#opts.reconcileMs > 0) {
      this.#reconciler = setInterval(() => this.#reconcile(), this.#opts.reconcileMs);
      this.#reconciler.unref();
    }
  }

  /** Users with a live feed on this gateway. */
  get watched(): number {
    return this.#feeds.size;
  }

  /** Live feed of one user's executions (the hub's upstream subscription). */
  subscribe(user: string, handler: Handler): Unsubscribe {
    let f = this.#feeds.get(user);
    if (!f) {
      const feed: UserFeed<P> = {
        user,
        handlers: new Set(),
        last: 0,
        ready: Promise.resolve(),
        isReady: false,
        queue: [],
        holds: 0,
        filling: false,
        retry: undefined,
      };
      feed.ready = this.#init(feed);
      this.#feeds.set(user, feed);
      f = feed;
    }
    const feed = f;
    const h: Handler = (p) => handler(p);
    feed.handlers.add(h);
    return () => {
      if (!feed.handlers.delete(h) || feed.handlers.size > 0) return;
      if (this.#feeds.get(user) === feed) this.#feeds.delete(user);
      if (feed.retry) clearTimeout(feed.retry);
    };
  }

  async #init(f: UserFeed<P>): Promise<void> {
    for (;;) {
      try {
        f.last = await this.#opts.log.head(f.user);
        f.isReady = true;
        this.#pump(f);
        return;
      } catch {
        if (this.#feeds.get(f.user) !== f) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  #onEvent(user: string, ev: StoredEvent<P>): void {
    const f = this.#feeds.get(user);
    if (!f) return;
    f.queue.push(ev);
    this.#pump(f);
  }

  #pump(f: UserFeed<P>): void {
    if (!f.isReady || f.holds > 0 || f.filling) return;
    if (f.queue.length > 1) f.queue.sort((a, b) => a.seq - b.seq);
    while (f.queue.length > 0) {
      const ev = f.queue[0]!;
      if (ev.seq <= f.last) {
        f.queue.shift();
        this.stats.dropped++;
        continue;
      }
      if (ev.seq > f.last + 1) {
        this.#fill(f, ev.seq - 1);
        return;
      }
      f.queue.shift();
      this.#handOff(f, ev);
    }
  }

  /** Fetch (last, upTo] from the log; what retention already removed is skipped. */
  #fill(f: UserFeed<P>, upTo: number): void {
    f.filling = true;
    const from = f.last;
    this.#opts.log.read(f.user, from, upTo - from).then(
      (evs) => {
        f.filling = false;
        this.stats.filled += evs.length;
        f.queue.push(...evs);
        f.queue.sort((a, b) => a.seq - b.seq);
        const first = f.queue.find((e) => e.seq > f.last);
        // a hole the log cannot fill (retention): accept it, the client sees the gap in seq
        if (first && first.seq > f.last + 1 && !evs.some((e) => e.seq === f.last + 1)) f.last = first.seq - 1;
        else if (!first && evs.length === 0) f.last = Math.max(f.last, upTo);
        this.#pump(f);
      },
      () => {
        f.filling = false;
        f.retry = setTimeout(() => {
          f.retry = undefined;
          this.#pump(f);
        }, 1000);
        f.retry.unref();
      },
    );
  }

  #handOff(f: UserFeed<P>, ev: StoredEvent<P>): void {
    f.last = ev.seq;
    this.stats.handedOff++;
    const bytes = encodeLiveExecution(ev);
    for (const h of f.handlers) {
      try {
        h(bytes);
      } catch {
        // the hub's handler does not throw; a test double might
      }
    }
  }

  /** Hand the feed on from the log up to `upTo` (a replay holds it; the live events are late). */
  async #advance(f: UserFeed<P>, upTo: number): Promise<void> {
    const evs = await this.#opts.log.read(f.user, f.last, upTo - f.last);
    for (const ev of evs) {
      if (ev.seq > upTo) break;
      // contiguous only (another replay may have advanced it meanwhile); retention holes are accepted
      if (ev.seq > f.last) this.#handOff(f, ev);
    }
  }

  #reconcile(): void {
    for (const f of this.#feeds.values()) {
      if (!f.isReady || f.filling || f.holds > 0) continue;
      this.#opts.log.head(f.user).then(
        (head) => {
          if (head > f.last && !f.filling && f.holds === 0 && this.#feeds.get(f.user) === f) {
            const queuedNext = f.queue.some((e) => e.seq === f.last + 1);
            if (!queuedNext) this.#fill(f, head);
          }
        },
        () => undefined,
      );
    }
  }

  /**
   * The `replay` hook of the user's executions channel: events after `since` (or the newest
   * `snapshotEvents` when since is undefined), up to the seam described above.
   *
   * Cost is bounded: the replay reads and sends `pageSize` events at a time, and the gateway
   * sends at most one page of replay per event-loop turn (TurnGate); each page waits for the
   * user's and the gateway's replay budget and for the subscriber to be under its high-water mark
   * (a client that does not read is left to the slow-consumer policy, 4009). The bulk is sent
   * without holding the live feed; only the last page or less (or the snapshot, at most
   * `snapshotEvents`) is sent under the hold, where it waits for its turn only: it is charged to
   * the budgets instead of waiting for them. It stops at the next page once `ctl.signal` aborts.
   */
  async replay(user: string, since: number | undefined, deliver: (events: StoredEvent<P>[]) => void, ctl: ReplayControl = {}): Promise<void> {
    this.stats.replays++;
    this.stats.active++;
    try {
      await this.#replay(user, since, deliver, ctl);
    } finally {
      this.stats.active--;
      if (ctl.signal?.aborted) this.stats.aborted++;
    }
  }

  async #replay(user: string, since: number | undefined, deliver: (events: StoredEvent<P>[]) => void, ctl: ReplayControl): Promise<void> {
    const f = this.#feeds.get(user);
    if (f) await f.ready;
    // A resume point past the log's newest event: the log started again below it (a memory log
    // after a restart, a Redis that lost its data), and what it holds now is numbered from 1
    // again. The replay sends all of it; the client takes an item at or below its `since` as
    // that restart (docs/private-streams.md, "Subscribing"). A point at or below what the feed
    // passed on is in the log: no look-up then.
    if (since !== undefined && since > 0 && (!f || since > f.last) && since > (await this.#opts.log.head(user))) {
      this.stats.restarts++;
      since = 0;
    }
    if (!f) {
      // no live feed: nothing to join, serve from the log alone
      if (since === undefined) await this.#deliverTail(user, Number.MAX_SAFE_INTEGER, deliver, ctl, false);
      else await this.#deliverRange(user, since, Number.MAX_SAFE_INTEGER, deliver, ctl, false);
      return;
    }
    let after = since;
    // the bulk: catch up to the live feed's position without holding it (it moves meanwhile)
    while (after !== undefined && f.last - after > this.#opts.pageSize) {
      after = await this.#deliverRange(user, after, f.last, deliver, ctl, false);
      if (after === undefined || ctl.signal?.aborted || this.#feeds.get(user) !== f) return;
    }
    f.holds++;
    try {
      // the subscriber has everything up to `since`: the feed must be past it before the join, or
      // the topic would repeat events it already has
      if (after !== undefined && after > f.last) await this.#advance(f, after);
      if (ctl.signal?.aborted) return;
      // From here the live feed hands nothing on until the release below. What the hub holds goes
      // out on the topics now, and the log fills in up to the feed's position. Another replay may
      // still advance the feed meanwhile (see #advance): then flush and fill again.
      let upTo = f.last;
      ctl.flush?.();
      if (after === undefined) await this.#deliverTail(user, upTo, deliver, ctl, true);
      else await this.#deliverRange(user, after, upTo, deliver, ctl, true);
      while (f.last > upTo && !ctl.signal?.aborted) {
        const from = upTo;
        upTo = f.last;
        ctl.flush?.();
        await this.#deliverRange(user, from, upTo, deliver, ctl, true);
      }
      // join and release in one synchronous step: events after upTo reach the subscriber on the topic
      if (!ctl.signal?.aborted) ctl.join?.();
    } finally {
      f.holds--;
      this.#pump(f);
    }
  }

  /** The newest `snapshotEvents` up to `upTo`. */
  async #deliverTail(user: string, upTo: number, deliver: (events: StoredEvent<P>[]) => void, ctl: ReplayControl, held: boolean): Promise<void> {
    if (this.#opts.snapshotEvents <= 0) return;
    const evs = (await this.#opts.log.tail(user, this.#opts.snapshotEvents)).filter((e) => e.seq <= upTo);
    for (let i = 0; i < evs.length; i += this.#opts.pageSize) {
      if (!(await this.#send(user, evs.slice(i, i + this.#opts.pageSize), deliver, ctl, held))) return;
    }
  }

  /**
   * Pages of (after, upTo] from the log; what retention removed is skipped. Resolves with the
   * last sequence covered (upTo when the log has nothing more), or undefined when aborted.
   */
  async #deliverRange(
    user: string,
    since: number,
    upTo: number,
    deliver: (events: StoredEvent<P>[]) => void,
    ctl: ReplayControl,
    held: boolean,
  ): Promise<number | undefined> {
    let after = since;
    while (after < upTo) {
      if (ctl.signal?.aborted) return undefined;
      const page = (await this.#opts.log.read(user, after, Math.min(this.#opts.pageSize, upTo - after))).filter((e) => e.seq <= upTo);
      if (page.length === 0) return upTo;
      if (!(await this.#send(user, page, deliver, ctl, held))) return undefined;
      after = page[page.length - 1]!.seq;
    }
    return after;
  }

  /** One page: wait for the subscriber and the budget (unless held), send, yield. False when aborted. */
  async #send(user: string, page: StoredEvent<P>[], deliver: (events: StoredEvent<P>[]) => void, ctl: ReplayControl, held: boolean): Promise<boolean> {
    let i = 0;
    while (i < page.length) {
      if (ctl.signal?.aborted) return false;
      let n = page.length - i;
      if (held) {
        this.budget.charge(user, n);
      } else {
        const blocked = ctl.writable?.();
        if (blocked) {
          this.stats.paused++;
          await blocked;
          if (ctl.signal?.aborted) return false;
        }
        n = await this.budget.acquire(user, n, ctl.signal);
        if (n === 0) return false;
      }
      // this page's share of an event-loop turn (it waits for a later turn when this one is full)
      const turn = this.#turns.take(n);
      if (turn) await turn;
      if (ctl.signal?.aborted) return false;
      this.stats.replayed += n;
      deliver(i === 0 && n === page.length ? page : page.slice(i, i + n));
      i += n;
    }
    return true;
  }

  close(): void {
    this.#unfollow();
    if (this.#reconciler) clearInterval(this.#reconciler);
    for (const f of this.#feeds.values()) if (f.retry) clearTimeout(f.retry);
    this.#feeds.clear();
  }
}
