import type { Unsubscribe } from '../bus/bus.js';
import type { ExecutionPayload } from './schemas.js';

/** What a log stores: any JSON object with an id unique per user (executions, notifications). */
export interface LogPayload {
  id: string;
}

/** One stored event and its durable per-user sequence (1, 2, 3, ... per user, no holes). */
export interface StoredEvent<P extends LogPayload = ExecutionPayload> {
  seq: number;
  d: P;
}

export interface AppendResult {
  /** the event's sequence; for a duplicate, the sequence of the original (0 if no longer retained) */
  seq: number;
  duplicate: boolean;
}

export interface AppendOptions {
  /**
   * The event may have been appended before, from this time on (ms since the epoch, as the server
   * stamped the delivery): it is a redelivery (its first append's acknowledgement was lost). A log
   * whose deduplication is bounded (JetStream's duplicate window, and a cluster node's
   * deduplication state) looks for the id among the user's events stored since then.
   */
  redeliveredSince?: number;
}

/** Called for each appended event, every user, per-user order; `position` orders the whole log. */
export type EventListener<P extends LogPayload = ExecutionPayload> = (user: string, ev: StoredEvent<P>, position: number) => void;

export interface FollowOptions {
  /** resume after this log position (JetStream stream sequence); other logs only follow from now */
  after?: number;
}

/**
 * The durable per-user execution log. Three implementations share one contract
 * (test/private/event-log-contract.test.ts): JetStream (NATS mode), Redis and memory (embedded).
 *
 * - append: an id already in the log (per user) is not stored again (`duplicate`);
 * - sequences per user start at 1 and rise by one with each stored event;
 * - read/tail/head see every event whose append has resolved;
 * - retention drops the oldest events of a user (count and age); `read` then starts above `after`
 *   at the oldest retained event, so the caller sees the hole.
 */
export interface EventLog<P extends LogPayload = ExecutionPayload> {
  readonly kind: 'memory' | 'redis' | 'jetstream' | 'disabled';
  append(user: string, d: P, opts?: AppendOptions): Promise<AppendResult>;
  /** events with seq > after, oldest first, at most `limit` */
  read(user: string, after: number, limit: number): Promise<StoredEvent<P>[]>;
  /** the `count` newest events, oldest first */
  tail(user: string, count: number): Promise<StoredEvent<P>[]>;
  /** the user's last sequence (0 when none) */
  head(user: string): Promise<number>;
  /**
   * A cheap look at the user's last sequence (one request), for a caller that only needs to know
   * whether events past a point may exist: it can tell less than `head` (JetStream: a stale copy
   * stored last, a last-message index that lags) but never more. Unset: use `head`.
   */
  headHint?(user: string): Promise<number>;
  /** every event appended from now on (or after a position, where the log supports it) */
  follow(listener: EventListener<P>, opts?: FollowOptions): Unsubscribe;
  readonly ready: boolean;
  close(): Promise<void>;
}

export interface RetentionOptions {
  maxPerUser: number;
  retentionMs: number;
}

interface MemoryUser<P extends LogPayload> {
  events: (StoredEvent<P> & { at: number })[];
  ids: Map<string, number>;
  seq: number;
}

/** Listener fan-out shared by the in-process logs. */
export class Listeners<P extends LogPayload = ExecutionPayload> {
  readonly #set = new Set<EventListener<P>>();
  #position = 0;
  add(l: EventListener<P>): Unsubscribe {
    const wrapped: EventListener<P> = (u, e, p) => l(u, e, p);
    this.#set.add(wrapped);
    return () => void this.#set.delete(wrapped);
  }
  emit(user: string, ev: StoredEvent<P>): void {
    const pos = ++this.#position;
    for (const l of this.#set) {
      try {
        l(user, ev, pos);
      } catch {
        // a faulty listener must not fail the append
      }
    }
  }
  clear(): void {
    this.#set.clear();
  }
}

/** In-process log for the embedded mode: lost on restart, bounded by retention. */
export class MemoryEventLog<P extends LogPayload = ExecutionPayload> implements EventLog<P> {
  readonly kind = 'memory' as const;
  readonly ready = true;
  readonly #users = new Map<string, MemoryUser<P>>();
  readonly #listeners = new Listeners<P>();
  readonly #ret: RetentionOptions;

  constructor(retention: RetentionOptions) {
    this.#ret = retention;
  }

  #user(user: string): MemoryUser<P> {
    let u = this.#users.get(user);
    if (!u) this.#users.set(user, (u = { events: [], ids: new Map(), seq: 0 }));
    return u;
  }

  #trim(u: MemoryUser<P>, now: number): void {
    let drop = Math.max(0, u.events.length - this.#ret.maxPerUser);
    while (drop < u.events.length && u.events[drop]!.at < now - this.#ret.retentionMs) drop++;
    if (drop === 0) return;
    for (const e of u.events.splice(0, drop)) u.ids.delete(e.d.id);
  }

  async append(user: string, d: P): Promise<AppendResult> {
    const u = this.#user(user);
    const now = Date.now();
    this.#trim(u, now);
    const existing = u.ids.get(d.id);
    if (existing !== undefined) return { seq: existing, duplicate: true };
    const ev = { seq: ++u.seq, d, at: now };
    u.events.push(ev);
    u.ids.set(d.id, ev.seq);
    this.#trim(u, now);
    this.#listeners.emit(user, { seq: ev.seq, d });
    return { seq: ev.seq, duplicate: false };
  }

  async read(user: string, after: number, limit: number): Promise<StoredEvent<P>[]> {
    const u = this.#users.get(user);
    if (!u) return [];
    this.#trim(u, Date.now());
    const out: StoredEvent<P>[] = [];
    for (const e of u.events) {
      if (e.seq <= after) continue;
      out.push({ seq: e.seq, d: e.d });
      if (out.length >= limit) break;
    }
    return out;
  }

  async tail(user: string, count: number): Promise<StoredEvent<P>[]> {
    const u = this.#users.get(user);
    if (!u || count <= 0) return [];
    this.#trim(u, Date.now());
    return u.events.slice(-count).map((e) => ({ seq: e.seq, d: e.d }));
  }

  async head(user: string): Promise<number> {
    return this.#users.get(user)?.seq ?? 0;
  }

  follow(listener: EventListener<P>): Unsubscribe {
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}

/**
 * No execution log (NATS without JetStream): the executions channel is refused and writes fail
 * with `reason`; everything else of the engine runs.
 */
export class DisabledEventLog<P extends LogPayload = ExecutionPayload> implements EventLog<P> {
  readonly kind = 'disabled' as const;
  readonly ready = true;
  constructor(readonly reason: string) {}
  async append(): Promise<AppendResult> {
    throw Object.assign(new Error(this.reason), { status: 503, code: 'UNAVAILABLE' });
  }
  async read(): Promise<StoredEvent<P>[]> {
    return [];
  }
  async tail(): Promise<StoredEvent<P>[]> {
    return [];
  }
  async head(): Promise<number> {
    return 0;
  }
  follow(): Unsubscribe {
    return () => undefined;
  }
  async close(): Promise<void> {}
}
