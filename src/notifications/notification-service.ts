import { createHash } from 'node:crypto';
import type { AppendOptions, AppendResult, DisabledEventLog, EventLog, StoredEvent } from '../executions/event-log.js';
import { conflictError, EventRequestError } from '../executions/execution-service.js';
import { describeIssue } from '../executions/schemas.js';
import type { ReplayBudget } from '../executions/replay-budget.js';
import { KeyedSerial } from '../core/keyed-serial.js';
import type { MarkRead, NotificationEvent, NotificationInput, NotificationItem, ReadItem } from './schemas.js';
import { MarkReadSchema, NotificationInputSchema, toNotificationItem } from './schemas.js';

/**
 * Read requests (`notifications.read`, POST .../notifications/read) of one user that may wait on a
 * gateway at once; one more is refused with RATE_LIMIT (429). Each reads the user's retained log
 * from the replay budget: a full log of 1000 events is a tenth of a second of the default budget,
 * so 16 are 1.6 s of waiting. (Unbounded, 20 connections of a user queued 23 000 reads in 20 s:
 * test/hostile/notification-reads.test.ts.)
 */
export const MAX_QUEUED_READS = 16;

/** What a user has read, derived from the read markers in their log. */
export interface ReadState {
  /** the user's last sequence */
  head: number;
  /** every event at or below this seq is a read notification or a marker: where "unread on subscribe" starts */
  cursor: number;
  /** highest `upTo` of all markers */
  readUpTo: number;
  /** notifications above readUpTo marked read by id */
  readIds: Set<string>;
  /** unread notifications, oldest first */
  unread: StoredEvent<NotificationItem>[];
}

export interface MarkReadResult {
  /** seq of the read marker appended (0 when nothing new was read: no marker is written) */
  seq: number;
  /** notifications left unread */
  unread: number;
}

/** Events read per page while a user's read state is computed. */
const SCAN_PAGE = 1000;

/**
 * The write side of the `notifications` channel: notifications into the user's durable log
 * (deduplicated by their id), read markers into the same log (so read state is durable, ordered
 * with the notifications, and reaches every connection of the user), and the read state derived
 * from it. The log is bounded per user (notifications.maxPerUser, retentionSec), so deriving the
 * state reads at most that many events.
 */
export class NotificationService {
  readonly stats = { recorded: 0, duplicates: 0, conflicts: 0, markers: 0 };

  constructor(
    readonly log: EventLog<NotificationEvent>,
    readonly opts: {
      maxPerUser: number;
      now?: () => number;
      /**
       * The gateway's replay budget (the notifications router's): reading a user's retained log to
       * derive the read state (a subscribe without `since`, `notifications.read`, a list) takes from
       * it like a replay page, so repeating those requests cannot read the log faster than replays may.
       */
      budget?: ReplayBudget;
    },
  ) {}

  #assertAvailable(): void {
    if (this.log.kind === 'disabled') throw new EventRequestError(503, 'UNAVAILABLE', (this.log as DisabledEventLog<NotificationEvent>).reason);
  }

  /** Validate and store a notification for a user; an id already stored is not stored again. */
  async post(user: string, input: NotificationInput | unknown, opts?: AppendOptions): Promise<AppendResult & { id: string }> {
    const r = NotificationInputSchema.safeParse(input);
    if (!r.success) {
      const { field, message } = describeIssue(r.error);
      throw new EventRequestError(400, 'BAD_REQUEST', message, field);
    }
    const item = toNotificationItem(r.data, (this.opts.now ?? Date.now)());
    const res = await this.record(user, item, opts);
    if (!res.duplicate) return res;
    const field = await this.#conflict(user, res.seq, item);
    if (field !== undefined) {
      this.stats.duplicates--;
      this.stats.conflicts++;
      throw conflictError('notification', item.id, res.seq, field);
    }
    return res;
  }

  /**
   * The first field in which the stored notification `seq` differs from `item` (its time aside:
   * the server stamps it), or undefined when they agree or the original cannot be read back (no
   * longer retained, the log unreachable): then the repeat is answered as a duplicate, as before.
   * Answering a repeated id with other content `duplicate: true` told the backend it was recorded
   * when it was dropped (test/hostile/service-api-intake.test.ts).
   */
  async #conflict(user: string, seq: number, item: NotificationItem): Promise<string | undefined> {
    if (seq <= 0) return undefined;
    let original: NotificationItem | undefined;
    try {
      const [ev] = await this.log.read(user, seq - 1, 1);
      if (ev?.seq === seq && ev.d.kind === 'notification' && ev.d.id === item.id) original = ev.d;
    } catch {
      return undefined;
    }
    if (!original) return undefined;
    for (const k of ['type', 'title', 'body', 'priority'] as const) if (original[k] !== item[k]) return k;
    return sameJson(original.data, item.data) ? undefined : 'data';
  }

  /** Store an already built notification (the engine's own, e.g. an alert firing, id starting with `#`). */
  async record(user: string, item: NotificationItem, opts?: AppendOptions): Promise<AppendResult & { id: string }> {
    this.#assertAvailable();
    const res = await this.log.append(user, item, opts);
    if (res.duplicate) this.stats.duplicates++;
    else this.stats.recorded++;
    return { ...res, id: item.id };
  }

  /**
   * Everything retained for the user, oldest first. With a budget, each page takes from the
   * user's and the gateway's replay budgets before it is read, as a replay page does (waiting
   * while they are spent): as many events as the page can hold at most, from the user's head.
   * `head` is the user's head read just before the scan (the first page's bound).
   */
  async #all(user: string, head: number): Promise<StoredEvent<NotificationEvent>[]> {
    const budget = this.opts.budget;
    const out: StoredEvent<NotificationEvent>[] = [];
    let after = 0;
    let top = head;
    for (;;) {
      let limit = SCAN_PAGE;
      if (budget) {
        const left = top - after;
        if (left <= 0) return out;
        limit = await budget.acquire(user, Math.min(SCAN_PAGE, left));
      }
      const page = await this.log.read(user, after, limit);
      out.push(...page);
      if (page.length < limit) return out;
      after = page[page.length - 1]!.seq;
      if (budget) top = await this.log.head(user);
    }
  }

  async state(user: string): Promise<ReadState & { events: StoredEvent<NotificationEvent>[] }> {
    // the head before the scan: a notification stored during it is in the scan or after this
    // head, so a subscriber whose cursor this gives gets it either way (read after the scan, the
    // head could pass over a notification the scan missed)
    const headBefore = await this.log.head(user);
    const events = await this.#all(user, headBefore);
    let readUpTo = 0;
    const readIds = new Set<string>();
    for (const e of events) {
      if (e.d.kind !== 'read') continue;
      if (e.d.upTo !== undefined && e.d.upTo > readUpTo) readUpTo = e.d.upTo;
      for (const id of e.d.ids ?? []) readIds.add(id);
    }
    const unread: StoredEvent<NotificationItem>[] = [];
    for (const e of events) {
      if (e.d.kind === 'notification' && e.seq > readUpTo && !readIds.has(e.d.id)) unread.push(e as StoredEvent<NotificationItem>);
    }
    const head = events.length > 0 ? events[events.length - 1]!.seq : headBefore;
    const cursor = unread.length > 0 ? unread[0]!.seq - 1 : head;
    return { head, cursor, readUpTo, readIds, unread, events };
  }

  /** Notifications retained for the user (newest last), each with its seq and read flag. */
  async list(
    user: string,
    opts: { unreadOnly?: boolean } = {},
  ): Promise<{ unread: number; head: number; items: (NotificationItem & { seq: number; read: boolean })[] }> {
    const s = await this.state(user);
    const items: (NotificationItem & { seq: number; read: boolean })[] = [];
    for (const e of s.events) {
      if (e.d.kind !== 'notification') continue;
      const read = e.seq <= s.readUpTo || s.readIds.has(e.d.id);
      if (opts.unreadOnly && read) continue;
      items.push({ ...e.d, seq: e.seq, read });
    }
    return { unread: s.unread.length, head: s.head, items };
  }

  /**
   * Mark notifications read: up to a seq, up to a notification id, or by ids. Appends a read
   * marker (which every connection of the user receives on the channel) unless nothing new is read.
   */
  async markRead(user: string, input: MarkRead | unknown): Promise<MarkReadResult> {
    const r = MarkReadSchema.safeParse(input);
    if (!r.success) {
      const { field, message } = describeIssue(r.error);
      throw new EventRequestError(400, 'BAD_REQUEST', message, field);
    }
    this.#assertAvailable();
    // each waits for the user's replay budget to read the log: a queue beyond what the budget
    // serves in a few seconds only holds memory and work for a client that stopped waiting
    if (this.#reads.pending(user) >= MAX_QUEUED_READS) {
      throw new EventRequestError(
        429,
        'RATE_LIMIT',
        `notifications.read: ${MAX_QUEUED_READS} requests of this user wait already (each reads the user's notifications from the replay budget): send the next when one is answered`,
      );
    }
    // one at a time per user in this process: each reads the state the one before it wrote, so
    // a repeated or overlapping request finds its notifications read (no marker, seq 0)
    return this.#reads.run(user, () => this.#markRead(user, r.data));
  }

  /** markRead, one request at a time per user */
  readonly #reads = new KeyedSerial();

  async #markRead(user: string, req: MarkRead): Promise<MarkReadResult> {
    const s = await this.state(user);
    let upTo = req.upTo;
    if (req.upToId !== undefined) {
      const hit = s.events.find((e) => e.d.kind === 'notification' && e.d.id === req.upToId);
      if (!hit) throw new EventRequestError(404, 'NOT_FOUND', `no notification "${req.upToId}" for this user (never posted, or no longer retained)`, 'upToId');
      upTo = Math.max(upTo ?? 0, hit.seq);
    }
    if (upTo !== undefined && upTo > s.head) {
      throw new EventRequestError(400, 'BAD_REQUEST', `field "upTo": ${upTo} is beyond the user's last notification (seq ${s.head})`, 'upTo');
    }
    const wanted = new Set(req.ids ?? []);
    const newlyRead = s.unread.filter((e) => (upTo !== undefined && e.seq <= upTo) || wanted.has(e.d.id));
    if (newlyRead.length === 0) return { seq: 0, unread: s.unread.length };
    const marker: ReadItem = { kind: 'read', id: '', t: (this.opts.now ?? Date.now)() };
    // only what moves the state: an upTo above the old one, ids above it that were not read yet
    if (upTo !== undefined && upTo > s.readUpTo) marker.upTo = upTo;
    const ids = [...wanted].filter(
      (id) => newlyRead.some((e) => e.d.id === id) && !(marker.upTo !== undefined && s.unread.find((e) => e.d.id === id)!.seq <= marker.upTo),
    );
    if (ids.length > 0) marker.ids = ids;
    // the id is the change and the state it was computed on: the same read sent through two
    // gateway processes at once is one marker (the log keeps one event per id), a later one is new
    const change = JSON.stringify([s.head, marker.upTo ?? null, [...ids].sort()]);
    marker.id = `#read:${createHash('sha256').update(change).digest('base64url').slice(0, 32)}`;
    const res = await this.log.append(user, marker);
    if (res.duplicate) return { seq: 0, unread: s.unread.length - newlyRead.length };
    this.stats.markers++;
    return { seq: res.seq, unread: s.unread.length - newlyRead.length };
  }
}

/** Two JSON values alike, whatever the order of object keys (`===` on numbers: -0 is 0, as JSON stores it). */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bs = b as unknown[];
    return a.length === bs.length && a.every((x, i) => sameJson(x, bs[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  if (ak.length !== Object.keys(bo).length) return false;
  return ak.every((k) => Object.hasOwn(bo, k) && sameJson(ao[k], bo[k]));
}
