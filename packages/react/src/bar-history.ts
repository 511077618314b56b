import { useCallback, useEffect, useMemo, useReducer, useRef } from 'react';
import { TickwireClientError, type Bar } from '@tickwire/client';
import { fetchBars } from '@tickwire/client/history';
import { useBars, type BarInterval, type BarOptions } from './hooks.js';
import { useTickwire, useTickwireStore } from './provider.js';

export interface BarHistoryOptions extends BarOptions {
  /** bars per page that `loadOlder()` asks for (1 to 1000; default 500) */
  pageSize?: number | undefined;
  /** where `GET /v1/bars` is: the gateway's HTTP address (default: from the client's `url`, `wss://host/v1/stream` → `https://host`) */
  baseUrl?: string | undefined;
}

export interface BarHistory {
  /** the live bars and every page loaded, oldest first, one per `t`, no `empty` bar */
  bars: readonly Bar[];
  /** false once a page said no older bar is kept (`next: null`); true before the first page */
  hasOlder: boolean;
  /** a page is being fetched */
  loading: boolean;
  /** why the last page failed (`RATE_LIMIT`, `FORBIDDEN`, `TRANSPORT`, ...: a BarsRequestError); cleared by the next loadOlder() */
  error: TickwireClientError | undefined;
  /**
   * Fetch one page of older bars (`to` = the oldest bar held or asked for). Resolves with the
   * number of bars it added (0 for a page of `empty` bars only: go on while `hasOlder`); never
   * rejects: a failure is in `error` and goes to the provider's `onError`. A call while a page is
   * in flight returns that page's promise.
   */
  loadOlder: (count?: number) => Promise<number>;
}

/** The paging state of one (client, channel): reset when either changes. */
interface Session {
  /** every bar held since paging began: the live ones then, the pages, and live items since */
  held: Map<number, Bar>;
  paging: boolean;
  /** `to` of the next page (exclusive); undefined: the oldest bar held */
  to: number | undefined;
  /** the last page's `next`; undefined before the first page */
  next: number | null | undefined;
  inflight: Promise<number> | undefined;
  error: TickwireClientError | undefined;
  abort: AbortController;
}

/**
 * useBars with paging back (`GET /v1/bars` through `@tickwire/client/history`): the same
 * subscription and live bars, and `loadOlder()` for a chart that scrolls back. Once a page is
 * asked for, the hook keeps every bar it holds (live bars that leave the `limit` window too), so
 * pages and live bars meet without a gap; a live `corrected` bar replaces the held one with its
 * `t`, and an `empty` one removes it, pages included.
 */
export function useBarHistory(symbol: string, interval: BarInterval, opts: BarHistoryOptions = {}): BarHistory {
  const client = useTickwire();
  const store = useTickwireStore();
  const channel = `bar.${interval}:${symbol}`;
  const live = useBars(symbol, interval, opts);
  const latestLive = useRef(live);
  latestLive.current = live;
  const [version, bump] = useReducer((n: number) => n + 1, 0);
  const session = useMemo<Session>(
    () => ({ held: new Map(), paging: false, to: undefined, next: undefined, inflight: undefined, error: undefined, abort: new AbortController() }),
    [client, channel],
  );
  const mounted = useRef(false);
  useEffect(() => {
    mounted.current = true;
    if (session.abort.signal.aborted) session.abort = new AbortController(); // StrictMode's second mount
    // every live item, as it comes (the store hands React only the newest `limit` bars)
    const off = client.channel(channel, (d, u) => {
      if (!session.paging) return;
      for (const b of [...((u.history ?? []) as Bar[]), d as Bar]) {
        if (b.empty === true) session.held.delete(b.t);
        else session.held.set(b.t, b);
      }
    });
    return () => {
      mounted.current = false;
      off();
      session.abort.abort();
    };
  }, [client, channel, session]);

  const { pageSize, baseUrl } = opts;
  const loadOlder = useCallback(
    (count?: number): Promise<number> => {
      if (session.inflight) return session.inflight;
      if (session.next === null) return Promise.resolve(0);
      if (!session.paging) {
        session.paging = true;
        for (const b of latestLive.current) if (!session.held.has(b.t)) session.held.set(b.t, b);
      }
      let to = session.to;
      if (to === undefined) for (const t of session.held.keys()) to = to === undefined || t < to ? t : to;
      session.error = undefined;
      const run = async (): Promise<number> => {
        try {
          const page = await fetchBars(
            baseUrl ?? client.options.url,
            { symbol, interval, to, limit: count ?? pageSize ?? 500 },
            { token: client.options.getToken ?? store.token() ?? client.options.token, signal: session.abort.signal },
          );
          let added = 0;
          for (const b of page.bars) {
            if (b.empty === true || session.held.has(b.t)) continue; // a live bar is as new or newer
            session.held.set(b.t, b);
            added++;
          }
          // the next page ends where this one began (empty bars count: they were in the page)
          session.to = page.bars.length > 0 ? page.bars[0]!.t : page.next !== null ? page.next + 1 : to;
          session.next = page.next;
          return added;
        } catch (err) {
          if (session.abort.signal.aborted) return 0; // unmounted, or another symbol
          const e = err instanceof TickwireClientError ? err : new TickwireClientError('ERROR', String(err), { cause: err });
          session.error = e;
          store.reportError(e);
          return 0;
        } finally {
          session.inflight = undefined;
          if (mounted.current && !session.abort.signal.aborted) bump();
        }
      };
      const p = (session.inflight = run());
      bump(); // loading
      return p;
    },
    [client, store, session, symbol, interval, pageSize, baseUrl],
  );

  const bars = useMemo(() => {
    if (!session.paging) return live;
    // held wins: it has every live item as it came, the store's window a frame later (a live bar
    // not held yet is one the listener has not seen: show it, do not keep it)
    const all = new Map(session.held);
    for (const b of live) if (!all.has(b.t)) all.set(b.t, b);
    return [...all.values()].sort((a, b) => a.t - b.t);
    // version: a page arrived (held changed outside React)
  }, [live, session, version]);
  const hasOlder = session.next !== null;
  const loading = session.inflight !== undefined;
  const error = session.error;
  return useMemo(() => ({ bars, hasOlder, loading, error, loadOlder }), [bars, hasOlder, loading, error, loadOlder]);
}
