/**
 * Test harness for @tickwire/react in a real browser (test/browser/react.test.ts): real React
 * and react-dom (development build, so StrictMode double-mounts), the package from its sources,
 * against the engine that serves this page. It records every frame the page sends (JSON
 * encoding) and exposes scenarios on `window.harness`.
 */
import { createElement as h, StrictMode, useEffect, useLayoutEffect, useRef, version as reactVersion } from 'react';
import { flushSync } from 'react-dom';
import { createRoot, type Root } from 'react-dom/client';
import {
  TickwireProvider,
  useAlerts,
  useChannelSnapshot,
  useConnectionError,
  useNotifications,
  useConnectionState,
  useOnScreen,
  useQuote,
  useTickwire,
  useTickwireStore,
  useTrades,
  type Alerts,
  type TickwireStore,
} from '../../../packages/react/src/index.js';
import { TickwireClient } from '@tickwire/client';

const sent: Record<string, unknown>[] = [];
const sockets = new Set<WebSocket>();
const origSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (this: WebSocket, data: string | ArrayBufferLike | Blob | ArrayBufferView) {
  sockets.add(this);
  if (typeof data === 'string') sent.push(JSON.parse(data) as Record<string, unknown>);
  return origSend.call(this, data);
};

// the token each new socket offered (its bearer subprotocol; '' for none), in order
const offered: string[] = [];
const PageWebSocket = WebSocket;
window.WebSocket = class extends PageWebSocket {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    const bearer = [protocols ?? []].flat().find((p) => p.startsWith('tickwire.bearer.'));
    offered.push(bearer ? bearer.slice('tickwire.bearer.'.length) : '');
  }
};

// visibilitychange listeners on the document: added minus removed (a provider must leave none behind)
const pageListeners = new Set<unknown>();
const origAdd = document.addEventListener.bind(document);
const origRemove = document.removeEventListener.bind(document);
document.addEventListener = function (type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions) {
  if (type === 'visibilitychange') pageListeners.add(listener);
  return origAdd(type, listener, options);
} as typeof document.addEventListener;
document.removeEventListener = function (type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions) {
  if (type === 'visibilitychange') pageListeners.delete(listener);
  return origRemove(type, listener, options);
} as typeof document.removeEventListener;

const renders: Record<string, number> = {};
const received: Record<string, { snapshot: boolean; at: number }[]> = {};
let frames = 0;
const countFrames = (): void => {
  frames++;
  requestAnimationFrame(countFrames);
};
requestAnimationFrame(countFrames);

let root: Root | undefined;
let store: TickwireStore | undefined;
const url = `ws://${location.host}/v1/stream`;

function StoreProbe(): null {
  const s = useTickwireStore();
  const client = useTickwire();
  useEffect(() => {
    store = s;
    return client.on('data', (u) => (received[u.channel] ??= []).push({ snapshot: u.snapshot, at: performance.now() }));
  }, [s, client]);
  return null;
}

function ConnState(): ReturnType<typeof h> {
  const state = useConnectionState();
  return h('div', { 'data-testid': 'conn', 'data-state': state }, state);
}

function QuoteBox({ symbol, throttle, n }: { symbol: string; throttle: number; n: number }): ReturnType<typeof h> {
  const q = useQuote(symbol, { throttle });
  renders[`quote-${n}`] = (renders[`quote-${n}`] ?? 0) + 1;
  return h('div', { 'data-testid': `quote-${n}` }, q ? `${q.bp} / ${q.ap}` : '…');
}

function Busy({ symbol }: { symbol: string }): ReturnType<typeof h> {
  const trades = useTrades(symbol, { limit: 20 });
  const snap = useChannelSnapshot(`quote:${symbol}`, { throttle: 0 });
  renders.busy = (renders.busy ?? 0) + 1;
  return h('div', { 'data-testid': 'busy', 'data-received': snap.received, 'data-trades': trades.length }, `${trades.length} trades`);
}

function Row({ symbol }: { symbol: string }): ReturnType<typeof h> {
  const { ref, visible } = useOnScreen<HTMLDivElement>({ rootMargin: '0px' });
  const q = useQuote(symbol, { throttle: 0, visible });
  const count = useRef(0);
  count.current++;
  return h('div', { ref, className: 'row', 'data-testid': `row-${symbol}`, 'data-visible': String(visible) }, `${symbol} ${q?.bp ?? ''}`);
}

/** renders of Tape whose trade list was a new array although the channel's items were the same */
let unstableTapes = 0;
let tapeRenders = 0;

function Tape({ symbol, limit }: { symbol: string; limit: number }): ReturnType<typeof h> {
  const trades = useTrades(symbol, { limit });
  const items = useChannelSnapshot(`trade:${symbol}`, { limit }).items;
  const prev = useRef<{ trades: readonly unknown[]; items: readonly unknown[] } | undefined>(undefined);
  // compared at each commit (what an effect depending on the list sees): React 18's StrictMode
  // renders twice and recomputes useMemo in the second render, which is never committed
  useLayoutEffect(() => {
    if (prev.current && prev.current.items === items && prev.current.trades !== trades) unstableTapes++;
    prev.current = { trades, items };
    tapeRenders++;
  });
  return h('div', { 'data-testid': `tape-${limit}`, 'data-trades': trades.length }, `${trades.length} trades`);
}

/** the getToken versions the client called, in order */
const tokenCalls: number[] = [];
/** the onError versions called, with the error's code */
const errorCalls: { version: number; code: string }[] = [];

/** which channel's snapshot a component shows (it must follow a symbol change at once) */
function Channel({ symbol }: { symbol: string }): ReturnType<typeof h> {
  const snap = useChannelSnapshot(`quote:${symbol}`);
  return h('div', { 'data-testid': 'shown', 'data-channel': snap.update?.channel ?? '' }, snap.update?.channel ?? '…');
}

/** the newest useAlerts() result of the alerts scenario, for the test to call */
let alertsApi: Alerts | undefined;

function AlertsPanel(): ReturnType<typeof h> {
  const a = useAlerts();
  alertsApi = a;
  return h(
    'div',
    { 'data-testid': 'alerts', 'data-count': a.alerts?.length ?? 'none', 'data-error': a.error?.code ?? '' },
    ...(a.alerts ?? []).map((r) => h('div', { key: r.id, 'data-testid': `alert-${r.id}`, 'data-phase': r.state.phase, 'data-fired': r.state.fired }, r.id)),
  );
}

/** subscribes `notifications` (signed in only): firings then refresh the rules' state */
function NotificationCount(): ReturnType<typeof h> {
  const { notifications } = useNotifications();
  return h('div', { 'data-testid': 'notification-count' }, notifications.length);
}

/** the signed-in scenario: the connection's state and error, and the user's notifications by id */
function SignedIn(): ReturnType<typeof h> {
  const error = useConnectionError();
  const { notifications } = useNotifications();
  return h(
    'div',
    { 'data-testid': 'signed-in', 'data-error': error?.code ?? '', 'data-notifications': notifications.map((n) => n.id).join(',') },
    notifications.map((n) => n.title).join(', '),
  );
}

type Scenario =
  | { kind: 'quotes'; symbol: string; throttles: number[] }
  | { kind: 'busy'; symbol: string }
  | { kind: 'rows'; symbols: string[] }
  | { kind: 'tapes'; symbol: string; bump: number }
  | { kind: 'token'; version: number }
  | { kind: 'symbol'; symbol: string; throttle: number }
  | { kind: 'alerts'; token?: string }
  | { kind: 'signin'; token?: string }
  | { kind: 'given'; client: number | 'own' };

/** clients of the page's own, given to the provider in the `given` scenario (never connected: their subscriptions show the claims) */
const givenClients = [0, 1].map(() => new TickwireClient({ url, encoding: 'json', trackPageVisibility: false }));

function App({ scenario }: { scenario: Scenario }): ReturnType<typeof h> {
  let body: ReturnType<typeof h>[];
  if (scenario.kind === 'quotes') body = scenario.throttles.map((t, n) => h(QuoteBox, { key: n, symbol: scenario.symbol, throttle: t, n }));
  else if (scenario.kind === 'busy') body = [h(Busy, { key: 'b', symbol: scenario.symbol })];
  else if (scenario.kind === 'tapes')
    body = [h(Tape, { key: 'wide', symbol: scenario.symbol, limit: 50 }), h(Tape, { key: 'narrow', symbol: scenario.symbol, limit: 5 })];
  else if (scenario.kind === 'token') {
    body = [h(QuoteBox, { key: 'q', symbol: 'AAPL', throttle: 0, n: 0 })];
    // from version 2 on, a symbol the engine does not know: its refusal goes to the newest onError
    if (scenario.version >= 2) body.push(h(QuoteBox, { key: 'nope', symbol: 'NOPE-NOT-LISTED', throttle: 0, n: 1 }));
  } else if (scenario.kind === 'symbol')
    body = [h(QuoteBox, { key: 'q', symbol: scenario.symbol, throttle: scenario.throttle, n: 0 }), h(Channel, { key: 'c', symbol: scenario.symbol })];
  else if (scenario.kind === 'signin') body = [h(SignedIn, { key: 's' }), h(AlertsPanel, { key: 'a' })];
  else if (scenario.kind === 'alerts') body = [h(AlertsPanel, { key: 'a' }), ...(scenario.token ? [h(NotificationCount, { key: 'n' })] : [])];
  else if (scenario.kind === 'given') body = [h(QuoteBox, { key: 'q', symbol: 'AAPL', throttle: 0, n: 0 })];
  else body = scenario.symbols.map((s) => h(Row, { key: s, symbol: s }));
  const props: Parameters<typeof TickwireProvider>[0] = { url, options: { encoding: 'json' } };
  if ((scenario.kind === 'alerts' || scenario.kind === 'signin') && scenario.token) props.token = scenario.token;
  if (scenario.kind === 'given' && scenario.client !== 'own') props.client = givenClients[scenario.client];
  if (scenario.kind === 'token') {
    const version = scenario.version;
    props.onError = (err) => errorCalls.push({ version, code: (err as { code?: string }).code ?? String(err) });
    // a new function each render, as an inline arrow is: the newest one must be the one called
    props.getToken = () => {
      tokenCalls.push(version);
      return undefined; // the engine runs without auth: no token
    };
  }
  return h(TickwireProvider, props, h(StoreProbe), h(ConnState), ...body);
}

const harness = {
  sent,
  renders,
  received,
  get frames(): number {
    return frames;
  },
  get sockets(): number {
    return sockets.size;
  },
  get openSockets(): number {
    return [...sockets].filter((s) => s.readyState === WebSocket.OPEN).length;
  },
  offered,
  tokenCalls,
  errorCalls,
  get pageListeners(): number {
    return pageListeners.size;
  },
  get unstableTapes(): number {
    return unstableTapes;
  },
  get tapeRenders(): number {
    return tapeRenders;
  },
  /** re-render the same scenario with new props (StrictMode kept) */
  rerender(scenario: Scenario): void {
    root!.render(h(StrictMode, null, h(App, { scenario })));
  },
  /** drop the connection from the page's side: the client reconnects */
  get alerts(): Alerts | undefined {
    return alertsApi;
  },
  /** the React the page runs (react.test.ts: 19, react18.test.ts: 18) */
  reactVersion,
  dropSocket(): void {
    for (const s of sockets) if (s.readyState === WebSocket.OPEN) s.close();
  },
  claims: (): Record<string, number> => store?.claims() ?? {},
  /** the subscriptions of the `given` scenario's clients */
  givenSubscriptions: (): string[][] => givenClients.map((c) => c.subscriptions),
  /** the client the hooks use now */
  storeClient: (): number | 'own' | undefined => (store ? (givenClients.indexOf(store.client) >= 0 ? givenClients.indexOf(store.client) : 'own') : undefined),
  framesFlushed: (): number => store?.framesFlushed ?? 0,
  mount(scenario: Scenario, strict = true): void {
    root?.unmount();
    root = createRoot(document.getElementById('root')!);
    const app = h(App, { scenario });
    root.render(strict ? h(StrictMode, null, app) : app);
  },
  /** mount with one token and, before the connection can open (the same task), re-render with another */
  mountThenToken(first: string, second: string): void {
    root?.unmount();
    root = createRoot(document.getElementById('root')!);
    const r = root;
    // committed at once, effects included: the provider has started connecting when the second render comes
    flushSync(() => r.render(h(StrictMode, null, h(App, { scenario: { kind: 'signin', token: first } }))));
    flushSync(() => r.render(h(StrictMode, null, h(App, { scenario: { kind: 'signin', token: second } }))));
  },
  /** re-render with fewer quote boxes (the first `keep` stay mounted) */
  keepQuotes(symbol: string, throttles: number[]): void {
    root!.render(h(StrictMode, null, h(App, { scenario: { kind: 'quotes', symbol, throttles } })));
  },
  unmount(): void {
    root?.unmount();
    root = undefined;
  },
  setPageHidden(hidden: boolean): void {
    Object.defineProperty(document, 'visibilityState', { value: hidden ? 'hidden' : 'visible', configurable: true });
    document.dispatchEvent(new Event('visibilitychange'));
  },
};
(window as unknown as { harness: typeof harness }).harness = harness;
