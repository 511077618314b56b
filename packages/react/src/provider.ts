import { createContext, createElement, useContext, useEffect, useRef, useState, type ReactNode } from 'react';
import { ErrorCode, TickwireClient, TickwireClientError, type ClientOptions } from '@tickwire/client';
import { TickwireStore, type FrameScheduler } from './store.js';

const StoreContext = createContext<TickwireStore | undefined>(undefined);

export interface TickwireProviderProps {
  /** `ws://host:port/v1/stream` (or `wss://`); not needed with `client`. Read once: to connect elsewhere, give the provider a new `key` */
  url?: string | undefined;
  /** a JWT */
  token?: string | undefined;
  /**
   * called for a fresh token: before connecting, before expiry, after a refusal (wins over
   * `token`). The newest function passed is the one called; whether there is one is read once.
   */
  getToken?: (() => string | undefined | Promise<string | undefined>) | undefined;
  /** more client options (encoding, reconnect, heartbeat, ...) */
  options?: Omit<ClientOptions, 'url' | 'token'> | undefined;
  /**
   * bring your own client: the provider neither connects nor closes it. Another one (or none
   * after one) moves the hooks to it, with their subscriptions
   */
  client?: TickwireClient | undefined;
  /**
   * a subscribe or visibility request the hooks made failed, the server refused a channel, or the
   * client reported an error of an open connection that is not about it (the gateway's RATE_LIMIT
   * notice, ...: see useConnectionError) (default: console.warn); the newest function passed is called
   */
  onError?: ((err: unknown) => void) | undefined;
  /** how to wait for the next frame (default requestAnimationFrame); for tests */
  schedule?: FrameScheduler | undefined;
  children?: ReactNode | undefined;
}

/** One connection's store, and the token it holds (changed when the server accepts a new one in band). */
interface Connection {
  readonly store: TickwireStore;
  readonly auth: Auth;
  /** the `client` prop it was made for (undefined: a client of the provider's own) */
  readonly given: TickwireClient | undefined;
}

interface Auth {
  token: string | undefined;
}

/** Stores whose provider unmounted: closed after the turn unless mounted again (StrictMode). */
const closing = new WeakMap<TickwireStore, ReturnType<typeof setTimeout>>();

/**
 * Makes one tickwire connection available to the hooks below it. The connection opens on mount
 * and closes on unmount (not when you pass `client`). StrictMode's double mount keeps the same
 * connection: the close of the first unmount is cancelled by the second mount.
 */
export function TickwireProvider(props: TickwireProviderProps): ReactNode {
  const { url, token, getToken, options, client, onError, schedule, children } = props;
  // the newest getToken: the client, made once, calls this one (not the closure of the first render)
  const latestGetToken = useRef(getToken);
  latestGetToken.current = getToken;
  const latestOnError = useRef(onError);
  latestOnError.current = onError;
  // the connection of one identity (a user, or anonymous): a `token` prop for another user, or
  // none after one, gets a new store and client (the old user's data goes with the old store)
  const make = (t: string | undefined): Connection => {
    if (!client && !url) throw new TypeError('<TickwireProvider>: give `url` (or a `client`)');
    // the token the connection holds: the first, then each the server accepted in band (the
    // client presents that one on a reconnect too: refreshAuth(token) replaces a fixed token)
    const auth: Auth = { token: t };
    // render must not leave anything behind (StrictMode and concurrent rendering call this and
    // may drop the result): the client follows the page's visibility from the effect below, not
    // from a document listener of its constructor. A fixed token: after a 1008 (the token expired,
    // ...) the client does not reconnect with it (a reconnect needs a fresh token,
    // docs/protocol.md#close-codes): it closes and says why (useConnectionError), and a new
    // `token` prop connects again (below)
    const c =
      client ??
      new TickwireClient({
        ...options,
        url: url!,
        trackPageVisibility: false,
        ...(getToken ? { getToken: () => (latestGetToken.current ?? getToken)() } : t !== undefined ? { token: t } : {}),
      });
    // the newest onError, as for getToken
    const opts: { onError: (err: unknown) => void; schedule?: FrameScheduler; token?: () => string | undefined } = {
      onError: (err) => (latestOnError.current ?? warn)(err),
    };
    // what a hook's own HTTP request presents (useBarHistory): the token accepted last, not the first
    if (!client && !getToken) opts.token = () => auth.token;
    if (schedule) opts.schedule = schedule;
    return { store: new TickwireStore(c, opts), auth, given: client };
  };
  const [connection, setConnection] = useState(() => make(token));
  const { store, auth } = connection;
  // whether this store's client is the provider's own (to connect and close), whatever `client` is now
  const own = !connection.given;
  const trackPage = own && options?.trackPageVisibility !== false;

  useEffect(() => {
    const t = closing.get(store);
    if (t !== undefined) {
      clearTimeout(t);
      closing.delete(store);
    }
    const stopTracking = store.trackConnection();
    const doc = typeof document === 'object' ? document : undefined;
    let stopPage: (() => void) | undefined;
    if (trackPage && doc && typeof doc.addEventListener === 'function') {
      const follow = (): void => void store.client.setPageVisible(doc.visibilityState !== 'hidden').catch(() => undefined);
      follow();
      doc.addEventListener('visibilitychange', follow);
      stopPage = () => doc.removeEventListener('visibilitychange', follow);
    }
    if (own) store.client.connect().catch(() => undefined); // failures show in useConnectionState and useConnectionError
    return () => {
      stopTracking();
      stopPage?.();
      if (!own) return;
      closing.set(
        store,
        setTimeout(() => {
          closing.delete(store);
          store.dispose();
          void store.client.close();
        }, 0),
      );
    };
  }, [store, own, trackPage]);

  // a new `client` prop (or none after one, or one after none): the hooks move to a store of it.
  // The old store's claims are given back as the hooks' effects re-run on the new store (its
  // client unsubscribed); an own client is closed by the effect above, a given one left open
  useEffect(() => {
    if (client !== connection.given) setConnection(make(token));
  }, [client, connection]);

  // a new `token` prop: the same user's is sent in band (no reconnect) and from then on is the one
  // a reconnect presents; another user's (the server answers FORBIDDEN), a first one, or none
  // (signed out) gets a connection of its own. With `getToken` the function is asked instead
  const [withGetToken] = useState(getToken !== undefined);
  useEffect(() => {
    if (!own || withGetToken || token === auth.token) return;
    let current = true;
    const renew = (): void => {
      if (current) setConnection(make(token));
    };
    if (token === undefined || auth.token === undefined) return renew();
    const c = store.client;
    const inBand = (): void => {
      c.refreshAuth(token).then(
        () => {
          auth.token = token;
        },
        (err: unknown) => {
          // refused, the connection keeps its token and user: say why. FORBIDDEN (another user's
          // token), or no answer (the connection dropped meanwhile): a connection of its own
          const code = err instanceof TickwireClientError ? err.code : undefined;
          if (code === ErrorCode.UNAUTHENTICATED || code === ErrorCode.RATE_LIMIT) {
            if (current) (latestOnError.current ?? warn)(err);
          } else renew();
        },
      );
    };
    // connecting: wait for it (a token changed at every render must not make a connection each);
    // closed (the token expired): a connection of its own
    let stopWaiting: (() => void) | undefined;
    if (c.state === 'open') inBand();
    else if (c.state === 'connecting' || c.state === 'reconnecting')
      stopWaiting = c.on('state', ({ state }) => {
        if (state !== 'open' && state !== 'closed') return;
        stopWaiting?.();
        stopWaiting = undefined;
        if (state === 'open') inBand();
        else renew();
      });
    else renew();
    return () => {
      current = false;
      stopWaiting?.();
    };
    // (make() reads the props of this render: url, options, schedule are read once anyway)
  }, [store, auth, own, withGetToken, token]);

  return createElement(StoreContext.Provider, { value: store }, children);
}

const warn = (err: unknown): void => console.warn('tickwire:', err);

/** The store of the nearest provider; a clear error outside one. */
export function useTickwireStore(): TickwireStore {
  const store = useContext(StoreContext);
  if (!store) throw new Error('tickwire hooks must be used inside <TickwireProvider>');
  return store;
}

/** The client of the nearest provider (for requests the hooks do not cover). */
export function useTickwire(): TickwireClient {
  return useTickwireStore().client;
}
