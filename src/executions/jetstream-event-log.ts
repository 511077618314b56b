import { createHash } from 'node:crypto';
import { DiscardPolicy, JetStreamApiError, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { Consumer, ConsumerMessages, JetStreamClient, JetStreamManager, StoredMsg, StreamConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Unsubscribe } from '../bus/bus.js';
import { TickwireError } from '../core/errors.js';
import type { AppendOptions, AppendResult, EventListener, EventLog, FollowOptions, LogPayload, RetentionOptions, StoredEvent } from './event-log.js';
import type { ExecutionPayload } from './schemas.js';
import { escapeSubjectToken } from '../core/symbols.js';
import { EXEC_IN_PREFIX, EXEC_LOG_PREFIX, userOf } from '../bus/private-subjects.js';

export interface JetStreamEventLogOptions extends RetentionOptions {
  stream: string;
  inboundStream: string;
  dedupWindowMs: number;
  replicas: number;
  /** log for consumer restarts (never on the hot path) */
  onError?: (err: unknown, what: string) => void;
  /** subject prefix of the per-user log (default `exec.log.`; notifications use their own) */
  logPrefix?: string;
  /** subject prefix of the inbound work queue (default `exec.in.`) */
  inPrefix?: string;
  /**
   * whether the connection is up now (the bus's view of it); without it `ready` is only "not
   * closed", and a connection that is reconnecting counts as ready
   */
  connected?: () => boolean;
}

/** JetStream API error: wrong last sequence (someone appended first). */
const WRONG_LAST_SEQUENCE = 10071;
/** A redelivery's look-back starts this much before its delivery time (clocks of cluster nodes). */
const REDELIVERY_CLOCK_MARGIN_MS = 5000;
/**
 * Most of a user's events a redelivery's look-up walks (one direct get each): past it, the append
 * rests on JetStream's message-id deduplication alone, as any other append does. A user with a
 * few executions a second has a few dozen events in the window of a redelivery.
 */
const REDELIVERY_LOOKUP_MAX = 2000;
const MAX_APPEND_ATTEMPTS = 50;
/** users whose newest message a log instance remembers (the least recently written are forgotten) */
const MAX_KNOWN_HEADS = 100_000;
/** users whose recent messages a log instance keeps from redelivery look-ups (the least recently looked up are forgotten) */
const MAX_RECENT_USERS = 128;
/** messages kept per user for redelivery look-ups (the oldest are forgotten) */
const MAX_RECENT_IDS = 2048;
/** Reads up to this many events use one direct get per event; longer ones a consumer (checked against the leader). */
const DIRECT_READ_MAX = 32;
/** stale copies in a row looked past when finding a user's newest event */
const MAX_STALE_RUN = 16;
/** requests to the stream leader in flight while a consumer's read is checked */
const VERIFY_IN_FLIGHT = 64;

interface Stored {
  seq: number;
  d: LogPayload;
}

/** Set a user's entry, newest last: the least recently written go first past `max` entries. */
function setKnown<V>(map: Map<string, V>, user: string, v: V, max = MAX_KNOWN_HEADS): void {
  map.delete(user);
  map.set(user, v);
  if (map.size > max) map.delete(map.keys().next().value!);
}

const decoder = new TextDecoder();
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}
function parse(m: StoredMsg | { data: Uint8Array }): Stored {
  return JSON.parse(decoder.decode(m.data)) as Stored;
}

/**
 * The execution log on JetStream: one stream (`executions.stream`) over `exec.log.<user>`, one
 * subject per user, messages `{"seq":N,"d":{...}}` in JSON.
 *
 * Per-user sequences are assigned by the writer and made contiguous with optimistic concurrency:
 * each append expects the user's last stream sequence it read (Nats-Expected-Last-Subject-Sequence)
 * and retries when another writer got there first. Duplicates are caught by JetStream's message
 * id deduplication (Nats-Msg-Id = hash of user and execution id) within `dedupWindowMs`.
 * Retention: `max_msgs_per_subject` (per user) and `max_age`.
 */
export class JetStreamEventLog<P extends LogPayload = ExecutionPayload> implements EventLog<P> {
  readonly kind = 'jetstream' as const;
  readonly #nc: NatsConnection;
  readonly #js: JetStreamClient;
  readonly #jsm: JetStreamManager;
  readonly #opts: JetStreamEventLogOptions;
  readonly #followers = new Set<{ stop(): void }>();
  readonly #logPrefix: string;
  #closed = false;
  /**
   * The newest message this instance knows per user (its own appends, what its followers saw):
   * per-user seq and stream sequence. After a node was killed, the stream leader's per-subject
   * index can answer an old message as the user's last one (seen with nats-server 2.9 in
   * test/faults/inbound-cluster.test.ts: seq 2 written after seq 1312), and gateways drop an event
   * whose seq they already passed on. An append never counts from below what is known here.
   */
  readonly #heads = new Map<string, { seq: number; at: number }>();
  /**
   * Per user, a message whose place this instance has checked itself: `seq` is the newest event
   * stored up to stream sequence `at` (its own appends after their collision check, its duplicate
   * look-ups, a walk over the last MAX_STALE_RUN + 1 messages). Unlike #heads, never what a
   * follower saw (a follower's first message of a user can be a stale copy). The next append counts
   * from it by walking forward over the few messages other writers stored since (#newestUpTo).
   */
  readonly #checked = new Map<string, { seq: number; at: number }>();
  /**
   * Per user, what redelivery look-ups read (#findId): every message of the user from the first
   * one stored at `sinceMs` or later to stream sequence `to`, by id (stream sequences), and in
   * stream order with their time (the oldest are forgotten first).
   */
  readonly #recent = new Map<
    string,
    { sinceMs: number; to: number; ids: Map<string, number[]>; order: { seq: number; time: number; id: string; useq: number }[] }
  >();

  private constructor(nc: NatsConnection, jsm: JetStreamManager, opts: JetStreamEventLogOptions) {
    this.#nc = nc;
    this.#jsm = jsm;
    this.#js = jetstream(nc);
    this.#opts = opts;
    this.#logPrefix = opts.logPrefix ?? EXEC_LOG_PREFIX;
  }

  /**
   * Connect to JetStream and create or update the log's streams. A request that times out, or
   * finds JetStream temporarily unavailable (a cluster electing its JetStream leader, a server
   * stalled under load), is tried again, with backoff, for up to OPEN_RETRY_MS; a server without
   * JetStream fails at once.
   */
  static async open<P extends LogPayload = ExecutionPayload>(nc: NatsConnection, opts: JetStreamEventLogOptions): Promise<JetStreamEventLog<P>> {
    return retryTransient(
      () => JetStreamEventLog.#open<P>(nc, opts),
      () => nc.isClosed(),
    );
  }

  static async #open<P extends LogPayload>(nc: NatsConnection, opts: JetStreamEventLogOptions): Promise<JetStreamEventLog<P>> {
    let jsm: JetStreamManager;
    try {
      jsm = await jetstreamManager(nc);
    } catch (err) {
      // a request that timed out says nothing of whether the server has JetStream
      if (transientJetStreamError(err)) throw err;
      throw new TickwireError('JETSTREAM', `JetStream is not available on the NATS server (start nats-server with -js): ${(err as Error).message}`, {
        cause: err,
      });
    }
    const dup = Math.min(opts.dedupWindowMs, opts.retentionMs);
    await ensureStream(jsm, {
      name: opts.stream,
      subjects: [(opts.logPrefix ?? EXEC_LOG_PREFIX) + '>'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(opts.retentionMs),
      max_msgs_per_subject: opts.maxPerUser,
      duplicate_window: nanos(dup),
      num_replicas: opts.replicas,
    });
    await ensureStream(jsm, {
      name: opts.inboundStream,
      subjects: [(opts.inPrefix ?? EXEC_IN_PREFIX) + '>'],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(opts.retentionMs),
      duplicate_window: nanos(dup),
      num_replicas: opts.replicas,
    });
    return new JetStreamEventLog<P>(nc, jsm, opts);
  }

  get ready(): boolean {
    return !this.#nc.isClosed() && !this.#closed && (this.#opts.connected?.() ?? true);
  }

  get manager(): JetStreamManager {
    return this.#jsm;
  }

  get client(): JetStreamClient {
    return this.#js;
  }

  #subject(user: string): string {
    return this.#logPrefix + escapeSubjectToken(user);
  }

  async #last(subject: string): Promise<StoredMsg | null> {
    return this.#jsm.streams.getMessage(this.#opts.stream, { last_by_subj: subject });
  }

  /** First message on `subject` at or after stream sequence `seq`. */
  async #atOrAfter(subject: string, seq: number): Promise<StoredMsg | null> {
    // STREAM.MSG.GET accepts next_by_subj (server 2.9+); the client types only list it for direct get
    return this.#jsm.streams.getMessage(this.#opts.stream, { seq, next_by_subj: subject } as unknown as { seq: number });
  }

  /** The last message on `subject` from `from` on, walking forward (the index may lag). */
  async #latestFrom(subject: string, from: StoredMsg): Promise<StoredMsg> {
    let m = from;
    for (;;) {
      const n = await this.#atOrAfter(subject, m.seq + 1);
      if (!n) return m;
      m = n;
    }
  }

  /**
   * The message of `subject` holding event `id`, among those stored from `sinceMs` on (stream
   * time), or earlier ones this instance read. Only redeliveries ask, and after a node was killed
   * they come by the dozen for the same user: each used to search the stream and walk the user's
   * events since its first delivery (on CI, 302 redeliveries at ~200 ms each made the intake fall
   * behind). What a look-up reads is kept per user (#recent): every message of the user from the
   * first one stored since `sinceMs` up to the last one read, by id. The next look-up of that user
   * (since then or later) reads only the messages stored after it, and a message found there is
   * read again from the leader before it is trusted (a copy removed after a collision, a stream
   * created again).
   */
  async #findId(user: string, subject: string, id: string, sinceMs: number, again = true): Promise<StoredMsg | null> {
    let known = this.#recent.get(user);
    if (!known || known.sinceMs > sinceMs) {
      const lo = await this.#firstSince(subject, sinceMs);
      if (lo === undefined) return null;
      known = { sinceMs, to: lo - 1, ids: new Map(), order: [] };
    }
    setKnown(this.#recent, user, known, MAX_RECENT_USERS);
    const read = await this.#leaderMessagesAfter(subject, known.to, REDELIVERY_LOOKUP_MAX);
    for (const m of read) {
      const s = parse(m);
      const at = known.ids.get(s.d.id);
      if (at) at.push(m.seq);
      else known.ids.set(s.d.id, [m.seq]);
      known.order.push({ seq: m.seq, time: m.time, id: s.d.id, useq: s.seq });
      known.to = m.seq;
    }
    // the oldest go first: what is kept is then every message from the first one left on
    while (known.order.length > MAX_RECENT_IDS) {
      const old = known.order.shift()!;
      const seqs = known.ids.get(old.id)!.filter((q) => q !== old.seq);
      if (seqs.length > 0) known.ids.set(old.id, seqs);
      else known.ids.delete(old.id);
      known.sinceMs = old.time + 1;
    }
    for (const seq of known.ids.get(id) ?? []) {
      const m = await this.#jsm.streams.getMessage(this.#opts.stream, { seq }).catch(() => null);
      if (m && m.subject === subject && parse(m).d.id === id) return m;
    }
    if (known.ids.has(id)) {
      // what was read is no longer there (removed after a collision, the stream created again):
      // forget it and read the user's messages again (once)
      this.#recent.delete(user);
      if (again) return this.#findId(user, subject, id, sinceMs, false);
    }
    return null;
  }

  /** The stream sequence of the first message of `subject` stored at `sinceMs` or later (undefined: none), by binary search (stream time grows with it). */
  async #firstSince(subject: string, sinceMs: number): Promise<number | undefined> {
    const last = await this.#last(subject);
    if (!last) return undefined;
    let lo = 1;
    let hi = last.seq;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await this.#atOrAfter(subject, mid);
      if (m && m.time.getTime() < sinceMs) lo = m.seq + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * The messages of `subject` after stream sequence `after`, as the stream leader holds them, up
   * to `max`: the first DIRECT_READ_MAX one request each, the rest through a consumer checked
   * against the leader (as long reads are), else walked one by one.
   */
  async #leaderMessagesAfter(subject: string, after: number, max: number): Promise<{ seq: number; data: Uint8Array; time: number }[]> {
    const out: { seq: number; data: Uint8Array; time: number }[] = [];
    let m = await this.#atOrAfter(subject, after + 1);
    for (; m && out.length < max; m = await this.#atOrAfter(subject, m.seq + 1)) {
      out.push({ seq: m.seq, data: m.data, time: m.time.getTime() });
      if (out.length === DIRECT_READ_MAX) {
        // A user with many events since: one request per event made a redelivery cost seconds
        // under load, and the queue's other messages outlived their ack wait behind it (each
        // then a redelivery too, looked up in turn). The rest in bulk.
        const end = await this.#lastStored(subject);
        if (!end || end.seq <= m.seq) return out;
        const from = m.seq + 1;
        let left = max - out.length;
        const range = await this.#consumerRange(subject, from, end.seq, left, () => --left);
        const complete = range.reachedLast || range.delivered.length >= max - out.length;
        if (complete && (await this.#leaderChain(subject, from, range.delivered))) {
          for (const x of range.delivered) out.push({ seq: x.seq, data: x.data, time: x.time });
          return out;
        }
        // a replica that lags or holds other messages than the leader: walk the leader
      }
    }
    return out;
  }

  /**
   * An earlier message of `subject` than `copy` with `copy`'s per-user seq or a later one: `copy`
   * then collided with it and lost (the first stored wins). Undefined when `copy` is the event.
   */
  async #collisionWinner(subject: string, copy: StoredMsg, user?: string): Promise<StoredMsg | undefined> {
    const own = parse(copy).seq;
    // What a redelivery look-up read (#recent) answers it when it holds the MAX_STALE_RUN + 1
    // messages of the user before the copy: the newest event stored before the copy is among them
    // (#newest). A search of the stream costs a few hundred requests.
    const known = user === undefined ? undefined : this.#recent.get(user);
    const at = known ? known.order.findIndex((e) => e.seq === copy.seq) : -1;
    if (known && at > MAX_STALE_RUN) {
      const before = known.order.slice(at - MAX_STALE_RUN - 1, at);
      const top = before.reduce((a, b) => (b.useq > a.useq ? b : a));
      if (top.useq < own) return undefined;
      // a winner: read it from the leader (it may have been removed since: then search)
      const m = await this.#jsm.streams.getMessage(this.#opts.stream, { seq: top.seq }).catch(() => null);
      if (m && m.subject === subject && parse(m).seq >= own) return m;
    }
    const first = await this.#firstAbove(subject, own - 1, copy.seq, true);
    return first && first.seq < copy.seq && parse(first).seq >= own ? first : undefined;
  }

  /** A message of `subject` stored after `after` and before `own` whose per-user seq is `seq` or later. */
  async #rival(subject: string, after: number, own: number, seq: number): Promise<StoredMsg | undefined> {
    let m = await this.#atOrAfter(subject, after + 1);
    while (m && m.seq < own) {
      if (parse(m).seq >= seq) return m;
      m = await this.#atOrAfter(subject, m.seq + 1);
    }
    return undefined;
  }

  async append(user: string, d: P, opts?: AppendOptions): Promise<AppendResult> {
    const subject = this.#subject(user);
    if (opts?.redeliveredSince !== undefined) {
      // a redelivery: tickwire repeats this append itself, so it does not rest on JetStream's
      // message-id deduplication alone (bounded by its window, kept by the node that leads the
      // stream after a kill). Look for the id among what the user got since.
      const earlier = await this.#findId(user, subject, d.id, opts.redeliveredSince - REDELIVERY_CLOCK_MARGIN_MS);
      // (a copy that lost a collision and whose removal failed: the duplicate path below sorts that out)
      if (earlier && !(await this.#collisionWinner(subject, earlier, user))) {
        this.#remember(user, parse(earlier).seq, earlier.seq, true);
        return { seq: parse(earlier).seq, duplicate: true };
      }
    }
    const baseID = createHash('sha256').update(user).update('\u0000').update(d.id).digest('base64url');
    // generation g of the message id: a copy removed after a collision (below) keeps its id in the
    // server's duplicate window, so the next copy is published as `<id>.<g>`
    let generation = 0;
    // a message known to be on the subject (found by a collision check); the next attempt counts
    // from it, or from anything after it, when the subject's last-message index lags behind
    let floor: StoredMsg | undefined;
    // The first attempt counts from the place this instance checked last (#checked: usually its own
    // previous append for the user) without asking: the server refuses the publish when anything
    // of the user was stored after it (wrong last sequence), and the collision check below catches
    // what that check lets through (a replicated stream's in-flight proposals, a lagging index).
    // One gateway appending a user's executions one after another then costs two requests each
    // (the publish and the collision check) instead of three or more
    // (test/private/jetstream-append-cost.test.ts).
    const checked = this.#checked.get(user);
    const knownAtStart = this.#heads.get(user);
    let hint = checked && (!knownAtStart || knownAtStart.seq <= checked.seq) ? checked : undefined;
    for (let attempt = 0; attempt < MAX_APPEND_ATTEMPTS; attempt++) {
      const msgID = generation === 0 ? baseID : `${baseID}.${generation}`;
      // what the server checks Nats-Expected-Last-Subject-Sequence against, the stream sequence
      // counted from, and the user's newest seq there
      let expectLast: number;
      let from: number;
      let prev: number;
      if (hint) {
        expectLast = from = hint.at;
        prev = hint.seq;
        hint = undefined;
      } else {
        const indexed = await this.#last(subject);
        const known = this.#heads.get(user);
        if (known && (!floor || floor.seq < known.at) && (!indexed || parse(indexed).seq < known.seq)) {
          // the index lags behind what we know was stored: count from that message (when it is still there)
          const m = await this.#jsm.streams.getMessage(this.#opts.stream, { seq: known.at }).catch(() => null);
          if (m && m.subject === subject) floor = m;
        }
        let top: StoredMsg | null = indexed;
        if (floor && (!top || floor.seq > top.seq)) top = await this.#latestFrom(subject, floor);
        // counted from the newest event: the last message can be a stale copy with a lower seq
        // (not when it is the one this instance appended last)
        if (top) top = await this.#newestUpTo(user, subject, top);
        // never below what this instance knows was stored (its appends, what its followers saw): a
        // stream lost and created again (a single server restarted without its store) holds nothing
        // of the user, and counting from 1 again would give new events seqs clients already passed
        // (dropped as seen); the lost ones show as a hole instead, as with the Redis log's floor
        prev = Math.max(top ? parse(top).seq : 0, known?.seq ?? 0);
        expectLast = indexed?.seq ?? 0;
        from = top?.seq ?? 0;
      }
      const seq = prev + 1;
      let ack;
      try {
        ack = await this.#js.publish(subject, JSON.stringify({ seq, d }), {
          msgID,
          expect: { streamName: this.#opts.stream, lastSubjectSequence: expectLast },
        });
      } catch (err) {
        if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) {
          await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, 2 ** attempt)));
          continue;
        }
        throw err;
      }
      if (ack.duplicate) {
        // null only when the message is gone; an error (a node down) fails the append, to be
        // retried: taken for "gone", it would store the execution again under a new message id
        const original = await this.#jsm.streams.getMessage(this.#opts.stream, { seq: ack.seq });
        if (original && original.subject === subject && parse(original).d.id === d.id) {
          // Stored before. But it may be a copy that collided and whose removal below failed (the
          // caller got an error and retried): an earlier message of the subject has its seq or a
          // later one. Gateways drop an event whose seq they already passed on, so that copy
          // would reach no client: remove it now and append again after the winner.
          const winner = await this.#collisionWinner(subject, original);
          if (!winner) {
            this.#remember(user, parse(original).seq, original.seq, true);
            return { seq: parse(original).seq, duplicate: true };
          }
          await this.#jsm.streams.deleteMessage(this.#opts.stream, original.seq, false);
          floor = winner;
        }
        // that copy was removed after a collision: the execution is stored under a later generation
        generation++;
        continue;
      }
      // A clustered stream (replicas > 1) does not serialize Nats-Expected-Last-Subject-Sequence
      // across in-flight proposals or a leader change (nats-server issue #4320), and after a
      // leader change or a removal the subject's last-message index can lag: two writers can both
      // be stored with the same per-user seq. A collision is a message of the subject stored
      // between what we counted from and our copy whose per-user seq is ours or later; the first
      // one stored wins, ours is removed and appended again counting from the winner (followers
      // drop a repeated seq: they never go back).
      const rival = await this.#rival(subject, from, ack.seq, seq);
      if (rival) {
        // if this fails the caller gets an error and retries: the copy is then found as a duplicate
        await this.#jsm.streams.deleteMessage(this.#opts.stream, ack.seq, false);
        floor = rival;
        generation++;
        continue;
      }
      this.#remember(user, seq, ack.seq, true);
      return { seq, duplicate: false };
    }
    throw new TickwireError('EXEC_APPEND', `could not append an execution for a user after ${MAX_APPEND_ATTEMPTS} attempts (contention)`);
  }

  /** `checked`: `seq` is the newest event stored up to `at` (#checked), not only one seen. */
  #remember(user: string, seq: number, at: number, checked = false): void {
    if (checked) this.#check(user, seq, at);
    const h = this.#heads.get(user);
    if (h && h.seq >= seq) return;
    setKnown(this.#heads, user, { seq, at });
  }

  #check(user: string, seq: number, at: number): void {
    const c = this.#checked.get(user);
    if (c && c.at >= at) return;
    setKnown(this.#checked, user, { seq, at });
  }

  /**
   * The user's newest event stored up to message `m` (#newest). From the place this instance
   * checked last (#checked), when that is at most MAX_STALE_RUN + 1 messages of the subject
   * before `m` and still holds what it did: a walk forward over what other writers stored since,
   * one request each (when gateways take turns appending for a user, one or two). Otherwise the
   * walk back from `m`, about twice that many requests.
   */
  async #newestUpTo(user: string, subject: string, m: StoredMsg): Promise<StoredMsg> {
    const c = this.#checked.get(user);
    if (c && c.at <= m.seq) {
      const from = c.at === m.seq ? m : await this.#atOrAfter(subject, c.at);
      // the message there is the one checked (a stream lost and created again, or trimmed, holds another)
      if (from && from.seq === c.at && parse(from).seq === c.seq) {
        let best = from;
        let cur: StoredMsg | null = from;
        for (let i = 0; i <= MAX_STALE_RUN && cur && cur.seq < m.seq; i++) {
          cur = await this.#atOrAfter(subject, cur.seq + 1);
          if (cur && cur.seq <= m.seq && parse(cur).seq > parse(best).seq) best = cur;
        }
        if (cur && cur.seq === m.seq) {
          this.#check(user, parse(best).seq, m.seq);
          return best;
        }
      }
    }
    const newest = await this.#newest(subject, m);
    this.#check(user, parse(newest).seq, m.seq);
    return newest;
  }

  /**
   * The first message of `subject` (from stream sequence 1 to `hi`) whose per-user seq is past
   * `after`, by binary search over stream sequences (per-user seqs grow with them); it may be at
   * or below `after` when none is. A stale copy stored late (read) breaks the growth: a probe
   * landing on one can move the search past the events stored before it. `exact` tests each
   * probe at or below `after` by the newest seq stored up to it (#newest), which does grow with the
   * stream sequence: the answer is then the first event past `after` itself, never a copy (a few
   * dozen requests a probe, so reads only search this way when the quick search's answer does not
   * read on from `after`).
   */
  async #firstAbove(subject: string, after: number, end: number, exact = false): Promise<StoredMsg | null> {
    let lo = 1;
    let hi = end;
    let first: StoredMsg | null = null;
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      const m = await this.#atOrAfter(subject, mid);
      if (!m) break;
      if (parse(m).seq > after || (exact && parse(await this.#newest(subject, m, after)).seq > after)) {
        hi = mid;
        first = m;
      } else lo = m.seq + 1;
    }
    if (!first || first.seq > lo) first = await this.#atOrAfter(subject, lo);
    if (exact && first && parse(first).seq <= after) {
      // a stale copy stored before the first event past `after`: walk on to that event
      while (first && first.seq <= end && parse(first).seq <= after) first = await this.#atOrAfter(subject, first.seq + 1);
    }
    return first;
  }

  /**
   * The user's newest event stored up to message `m` of `subject`: the highest seq among `m` and
   * the MAX_STALE_RUN messages of the subject before it. `m` is usually it, but stale copies
   * stored late (read) can come after it, each with a lower seq than the event before it, and
   * several in a row with rising seqs (appends in flight together when a node was killed); they
   * come at most MAX_STALE_RUN in a row, so the newest event is among those messages. Stops early
   * once it has seen a seq past `enough`.
   */
  async #newest(subject: string, m: StoredMsg, enough = Number.MAX_SAFE_INTEGER): Promise<StoredMsg> {
    let top = m;
    let cur: StoredMsg | null = m;
    for (let i = 0; i < MAX_STALE_RUN && parse(top).seq <= enough; i++) {
      cur = await this.#previous(subject, cur);
      if (!cur) break;
      if (parse(cur).seq > parse(top).seq) top = cur;
    }
    return top;
  }

  async head(user: string): Promise<number> {
    const ends = await this.#ends(this.#subject(user));
    return ends ? parse(ends.newest).seq : 0;
  }

  /**
   * The seq of the user's last message as the subject's index answers it: one request, against
   * dozens for head (which walks back over the stale copies a clustered stream can store late).
   * The portfolio service asks it for each book it reads back, to know whether the log holds
   * executions past the stored book.
   */
  async headHint(user: string): Promise<number> {
    const last = await this.#last(this.#subject(user));
    return last ? parse(last).seq : 0;
  }

  /**
   * The subject's last message on the stream and the user's newest event; null when it has none.
   * The last-message index can lag what is stored after a leader change (walked on from it, or a
   * replay would stop short of the newest events), and the last message can be a stale copy
   * stored late, which does not carry the newest seq (#newest).
   */
  async #ends(subject: string): Promise<{ last: StoredMsg; newest: StoredMsg } | null> {
    const last = await this.#lastStored(subject);
    if (!last) return null;
    return { last, newest: await this.#newest(subject, last) };
  }

  /** The subject's last message on the stream, walked on from the index (which can lag). */
  async #lastStored(subject: string): Promise<StoredMsg | null> {
    const indexed = await this.#last(subject);
    return indexed ? this.#latestFrom(subject, indexed) : null;
  }

  /**
   * The message of `subject` just before `m` on the stream (null when none is). JetStream gets
   * only the next message of a subject, so the window before `m` doubles until it holds one, and
   * the last one of that window is walked to.
   */
  async #previous(subject: string, m: StoredMsg): Promise<StoredMsg | null> {
    let found: StoredMsg | null = null;
    for (let d = 1; !found; d *= 2) {
      const from = Math.max(1, m.seq - d);
      const p = await this.#atOrAfter(subject, from);
      if (p && p.seq < m.seq) found = p;
      else if (from === 1) return null;
    }
    for (let n = await this.#atOrAfter(subject, found.seq + 1); n && n.seq < m.seq; n = await this.#atOrAfter(subject, n.seq + 1)) found = n;
    return found;
  }

  /**
   * Events after `after`, oldest first, each seq above the one before. A clustered stream can
   * store a write late, after a node was killed: a copy of an execution whose append timed out
   * and was retried (so it is also stored in its place), carrying the seq it was given then
   * (seen with nats-server 2.9 in test/faults/inbound-cluster.test.ts). Such a copy is skipped here,
   * as the gateways' routers skip it on the live feed.
   *
   * What is stored is what the stream leader answers (appends count from it too). Short reads walk
   * the leader (STREAM.MSG.GET, answered by the leader). Long reads go through a consumer, which
   * nats-server places on any replica of the stream: after a SIGKILL a replica can lag or hold
   * other messages than the leader at the same stream sequences (seen with nats-server 2.9 in
   * test/faults/inbound-cluster.test.ts: a replica without one execution and with another at an
   * other per-user seq; a replay read there skipped a stored execution). So what the consumer
   * delivered is checked against the leader, message by message (#leaderChain), and must reach
   * the limit or the leader's last message; otherwise the range is read again from the leader.
   */
  async read(user: string, after: number, limit: number): Promise<StoredEvent<P>[]> {
    if (limit <= 0) return [];
    const subject = this.#subject(user);
    const last = await this.#lastStored(subject);
    if (!last) return [];
    const first = await this.#firstAbove(subject, after, last.seq);
    if (first && parse(first).seq > after) {
      const out = await this.#readFrom(subject, first, last, after, limit);
      // right after `after` and without a hole: nothing was passed over (the seqs are contiguous)
      if (out[0]?.seq === after + 1 && out.every((e, i) => i === 0 || e.seq === out[i - 1]!.seq + 1)) return out;
    }
    // Not right after `after`: retention removed those events, or the quick search landed past a
    // stale copy (#firstAbove), or found none past `after` while stale copies end the subject.
    // The exact search settles it.
    const exact = await this.#firstAbove(subject, after, last.seq, true);
    return exact && parse(exact).seq > after ? this.#readFrom(subject, exact, last, after, limit) : [];
  }

  /** Events of `subject` after `after` (up to `limit`), from message `first` (an event past `after`) to message `last` on the stream. */
  async #readFrom(subject: string, first: StoredMsg, last: StoredMsg, after: number, limit: number): Promise<StoredEvent<P>[]> {
    // how many there are, as far as the last message tells (a stale copy there tells fewer: then
    // the leader is walked, which reads them all too)
    if (Math.min(limit, parse(last).seq - after) > DIRECT_READ_MAX) {
      const read = await this.#readWithConsumer(subject, first, last, after, limit);
      if (read) return read;
      // a replica that lags or holds other messages than the leader (logged: operators may want to know)
      this.#opts.onError?.(new Error(`a consumer read of stream ${this.#opts.stream} differed from the stream leader; read again from the leader`), 'log read');
    }
    return this.#readFromLeader(subject, first, last, after, limit);
  }

  /** The leader's messages of `subject` from `first` to `last`, one request each. */
  async #readFromLeader(subject: string, first: StoredMsg, last: StoredMsg, after: number, limit: number): Promise<StoredEvent<P>[]> {
    const out: StoredEvent<P>[] = [];
    let m: StoredMsg | null = first;
    while (m && out.length < limit) {
      const s = parse(m);
      // a seq not above the one before is a stale copy a clustered stream stored late (above): skipped
      if (s.seq > (out.at(-1)?.seq ?? after)) out.push({ seq: s.seq, d: s.d as P });
      if (m.seq >= last.seq) break;
      m = await this.#atOrAfter(subject, m.seq + 1);
    }
    return out;
  }

  /**
   * Long reads: an ordered consumer from the first message, instead of one request per message.
   * Undefined when what it delivered is not what the stream leader holds (see read).
   */
  async #readWithConsumer(subject: string, first: StoredMsg, last: StoredMsg, after: number, wanted: number): Promise<StoredEvent<P>[] | undefined> {
    const out: StoredEvent<P>[] = [];
    const { delivered, reachedLast } = await this.#consumerRange(subject, first.seq, last.seq, wanted, (m) => {
      const s = parse(m);
      if (s.seq > (out.at(-1)?.seq ?? after) && out.length < wanted) out.push({ seq: s.seq, d: s.d as P });
      return wanted - out.length;
    });
    if (out.length < wanted && !reachedLast) return undefined;
    return (await this.#leaderChain(subject, first.seq, delivered)) ? out : undefined;
  }

  /**
   * Messages of `subject` from stream sequence `from` to `lastSeq`, through an ordered consumer
   * (nats-server places it on any replica: check what it delivered with #leaderChain). `take`
   * sees each and answers how many more are wanted (`room` at first); 0 stops. `reachedLast`: the
   * message at `lastSeq` was delivered. Every message delivered is returned (stale copies too:
   * the leader may hold an event at that sequence).
   */
  async #consumerRange(
    subject: string,
    from: number,
    lastSeq: number,
    room: number,
    take: (m: { seq: number; data: Uint8Array }) => number,
  ): Promise<{ delivered: { seq: number; data: Uint8Array; time: number }[]; reachedLast: boolean }> {
    const consumer = await this.#js.consumers.get(this.#opts.stream, { filter_subjects: subject, opt_start_seq: from });
    const delivered: { seq: number; data: Uint8Array; time: number }[] = [];
    let reachedLast = false;
    try {
      let left = room;
      while (left > 0) {
        const asked = Math.min(256, left);
        const batch = await consumer.fetch({ max_messages: asked, expires: 1000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          delivered.push({ seq: m.seq, data: m.data, time: Math.floor(m.info.timestampNanos / 1e6) });
          left = take(m);
          if (m.seq >= lastSeq) reachedLast = true;
          if (reachedLast || left <= 0) break;
        }
        // a short batch: the replica serving the consumer has no more (it lags the leader)
        if (reachedLast || got < asked) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return { delivered, reachedLast };
  }

  /**
   * Whether the stream leader holds exactly these messages of `subject` from stream sequence
   * `from` on: for each, the leader's next message of the subject after the one before (requests
   * in parallel) is the same message. So nothing the leader holds in between was left out, and
   * the read is what a walk over the leader returns.
   */
  async #leaderChain(subject: string, from: number, messages: { seq: number; data: Uint8Array }[]): Promise<boolean> {
    let next = 0;
    let same = true;
    const worker = async (): Promise<void> => {
      while (same && next < messages.length) {
        const i = next++;
        const m = messages[i]!;
        const l = await this.#atOrAfter(subject, i === 0 ? from : messages[i - 1]!.seq + 1);
        if (!l || l.seq !== m.seq || !Buffer.from(l.data).equals(m.data)) same = false;
      }
    };
    await Promise.all(Array.from({ length: Math.min(VERIFY_IN_FLIGHT, messages.length) }, worker));
    return same;
  }

  async tail(user: string, count: number): Promise<StoredEvent<P>[]> {
    if (count <= 0) return [];
    const head = await this.head(user);
    return this.read(user, Math.max(0, head - count), count);
  }

  /**
   * Every stored execution, in stream order, through an ordered consumer (restarted by the
   * client on reconnects). `after` resumes after a stream sequence; default: from now on.
   *
   * What the consumer delivers is what the stream leader holds, message by message: nats-server
   * places the consumer on any replica of the stream, and after a node was killed a replica can
   * hold another message than the leader at the same stream sequence (see read). A follower there
   * handed gateways and the portfolio that replica's copy: an execution applied twice and the one
   * the leader holds at that place never, or a hole (test/faults/nats-cluster.test.ts: a book one
   * execution off). So each delivered message is read again from the leader (STREAM.MSG.GET, up
   * to VERIFY_IN_FLIGHT in flight, handed on in stream order): the same message is handed on; one
   * the leader no longer holds (a copy removed after a collision) is passed over; another one
   * stops that consumer, the leader's messages are walked from the last one handed on
   * (FOLLOW_WALK_MAX at most, one request each), and a new consumer goes on from there
   * (test/private/jetstream-follow-diverged.test.ts). One request to the leader per execution and
   * follower process.
   */
  follow(listener: EventListener<P>, opts: FollowOptions = {}): Unsubscribe {
    let stopped = false;
    let messages: ConsumerMessages | undefined;
    let position = opts.after;
    let lastDelivery = Date.now();
    let nudgedAt = -1;
    // Watchdog: a consumer can stall without an error when the node it lived on dies at the wrong
    // moment. When nothing arrived for a while but the stream has grown past what we processed,
    // the consumer is dropped and created again from the position (once per stream head).
    const watchdog = setInterval(() => {
      if (stopped || this.#closed || !messages || position === undefined || Date.now() - lastDelivery < WATCHDOG_MS) return;
      this.#jsm.streams.info(this.#opts.stream).then(
        (info) => {
          const head = info.state.last_seq;
          if (head > position! && head !== nudgedAt && Date.now() - lastDelivery >= WATCHDOG_MS) {
            nudgedAt = head;
            messages?.stop();
          }
        },
        () => undefined,
      );
    }, WATCHDOG_MS);
    watchdog.unref();
    const handle = {
      stop: () => {
        stopped = true;
        clearInterval(watchdog);
        messages?.stop();
      },
    };
    this.#followers.add(handle);
    const live = (): boolean => !stopped && !this.#closed;
    /** hand one message of the stream (at stream sequence `at`) to the listener */
    const handOn = (subject: string, data: Uint8Array, at: number): void => {
      position = at;
      const user = userOf(subject, this.#logPrefix);
      if (user === undefined) return;
      let s: Stored;
      try {
        s = parse({ data });
      } catch {
        return;
      }
      this.#remember(user, s.seq, at);
      try {
        listener(user, { seq: s.seq, d: s.d as P }, at);
      } catch (err) {
        this.#opts.onError?.(err, 'execution listener');
      }
    };
    /** the leader's messages after `position`, up to its last one (FOLLOW_WALK_MAX at most) */
    const walkLeader = async (): Promise<void> => {
      const last = (await this.#jsm.streams.info(this.#opts.stream)).state.last_seq;
      for (let n = 0, q = position! + 1; q <= last && n < FOLLOW_WALK_MAX && live(); q++, n++) {
        const l = await this.#jsm.streams.getMessage(this.#opts.stream, { seq: q });
        if (!live()) return;
        if (l) handOn(l.subject, l.data, q);
        else position = q;
      }
    };
    const run = async (): Promise<void> => {
      while (live()) {
        let diverged = false;
        // the leader was walked after a divergence: a new consumer at once (no pause)
        let walked = false;
        try {
          // "from now on" is pinned to the current head, so that a consumer created again later
          // resumes from there and not from its own creation time
          if (position === undefined) position = (await this.#jsm.streams.info(this.#opts.stream)).state.last_seq;
          const consumer = await this.#js.consumers.get(this.#opts.stream, { filter_subjects: this.#logPrefix + '>', opt_start_seq: position + 1 });
          if (stopped) return;
          const current = await consume(this.#nc, consumer, 256);
          messages = current;
          lastDelivery = Date.now();
          // delivered, each with the leader's message at its stream sequence (asked at once)
          const pending: { seq: number; subject: string; data: Uint8Array; leader: Promise<StoredMsg | null> }[] = [];
          let failure: unknown;
          let drainer: Promise<void> | undefined;
          const drain = (): Promise<void> =>
            (drainer ??= (async () => {
              try {
                while (pending.length > 0 && failure === undefined && !diverged && live()) {
                  const m = pending[0]!;
                  const l = await m.leader;
                  if (!live()) return;
                  pending.shift();
                  if (!l) position = m.seq;
                  else if (l.subject === m.subject && sameBytes(l.data, m.data)) handOn(m.subject, m.data, m.seq);
                  else diverged = true;
                }
              } catch (err) {
                failure = err;
              } finally {
                drainer = undefined;
              }
              if (failure !== undefined || diverged) current.stop();
            })());
          for await (const m of current) {
            lastDelivery = Date.now();
            if (failure !== undefined || diverged || !live()) break;
            const leader = this.#jsm.streams.getMessage(this.#opts.stream, { seq: m.seq });
            leader.catch(() => undefined); // awaited in order by drain
            pending.push({ seq: m.seq, subject: m.subject, data: m.data, leader });
            const d = drain();
            if (pending.length >= VERIFY_IN_FLIGHT) await d;
          }
          await drain();
          if (failure !== undefined) throw failure;
          if (diverged && live()) {
            this.#opts.onError?.(
              new Error(`a consumer of stream ${this.#opts.stream} delivered another message than the stream leader holds; read from the leader`),
              'executions follower',
            );
            await walkLeader();
            walked = true;
          }
        } catch (err) {
          if (!live()) return;
          this.#opts.onError?.(err, 'executions follower');
        }
        if (live() && !walked) await new Promise((r) => setTimeout(r, RESTART_DELAY_MS));
      }
    };
    void run();
    return () => {
      handle.stop();
      this.#followers.delete(handle);
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const f of this.#followers) f.stop();
    this.#followers.clear();
  }
}

/** a follower that received nothing this long while the stream grew is created again */
const WATCHDOG_MS = 3000;
/** messages a follower reads from the stream leader one by one after its consumer differed from it */
const FOLLOW_WALK_MAX = 1000;
/** pause before a consumer is created again after it failed or was abandoned */
const RESTART_DELAY_MS = 250;
/** the server sends a heartbeat this often while a pull waits; two missed = the consumer is gone */
export const CONSUMER_HEARTBEAT_MS = 1000;

/**
 * consume() that gives up on a consumer whose server went away: when a cluster node dies, an
 * ordered consumer hosted on it stops sending, and the client would keep re-checking it (for as
 * long as the node is down); when our own connection moved to another node, the client's
 * heartbeat monitor may not come back at all. So the iterator is stopped after two missed
 * heartbeats and whenever the connection reconnects, and the caller creates a consumer again
 * from the last position it processed (on a live node): nothing is skipped or repeated.
 */
export async function consume(nc: NatsConnection, consumer: Consumer, maxMessages: number): Promise<ConsumerMessages> {
  const messages = await consumer.consume({ max_messages: maxMessages, idle_heartbeat: CONSUMER_HEARTBEAT_MS, expires: CONSUMER_HEARTBEAT_MS * 5 });
  let done = false;
  void messages.closed().then(() => {
    done = true;
  });
  void (async () => {
    for await (const s of messages.status()) {
      if (s.type === 'heartbeats_missed' && s.count >= 2) {
        messages.stop();
        return;
      }
    }
  })().catch(() => undefined);
  void (async () => {
    for await (const s of nc.status()) {
      if (done) return;
      if (s.type === 'reconnect') {
        messages.stop();
        return;
      }
    }
  })().catch(() => undefined);
  return messages;
}

/** How long JetStreamEventLog.open tries again requests that time out or find JetStream not ready (ms). */
export const OPEN_RETRY_MS = 30_000;

/**
 * `attempt()` tried again while it fails with a transient JetStream error (transientJetStreamError),
 * with backoff from 250 ms to 2 s, for up to OPEN_RETRY_MS, unless `stop()` (the connection closed):
 * how the log's streams and the portfolio's PUT records are opened.
 */
export async function retryTransient<T>(attempt: () => Promise<T>, stop: () => boolean = () => false): Promise<T> {
  const deadline = Date.now() + OPEN_RETRY_MS;
  for (let delay = 250; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await attempt();
    } catch (err) {
      if (!transientJetStreamError(err) || Date.now() + delay > deadline || stop()) throw err;
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * A JetStream request that may pass when made again: it timed out (the server or its JetStream
 * leader did not answer in time), or JetStream answered that it is temporarily unavailable (API
 * error 10008, a cluster without a meta leader yet).
 */
export function transientJetStreamError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'TimeoutError') return true;
  return err instanceof JetStreamApiError && (err.code === 10008 || /temporarily unavailable/i.test(err.message));
}

/**
 * Errors of a stream create that another process creating the same stream at the same time can
 * cause (nats-server server/errors.json): JSStreamNameExistErr 10058 "stream name already in use
 * with a different configuration" (it was created since our lookup, with other settings), and
 * JSStreamSubjectOverlapErr 10065 "subjects overlap with an existing stream" (a single server
 * checks the name, then the subjects under another lock: two creates that pass the name check
 * together collide on the subjects, and the one that comes second fails).
 */
const STREAM_NAME_IN_USE = 10058;
const STREAM_SUBJECTS_OVERLAP = 10065;
/** lookups and creates of a stream that others keep creating under us before one is given up */
const ENSURE_ATTEMPTS = 5;

/** The stream's config, or undefined when there is no such stream. */
async function streamConfig(jsm: JetStreamManager, name: string): Promise<StreamConfig | undefined> {
  try {
    return (await jsm.streams.info(name)).config;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) return undefined;
    if (err instanceof Error && /stream not found/i.test(err.message)) return undefined;
    throw err;
  }
}

/** Streams other than `name` whose subjects overlap `subjects`. */
async function otherStreamsOver(jsm: JetStreamManager, name: string, subjects: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (const subject of subjects) for await (const n of jsm.streams.names(subject)) if (n !== name) found.add(n);
  return [...found];
}

/**
 * Create the stream, or bring the one there to `cfg` (retention and storage cannot change).
 * Several processes may open the same log at once (gateways started together on a fresh server):
 * when our create fails because another one created the stream since our lookup, the stream is
 * looked up again and joined, as one found by the lookup is.
 */
export async function ensureStream(jsm: JetStreamManager, cfg: Partial<StreamConfig> & { name: string }): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const cur = await streamConfig(jsm, cfg.name);
    if (cur) {
      const changed = (Object.keys(cfg) as (keyof StreamConfig)[]).some((k) => JSON.stringify(cur[k]) !== JSON.stringify(cfg[k]));
      if (changed) {
        const { name, retention: _r, storage: _s, ...update } = cfg;
        await jsm.streams.update(name, update);
      }
      return;
    }
    try {
      await jsm.streams.add(cfg);
      return;
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || (err.code !== STREAM_NAME_IN_USE && err.code !== STREAM_SUBJECTS_OVERLAP)) throw err;
      const subjects = cfg.subjects ?? [];
      const others = err.code === STREAM_SUBJECTS_OVERLAP ? await otherStreamsOver(jsm, cfg.name, subjects) : [];
      if (others.length > 0) {
        throw new TickwireError(
          'JETSTREAM',
          `JetStream stream ${cfg.name} cannot be created: its subjects ${subjects.join(', ')} overlap those of stream ${others.join(', ')} on the NATS server. ` +
            `Put that stream's name in the setting that names this one (executions.stream, executions.inboundStream, notifications.stream, notifications.inboundStream or portfolio.putStream), ` +
            `or delete it if nothing uses it any more (nats stream rm ${others[0]})`,
          { cause: err },
        );
      }
      if (attempt >= ENSURE_ATTEMPTS) {
        throw new TickwireError('JETSTREAM', `JetStream stream ${cfg.name} could not be created or found after ${attempt} attempts: ${err.message}`, {
          cause: err,
        });
      }
      // created by another process since our lookup, or being created (a cluster node may not
      // know it yet): look it up again
      await new Promise((r) => setTimeout(r, 50 * attempt));
    }
  }
}
