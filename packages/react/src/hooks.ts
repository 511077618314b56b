import { useCallback, useEffect, useRef, useSyncExternalStore } from 'react';
import type { ConnectionState, PayloadOf } from '@tickwire/client';
import type { Bar, Execution, Portfolio, Quote, Ticker, Trade } from '@tickwire/client';
import { useTickwireStore, useTickwire } from './provider.js';
import type { ChannelSnapshot, ClaimOptions } from './store.js';

export interface ChannelOptions {
  /**
   * At most one update per this many ms from the server (0 = every update, the default). Components
   * sharing a channel share one subscription at the fastest throttle any of them asks for.
   */
  throttle?: number;
  /**
   * false while the component is off screen (see `useOnScreen`): quotes, tickers and the portfolio
   * then come at the server's slow tier. A channel counts as on screen when any component says so.
   */
  visible?: boolean;
}

export interface ListOptions extends ChannelOptions {
  /** how many of the most recent items to return */
  limit?: number;
}

const EMPTY: ChannelSnapshot = Object.freeze({ value: undefined, update: undefined, items: Object.freeze([]) as readonly unknown[], received: 0 });

/**
 * The shared state of a channel: latest value, latest update, recent items. Re-renders at most
 * once per animation frame. The subscription is taken on mount and given back on unmount.
 */
export function useChannelSnapshot<T = unknown>(channel: string, opts: ClaimOptions = {}): ChannelSnapshot<T> {
  const store = useTickwireStore();
  const claim = useRef<number | undefined>(undefined);
  const { throttle, visible, limit } = opts;
  useEffect(() => {
    const id = store.acquire(channel, { throttle, visible, limit });
    claim.current = id;
    return () => {
      claim.current = undefined;
      store.release(channel, id);
    };
    // options changes go through update() below, without giving the claim back
  }, [store, channel]);
  useEffect(() => {
    if (claim.current !== undefined) store.update(channel, claim.current, { throttle, visible, limit });
  }, [store, channel, throttle, visible, limit]);
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

/** Last price, day open/high/low, change and volume of a symbol. */
export function useTicker(symbol: string, opts: ChannelOptions = {}): Ticker | undefined {
  return useChannelSnapshot<Ticker>(`ticker:${symbol}`, opts).value;
}

function tail<T>(items: readonly T[], limit: number): readonly T[] {
  return items.length > limit ? items.slice(items.length - limit) : items;
}

/** The most recent trades of a symbol, oldest first (every trade: trades are never dropped). */
export function useTrades(symbol: string, opts: ListOptions = {}): readonly Trade[] {
  const limit = opts.limit ?? 50;
  const snap = useChannelSnapshot<Trade>(`trade:${symbol}`, { ...opts, limit });
  return tail(snap.items, limit);
}

/** The most recent bars of a symbol, oldest first; the last one may still be open (`closed: false`). */
export function useBars(symbol: string, interval: '1s' | '1m', opts: ListOptions = {}): readonly Bar[] {
  const limit = opts.limit ?? 60;
  const snap = useChannelSnapshot<Bar>(`bar.${interval}:${symbol}`, { ...opts, limit });
  return tail(snap.items, limit);
}

/** The signed-in user's portfolio valuation (needs a token). */
export function usePortfolio(opts: ChannelOptions = {}): Portfolio | undefined {
  return useChannelSnapshot<Portfolio>('portfolio', opts).value;
}

/** The signed-in user's most recent executions (fills), oldest first (needs a token). */
export function useExecutions(opts: ListOptions = {}): readonly Execution[] {
  const limit = opts.limit ?? 100;
  const snap = useChannelSnapshot<Execution>('executions', { ...opts, limit });
  return tail(snap.items, limit);
}

/** The connection state: `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
export function useConnectionState(): ConnectionState {
  const client = useTickwire();
  const listen = useCallback((onChange: () => void) => client.on('state', onChange), [client]);
  const get = useCallback(() => client.state, [client]);
  return useSyncExternalStore(listen, get, idle);
}

const idle = (): ConnectionState => 'idle';
