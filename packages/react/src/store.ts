import { TickwireClientError, type TickwireClient, type Update } from '@tickwire/client';

/**
 * What the hooks of one provider share: one entry per channel, however many components use it.
 *
 * - **Reference-counted.** Each hook instance holds a claim (`acquire` → `release`) with its own
 *   throttle and on-screen flag. The first claim subscribes; the channel's throttle is the
 *   fastest any claim asks for, its visibility "on screen" when any claim is; the last release
 *   unsubscribes. Requests of one turn go out together (one `subscribe` frame for ten
 *   components mounting at once), and a release is only acted on after the turn, so React
 *   StrictMode's mount → unmount → mount costs nothing on the wire.
 * - **Frame-batched.** Updates are collected as they arrive and handed to React once per
 *   animation frame: components re-render at most at the screen's rate whatever the stream's.
 */

/** What a hook sees of a channel: the latest value and, for ordered channels, the recent items. */
export interface ChannelSnapshot<T = unknown> {
  /** the latest payload (undefined before the first) */
  readonly value: T | undefined;
  /** the latest update with its metadata (seq, snapshot flag, coalesced count) */
  readonly update: Update<T> | undefined;
  /** trades, executions, bars: the most recent items, oldest first (at most the largest `limit` asked) */
  readonly items: readonly T[];
  /** updates received since the channel was subscribed (frames batch several into one render) */
  readonly received: number;
}

export interface ClaimOptions {
  /** at most one update per this many ms from the server (0 = every update) */
  throttle?: number | undefined;
  /** false while the component is off screen (slow tier for quotes, tickers, portfolio) */
  visible?: boolean | undefined;
  /** items to keep for list channels (trades, executions, bars) */
  limit?: number | undefined;
}

type Keyed = (d: unknown) => string | number | undefined;

interface Claim {
  throttle: number;
  visible: boolean;
  limit: number;
}

interface Entry {
  readonly channel: string;
  readonly claims: Map<number, Claim>;
  /** key of an item for de-duplication and replacement (bars by start time, trades by id) */
  readonly key: Keyed | undefined;
  snapshot: ChannelSnapshot;
  /** updates arrived since the last frame, not yet shown */
  pending: Update[];
  readonly listeners: Set<() => void>;
  /** what the server has been asked for (undefined: not subscribed) */
  sent: { throttle: number; visible: boolean } | undefined;
  stopListening: (() => void) | undefined;
}

const EMPTY: ChannelSnapshot = Object.freeze({ value: undefined, update: undefined, items: Object.freeze([]) as readonly unknown[], received: 0 });

/** How updates of a channel kind become a list: trades and executions append, bars replace by start time. */
function keyOf(channel: string): Keyed | undefined {
  const kind = channel.includes(':') ? channel.slice(0, channel.indexOf(':')) : channel;
  if (kind === 'trade' || kind === 'executions') return (d) => (d as { id?: string }).id;
  if (kind === 'bar.1s' || kind === 'bar.1m') return (d) => (d as { t?: number }).t;
  return undefined;
}

export type FrameScheduler = (fn: () => void) => void;

export interface StoreOptions {
  /** how to wait for the next frame (default requestAnimationFrame, else a 16 ms timer) */
  schedule?: FrameScheduler;
  /** a request the store made failed (other than because the client closed) */
  onError?: (err: unknown) => void;
}

const defaultScheduler: FrameScheduler =
  typeof requestAnimationFrame === 'function' ? (fn) => void requestAnimationFrame(() => fn()) : (fn) => void setTimeout(fn, 16);

export class TickwireStore {
  readonly client: TickwireClient;
  readonly #entries = new Map<string, Entry>();
  readonly #schedule: FrameScheduler;
  readonly #onError: (err: unknown) => void;
  #nextClaim = 1;
  #frameScheduled = false;
  #syncScheduled = false;
  readonly #dirty = new Set<Entry>();
  /** renders handed to React (frames with at least one changed channel), for tests and devtools */
  framesFlushed = 0;

  constructor(client: TickwireClient, opts: StoreOptions = {}) {
    this.client = client;
    this.#schedule = opts.schedule ?? defaultScheduler;
    const onError = opts.onError ?? ((err: unknown) => console.warn('tickwire:', err));
    this.#onError = (err) => {
      if (err instanceof TickwireClientError && err.code === 'CLOSED') return; // unmounted meanwhile
      onError(err);
    };
  }

  /** Channels with at least one claim, with their claim count. */
  claims(): Record<string, number> {
    return Object.fromEntries([...this.#entries.values()].map((e) => [e.channel, e.claims.size]));
  }

  /** Take a claim on a channel; returns its id for `update` and `release`. */
  acquire(channel: string, opts: ClaimOptions = {}): number {
    let e = this.#entries.get(channel);
    if (!e) {
      e = { channel, claims: new Map(), key: keyOf(channel), snapshot: EMPTY, pending: [], listeners: new Set(), sent: undefined, stopListening: undefined };
      this.#entries.set(channel, e);
    }
    const id = this.#nextClaim++;
    e.claims.set(id, claimOf(opts));
    this.#scheduleSync();
    return id;
  }

  /** Change a claim's options (throttle, visibility, limit). */
  update(channel: string, id: number, opts: ClaimOptions): void {
    const e = this.#entries.get(channel);
    if (!e?.claims.has(id)) return;
    const next = claimOf(opts);
    const prev = e.claims.get(id)!;
    if (prev.throttle === next.throttle && prev.visible === next.visible && prev.limit === next.limit) return;
    e.claims.set(id, next);
    this.#scheduleSync();
  }

  release(channel: string, id: number): void {
    const e = this.#entries.get(channel);
    if (!e?.claims.delete(id)) return;
    this.#scheduleSync();
  }

  /** For useSyncExternalStore: the channel's snapshot, replaced (never mutated) once per frame. */
  snapshot(channel: string): ChannelSnapshot {
    return this.#entries.get(channel)?.snapshot ?? EMPTY;
  }

  /** For useSyncExternalStore: be told after each frame that changed the channel. */
  listen(channel: string, onChange: () => void): () => void {
    let e = this.#entries.get(channel);
    if (!e) {
      e = { channel, claims: new Map(), key: keyOf(channel), snapshot: EMPTY, pending: [], listeners: new Set(), sent: undefined, stopListening: undefined };
      this.#entries.set(channel, e);
      this.#scheduleSync(); // dropped again at the sync if nobody claims it
    }
    e.listeners.add(onChange);
    const entry = e;
    return () => void entry.listeners.delete(onChange);
  }

  /** Stop everything (the provider unmounted for good). */
  dispose(): void {
    for (const e of this.#entries.values()) e.stopListening?.();
    this.#entries.clear();
    this.#dirty.clear();
  }

  /**
   * Bring the server in line with the claims, once per turn: after StrictMode's double mount,
   * after ten components mounted in one commit. Subscribes are grouped by (throttle, visible)
   * into one request each.
   */
  #scheduleSync(): void {
    if (this.#syncScheduled) return;
    this.#syncScheduled = true;
    // a macrotask, not a microtask: React runs an effect's StrictMode re-mount (and a commit's
    // other effects) before it, so a release followed by a new claim nets out
    setTimeout(() => {
      this.#syncScheduled = false;
      this.#sync();
    }, 0);
  }

  #sync(): void {
    const subscribe = new Map<string, { throttle: number; visible: boolean; channels: string[] }>();
    const unsubscribe: string[] = [];
    const visibility = new Map<boolean, string[]>();
    for (const e of [...this.#entries.values()]) {
      if (e.claims.size === 0) {
        if (e.sent) unsubscribe.push(e.channel);
        e.stopListening?.();
        e.stopListening = undefined;
        e.sent = undefined;
        e.pending = [];
        this.#dirty.delete(e);
        if (e.listeners.size === 0) this.#entries.delete(e.channel);
        else e.snapshot = EMPTY;
        continue;
      }
      let throttle = Infinity;
      let visible = false;
      for (const c of e.claims.values()) {
        throttle = Math.min(throttle, c.throttle);
        visible ||= c.visible;
      }
      if (!e.sent || e.sent.throttle !== throttle) {
        // new, or the fastest claim changed: (re)subscribe with the current visibility
        if (!e.stopListening) e.stopListening = this.#listenTo(e);
        e.sent = { throttle, visible };
        const k = `${throttle}/${visible}`;
        const g = subscribe.get(k);
        if (g) g.channels.push(e.channel);
        else subscribe.set(k, { throttle, visible, channels: [e.channel] });
      } else if (e.sent.visible !== visible) {
        e.sent.visible = visible;
        const list = visibility.get(visible);
        if (list) list.push(e.channel);
        else visibility.set(visible, [e.channel]);
      }
    }
    const c = this.client;
    const report = this.#onError;
    if (unsubscribe.length > 0) c.unsubscribe(unsubscribe).catch(report);
    for (const g of subscribe.values()) {
      const current = new Set(c.subscriptions);
      const wasSubscribed = g.channels.filter((ch) => current.has(ch));
      if (wasSubscribed.length > 0) {
        // the flag first (it is kept by the client and carried by the re-subscribe)
        c.setVisible(wasSubscribed, g.visible).catch(report);
        c.setThrottle(wasSubscribed, g.throttle).catch(report);
      }
      const fresh = g.channels.filter((ch) => !wasSubscribed.includes(ch));
      if (fresh.length > 0) c.subscribe(fresh, { throttle: g.throttle, visible: g.visible }).catch(report);
    }
    for (const [visible, channels] of visibility) c.setVisible(channels, visible).catch(report);
  }

  #listenTo(e: Entry): () => void {
    const onUpdate = (_d: unknown, u: Update<unknown>): void => {
      e.pending.push(u);
      this.#dirty.add(e);
      if (!this.#frameScheduled) {
        this.#frameScheduled = true;
        this.#schedule(() => this.#flush());
      }
    };
    return this.client.channel(e.channel, onUpdate as never);
  }

  /** One animation frame: fold each changed channel's pending updates into a new snapshot, then notify. */
  #flush(): void {
    this.#frameScheduled = false;
    if (this.#dirty.size === 0) return;
    const changed = [...this.#dirty];
    this.#dirty.clear();
    for (const e of changed) e.snapshot = fold(e, e.pending);
    for (const e of changed) e.pending = [];
    this.framesFlushed++;
    for (const e of changed) for (const l of [...e.listeners]) l();
  }
}

function claimOf(opts: ClaimOptions): Claim {
  const throttle = typeof opts.throttle === 'number' && opts.throttle >= 0 ? opts.throttle : 0;
  const limit = typeof opts.limit === 'number' && opts.limit > 0 ? Math.floor(opts.limit) : 0;
  return { throttle, visible: opts.visible ?? true, limit };
}

function fold(e: Entry, updates: readonly Update[]): ChannelSnapshot {
  const prev = e.snapshot;
  const last = updates[updates.length - 1]!;
  let items = prev.items;
  const key = e.key;
  if (key) {
    let limit = 0;
    for (const c of e.claims.values()) limit = Math.max(limit, c.limit);
    if (limit > 0) {
      const next = items.slice();
      for (const u of updates) {
        const k = key(u.d);
        // a re-sent item (a snapshot after a reconnect or a tier change) replaces, never repeats;
        // an open bar's newer state replaces the older one
        const at = k === undefined ? -1 : lastIndexWhere(next, (d) => key(d) === k);
        if (at >= 0) next[at] = u.d;
        else next.push(u.d);
      }
      items = next.length > limit ? next.slice(next.length - limit) : next;
    } else if (items.length > 0) items = [];
  }
  return { value: last.d, update: last, items, received: prev.received + updates.length };
}

/** Search from the end: a repeat is nearly always among the newest items. */
function lastIndexWhere<T>(list: readonly T[], pred: (x: T) => boolean): number {
  for (let i = list.length - 1, n = 0; i >= 0 && n < 512; i--, n++) if (pred(list[i]!)) return i;
  return -1;
}
