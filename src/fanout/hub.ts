import type { Bus, Unsubscribe } from '../bus/bus.js';
import type { Encoding, FrameCodec } from '../codec/frames.js';
import { CODECS } from '../codec/frames.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { ChannelSpec } from './channels.js';
import type { Coalescer, Update } from './coalescer.js';
import { createCoalescer } from './coalescer.js';
import type { Payload } from './payloads.js';
import { dataItem, itemsFrame, ProtocolLimits } from '../protocol/index.js';
import type { BatchFrame, DataItem, ItemOp } from '../protocol/index.js';

/** Where encoded frames go: uWS `app.publish` in production, a recorder in unit tests. */
/** Most data items in one batch frame: bounds frame size, and so per-connection buffers. */
export const MAX_BATCH_ITEMS = ProtocolLimits.MAX_BATCH_ITEMS;

export interface TopicPublisher {
  publish(topic: string, bytes: Uint8Array, binary: boolean): void;
}

/** The hub's view of one connection. */
export interface HubSubscriber {
  readonly codec: FrameCodec;
  /** start receiving a topic's frames (the connection may defer while it is slow) */
  join(topic: string): void;
  leave(topic: string): void;
  /** send one frame to this connection only */
  send(bytes: Uint8Array): void;
  readonly closed: boolean;
  /**
   * undefined when the subscriber can take more frames now, else a promise that resolves when
   * it can again (or closed): durable replays wait on it between pages
   */
  whenWritable?(): Promise<void> | undefined;
  /**
   * The hub just sent this subscriber its snapshot of (channel key, tier) itself, carrying the
   * tier's current seq (a waiting subscriber may get it long after its subscribe): a subscriber
   * that resyncs from the tier's seq later must not send that seq again.
   */
  servedSnapshot?(key: string, tier: number): void;
}

/** Time and timers, injectable so coalescing can be tested on a virtual clock. */
export interface HubClock {
  /** monotonic milliseconds (only differences are used) */
  nowMs(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** run fn after the current event-loop turn (tier 0 batching, leading-edge emissions) */
  defer(fn: () => void): void;
}

export const realClock: HubClock = {
  nowMs: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  defer: (fn) => setImmediate(fn),
};

/**
 * Trailing flushes are due on a grid of this many ms: a deadline is rounded up to the next
 * multiple, so the (channel, tier) pairs that fall due within one slot share one timer and one
 * event-loop turn (uWS then writes each socket once for all of them). It delays a trailing
 * emission by less than one slot and never brings one forward.
 */
export const FLUSH_SLOT_MS = 5;

export interface HubStats {
  /** updates received from the bus */
  updatesIn: number;
  /** updates emitted per (channel, tier) */
  updatesOut: number;
  /** source updates replaced by newer ones before emission */
  conflated: number;
  /** frames published to topics (one per encoding in use) */
  framesPublished: number;
  /** bytes handed to uWS for topic publishing, times subscribers (what goes on the wire) */
  bytesOut: number;
  framesOut: number;
  upstreamSubscribes: number;
  upstreamReleases: number;
  badPayloads: number;
  /** throttled emissions sent off the batch grid because the hub had emitted nothing throttled for a step */
  offGrid: number;
}

interface TierEntry {
  readonly channel: ChannelEntry;
  readonly tier: number;
  /** the subscriber lane (0 when the hub has one lane): see HubOptions.lanes */
  readonly lane: number;
  /** key in ChannelEntry.tiers: (tier, lane) */
  readonly key: number;
  /**
   * the step of this tier's grid, ms: with batchMs, the largest divisor of the tier not above
   * batchMs (so that a window's end, last emission + tier, is a grid point); else FLUSH_SLOT_MS
   */
  readonly step: number;
  /** this lane's phase on the grid, ms (0 for lane 0 and without a grid) */
  readonly offset: number;
  readonly coalescer: Coalescer<Payload>;
  readonly topics: Readonly<Record<Encoding, string>>;
  readonly subs: Record<Encoding, number>;
  /** last seq emitted at this tier */
  seq: number;
  /** updates are pending: in the turn's immediate batch or in a slot (dueAt) */
  dirty: boolean;
  /** clock time of the last emission (-Infinity: never emitted) */
  lastEmit: number;
  /** the slot this entry waits in, or -1 */
  dueAt: number;
  /** subscribers waiting for the channel's first value as their snapshot */
  readonly waiting: Set<HubSubscriber>;
  /**
   * subscribers of a durable channel whose replay is still running (they join after it), with
   * the controller that stops it: one replay per (subscriber, channel), a new one supersedes
   */
  readonly replaying: Map<HubSubscriber, AbortController>;
  /** `history` subscribers: their store read in flight, by a token a newer subscribe replaces */
  readonly historyFetch: Map<HubSubscriber, AbortController>;
  /** `history` subscribers waiting for their snapshot: the closed bars known, and how many they asked */
  readonly histories: Map<HubSubscriber, { bars: Payload[]; n: number }>;
}

interface ChannelEntry {
  readonly spec: ChannelSpec;
  last: Payload | undefined;
  /** by tierKey(tier, lane) */
  readonly tiers: Map<number, TierEntry>;
  refs: number;
  unsubscribe: Unsubscribe | undefined;
  releaseTimer: unknown;
  /**
   * bar channels with history: the last closed bars seen here, by `t` (HISTORY_RING). They cover
   * bars the store has not written yet when a `history` read runs (Redis lags the bus a little).
   */
  closedBars: Payload[] | undefined;
}

/** The (channel, tier) pairs whose trailing flush falls due in one slot, with that slot's timer. */
interface Slot {
  handle: unknown;
  readonly entries: Set<TierEntry>;
}

export interface HubOptions {
  bus: Bus;
  publisher: TopicPublisher;
  store?: LastValueStore;
  clock?: HubClock;
  /** keep an upstream subscription this long after its last subscriber leaves */
  upstreamReleaseMs: number;
  /**
   * 0 (the Hub's default; the gateway config defaults to 50): a throttled (channel, tier) quiet
   * for its throttle emits in the same turn, and trailing flushes wait in FLUSH_SLOT_MS slots.
   * N > 0: every throttled emission, leading or trailing, goes out on a grid whose step is the
   * largest divisor of the tier not above N ms (gridStep; config `throttle.batchMs`), except
   * when the hub has emitted nothing throttled for a whole step (see #lastThrottled).
   */
  batchMs?: number;
  /**
   * 1 (the Hub's default): one coalescer per (channel, tier). L > 1, with batchMs > 0: the
   * subscribers of a throttled tier are dealt round-robin into L lanes, each with its own
   * coalescer, seq and topics, on the tier's grid shifted by lane * step / L (config
   * `throttle.lanes`). A socket still gets at most one throttled write per grid step, but each
   * grid point carries only 1/L of the sockets, so a burst is written and read L times sooner.
   */
  lanes?: number;
  /**
   * Before a `history` subscribe reads the bar store: a promise to wait for (a read budget, see
   * the gateway's `historyGate`), or undefined to read at once. A request superseded or dropped
   * while it waits (a newer subscribe of the channel, an unsubscribe) has `signal` aborted, and
   * never reads.
   */
  historyGate?: (sub: HubSubscriber, bars: number, signal: AbortSignal) => Promise<unknown> | undefined;
}

/** Most lanes (config `throttle.lanes`). */
export const MAX_LANES = 16;
const tierKey = (tier: number, lane: number): number => tier * MAX_LANES + lane;

export interface SubscribeOptions {
  snapshot: boolean;
  since?: number;
  /** bar channels: this many closed bars before the snapshot's bar, in its `history` field */
  history?: number;
}

/** Closed bars a bar channel keeps in the hub to stitch `history` with what the hub has seen. */
export const HISTORY_RING = 64;
/**
 * Bars read from the store beyond the `history` asked: bars that are not before the snapshot's
 * bar (pending in a throttle window) are cut after the read.
 */
const HISTORY_MARGIN = 64;

/**
 * The gateway hub: one upstream bus subscription per channel with local subscribers, one
 * coalescer per (channel, throttle tier), one encoding per emission and encoding, published to a
 * uWS topic that the subscribers of that (channel, tier, encoding) joined.
 *
 * Throttled tiers are leading-edge (docs/protocol.md#throttling): a (channel, tier) quiet for its
 * throttle emits at once; a faster update waits until `throttle` ms after the last emission.
 * Why this shape, and what it costs (docs/benchmarks.md#leading-edge-throttling):
 * - Socket writes are the cost. uWS drains topic messages once per event-loop iteration, so a
 *   socket gets one write per iteration with output for it, whatever the number of publishes.
 *   A tier-wide burst gives each socket one write per interval; phases spread over the interval
 *   gave about ten and cost 3x the CPU per update (tried and reverted).
 * - So leading-edge emissions are not sent from the bus callback. They join the turn's
 *   `#immediate` batch, with tier 0, and go out together in one setImmediate.
 * - Trailing flushes wait in FLUSH_SLOT_MS slots: one timer per slot in use (at most
 *   throttle / slot of them), not one per channel. Everything due in a slot runs in one callback.
 * - What stays is inherent to the semantics. Channels' windows are anchored at their own last
 *   emission, so with channels busy at about the throttle rate a socket gets writes at many
 *   points of the interval. `throttle.batchMs` moves every throttled emission to a coarser grid
 *   for deployments that prefer CPU to latency.
 * - The grid is only worth waiting for when other emissions will share the turn: a hub that has
 *   emitted nothing throttled for a whole step sends a quiet channel's update at once
 *   (#lastThrottled). Under steady load every grid point has output, so nothing leaves the grid.
 * - The grid keeps a socket to one throttled write per step, but every socket with output is
 *   then written in the same turn: the last of them is written and read a burst's time after the
 *   grid point, which is what p99 pays on top of the window. Lanes (HubOptions.lanes) shift the
 *   grid per group of connections, so a grid point writes to 1/L of the sockets
 *   (docs/benchmarks.md#where-p99-past-the-throttle-goes-and-lanes).
 */
export class Hub {
  readonly stats: HubStats = {
    updatesIn: 0,
    updatesOut: 0,
    conflated: 0,
    framesPublished: 0,
    bytesOut: 0,
    framesOut: 0,
    upstreamSubscribes: 0,
    upstreamReleases: 0,
    badPayloads: 0,
    offGrid: 0,
  };
  /**
   * Observes each decoded upstream update once per channel (not per subscriber): metrics use it
   * for tick age. Keep it cheap; it runs on the hot path.
   */
  onUpdate: ((spec: ChannelSpec, d: Payload) => void) | undefined;
  readonly #bus: Bus;
  readonly #publisher: TopicPublisher;
  readonly #store: LastValueStore | undefined;
  readonly #clock: HubClock;
  readonly #releaseMs: number;
  readonly #batchMs: number;
  readonly #lanes: number;
  /** lane of each subscriber of a laned tier, dealt round-robin on its first subscribe */
  readonly #laneOf = new WeakMap<HubSubscriber, number>();
  #nextLane = 0;
  readonly #channels = new Map<string, ChannelEntry>();
  /** trailing flushes by due slot (ms): one timer per slot, whatever the number of channels */
  readonly #slots = new Map<number, Slot>();
  readonly #immediate = new Set<TierEntry>();
  #immediateScheduled = false;
  /**
   * With a grid (batchMs > 0): clock time of the last throttled emission (-Infinity: none yet).
   * The grid exists so that emissions share turns, and so sockets' writes; a hub that has emitted
   * nothing throttled for a whole step has nothing to share a turn with, and a quiet channel's
   * update then goes out at once, off the grid (#idle).
   */
  #lastThrottled = -Infinity;
  readonly #flushImmediate = (): void => {
    this.#immediateScheduled = false;
    for (const te of this.#immediate) this.#flush(te);
    this.#immediate.clear();
  };

  readonly #historyGate: HubOptions['historyGate'];

  constructor(opts: HubOptions) {
    this.#bus = opts.bus;
    this.#publisher = opts.publisher;
    this.#store = opts.store;
    this.#clock = opts.clock ?? realClock;
    this.#releaseMs = opts.upstreamReleaseMs;
    this.#batchMs = opts.batchMs ?? 0;
    const lanes = opts.lanes ?? 1;
    if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) throw new RangeError(`lanes must be an integer from 1 to ${MAX_LANES}, got ${lanes}`);
    // lanes are phases of the batch grid: without a grid there is nothing to shift
    this.#lanes = this.#batchMs > 0 ? lanes : 1;
    this.#historyGate = opts.historyGate;
  }

  /** The lane `sub` is served in at `tier` (0 for tier 0 and a one-lane hub). */
  #lane(sub: HubSubscriber, tier: number): number {
    if (tier === 0 || this.#lanes === 1) return 0;
    let lane = this.#laneOf.get(sub);
    if (lane === undefined) {
      lane = this.#nextLane;
      this.#nextLane = (this.#nextLane + 1) % this.#lanes;
      this.#laneOf.set(sub, lane);
    }
    return lane;
  }

  /**
   * Channels with an upstream subscription, with subscriber counts per tier: one row per channel
   * name. A private channel (`portfolio`, `executions`, ...) is one hub channel per user; its
   * users' rows are summed into one, which names no user.
   */
  channelStats(): { channel: string; subscribers: number; tiers: Record<string, number> }[] {
    const rows = new Map<string, { channel: string; subscribers: number; tiers: Record<string, number> }>();
    for (const c of this.#channels.values()) {
      const row = rows.get(c.spec.name);
      if (!row) {
        rows.set(c.spec.name, { channel: c.spec.name, subscribers: c.refs, tiers: tierCounts(c.tiers.values()) });
        continue;
      }
      row.subscribers += c.refs;
      for (const [tier, n] of Object.entries(tierCounts(c.tiers.values()))) row.tiers[tier] = (row.tiers[tier] ?? 0) + n;
    }
    return [...rows.values()];
  }

  get upstreamCount(): number {
    let n = 0;
    for (const c of this.#channels.values()) if (c.unsubscribe) n++;
    return n;
  }

  /**
   * Latest value and tier seq of a channel, if the hub holds one. With lanes, seq is per lane:
   * pass the subscriber to get the seq of its lane (else that of the first lane in use).
   */
  current(key: string, tier: number, sub?: HubSubscriber): { d: Payload; seq: number; snapshot?: boolean } | undefined {
    const c = this.#channels.get(key);
    let te = c?.tiers.get(tierKey(tier, sub ? this.#lane(sub, tier) : 0));
    for (let lane = 1; !te && !sub && lane < this.#lanes; lane++) te = c?.tiers.get(tierKey(tier, lane));
    if (te?.coalescer.snapshot) {
      // (order books) not while subscribers wait for the tier's first view: they must get it whole
      if (te.waiting.size > 0) return undefined;
      const built = te.coalescer.snapshot();
      return built ? { d: built, seq: te.seq, snapshot: true } : undefined;
    }
    if (!c?.last || !te) return undefined;
    return { d: c.last, seq: te.seq };
  }

  /** The seq of the last emission `sub` could have received on (channel, tier); undefined before any. */
  emittedSeq(key: string, tier: number, sub: HubSubscriber): number | undefined {
    return this.#channels.get(key)?.tiers.get(tierKey(tier, this.#lane(sub, tier)))?.seq;
  }

  /**
   * Emit now, on every tier's topics, what this channel's coalescers hold (throttle windows are
   * cut short). Durable replays call it at their seam (ReplayControl.flush): afterwards the live
   * topics carry every update handed to the hub so far, so a subscriber that joins next misses
   * nothing that the replay did not send itself.
   */
  flushChannel(key: string): void {
    const ch = this.#channels.get(key);
    if (!ch) return;
    for (const te of ch.tiers.values()) {
      if (!te.dirty) continue;
      this.#unslot(te);
      this.#immediate.delete(te);
      this.#flush(te);
    }
  }

  subscribe(sub: HubSubscriber, spec: ChannelSpec, tier: number, opts: SubscribeOptions): void {
    const ch = this.#ensureChannel(spec);
    const te = this.#ensureTier(ch, tier, this.#lane(sub, tier));
    const enc = sub.codec.encoding;
    te.subs[enc]++;
    ch.refs++;
    const topic = te.topics[enc];

    if (spec.replay && (opts.since !== undefined || opts.snapshot)) {
      // durable streams replay history themselves (since, or their recent events as the
      // snapshot), then join
      te.replaying.get(sub)?.abort();
      const ctl = new AbortController();
      te.replaying.set(sub, ctl);
      const current = (): boolean => te.replaying.get(sub) === ctl && !ctl.signal.aborted;
      const joinAfterReplay = (): void => {
        // only if this replay is still the subscriber's: it may have unsubscribed or
        // re-subscribed (a newer replay joins when it is done) while this one ran
        if (!current()) return;
        te.replaying.delete(sub);
        if (!sub.closed) sub.join(topic);
      };
      const writable = (): Promise<void> | undefined => sub.whenWritable?.();
      void spec
        .replay(
          opts.since,
          (updates) => {
            if (sub.closed || updates.length === 0 || !current()) return;
            const items = updates.map((u) => ({ d: u.d, coalesced: 1, seq: u.seq ?? 0 }));
            for (let i = 0; i < items.length; i += MAX_BATCH_ITEMS) {
              sub.send(sub.codec.encode(this.#frame(spec.name, items.slice(i, i + MAX_BATCH_ITEMS))));
            }
          },
          { signal: ctl.signal, writable, flush: () => this.flushChannel(spec.key), join: joinAfterReplay },
        )
        // a replay that ended without joining (it failed, or served from the log alone) joins now
        .then(joinAfterReplay, joinAfterReplay);
      return;
    }
    if (!opts.snapshot && !te.coalescer.snapshot) {
      // (channels built up from updates, order books, always start with a snapshot)
      sub.join(topic);
      return;
    }
    if (opts.history !== undefined && opts.history > 0 && spec.history) {
      this.#subscribeWithHistory(sub, ch, te, opts.history);
      return;
    }
    this.#serveSnapshot(sub, ch, te);
  }

  /**
   * `history: n` on a bar channel (docs/protocol.md#bar-history): read the closed bars from the
   * store first, without joining; then, in one turn, merge them with the bars this hub has seen
   * and serve the snapshot as usual. The snapshot item carries the `n` closed bars before its own
   * bar (`history`); live items follow with higher `seq`. Everything before the snapshot's bar
   * is in `history` and everything from it on comes live, so there is no gap and no duplicate,
   * whatever closed during the read.
   */
  #subscribeWithHistory(sub: HubSubscriber, ch: ChannelEntry, te: TierEntry, n: number): void {
    const token = new AbortController();
    te.historyFetch.get(sub)?.abort();
    te.historyFetch.set(sub, token);
    const done = (stored: readonly Payload[]): void => {
      if (sub.closed || te.historyFetch.get(sub) !== token || ch.tiers.get(te.key) !== te) return;
      te.historyFetch.delete(sub);
      const byT = new Map<number, Payload>();
      for (const b of stored) byT.set(b.t as number, b);
      for (const b of ch.closedBars ?? []) byT.set(b.t as number, b); // newer than the store's
      const bars = [...byT.values()].sort((a, b) => (a.t as number) - (b.t as number));
      te.histories.set(sub, { bars, n });
      this.#serveSnapshot(sub, ch, te);
    };
    const read = (): void => {
      if (sub.closed || te.historyFetch.get(sub) !== token || ch.tiers.get(te.key) !== te) return; // superseded while waiting
      ch.spec.history!({ limit: n + HISTORY_MARGIN }).then(done, () => done([])); // store unreachable: what the hub has seen
    };
    const gate = this.#historyGate?.(sub, n + HISTORY_MARGIN, token.signal);
    if (gate) gate.then(read, read);
    else read();
  }

  #serveSnapshot(sub: HubSubscriber, ch: ChannelEntry, te: TierEntry): void {
    const spec = ch.spec;
    if (te.coalescer.snapshot) {
      this.#serveBuiltSnapshot(sub, te);
      return;
    }
    if (ch.last) {
      this.#serveLast(sub, te, ch.last);
      return;
    }
    const key = spec.lastValueKey;
    te.waiting.add(sub);
    if (!this.#store || !key) return;
    this.#store.getMany([key]).then(
      ([bytes]) => {
        if (sub.closed || !te.waiting.has(sub) || ch.tiers.get(te.key) !== te) return; // served live meanwhile, or gone
        // updates arrived during the read: newer than the stored value, and after the subscribe
        // (none may be lost): the tier's next flush, already due, serves them whole, the first
        // flagged as the snapshot
        if (te.coalescer.pending) return;
        if (!ch.last && bytes) {
          const u = this.#decode(spec, bytes);
          if (u) ch.last = u.d;
        }
        if (!ch.last) return; // nothing stored: the first live value becomes the snapshot
        te.waiting.delete(sub);
        this.#startWith(sub, te, ch.last);
      },
      () => undefined, // store unreachable: the first live value becomes the snapshot
    );
  }

  /**
   * The channel's current value `last` as `sub`'s snapshot, with the tier's seq, then the topic.
   * Updates may be pending in the tier's coalescer (`last` is the newest of them): sent after the
   * snapshot they would be older than it, with seq that repeat it. So:
   * - tier 0 emits what is pending now (its batch is only the event-loop turn's, with no window
   *   to keep), and the snapshot then has that emission's seq;
   * - trades and bars at a throttled tier wait in `waiting` for the window's flush and take the
   *   whole window, its first item flagged as the snapshot (none of it may be lost, and the
   *   window may not close early);
   * - latest-value channels at a throttled tier take `last` now: the window's emission is `last`
   *   again (latest wins), with the next seq.
   */
  #serveLast(sub: HubSubscriber, te: TierEntry, last: Payload): void {
    if (te.coalescer.pending) {
      if (te.tier === 0) {
        this.#unslot(te);
        this.#immediate.delete(te);
        this.#flush(te);
      } else if (te.channel.spec.mode !== 'latest') {
        te.waiting.add(sub);
        return;
      }
    }
    this.#startWith(sub, te, last);
  }

  /**
   * Order books: the tier's last emitted view, so its next update continues it; none yet (the
   * book is still syncing): the tier's first emission, a whole view, is the snapshot.
   */
  #serveBuiltSnapshot(sub: HubSubscriber, te: TierEntry): void {
    te.waiting.add(sub);
    const built = te.coalescer.snapshot!();
    // subscribers still waiting take this snapshot too: the tier's emissions continue it now
    if (built) this.#serveWaiting(te, built);
  }

  unsubscribe(sub: HubSubscriber, key: string, tier: number): void {
    const ch = this.#channels.get(key);
    const te = ch?.tiers.get(tierKey(tier, this.#lane(sub, tier)));
    if (!ch || !te) return;
    const enc = sub.codec.encoding;
    sub.leave(te.topics[enc]);
    te.waiting.delete(sub);
    te.historyFetch.get(sub)?.abort();
    te.historyFetch.delete(sub);
    te.histories.delete(sub);
    te.replaying.get(sub)?.abort();
    te.replaying.delete(sub);
    te.subs[enc] = Math.max(0, te.subs[enc] - 1);
    ch.refs = Math.max(0, ch.refs - 1);
    if (te.subs.msgpack + te.subs.json === 0) this.#dropTier(te);
    if (ch.refs === 0) this.#scheduleRelease(ch);
  }

  /** `d` as `sub`'s snapshot, with the tier's seq (and its history), then the tier's topic. */
  #startWith(sub: HubSubscriber, te: TierEntry, d: Payload): void {
    const item = dataItem('data', te.channel.spec.name, te.seq, d, true);
    const history = this.#takeHistory(te, sub, d);
    if (history) item.history = history;
    sub.send(sub.codec.encode(item));
    sub.servedSnapshot?.(te.channel.spec.key, te.tier);
    sub.join(te.topics[sub.codec.encoding]);
  }

  /** Every subscriber waiting at the tier takes `d` as its snapshot. */
  #serveWaiting(te: TierEntry, d: Payload): void {
    const waiting = [...te.waiting];
    te.waiting.clear();
    for (const sub of waiting) if (!sub.closed) this.#startWith(sub, te, d);
  }

  /** A `history` subscriber's closed bars before the snapshot's bar `d` (the newest n of them). */
  #takeHistory(te: TierEntry, sub: HubSubscriber, d: Payload): Payload[] | undefined {
    const h = te.histories.get(sub);
    if (!h) return undefined;
    te.histories.delete(sub);
    const before = h.bars.filter((b) => (b.t as number) < (d.t as number));
    return before.slice(Math.max(0, before.length - h.n));
  }

  #ensureChannel(spec: ChannelSpec): ChannelEntry {
    let ch = this.#channels.get(spec.key);
    if (ch) {
      if (ch.releaseTimer !== undefined) {
        this.#clock.clearTimeout(ch.releaseTimer);
        ch.releaseTimer = undefined;
      }
      return ch;
    }
    ch = { spec, last: undefined, tiers: new Map(), refs: 0, unsubscribe: undefined, releaseTimer: undefined, closedBars: spec.history ? [] : undefined };
    this.#channels.set(spec.key, ch);
    const entry = ch;
    entry.unsubscribe = this.#bus.subscribe(spec.subject, (_subject, payload) => this.#onMessage(entry, payload));
    this.stats.upstreamSubscribes++;
    return ch;
  }

  #decode(spec: ChannelSpec, payload: Uint8Array): Update<Payload> | undefined {
    try {
      return spec.decode(payload);
    } catch {
      this.stats.badPayloads++;
      return undefined;
    }
  }

  #onMessage(ch: ChannelEntry, payload: Uint8Array): void {
    const u = this.#decode(ch.spec, payload);
    if (u) this.#push(ch, u);
  }

  /**
   * Hand an update to a channel's local subscribers as if it came from the bus (the gateway's
   * own notices, e.g. on `system` when the bus connection drops). False when nobody here
   * subscribes to that channel.
   */
  inject(key: string, u: Update<Payload>): boolean {
    const ch = this.#channels.get(key);
    if (!ch) return false;
    this.#push(ch, u);
    return true;
  }

  #push(ch: ChannelEntry, u: Update<Payload>): void {
    this.stats.updatesIn++;
    // a correction or cancel is not the channel's value: snapshots stay the last trade; nor is a
    // closed bar sent again for an earlier interval (`corrected`): the snapshot stays the newest
    // bar, or a `history` subscriber would miss the bars between the two
    if (u.op === undefined && !(ch.spec.mode === 'bar' && ch.last && (u.d.t as number) < (ch.last.t as number))) ch.last = u.d;
    if (ch.closedBars && u.d.closed === true) keepClosedBar(ch.closedBars, u.d);
    this.onUpdate?.(ch.spec, u.d);
    let now = -1;
    for (const te of ch.tiers.values()) {
      te.coalescer.push(u);
      if (te.tier === 0) {
        if (te.dirty) continue;
        te.dirty = true;
        this.#emitThisTurn(te);
        continue;
      }
      // Leading edge: a (channel, tier) that has not emitted for at least its throttle emits at
      // once (with the other emissions of this event-loop turn); a faster update waits for the
      // window that started at the last emission. An entry already waiting in a slot that is
      // overdue (slot rounding, or a late timer) goes now as well. With batchMs, both wait for
      // the next point of the batch grid instead.
      if (now < 0) now = this.#clock.nowMs();
      const due = te.lastEmit + te.tier;
      if (te.dirty) {
        if (te.dueAt >= 0 && now >= due && this.#batchMs === 0) {
          this.#unslot(te);
          this.#emitThisTurn(te);
        }
        continue;
      }
      te.dirty = true;
      if (now < due) this.#slotTrailing(te);
      else if (!this.#offTheGrid(te, now) || this.#idle(te, now)) this.#emitThisTurn(te);
      else this.#slot(te, now);
    }
  }

  /** Whether time `t` is off te's grid (never without a grid). */
  #offTheGrid(te: TierEntry, t: number): boolean {
    return this.#batchMs > 0 && (t - te.offset) % te.step !== 0;
  }

  /**
   * Whether `te` may emit at `now` off its grid: only when the hub has emitted nothing throttled
   * for at least the grid's step. Every turn with throttled output is then a grid point or
   * follows a whole step without any, so a socket still gets at most about one throttled write
   * per step on average, and under steady load (output at every grid point) nothing leaves the
   * grid. A hub with nothing else to send does not hold a quiet channel's update for the grid.
   */
  #idle(te: TierEntry, now: number): boolean {
    return now - this.#lastThrottled >= te.step && !this.#slotOverdue(now);
  }

  /**
   * Whether a slot is due and has not fired yet: the event loop is late (a long turn), and that
   * slot's throttled output comes in a moment. The hub is not idle then, though nothing went out
   * for a step.
   */
  #slotOverdue(now: number): boolean {
    for (const at of this.#slots.keys()) if (at <= now) return true;
    return false;
  }

  /**
   * Wait for the window that started at te's last emission. On the grid (or without one) that is
   * #slot. After an emission off the grid (#idle) the window ends off the grid too: it gets a
   * slot of its own at its exact end (1 ms timer resolution), and #fireSlot sends it there only
   * if the hub is still idle, else moves it to the next grid point.
   */
  #slotTrailing(te: TierEntry): void {
    const due = te.lastEmit + te.tier;
    if (this.#offTheGrid(te, te.lastEmit)) this.#slotAt(te, Math.ceil(due));
    else this.#slot(te, due);
  }

  #emitThisTurn(te: TierEntry): void {
    this.#immediate.add(te);
    if (!this.#immediateScheduled) {
      this.#immediateScheduled = true;
      this.#clock.defer(this.#flushImmediate);
    }
  }

  /**
   * Wait for a trailing flush at `due` (clock ms), rounded up to the slot grid. Slots are timer
   * buckets: one timer per slot in use, so the number of timers is bounded by throttle / slot
   * and not by the number of channels, and every flush of a slot runs in one turn.
   */
  #slot(te: TierEntry, due: number): void {
    this.#slotAt(te, Math.ceil((due - te.offset) / te.step) * te.step + te.offset);
  }

  #slotAt(te: TierEntry, at: number): void {
    te.dueAt = at;
    let slot = this.#slots.get(at);
    if (!slot) {
      const entries = new Set<TierEntry>();
      slot = { handle: undefined, entries };
      this.#slots.set(at, slot);
      slot.handle = this.#clock.setTimeout(() => this.#fireSlot(at, entries), Math.max(0, at - this.#clock.nowMs()));
    }
    slot.entries.add(te);
  }

  #unslot(te: TierEntry): void {
    const at = te.dueAt;
    if (at < 0) return;
    te.dueAt = -1;
    const slot = this.#slots.get(at);
    if (!slot) return;
    slot.entries.delete(te);
    if (slot.entries.size === 0) {
      this.#clock.clearTimeout(slot.handle);
      this.#slots.delete(at);
    }
  }

  #fireSlot(at: number, entries: Set<TierEntry>): void {
    this.#slots.delete(at);
    // Node's timers run on the event loop's cached millisecond clock, so a slot's timer may fire
    // up to about 1 ms before `at` by performance.now(): the slot is due all the same (sending
    // part of it a turn later would cost every socket a second write). Windows are therefore
    // kept to the 1 ms resolution of timers. A timer that fires late does not move the window
    // either: it counts from the slot, or every window of a busy channel would round up to one
    // more slot.
    const now = Math.max(this.#clock.nowMs(), at);
    // (taken before this slot's own flushes: everything in the slot goes out in this one turn)
    const idleMs = this.#slotOverdue(now) ? 0 : now - this.#lastThrottled;
    for (const te of entries) {
      te.dueAt = -1;
      if (now < te.lastEmit + te.tier)
        this.#slotTrailing(te); // (not expected)
      else if (this.#offTheGrid(te, at) && idleMs < te.step)
        this.#slot(te, at); // a window that ended off the grid, and the hub is busy again: the next grid point
      else this.#flush(te, now - at < te.step ? at : now);
    }
  }

  #ensureTier(ch: ChannelEntry, tier: number, lane: number): TierEntry {
    let te = ch.tiers.get(tierKey(tier, lane));
    if (te) return te;
    const key = ch.spec.key;
    // lane 0 keeps the plain topic names; the others are told apart by a lane suffix on the tier
    const t = lane === 0 ? String(tier) : `${tier}.${lane}`;
    const step = this.#batchMs > 0 ? gridStep(tier, this.#batchMs) : FLUSH_SLOT_MS;
    te = {
      channel: ch,
      tier,
      lane,
      key: tierKey(tier, lane),
      step,
      offset: lane === 0 ? 0 : Math.round((lane * step) / this.#lanes),
      coalescer: ch.spec.coalescer?.(tier) ?? createCoalescer<Payload>(ch.spec.mode, tier),
      topics: { msgpack: `${t}|m|${key}`, json: `${t}|j|${key}` },
      subs: { msgpack: 0, json: 0 },
      seq: 0,
      dirty: false,
      lastEmit: -Infinity,
      dueAt: -1,
      waiting: new Set(),
      replaying: new Map(),
      historyFetch: new Map(),
      histories: new Map(),
    };
    ch.tiers.set(te.key, te);
    return te;
  }

  #dropTier(te: TierEntry): void {
    const ch = te.channel;
    ch.tiers.delete(te.key);
    this.stats.conflated += te.coalescer.conflated;
    te.coalescer.close?.();
    this.#immediate.delete(te);
    this.#unslot(te);
    te.dirty = false;
  }

  #scheduleRelease(ch: ChannelEntry): void {
    if (ch.releaseTimer !== undefined) return;
    const release = (): void => {
      ch.releaseTimer = undefined;
      if (ch.refs > 0) return;
      ch.unsubscribe?.();
      ch.unsubscribe = undefined;
      this.#channels.delete(ch.spec.key);
      this.stats.upstreamReleases++;
    };
    if (this.#releaseMs === 0) release();
    else ch.releaseTimer = this.#clock.setTimeout(release, this.#releaseMs);
  }

  #frame(name: string, items: { d: Payload; coalesced: number; seq: number; op?: ItemOp }[]): DataItem | BatchFrame {
    return itemsFrame(items.map((e) => dataItem(e.op ?? 'data', name, e.seq, e.d, false, e.coalesced)));
  }

  /** `at`: the emission's time for the throttle window (default: now) */
  #flush(te: TierEntry, at?: number): void {
    te.dirty = false;
    if (te.channel.tiers.get(te.key) !== te) return; // dropped meanwhile
    const emissions = te.coalescer.drain();
    if (emissions.length === 0) {
      // nothing due (a coalescer may hold back what it was given): subscribers waiting for this
      // flush take the channel's value now, rather than wait for an emission that may not come
      this.#serveWaitingLast(te);
      return;
    }
    const now = this.#clock.nowMs();
    te.lastEmit = at ?? now;
    if (te.tier > 0) {
      // when it went out: a late slot's emission counts at the slot's time for its window (#fireSlot)
      if (now > this.#lastThrottled) this.#lastThrottled = now;
      if (this.#offTheGrid(te, te.lastEmit)) this.stats.offGrid++;
    }
    const items = emissions.map((e) => {
      const item: { d: Payload; coalesced: number; seq: number; op?: ItemOp } = { d: e.d, coalesced: e.coalesced, seq: e.seq ?? ++te.seq };
      if (e.op !== undefined) item.op = e.op;
      return item;
    });
    if (emissions[emissions.length - 1]!.seq !== undefined) te.seq = items[items.length - 1]!.seq;
    this.stats.updatesOut += items.length;
    // bounded frames: a burst becomes several batch frames of at most MAX_BATCH_ITEMS
    for (let i = 0; i < items.length; i += MAX_BATCH_ITEMS) {
      const frame = this.#frame(te.channel.spec.name, items.length <= MAX_BATCH_ITEMS ? items : items.slice(i, i + MAX_BATCH_ITEMS));
      for (const enc of ['msgpack', 'json'] as const) {
        const n = te.subs[enc] - (te.waiting.size > 0 ? countEnc(te.waiting, enc) : 0);
        if (n <= 0) continue;
        const codec = CODECS[enc];
        const bytes = codec.encode(frame);
        this.#publisher.publish(te.topics[enc], bytes, codec.binary);
        this.stats.framesPublished++;
        this.stats.framesOut += n;
        this.stats.bytesOut += bytes.byteLength * n;
      }
    }
    if (te.waiting.size > 0) {
      // subscribers waiting for a first value get this whole window (the first item flagged as
      // their snapshot): sending only the last item would lose the window's other trades and
      // closed bars, which arrived after they subscribed
      const waiting = [...te.waiting];
      te.waiting.clear();
      for (const sub of waiting) {
        if (sub.closed) continue;
        this.#sendWindow(te, sub, items, true);
        sub.servedSnapshot?.(te.channel.spec.key, te.tier);
        sub.join(te.topics[sub.codec.encoding]);
      }
    }
  }

  /** A window's items to one subscriber; `asSnapshot`: its first data item is the subscriber's snapshot. */
  #sendWindow(te: TierEntry, sub: HubSubscriber, items: { d: Payload; coalesced: number; seq: number; op?: ItemOp }[], asSnapshot: boolean): void {
    const name = te.channel.spec.name;
    for (let i = 0; i < items.length; i += MAX_BATCH_ITEMS) {
      const chunk = items.slice(i, i + MAX_BATCH_ITEMS).map((e, j) => {
        // the window's first data item is this subscriber's snapshot (flagged, never with coalesced)
        const first = asSnapshot && i + j === 0 && e.op === undefined;
        const item = dataItem(e.op ?? 'data', name, e.seq, e.d, first, first ? 1 : e.coalesced);
        if (first) {
          const history = this.#takeHistory(te, sub, e.d);
          if (history) item.history = history;
        }
        return item;
      });
      sub.send(sub.codec.encode(itemsFrame(chunk)));
    }
  }

  /**
   * `sub` replaces its subscription of (key, tier) (a subscribe again, docs/protocol.md#subscribe):
   * it is sent now what the tier's current window holds, numbered as the tier will emit it (the
   * tier's other subscribers get the same items, with the same seq, at the window's end), so that
   * leaving the tier loses nothing its old subscription was owed: no trade or closed bar is
   * dropped, and a latest-value channel ends on its newest value. A subscriber still waiting for
   * its snapshot gets the window as it would have (the first item flagged). Not for durable
   * replays (they resume with `since`) nor order books (a new subscription starts from a snapshot).
   */
  handOff(sub: HubSubscriber, key: string, tier: number): void {
    const ch = this.#channels.get(key);
    const te = ch?.tiers.get(tierKey(tier, this.#lane(sub, tier)));
    if (!ch || !te || ch.spec.replay || !te.coalescer.peek || !te.coalescer.pending) return;
    // a history read still in flight: nothing was sent on this subscription, and none is owed yet
    if (te.historyFetch.has(sub) || sub.closed) return;
    let seq = te.seq;
    const items = te.coalescer.peek().map((e) => {
      const item: { d: Payload; coalesced: number; seq: number; op?: ItemOp } = { d: e.d, coalesced: e.coalesced, seq: e.seq ?? ++seq };
      if (e.op !== undefined) item.op = e.op;
      return item;
    });
    const waiting = te.waiting.delete(sub);
    this.#sendWindow(te, sub, items, waiting);
  }

  /** Subscribers waiting at a flush that emitted nothing: the channel's value, if any, as their snapshot. */
  #serveWaitingLast(te: TierEntry): void {
    const last = te.channel.last;
    if (te.waiting.size > 0 && last && !te.coalescer.snapshot) this.#serveWaiting(te, last);
  }

  /** Conflated count including live coalescers (for metrics). */
  conflatedTotal(): number {
    let n = this.stats.conflated;
    for (const c of this.#channels.values()) for (const t of c.tiers.values()) n += t.coalescer.conflated;
    return n;
  }

  close(): void {
    for (const slot of this.#slots.values()) this.#clock.clearTimeout(slot.handle);
    this.#slots.clear();
    for (const c of this.#channels.values()) {
      c.unsubscribe?.();
      if (c.releaseTimer !== undefined) this.#clock.clearTimeout(c.releaseTimer);
      for (const te of c.tiers.values()) te.coalescer.close?.();
    }
    this.#channels.clear();
    this.#immediate.clear();
  }
}

/** Remember a closed bar (replacing one with the same `t`), keeping the newest HISTORY_RING. */
function keepClosedBar(bars: Payload[], bar: Payload): void {
  const t = bar.t as number;
  let i = bars.length;
  while (i > 0 && (bars[i - 1]!.t as number) > t) i--;
  if (i > 0 && bars[i - 1]!.t === t) bars[i - 1] = bar;
  else bars.splice(i, 0, bar);
  if (bars.length > HISTORY_RING) bars.shift();
}

/**
 * The grid step of a throttled tier with `throttle.batchMs`: the largest divisor of the tier not
 * above batchMs. A window's end (last emission + tier) then falls on the grid, so only leading
 * emissions wait for it (at most one step); a trailing flush is never pushed later.
 */
export function gridStep(tier: number, batchMs: number): number {
  if (tier <= batchMs) return Math.max(1, tier);
  for (let k = Math.ceil(tier / batchMs); k <= tier; k++) if (tier % k === 0) return tier / k;
  return 1;
}

/** Subscribers per tier (its lanes summed). */
function tierCounts(entries: Iterable<TierEntry>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of entries) out[String(t.tier)] = (out[String(t.tier)] ?? 0) + t.subs.msgpack + t.subs.json;
  return out;
}

function countEnc(subs: Set<HubSubscriber>, enc: Encoding): number {
  let n = 0;
  for (const s of subs) if (s.codec.encoding === enc) n++;
  return n;
}
