import { useCallback, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import {
  TickwireClientError,
  type AlertRuleRequest,
  type AlertView,
  type BookPayload,
  type ConnectionState,
  type NotificationsReadMark,
  type PayloadOf,
  type TickwireClient,
} from '@tickwire/client';
import type { Bar, Execution, Portfolio, Quote, Ticker, Trade } from '@tickwire/client';
import { useTickwireStore, useTickwire } from './provider.js';
import { EMPTY } from './store.js';
import type { ChannelSnapshot, ClaimOptions, UserNotification } from './store.js';

export interface ChannelOptions {
  /**
   * At most one update per this many ms from the server (0 = every update, the default). Components
   * sharing a channel share one subscription at the fastest throttle any of them asks for.
   */
  throttle?: number | undefined;
  /**
   * false while the component is off screen (see `useOnScreen`): quotes, tickers and the portfolio
   * then come at the server's slow tier. A channel counts as on screen when any component says so.
   */
  visible?: boolean | undefined;
}

export interface ListOptions extends ChannelOptions {
  /** how many of the most recent items to return */
  limit?: number | undefined;
}

export interface BarOptions extends ListOptions {
  /** closed bars to load with the snapshot (1 to 1000), so a chart starts full; asked again after each reconnect */
  history?: number | undefined;
}

export interface BookOptions extends ChannelOptions {
  /** levels per side (the server rounds up to a depth it offers, e.g. 10, 25, 100) */
  depth?: number | undefined;
}

/** Bar intervals (`bar.5m`, `bar.1h` and `bar.1d` are a protocol extension). */
export type BarInterval = '1s' | '1m' | '5m' | '1h' | '1d';

/**
 * The shared state of a channel: latest value, latest update, recent items, typed from the
 * channel's name (`useChannelSnapshot('quote:AAPL').value` is a Quote) or given
 * (`useChannelSnapshot<Quote>(name)`). Re-renders at most once per animation frame. The
 * subscription is taken on mount and given back on unmount.
 */
export function useChannelSnapshot<C extends string>(channel: C, opts?: ClaimOptions): ChannelSnapshot<PayloadOf<C>>;
export function useChannelSnapshot<T>(channel: string, opts?: ClaimOptions): ChannelSnapshot<T>;
export function useChannelSnapshot<T = unknown>(channel: string, opts: ClaimOptions = {}): ChannelSnapshot<T> {
  const store = useTickwireStore();
  const claim = useRef<number | undefined>(undefined);
  const { throttle, visible, limit, history, depth } = opts;
  useEffect(() => {
    const id = store.acquire(channel, { throttle, visible, limit, history, depth });
    claim.current = id;
    return () => {
      claim.current = undefined;
      store.release(channel, id);
    };
    // options changes go through update() below, without giving the claim back
  }, [store, channel]);
  useEffect(() => {
    if (claim.current !== undefined) store.update(channel, claim.current, { throttle, visible, limit, history, depth });
  }, [store, channel, throttle, visible, limit, history, depth]);
  // stable functions: React re-subscribes only when the channel changes
  const listen = useCallback((onChange: () => void) => store.listen(channel, onChange), [store, channel]);
  const get = useCallback(() => store.snapshot(channel) as ChannelSnapshot<T>, [store, channel]);
  return useSyncExternalStore(listen, get, serverSnapshot as () => ChannelSnapshot<T>);
}

const serverSnapshot = (): ChannelSnapshot => EMPTY;

/** The latest payload of any channel, typed from its name (`quote:AAPL` gives a Quote). */
export function useChannel<C extends string>(channel: C, opts: ChannelOptions = {}): PayloadOf<C> | undefined {
  return useChannelSnapshot<PayloadOf<C>>(channel, opts).value;
}

/** Best bid and ask of a symbol. */
export function useQuote(symbol: string, opts: ChannelOptions = {}): Quote | undefined {
  return useChannelSnapshot<Quote>(`quote:${symbol}`, opts).value;
}

/**
 * Last price, day open/high/low, change and volume of a symbol. With `empty: true` the day has no
 * last price (its priced trades were cancelled): `p`, `o`, `h`, `l` are then the previous close (or
 * 0), not prices to show as the last one.
 */
export function useTicker(symbol: string, opts: ChannelOptions = {}): Ticker | undefined {
  return useChannelSnapshot<Ticker>(`ticker:${symbol}`, opts).value;
}

function tail<T>(items: readonly T[], limit: number): readonly T[] {
  return items.length > limit ? items.slice(items.length - limit) : items;
}

/** The last `limit` items, the same array until the items change (another component may keep more). */
function useTail<T>(items: readonly T[], limit: number): readonly T[] {
  return useMemo(() => tail(items, limit), [items, limit]);
}

/**
 * The most recent trades of a symbol, oldest first (every trade: trades are never dropped). A
 * trade is (`src`, `id`): ids of different sources may collide (a failover), so key list items
 * by both.
 */
export function useTrades(symbol: string, opts: ListOptions = {}): readonly Trade[] {
  const limit = opts.limit ?? 50;
  const snap = useChannelSnapshot<Trade>(`trade:${symbol}`, { ...opts, limit });
  return useTail(snap.items, limit);
}

/**
 * The most recent bars of a symbol, oldest first; the last one may still be open (`closed: false`).
 * With `history`, the closed bars before it come with the snapshot (and again after a reconnect).
 * A bar sent again `corrected` replaces the one with its `t`; a bar sent `empty` (its trades were
 * cancelled) removes it, and an `empty` bar is never in the list.
 */
export function useBars(symbol: string, interval: BarInterval, opts: BarOptions = {}): readonly Bar[] {
  const limit = opts.limit ?? Math.max(60, opts.history ?? 0);
  const snap = useChannelSnapshot<Bar>(`bar.${interval}:${symbol}`, { ...opts, limit });
  return useTail(snap.items, limit);
}

/**
 * The order book of a symbol (`book:SYM`): the whole book, rebuilt from the snapshot and every
 * update (a checksum mismatch asks for a fresh snapshot), bids and asks best first. Undefined
 * before the snapshot.
 */
export function useBook(symbol: string, opts: BookOptions = {}): BookPayload | undefined {
  return useChannelSnapshot<BookPayload>(`book:${symbol}`, opts).value;
}

/** The signed-in user's portfolio valuation (needs a token). */
export function usePortfolio(opts: ChannelOptions = {}): Portfolio | undefined {
  return useChannelSnapshot<Portfolio>('portfolio', opts).value;
}

/** The signed-in user's most recent executions (fills), oldest first (needs a token). */
export function useExecutions(opts: ListOptions = {}): readonly Execution[] {
  const limit = opts.limit ?? 100;
  const snap = useChannelSnapshot<Execution>('executions', { ...opts, limit });
  return useTail(snap.items, limit);
}

export interface Notifications {
  /** the user's notifications, oldest first (at most `limit`), each with `seq` and `read` (read markers applied) */
  notifications: readonly UserNotification[];
  /** how many of them are unread */
  unread: number;
  /** mark read (up to a seq, up to an id, or by ids): every connection of the user gets the marker, this list included */
  markRead: (mark: NotificationsReadMark) => Promise<{ seq: number; unread: number }>;
}

/**
 * The signed-in user's notifications (alert firings, posts from backends), with their read state
 * (needs a token). The subscription brings every unread one, then live ones; reconnects resume
 * after the last seen.
 */
export function useNotifications(opts: ListOptions = {}): Notifications {
  const limit = opts.limit ?? 100;
  const client = useTickwire();
  const snap = useChannelSnapshot<UserNotification>('notifications', { ...opts, limit });
  const notifications = useTail(snap.items, limit);
  const markRead = useCallback((mark: NotificationsReadMark) => client.markNotificationsRead(mark), [client]);
  return useMemo(() => ({ notifications, unread: notifications.filter((n) => !n.read).length, markRead }), [notifications, markRead]);
}

/** The connection state: `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
export function useConnectionState(): ConnectionState {
  const client = useTickwire();
  const listen = useCallback((onChange: () => void) => client.on('state', onChange), [client]);
  const get = useCallback(() => client.state, [client]);
  return useSyncExternalStore(listen, get, idle);
}

const idle = (): ConnectionState => 'idle';

/**
 * The last error of the connection (`TRANSPORT` during an outage, `UNAUTHENTICATED` for a refused
 * token, with its `reason`), undefined again once the connection is open. Use it with
 * useConnectionState to tell the user why there is no data. While the connection is up, the
 * client's other errors (the gateway's RATE_LIMIT notice, ...) go to the provider's `onError`.
 */
export function useConnectionError(): TickwireClientError | undefined {
  const store = useTickwireStore();
  const listen = useCallback((onChange: () => void) => store.listenConnectionError(onChange), [store]);
  const get = useCallback(() => store.connectionError(), [store]);
  return useSyncExternalStore(listen, get, noError);
}

const noError = (): undefined => undefined;

export interface Alerts {
  /** the user's alert rules with their state (`state.phase`, `state.fired`), in the server's order; undefined until the first list arrives */
  alerts: readonly AlertView[] | undefined;
  /** why the rules could not be listed (`UNAUTHENTICATED` without a token, `ALERTS_UNAVAILABLE`, `UNKNOWN_OP` from a server without alerts); undefined once a list arrives */
  error: TickwireClientError | undefined;
  /** create a rule; resolves with it as stored (it is in `alerts` from then on), rejects with the server's code (`ALERT_INVALID`, `ALERT_DUPLICATE`, ...) */
  create: (rule: AlertRuleRequest) => Promise<AlertView>;
  /** replace the rule with the same `id` (its state starts fresh) */
  update: (rule: AlertRuleRequest) => Promise<AlertView>;
  /** delete a rule; resolves with its id */
  remove: (id: string) => Promise<string>;
  /** list the rules again now */
  refresh: () => Promise<void>;
}

/**
 * The signed-in user's price alerts (needs a token; docs/alerts.md): the rules with their state,
 * and functions to create, update and delete them. The list is asked for on mount, again after
 * every reconnect, and when one of the user's alerts fires while `notifications` is subscribed
 * (`useNotifications` mounted), so `state` follows firings. Each component using it holds its own list.
 */
export function useAlerts(): Alerts {
  const client = useTickwire();
  // what was listed, and why not, for the client it came from: the provider moves to a client of
  // its own when the user changes (another token, signed out), and the previous user's rules
  // must not show on the next one's page, not even for the render before an effect could clear them
  const [listed, setListed] = useState<{ client: TickwireClient; alerts: readonly AlertView[] | undefined; error: TickwireClientError | undefined }>(() => ({
    client,
    alerts: undefined,
    error: undefined,
  }));
  const alerts = listed.client === client ? listed.alerts : undefined;
  const error = listed.client === client ? listed.error : undefined;
  // per client: changes made here since a list was asked for (a list asked for before may miss
  // them), and one list in flight at a time (asked again meanwhile, by a burst of firings or the
  // unread ones replayed at subscribe, one more list follows it, not one per call)
  const session = useMemo(() => ({ changes: 0, listing: undefined as Promise<void> | undefined, again: false }), [client]);
  const mounted = useRef(false);
  const refresh = useCallback((): Promise<void> => {
    if (session.listing) {
      session.again = true;
      return session.listing;
    }
    const run = async (): Promise<void> => {
      do {
        session.again = false;
        const at = session.changes;
        try {
          const list = await client.listAlerts();
          if (!mounted.current) break;
          // changed here meanwhile: this list may miss it, ask again
          if (at !== session.changes) session.again = true;
          else setListed({ client, alerts: list, error: undefined });
        } catch (err) {
          if (mounted.current && !(err instanceof TickwireClientError && err.code === 'CLOSED')) {
            const e = err instanceof TickwireClientError ? err : new TickwireClientError('ERROR', String(err));
            setListed((l) => (l.client === client ? { ...l, error: e } : { client, alerts: undefined, error: e }));
          }
        }
      } while (session.again && mounted.current);
      session.listing = undefined; // in the same turn as the last check: no call falls in between
    };
    return (session.listing = run());
  }, [client, session]);
  useEffect(() => {
    mounted.current = true;
    // a list asked for while the connection is down waits for it: ask when it opens instead
    if (client.state === 'open') void refresh();
    const offState = client.on('state', ({ state }) => {
      if (state === 'open') void refresh();
    });
    const offFired = client.channel('notifications', (n) => {
      if (n.kind === 'notification' && n.type === 'alert') void refresh();
    });
    return () => {
      mounted.current = false;
      offState();
      offFired();
    };
  }, [client, refresh]);
  const change = useCallback(
    async <T>(request: Promise<T>, apply: (list: readonly AlertView[], result: T) => readonly AlertView[]): Promise<T> => {
      session.changes++;
      const result = await request;
      if (mounted.current) setListed((l) => (l.client === client && l.alerts ? { ...l, alerts: apply(l.alerts, result) } : l));
      return result;
    },
    [client, session],
  );
  const put = (list: readonly AlertView[], rule: AlertView): readonly AlertView[] =>
    list.some((a) => a.id === rule.id) ? list.map((a) => (a.id === rule.id ? rule : a)) : [...list, rule];
  const create = useCallback((rule: AlertRuleRequest) => change(client.createAlert(rule), put), [client, change]);
  const update = useCallback((rule: AlertRuleRequest) => change(client.updateAlert(rule), put), [client, change]);
  const remove = useCallback((id: string) => change(client.deleteAlert(id), (list, gone) => list.filter((a) => a.id !== gone)), [client, change]);
  return useMemo(() => ({ alerts, error, create, update, remove, refresh }), [alerts, error, create, update, remove, refresh]);
}
