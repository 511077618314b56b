import {
  ClientErrorCode,
  CloseCode,
  ErrorCode,
  LocalBook,
  MAX_CHANNELS_PER_REQUEST,
  TickwireClientError,
  type Bar,
  type BookPayload,
  type Notification,
  type NotificationPayload,
  type RejectedChannel,
  type SubscribeOptions,
  type TickwireClient,
  type Trade,
  type TradeCancel,
  type TradeCorrection,
  type Update,
} from '@tickwire/client';

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
 * - **Folded by kind.** Trades and executions append (a trade `correction` replaces the trade it
 *   refers to, a `cancel` removes it); bars of every interval replace by start time (an `empty`
 *   bar removes the one with its start time) and take the `history` of their snapshot; an order book applies each update to its snapshot (LocalBook),
 *   so its value is the whole book, never a delta.
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
  /** the server refused the subscription (code, reason); cleared by the next subscribe that is not refused */
  readonly error?: RejectedChannel | undefined;
}

export interface ClaimOptions {
  /** at most one update per this many ms from the server (0 = every update) */
  throttle?: number | undefined;
  /** false while the component is off screen (slow tier for quotes, tickers, portfolio) */
  visible?: boolean | undefined;
  /** items to keep for list channels (trades, executions, bars) */
  limit?: number | undefined;
  /** bar channels: closed bars to load with the snapshot (1 to 1000; the largest any claim asks) */
  history?: number | undefined;
  /** `book:SYM` channels: levels per side (the largest any claim asks) */
  depth?: number | undefined;
}

type Keyed = (d: unknown) => string | number | undefined;

interface Claim {
  throttle: number;
  visible: boolean;
  limit: number;
  history: number;
  depth: number;
}

/** What the server has been asked for a channel. */
interface Sent {
  throttle: number;
  visible: boolean;
  history: number;
  depth: number;
}

interface Entry {
  readonly channel: string;
  readonly claims: Map<number, Claim>;
  /** key of an item for de-duplication and replacement (bars by start time, trades by id) */
  readonly key: Keyed | undefined;
  snapshot: ChannelSnapshot;
  /** updates arrived since the last frame, not yet shown */
  pending: Update[];
  /** pending updates already folded (when a frame is long in coming), not yet shown */
  staged: ChannelSnapshot | undefined;
  readonly listeners: Set<() => void>;
  /** what the server has been asked for (undefined: not subscribed) */
  sent: Sent | undefined;
  stopListening: (() => void) | undefined;
  /** `book:SYM`: the book rebuilt from the snapshot and its updates */
  book: LocalBook | undefined;
}

/** A channel with nothing yet (also what server rendering shows). */
export const EMPTY: ChannelSnapshot = Object.freeze({
  value: undefined,
  update: undefined,
  items: Object.freeze([]) as readonly unknown[],
  received: 0,
  error: undefined,
});

const kindOf = (channel: string): string => (channel.includes(':') ? channel.slice(0, channel.indexOf(':')) : channel);
const isBarKind = (kind: string): boolean => kind.startsWith('bar.');

/**
 * A trade's key: its `id` within its source. Ids of different sources may collide (a failover
 * changes `src`: docs/protocol.md#trade), so the key is (`src`, `id`); a correction or cancel
 * refers to a trade of its own source (`ref`).
 */
const tradeKey = (src: unknown, id: unknown): string | undefined => (id === undefined ? undefined : `${String(src)}\n${String(id)}`);

/** How updates of a channel kind become a list: trades and executions append, bars (every interval) replace by start time. */
function keyOf(channel: string): Keyed | undefined {
  const kind = kindOf(channel);
  if (kind === 'trade') return (d) => tradeKey((d as Trade).src, (d as Trade).id);
  if (kind === 'executions') return (d) => (d as { id?: string }).id;
  if (isBarKind(kind)) return (d) => (d as { t?: number }).t;
  return undefined;
}

function newEntry(channel: string): Entry {
  return {
    channel,
    claims: new Map(),
    key: keyOf(channel),
    snapshot: EMPTY,
    pending: [],
    staged: undefined,
    listeners: new Set(),
    sent: undefined,
    stopListening: undefined,
    book: kindOf(channel) === 'book' ? new LocalBook() : undefined,
  };
}

export type FrameScheduler = (fn: () => void) => void;

/** Updates a channel holds unfolded while it waits for a frame. */
const MAX_PENDING = 512;

/**
 * `channels` in parts one request may carry (docs/protocol.md#subscribe: at most 1000; the
 * gateway refuses more with LIMIT, the whole request): a page may claim more in one turn.
 */
function parts(channels: string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i < channels.length; i += MAX_CHANNELS_PER_REQUEST) out.push(channels.slice(i, i + MAX_CHANNELS_PER_REQUEST));
  return out;
}

export interface StoreOptions {
  /** how to wait for the next frame (default requestAnimationFrame, else a 16 ms timer) */
  schedule?: FrameScheduler;
  /** a request the store made failed (other than because the client closed) */
  onError?: (err: unknown) => void;
  /**
   * the fixed token the connection holds now: the provider's `token` prop, then each one the
   * server accepted in band (`client.options.token` stays the first): what a hook's own HTTP
   * request (a page of useBarHistory) presents
   */
  token?: () => string | undefined;
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

  /** updates received and not yet folded, over all channels (at most MAX_PENDING a channel), for tests and devtools */
  pendingUpdates(): number {
    let n = 0;
    for (const e of this.#entries.values()) n += e.pending.length;
    return n;
  }

  /** The fixed token the connection holds now (StoreOptions.token), if the store was told it. */
  readonly token: () => string | undefined;

  constructor(client: TickwireClient, opts: StoreOptions = {}) {
    this.client = client;
    this.token = opts.token ?? ((): undefined => undefined);
    this.#schedule = opts.schedule ?? defaultScheduler;
    const onError = opts.onError ?? ((err: unknown) => console.warn('tickwire:', err));
    this.#onError = (err) => {
      if (err instanceof TickwireClientError && err.code === 'CLOSED') return; // unmounted meanwhile
      onError(err);
    };
  }

  /** Hand an error of a request made for a hook (a page of useBarHistory) to the provider's onError. */
  reportError(err: unknown): void {
    this.#onError(err);
  }

  #connectionError: TickwireClientError | undefined;
  readonly #connectionListeners = new Set<() => void>();

  /** The last error the connection reported (an outage, a refused or expired token, a close for good); undefined again once it is open. */
  connectionError(): TickwireClientError | undefined {
    return this.#connectionError;
  }

  /** For useSyncExternalStore: be told when `connectionError()` changes. */
  listenConnectionError(onChange: () => void): () => void {
    this.#connectionListeners.add(onChange);
    return () => void this.#connectionListeners.delete(onChange);
  }

  /** Follow the client's errors for `connectionError()` until the returned function is called (the provider does this while mounted). */
  trackConnection(): () => void {
    const set = (err: TickwireClientError | undefined): void => {
      if (this.#connectionError === err) return;
      this.#connectionError = err;
      for (const l of [...this.#connectionListeners]) l();
    };
    // whether the connection is up: no close since it opened
    let up = this.client.state === 'open';
    const stopErrors = this.client.on('error', (err) => {
      // on a connection that is up, an error that is not a transport failure is not why there
      // is no connection (the gateway's RATE_LIMIT notice, an undecodable frame, the token-expiry
      // warning, a resubscribe never answered, a token refresh that failed): onError hears it.
      // The error that says why a connection ended comes after its `close` event
      if (up && err.code !== ClientErrorCode.TRANSPORT) this.#onError(err);
      else set(err);
    });
    const stopState = this.client.on('state', ({ state }) => {
      up = state === 'open';
      if (up) set(undefined);
    });
    // a close that ends the connection for good, or a 1008 (the token expired, an entitlement was
    // withdrawn, an operator closed it: docs/protocol.md#close-codes) says why here too: the
    // client reports it as a `close` event, not as an `error`
    const stopClose = this.client.on('close', ({ code, reason, willReconnect }) => {
      up = false;
      if (willReconnect && code !== CloseCode.POLICY) return;
      const why = `connection closed (${code}${reason ? ` ${reason}` : ''})${willReconnect ? '' : ' and not reconnecting'}`;
      // (the codes a client that reports the 1008 itself gives: an `error` right after this replaces it)
      if (code === CloseCode.POLICY && reason === 'token expired') set(new TickwireClientError(ErrorCode.UNAUTHENTICATED, why, { reason: 'expired' }));
      else set(new TickwireClientError(code === CloseCode.POLICY ? ErrorCode.FORBIDDEN : ClientErrorCode.CONNECTION_LOST, why));
    });
    return () => {
      stopErrors();
      stopState();
      stopClose();
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
      e = newEntry(channel);
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
    if (sameClaim(prev, next)) return;
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
      e = newEntry(channel);
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
    const subscribe = new Map<string, Sent & { channels: string[] }>();
    const unsubscribe: string[] = [];
    const visibility = new Map<boolean, string[]>();
    for (const e of [...this.#entries.values()]) {
      if (e.claims.size === 0) {
        if (e.sent) unsubscribe.push(e.channel);
        e.stopListening?.();
        e.stopListening = undefined;
        e.sent = undefined;
        e.pending = [];
        e.staged = undefined;
        e.book?.reset();
        this.#dirty.delete(e);
        if (e.listeners.size === 0) this.#entries.delete(e.channel);
        else e.snapshot = EMPTY;
        continue;
      }
      if (e.channel === '') {
        // `useChannel(selected)` before anything is selected: the client throws on an empty name,
        // which would take the channels subscribed with it down too. Refused here, on its own, once
        if (!e.snapshot.error) this.#rejected([{ channel: '', code: ErrorCode.BAD_REQUEST, reason: 'a channel name is a non-empty string' }]);
        continue;
      }
      const want: Sent = { throttle: Infinity, visible: false, history: 0, depth: 0 };
      for (const c of e.claims.values()) {
        want.throttle = Math.min(want.throttle, c.throttle);
        want.visible ||= c.visible;
        want.history = Math.max(want.history, c.history);
        want.depth = Math.max(want.depth, c.depth);
      }
      const s = e.sent;
      if (!s || s.throttle !== want.throttle || s.history !== want.history || s.depth !== want.depth) {
        // new, or the fastest claim, the history or the depth changed: (re)subscribe with the current visibility
        if (!e.stopListening) e.stopListening = this.#listenTo(e);
        e.sent = want;
        const k = `${want.throttle}/${want.visible}/${want.history}/${want.depth}`;
        const g = subscribe.get(k);
        if (g) g.channels.push(e.channel);
        else subscribe.set(k, { ...want, channels: [e.channel] });
      } else if (s.visible !== want.visible) {
        s.visible = want.visible;
        const list = visibility.get(want.visible);
        if (list) list.push(e.channel);
        else visibility.set(want.visible, [e.channel]);
      }
    }
    const c = this.client;
    const report = this.#onError;
    if (unsubscribe.length > 0) c.unsubscribe(unsubscribe).catch(report);
    for (const g of subscribe.values()) {
      const current = new Set(c.subscriptions);
      const wasSubscribed = g.channels.filter((ch) => current.has(ch));
      const opts: SubscribeOptions = { throttle: g.throttle, visible: g.visible };
      if (g.history > 0) opts.history = g.history;
      if (g.depth > 0) opts.depth = g.depth;
      if (wasSubscribed.length > 0 && g.history === 0) {
        // the flag first (it is kept by the client and carried by the re-subscribe); setThrottle
        // keeps the book depth the client holds, so a changed depth is subscribed again below
        for (const p of parts(wasSubscribed)) c.setVisible(p, g.visible).catch(report);
        const same = wasSubscribed.filter((ch) => (this.#entries.get(ch)?.book ? false : true));
        for (const p of parts(same)) c.setThrottle(p, g.throttle).then((r) => this.#rejected(r.rejected), report);
        const books = wasSubscribed.filter((ch) => !same.includes(ch));
        if (books.length > 0) {
          c.unsubscribe(books).catch(report);
          this.#subscribe(books, opts);
        }
      } else if (wasSubscribed.length > 0) {
        // bars with history: setThrottle would drop the history (and a larger one needs a new snapshot)
        c.unsubscribe(wasSubscribed).catch(report);
        this.#subscribe(wasSubscribed, opts);
      }
      const fresh = g.channels.filter((ch) => !wasSubscribed.includes(ch));
      if (fresh.length > 0) this.#subscribe(fresh, opts);
    }
    for (const [visible, channels] of visibility) for (const p of parts(channels)) c.setVisible(p, visible).catch(report);
  }

  #subscribe(channels: string[], opts: SubscribeOptions): void {
    for (const ch of channels) this.#entries.get(ch)?.book?.reset();
    for (const p of parts(channels)) {
      this.client.subscribe(p, opts).then((r) => {
        for (const ch of r.subscribed) this.#setError(ch, undefined);
        this.#rejected(r.rejected);
      }, this.#onError);
    }
  }

  /** Channels the server refused: their snapshot says why, and `onError` hears of each. */
  #rejected(list: readonly RejectedChannel[]): void {
    for (const r of list) {
      if (!this.#entries.get(r.channel)?.claims.size) continue;
      this.#setError(r.channel, r);
      this.#onError(new TickwireClientError(r.code, `${r.channel}: ${r.reason}`));
    }
  }

  #setError(channel: string, error: RejectedChannel | undefined): void {
    const e = this.#entries.get(channel);
    if (!e || e.snapshot.error === error) return;
    e.snapshot = { ...e.snapshot, error };
    if (e.staged) e.staged = { ...e.staged, error };
    for (const l of [...e.listeners]) l();
  }

  #listenTo(e: Entry): () => void {
    const onUpdate = (_d: unknown, u: Update<unknown>): void => {
      e.pending.push(u);
      // no frame for a while (a hidden tab has none, and trades and executions keep coming): fold
      // what is pending now, so memory stays bounded by the lists' limits, not by the time hidden
      if (e.pending.length >= MAX_PENDING) {
        e.staged = this.#fold(e, e.staged ?? e.snapshot, e.pending);
        e.pending = [];
      }
      this.#dirty.add(e);
      if (!this.#frameScheduled) {
        this.#frameScheduled = true;
        this.#schedule(() => this.#flush());
      }
    };
    const stop = this.client.channel(e.channel, onUpdate as never);
    if (kindOf(e.channel) !== 'trade') return stop;
    // corrections and cancels are not trades: the client emits them apart, the list applies them
    const onFix = (u: Update<unknown>): void => {
      if (u.channel === e.channel) onUpdate(u.d, u);
    };
    const stopCorrections = this.client.on('correction', onFix);
    const stopCancels = this.client.on('cancel', onFix);
    return () => {
      stop();
      stopCorrections();
      stopCancels();
    };
  }

  /** One animation frame: fold each changed channel's pending updates into a new snapshot, then notify. */
  #flush(): void {
    this.#frameScheduled = false;
    if (this.#dirty.size === 0) return;
    const changed = [...this.#dirty];
    this.#dirty.clear();
    for (const e of changed) {
      const base = e.staged ?? e.snapshot;
      e.snapshot = e.pending.length > 0 ? this.#fold(e, base, e.pending) : base;
      e.staged = undefined;
      e.pending = [];
    }
    this.framesFlushed++;
    for (const e of changed) for (const l of [...e.listeners]) l();
  }

  #fold(e: Entry, prev: ChannelSnapshot, updates: readonly Update[]): ChannelSnapshot {
    if (e.book) return this.#foldBook(e, prev, e.book, updates);
    if (e.channel === 'notifications') return foldNotifications(e, prev, updates);
    return fold(e, prev, updates);
  }

  /** Each item applied to the book in order; a mismatch (checksum) asks the client for a fresh snapshot. */
  #foldBook(e: Entry, prev: ChannelSnapshot, book: LocalBook, updates: readonly Update[]): ChannelSnapshot {
    let last: Update | undefined;
    let broken = false;
    for (const u of updates) {
      // before the snapshot (a re-subscribe's updates still in flight) or after a mismatch: wait for the snapshot
      if (book.seq < 0 && !u.snapshot) continue;
      if (book.apply(u)) {
        broken = false;
        last = u;
      } else {
        broken = true;
        book.reset();
      }
    }
    if (broken) this.client.resync([e.channel]);
    if (!last) return { ...prev, value: broken ? undefined : prev.value, received: prev.received + updates.length };
    const d = last.d as BookPayload;
    const value: BookPayload = { ...d, bids: book.bids(), asks: book.asks(), depth: book.depth };
    return { value, update: last, items: prev.items, received: prev.received + updates.length, error: prev.error };
  }
}

function claimOf(opts: ClaimOptions): Claim {
  const throttle = typeof opts.throttle === 'number' && opts.throttle >= 0 ? opts.throttle : 0;
  const limit = typeof opts.limit === 'number' && opts.limit > 0 ? Math.floor(opts.limit) : 0;
  const history = typeof opts.history === 'number' && opts.history > 0 ? Math.min(1000, Math.floor(opts.history)) : 0;
  const depth = typeof opts.depth === 'number' && opts.depth > 0 ? Math.floor(opts.depth) : 0;
  return { throttle, visible: opts.visible ?? true, limit, history, depth };
}

function sameClaim(a: Claim, b: Claim): boolean {
  return a.throttle === b.throttle && a.visible === b.visible && a.limit === b.limit && a.history === b.history && a.depth === b.depth;
}

function fold(e: Entry, prev: ChannelSnapshot, updates: readonly Update[]): ChannelSnapshot {
  let value = prev.value;
  let update = prev.update;
  let items = prev.items;
  const key = e.key;
  let limit = 0;
  for (const c of e.claims.values()) limit = Math.max(limit, c.limit);
  if (key && limit > 0) {
    const next = items.slice();
    const bars = isBarKind(kindOf(e.channel));
    const put = (d: unknown): void => {
      const k = key(d);
      // a re-sent item (a snapshot after a reconnect or a tier change) replaces, never repeats;
      // an open bar's newer state (or a `corrected` closed bar) replaces the older one
      const at = k === undefined ? -1 : lastIndexWhere(next, (x) => key(x) === k);
      // an `empty` bar: no trade that sets a price is left in its interval, so there is no bar
      // (its o h l c are the cancelled trades'): the one with its `t` goes, none takes its place
      if (bars && (d as Bar).empty === true) {
        if (at >= 0) next.splice(at, 1);
      } else if (at >= 0) next[at] = d;
      else next.push(d);
    };
    for (const u of updates) {
      if (u.op === 'correction' || u.op === 'cancel') {
        const fix = u.d as TradeCorrection | TradeCancel;
        const ref = tradeKey(fix.src, fix.ref);
        const at = lastIndexWhere(next, (x) => key(x) === ref);
        if (at >= 0) {
          if (u.op === 'cancel') next.splice(at, 1);
          else next[at] = corrected(fix as TradeCorrection);
        }
        continue;
      }
      for (const h of u.history ?? []) put(h);
      put(u.d);
    }
    if (bars) sortByTime(next);
    items = next.length > limit ? next.slice(next.length - limit) : next;
  } else if (items.length > 0) items = [];
  for (const u of updates) {
    if (u.op === 'correction' || u.op === 'cancel') {
      // the latest trade itself corrected or cancelled: the value follows (the newest kept trade after a cancel)
      const fix = u.d as TradeCorrection | TradeCancel;
      const latest = value as Trade | undefined;
      if (latest?.id !== fix.ref || latest.src !== fix.src) continue;
      value = u.op === 'correction' ? corrected(fix as TradeCorrection) : items[items.length - 1];
      continue;
    }
    value = u.d;
    update = u;
  }
  return { value, update, items, received: prev.received + updates.length, error: prev.error };
}

/** A notification as the list shows it: with its `seq` and whether it is read (read markers applied). */
export type UserNotification = Omit<NotificationPayload, 'kind'> & { readonly kind: 'notification'; readonly seq: number | undefined; readonly read: boolean };

/**
 * `notifications`: the list holds the notifications (by id, newest last); a read marker is not an
 * item, it marks the ones it covers read (`upTo`: every seq up to it; `ids`: these).
 */
function foldNotifications(e: Entry, prev: ChannelSnapshot, updates: readonly Update[]): ChannelSnapshot {
  let limit = 0;
  for (const c of e.claims.values()) limit = Math.max(limit, c.limit);
  let next = (prev.items as UserNotification[]).slice();
  for (const u of updates) {
    const d = u.d as Notification & { read?: boolean };
    if (d.kind === 'read') {
      const ids = new Set(d.ids ?? []);
      const upTo = d.upTo;
      next = next.map((n) => (!n.read && ((upTo !== undefined && n.seq !== undefined && n.seq <= upTo) || ids.has(n.id)) ? { ...n, read: true } : n));
    } else if (d.kind === 'notification') {
      const item: UserNotification = { ...d, seq: u.seq, read: d.read === true };
      const at = lastIndexWhere(next, (n) => n.id === d.id);
      if (at >= 0) next[at] = item;
      else next.push(item);
    }
  }
  const items = limit > 0 ? (next.length > limit ? next.slice(next.length - limit) : next) : [];
  const last = updates[updates.length - 1]!;
  return { value: last.d, update: last, items, received: prev.received + updates.length, error: prev.error };
}

/** The trade a correction describes (it replaces the one with id `ref`). */
function corrected(c: TradeCorrection): Trade {
  const { ref: _ref, applied: _applied, ...trade } = c;
  return trade;
}

function sortByTime(list: unknown[]): void {
  for (let i = 1; i < list.length; i++) {
    if ((list[i - 1] as { t: number }).t > (list[i] as { t: number }).t) {
      list.sort((a, b) => (a as { t: number }).t - (b as { t: number }).t);
      return;
    }
  }
}

/** Search from the end: a repeat is nearly always among the newest items. */
function lastIndexWhere<T>(list: readonly T[], pred: (x: T) => boolean): number {
  for (let i = list.length - 1, n = 0; i >= 0 && n < 512; i--, n++) if (pred(list[i]!)) return i;
  return -1;
}
