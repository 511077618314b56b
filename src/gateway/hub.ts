import type { Bus, Unsubscribe } from '../bus/bus.js';
import type { Encoding, FrameCodec } from '../codec/frames.js';
import { CODECS } from '../codec/frames.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { ChannelSpec } from './channels.js';
import type { Coalescer, Update } from './coalescer.js';
import { createCoalescer } from './coalescer.js';
import type { Payload } from './payloads.js';

/** Where encoded frames go: uWS `app.publish` in production, a recorder in unit tests. */
/** Most data items in one batch frame: bounds frame size, and so per-connection buffers. */
export const MAX_BATCH_ITEMS = 256;

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
}

/** Timers, injectable so coalescing can be tested on a virtual clock. */
export interface HubClock {
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** run fn after the current event-loop turn (tier 0 batching) */
  defer(fn: () => void): void;
}

export const realClock: HubClock = {
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  defer: (fn) => setImmediate(fn),
};

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
}

interface TierEntry {
  readonly channel: ChannelEntry;
  readonly tier: number;
  readonly coalescer: Coalescer<Payload>;
  readonly topics: Readonly<Record<Encoding, string>>;
  readonly subs: Record<Encoding, number>;
  /** last seq emitted at this tier */
  seq: number;
  dirty: boolean;
  /** subscribers waiting for the channel's first value as their snapshot */
  readonly waiting: Set<HubSubscriber>;
  /**
   * subscribers of a durable channel whose replay is still running (they join after it), with
   * the controller that stops it: one replay per (subscriber, channel), a new one supersedes
   */
  readonly replaying: Map<HubSubscriber, AbortController>;
}

interface ChannelEntry {
  readonly spec: ChannelSpec;
  last: Payload | undefined;
  readonly tiers: Map<number, TierEntry>;
  refs: number;
  unsubscribe: Unsubscribe | undefined;
  releaseTimer: unknown;
}

interface TierTimer {
  handle: unknown;
  readonly dirty: Set<TierEntry>;
}

export interface HubOptions {
  bus: Bus;
  publisher: TopicPublisher;
  store?: LastValueStore;
  clock?: HubClock;
  /** keep an upstream subscription this long after its last subscriber leaves */
  upstreamReleaseMs: number;
}

export interface SubscribeOptions {
  snapshot: boolean;
  since?: number;
}

/**
 * The gateway hub: one upstream bus subscription per channel with local subscribers, one
 * coalescer per (channel, throttle tier), one encoding per emission and encoding, published to a
 * uWS topic that the subscribers of that (channel, tier, encoding) joined.
 */
export class Hub {
  readonly stats: HubStats = {
    updatesIn: 0, updatesOut: 0, conflated: 0, framesPublished: 0, bytesOut: 0, framesOut: 0,
    upstreamSubscribes: 0, upstreamReleases: 0, badPayloads: 0,
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
  readonly #channels = new Map<string, ChannelEntry>();
  readonly #timers = new Map<number, TierTimer>();
  readonly #immediate = new Set<TierEntry>();
  #immediateScheduled = false;
  readonly #flushImmediate = (): void => {
    this.#immediateScheduled = false;
    for (const te of this.#immediate) this.#flush(te);
    this.#immediate.clear();
  };

  constructor(opts: HubOptions) {
    this.#bus = opts.bus;
    this.#publisher = opts.publisher;
    this.#store = opts.store;
    this.#clock = opts.clock ?? realClock;
    this.#releaseMs = opts.upstreamReleaseMs;
  }

  /** Channels with an upstream subscription, with subscriber counts per tier. */
  channelStats(): { channel: string; subscribers: number; tiers: Record<string, number> }[] {
    return [...this.#channels.values()].map((c) => ({
      channel: c.spec.name,
      subscribers: c.refs,
      tiers: Object.fromEntries([...c.tiers.values()].map((t) => [String(t.tier), t.subs.msgpack + t.subs.json])),
    }));
  }

  get upstreamCount(): number {
    let n = 0;
    for (const c of this.#channels.values()) if (c.unsubscribe) n++;
    return n;
  }

  /** Latest value and tier seq of a channel, if the hub holds one. */
  current(key: string, tier: number): { d: Payload; seq: number } | undefined {
    const c = this.#channels.get(key);
    const te = c?.tiers.get(tier);
    if (!c?.last || !te) return undefined;
    return { d: c.last, seq: te.seq };
  }

  subscribe(sub: HubSubscriber, spec: ChannelSpec, tier: number, opts: SubscribeOptions): void {
    const ch = this.#ensureChannel(spec);
    const te = this.#ensureTier(ch, tier);
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
        .replay(opts.since, (updates) => {
          if (sub.closed || updates.length === 0 || !current()) return;
          const items = updates.map((u) => ({ d: u.d, coalesced: 1, seq: u.seq ?? 0 }));
          for (let i = 0; i < items.length; i += MAX_BATCH_ITEMS) {
            sub.send(sub.codec.encode(this.#frame(spec.name, items.slice(i, i + MAX_BATCH_ITEMS))));
          }
        }, { signal: ctl.signal, writable })
        .then(joinAfterReplay, joinAfterReplay);
      return;
    }
    if (!opts.snapshot) {
      sub.join(topic);
      return;
    }
    if (ch.last && spec.mode !== 'latest' && te.coalescer.pending) {
      // trades or bars are pending in this tier's window: the current value is among them, so
      // take the whole window at its flush (first item flagged as the snapshot); a snapshot now
      // would be followed by older items of the same window, out of order
      te.waiting.add(sub);
      return;
    }
    if (ch.last) {
      this.#sendSnapshot(sub, te, ch.last);
      sub.join(topic);
      return;
    }
    const key = spec.lastValueKey;
    if (!this.#store || !key) {
      te.waiting.add(sub);
      return;
    }
    te.waiting.add(sub);
    this.#store.getMany([key]).then(
      ([bytes]) => {
        if (sub.closed || !te.waiting.has(sub)) return; // served live meanwhile, or gone
        if (!ch.last && bytes) {
          const u = this.#decode(spec, bytes);
          if (u) ch.last = u.d;
        }
        if (ch.last) {
          te.waiting.delete(sub);
          this.#sendSnapshot(sub, te, ch.last);
          sub.join(topic);
        }
      },
      () => undefined, // store unreachable: the first live value becomes the snapshot
    );
  }

  unsubscribe(sub: HubSubscriber, key: string, tier: number): void {
    const ch = this.#channels.get(key);
    const te = ch?.tiers.get(tier);
    if (!ch || !te) return;
    const enc = sub.codec.encoding;
    sub.leave(te.topics[enc]);
    te.waiting.delete(sub);
    te.replaying.get(sub)?.abort();
    te.replaying.delete(sub);
    te.subs[enc] = Math.max(0, te.subs[enc] - 1);
    ch.refs = Math.max(0, ch.refs - 1);
    if (te.subs.msgpack + te.subs.json === 0) this.#dropTier(te);
    if (ch.refs === 0) this.#scheduleRelease(ch);
  }

  #sendSnapshot(sub: HubSubscriber, te: TierEntry, d: Payload): void {
    sub.send(sub.codec.encode({ op: 'data', ch: te.channel.spec.name, seq: te.seq, d, snapshot: true }));
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
    ch = { spec, last: undefined, tiers: new Map(), refs: 0, unsubscribe: undefined, releaseTimer: undefined };
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
    // a correction or cancel is not the channel's value: snapshots stay the last trade
    if (u.op === undefined) ch.last = u.d;
    this.onUpdate?.(ch.spec, u.d);
    for (const te of ch.tiers.values()) {
      te.coalescer.push(u);
      if (te.dirty) continue;
      te.dirty = true;
      if (te.tier === 0) {
        this.#immediate.add(te);
        if (!this.#immediateScheduled) {
          this.#immediateScheduled = true;
          this.#clock.defer(this.#flushImmediate);
        }
      } else {
        this.#timers.get(te.tier)?.dirty.add(te);
      }
    }
  }

  #ensureTier(ch: ChannelEntry, tier: number): TierEntry {
    let te = ch.tiers.get(tier);
    if (te) return te;
    const key = ch.spec.key;
    te = {
      channel: ch,
      tier,
      coalescer: createCoalescer<Payload>(ch.spec.mode, tier),
      topics: { msgpack: `${tier}|m|${key}`, json: `${tier}|j|${key}` },
      subs: { msgpack: 0, json: 0 },
      seq: 0,
      dirty: false,
      waiting: new Set(),
      replaying: new Map(),
    };
    ch.tiers.set(tier, te);
    if (tier > 0 && !this.#timers.has(tier)) {
      const timer: TierTimer = { handle: undefined, dirty: new Set() };
      timer.handle = this.#clock.setInterval(() => {
        for (const t of timer.dirty) this.#flush(t);
        timer.dirty.clear();
      }, tier);
      this.#timers.set(tier, timer);
    }
    return te;
  }

  #dropTier(te: TierEntry): void {
    const ch = te.channel;
    ch.tiers.delete(te.tier);
    this.stats.conflated += te.coalescer.conflated;
    this.#immediate.delete(te);
    const timer = this.#timers.get(te.tier);
    if (!timer) return;
    timer.dirty.delete(te);
    for (const c of this.#channels.values()) if (c.tiers.has(te.tier)) return;
    this.#clock.clearInterval(timer.handle);
    this.#timers.delete(te.tier);
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

  #frame(name: string, items: { d: Payload; coalesced: number; seq: number; op?: string }[]): object {
    const data = items.map((e) => {
      const item: Record<string, unknown> = { op: e.op ?? 'data', ch: name, seq: e.seq, d: e.d };
      if (e.coalesced > 1) item.coalesced = e.coalesced;
      return item;
    });
    return data.length === 1 ? data[0]! : { op: 'batch', items: data };
  }

  #flush(te: TierEntry): void {
    te.dirty = false;
    const emissions = te.coalescer.drain();
    if (emissions.length === 0 || !te.channel.tiers.has(te.tier)) return;
    const items = emissions.map((e) => {
      const item: { d: Payload; coalesced: number; seq: number; op?: string } = { d: e.d, coalesced: e.coalesced, seq: e.seq ?? ++te.seq };
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
      const name = te.channel.spec.name;
      const waiting = [...te.waiting];
      te.waiting.clear();
      for (const sub of waiting) {
        if (sub.closed) continue;
        for (let i = 0; i < items.length; i += MAX_BATCH_ITEMS) {
          const chunk = items.slice(i, i + MAX_BATCH_ITEMS).map((e, j) => {
            const item: Record<string, unknown> = { op: e.op ?? 'data', ch: name, seq: e.seq, d: e.d };
            if (i + j === 0 && e.op === undefined) item.snapshot = true;
            else if (e.coalesced > 1) item.coalesced = e.coalesced;
            return item;
          });
          sub.send(sub.codec.encode(chunk.length === 1 ? chunk[0]! : { op: 'batch', items: chunk }));
        }
        sub.join(te.topics[sub.codec.encoding]);
      }
    }
  }

  /** Conflated count including live coalescers (for metrics). */
  conflatedTotal(): number {
    let n = this.stats.conflated;
    for (const c of this.#channels.values()) for (const t of c.tiers.values()) n += t.coalescer.conflated;
    return n;
  }

  close(): void {
    for (const t of this.#timers.values()) this.#clock.clearInterval(t.handle);
    this.#timers.clear();
    for (const c of this.#channels.values()) {
      c.unsubscribe?.();
      if (c.releaseTimer !== undefined) this.#clock.clearTimeout(c.releaseTimer);
    }
    this.#channels.clear();
    this.#immediate.clear();
  }
}

function countEnc(subs: Set<HubSubscriber>, enc: Encoding): number {
  let n = 0;
  for (const s of subs) if (s.codec.encoding === enc) n++;
  return n;
}
