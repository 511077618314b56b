import { SignJWT } from 'jose';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createElement as h } from 'react';
import { renderToString } from 'react-dom/server';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket, WebSocketServer } from 'ws';
import { bookChecksum, TickwireClient, type Bar, type BookLevel, type BookPayload, type Trade } from '@tickwire/client';
// the package from this checkout's sources (node_modules may link another checkout's)
import {
  TickwireProvider,
  TickwireStore,
  type UserNotification,
  useBars,
  useBook,
  useChannelSnapshot,
  useConnectionError,
  useConnectionState,
  useNotifications,
  useOnScreen,
  useQuote,
  useTrades,
} from '../../packages/react/src/index.js';
import { startTestEngine, streamUrl } from '../client/helpers.js';
import { freePort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { startScriptedGateway } from '../helpers/scripted-gateway.js';
import type { ClientFrame as Frame, ScriptedGateway } from '../helpers/scripted-gateway.js';

/**
 * @tickwire/react's store (what every hook reads) in Node, against a scripted server on a loopback
 * port that speaks the frames the gateway sends: trade corrections and cancels applied to the
 * trade list, bars of every interval with their `history`, order books rebuilt from snapshot and
 * updates, refused channels and connection errors exposed, and server-side rendering that opens
 * nothing. The hooks in a browser are in react.test.ts.
 */

const T0 = 1_718_026_200_000;
const bar = (n: number, closed: boolean, c = 100 + n): Bar => ({ t: T0 + n * 300_000, iv: 300_000, o: 100, h: 110, l: 90, c, v: 10, n: 3, closed });
const book = (bids: BookLevel[], asks: BookLevel[], full: { bids: BookLevel[]; asks: BookLevel[] }, depth?: number): BookPayload => ({
  bids,
  asks,
  cs: bookChecksum(full.bids, full.asks),
  ...(depth ? { depth } : {}),
  t: T0,
  src: 'sim',
});

let badBookSubscribes = 0;

/** What the scripted server answers to a subscribe of each channel. */
function script(ws: WebSocket, req: Frame): void {
  const send = (f: unknown): void => ws.send(JSON.stringify(f));
  const chans = req.channels ?? [];
  const rejected = chans.filter((c) => c === 'quote:NOPE').map((channel) => ({ channel, code: 'UNKNOWN_CHANNEL', reason: 'no such symbol' }));
  send({ op: 'ack', id: req.id, subscribed: chans.filter((c) => c !== 'quote:NOPE'), rejected, throttle: req.throttle ?? 0 });
  for (const ch of chans) {
    if (ch === 'trade:AAPL') {
      const t = T0;
      send({
        op: 'batch',
        items: [
          { op: 'data', ch, seq: 1, d: { id: '11', p: 100, s: 1, t, src: 'alpaca' } },
          { op: 'data', ch, seq: 2, d: { id: '12', p: 105, s: 10, t, src: 'alpaca' } },
          { op: 'correction', ch, seq: 3, d: { ref: '11', id: '14', p: 102, s: 20, t, src: 'alpaca', applied: true } },
          { op: 'data', ch, seq: 4, d: { id: '15', p: 101, s: 1, t, src: 'alpaca' } },
          { op: 'cancel', ch, seq: 5, d: { ref: '12', t, src: 'alpaca', applied: true } },
        ],
      });
    } else if (ch === 'trade:MSFT') {
      // the latest trade cancelled, then the one before it corrected
      send({ op: 'data', ch, seq: 1, d: { id: '1', p: 50, s: 1, t: T0, src: 'alpaca' } });
      send({ op: 'data', ch, seq: 2, d: { id: '2', p: 51, s: 1, t: T0, src: 'alpaca' } });
      send({ op: 'cancel', ch, seq: 3, d: { ref: '2', t: T0, src: 'alpaca', applied: true } });
      send({ op: 'correction', ch, seq: 4, d: { ref: '1', id: '3', p: 49, s: 2, t: T0, src: 'alpaca', applied: true } });
    } else if (ch === 'trade:FAIL') {
      // a failover (docs/protocol.md#trade: ids of different sources may collide, key trades by
      // (src, id)): the new source's trade 7 is not the old source's trade 7; then the new source
      // cancels its 8, and corrects its 7
      const e1 = 1_795_316_733_694;
      const e2 = e1 + 60_000;
      send({ op: 'data', ch, seq: 1, d: { id: '7', p: 100, s: 1, t: T0, src: 'alpaca', ep: e1 } });
      send({ op: 'data', ch, seq: 2, d: { id: '8', p: 101, s: 1, t: T0 + 1, src: 'alpaca', ep: e1 } });
      send({ op: 'data', ch, seq: 3, d: { id: '7', p: 102, s: 2, t: T0 + 2, src: 'polygon', ep: e2 } });
      send({ op: 'data', ch, seq: 4, d: { id: '8', p: 103, s: 2, t: T0 + 3, src: 'polygon', ep: e2 } });
      send({ op: 'cancel', ch, seq: 5, d: { ref: '8', t: T0 + 4, src: 'polygon', applied: true, ep: e2 } });
      send({ op: 'correction', ch, seq: 6, d: { ref: '7', id: '9', p: 104, s: 2, t: T0 + 5, src: 'polygon', applied: true, ep: e2 } });
    } else if (ch === 'trade:BUSY') {
      // 5000 trades, as a busy symbol sends them in a few seconds
      for (let b = 0; b < 10; b++) {
        const items = Array.from({ length: 500 }, (_, i) => {
          const n = b * 500 + i + 1;
          return { op: 'data', ch, seq: n, d: { id: String(n), p: 100 + (n % 7), s: 1, t: T0 + n, src: 'sim' } };
        });
        send({ op: 'batch', items });
      }
    } else if (ch === 'book:BAD') {
      // the first time, an update whose checksum does not match; then a good snapshot
      badBookSubscribes++;
      const full = { bids: [[10, 1]] as BookLevel[], asks: [[11, 1]] as BookLevel[] };
      send({ op: 'data', ch, seq: 1, snapshot: true, d: book(full.bids, full.asks, full) });
      if (badBookSubscribes === 1) send({ op: 'data', ch, seq: 2, d: { ...book([[10, 2]], [], full) } });
    } else if (ch === 'bar.5m:AAPL') {
      const history = req.history ? [bar(1, true), bar(2, true), bar(3, true)].slice(-req.history) : undefined;
      send({ op: 'data', ch, seq: 7, snapshot: true, d: bar(4, false), ...(history ? { history } : {}) });
      send({ op: 'data', ch, seq: 8, d: bar(4, false, 120) });
    } else if (ch === 'bar.5m:EMPTY') {
      // docs/protocol.md, "Trade corrections and cancels": an emptied bar carries `empty: true`
      // (also in `history`, where the bar store keeps it flagged), a changed one `corrected: true`
      const emptied = (n: number, closed: boolean): Bar => ({ ...bar(n, closed), v: 0, n: 0, empty: true, ...(closed ? { corrected: true } : {}) });
      send({ op: 'data', ch, seq: 1, snapshot: true, d: bar(5, false), history: [bar(1, true), emptied(2, true), bar(3, true), bar(4, true)] });
      send({ op: 'data', ch, seq: 2, d: { ...bar(3, true, 130), corrected: true } }); // a corrected bar replaces
      send({ op: 'data', ch, seq: 3, d: emptied(1, true) }); // a closed bar emptied: removed
      send({ op: 'data', ch, seq: 4, d: emptied(5, false) }); // the open bar emptied: removed
      send({ op: 'data', ch, seq: 5, d: emptied(6, false) }); // emptied before it was seen: never shown
      send({ op: 'data', ch, seq: 6, d: bar(5, false, 140) }); // a trade opens bar 5 again
    } else if (ch === 'ticker:EMPTY') {
      send({ op: 'data', ch, seq: 1, snapshot: true, d: { p: 101, o: 100, h: 102, l: 99, v: 30, chg: 1, chgp: 1, pc: 98, t: T0 } });
      // the day's trades all cancelled: the previous close in p/o/h/l, no change
      send({ op: 'data', ch, seq: 2, d: { p: 98, o: 98, h: 98, l: 98, v: 0, chg: 0, chgp: 0, pc: 98, t: T0 + 1, empty: true } });
    } else if (ch === 'book:AAPL') {
      let full = {
        bids: [
          [10, 1],
          [9, 2],
        ] as BookLevel[],
        asks: [
          [11, 1],
          [12, 3],
        ] as BookLevel[],
      };
      send({ op: 'data', ch, seq: 1, snapshot: true, d: book(full.bids, full.asks, full, req.depth) });
      full = {
        bids: [
          [9.5, 4],
          [9, 2],
        ],
        asks: full.asks,
      };
      send({
        op: 'data',
        ch,
        seq: 2,
        d: book(
          [
            [10, 0],
            [9.5, 4],
          ],
          [],
          full,
        ),
      });
      full = {
        bids: full.bids,
        asks: [
          [11, 2],
          [12, 3],
        ],
      };
      send({ op: 'data', ch, seq: 3, d: book([], [[11, 2]], full) });
    }
  }
}

function scriptedServer(port = 0): Promise<ScriptedGateway> {
  return startScriptedGateway((ws, req) => {
    if (req.op === 'subscribe') script(ws, req);
    else if (req.op === 'unsubscribe') ws.send(JSON.stringify({ op: 'ack', id: req.id, unsubscribed: req.channels }));
  }, port);
}

describe('@tickwire/react store: what the hooks show', () => {
  let wss: WebSocketServer | undefined;
  let client: TickwireClient | undefined;
  afterEach(async () => {
    await client?.close();
    await new Promise<void>((r) => (wss ? wss.close(() => r()) : r()));
    client = undefined;
    wss = undefined;
  });

  async function connect(): Promise<{ store: TickwireStore; frames: Frame[]; errors: unknown[] }> {
    const s = await scriptedServer();
    wss = s.wss;
    client = new TickwireClient({ url: `ws://127.0.0.1:${s.port}/v1/stream`, encoding: 'json', reconnect: false });
    const errors: unknown[] = [];
    const store = new TickwireStore(client, { schedule: (fn) => void setTimeout(fn, 0), onError: (e) => errors.push(e) });
    await client.connect();
    return { store, frames: s.frames, errors };
  }

  it('a trade correction replaces the trade it refers to, a cancel removes it (list and latest value)', async () => {
    const { store } = await connect();
    store.acquire('trade:AAPL', { limit: 10 });
    store.acquire('trade:MSFT'); // no list: the latest trade only
    const ids = (): string[] => (store.snapshot('trade:AAPL').items as Trade[]).map((t) => t.id);
    await waitFor(() => ids().includes('15'), 'the trades of AAPL');
    expect(ids()).toEqual(['14', '15']);
    expect((store.snapshot('trade:AAPL').items[0] as Trade).p).toBe(102);
    expect((store.snapshot('trade:AAPL').value as Trade).id).toBe('15');
    // MSFT: 2 is cancelled while it is the latest, then 1 (not the latest any more) is corrected
    await waitFor(() => store.snapshot('trade:MSFT').received === 4, 'the updates of MSFT');
    expect(store.snapshot('trade:MSFT').value).toBeUndefined(); // no list kept: nothing else to show
  });

  it('trades are keyed by (src, id): across a failover a new source reusing an id is another trade, and its cancels and corrections touch its own', async () => {
    const { store } = await connect();
    store.acquire('trade:FAIL', { limit: 10 });
    await waitFor(() => store.snapshot('trade:FAIL').received === 6, 'the updates of FAIL');
    const list = (store.snapshot('trade:FAIL').items as Trade[]).map((t) => `${t.src}:${t.id}@${t.p}`);
    expect(list).toEqual(['alpaca:7@100', 'alpaca:8@101', 'polygon:9@104']);
    expect(store.snapshot('trade:FAIL').value).toMatchObject({ src: 'polygon', id: '9', p: 104 });
  });

  it('the latest value follows a correction of the latest trade', async () => {
    const { store } = await connect();
    store.acquire('trade:MSFT', { limit: 5 });
    await waitFor(() => store.snapshot('trade:MSFT').received === 4, 'the updates of MSFT');
    expect(store.snapshot('trade:MSFT').items).toEqual([{ id: '3', p: 49, s: 2, t: T0, src: 'alpaca' }]);
    expect(store.snapshot('trade:MSFT').value).toEqual({ id: '3', p: 49, s: 2, t: T0, src: 'alpaca' });
  });

  it('without frames (a hidden tab has none) the updates held stay bounded, and the next frame shows the newest', async () => {
    const s = await scriptedServer();
    wss = s.wss;
    client = new TickwireClient({ url: `ws://127.0.0.1:${s.port}/v1/stream`, encoding: 'json', reconnect: false });
    const frames: (() => void)[] = [];
    const store = new TickwireStore(client, { schedule: (fn) => void frames.push(fn) }); // frames that never come by themselves
    await client.connect();
    let delivered = 0;
    client.channel('trade:BUSY', () => delivered++);
    store.acquire('trade:BUSY', { limit: 20 });
    await waitFor(() => delivered === 5000, 'the 5000 trades');
    expect(store.pendingUpdates()).toBeLessThanOrEqual(512);
    expect(frames).toHaveLength(1); // one frame asked for, however many updates
    frames.shift()!();
    const snap = store.snapshot('trade:BUSY');
    expect(snap.received).toBe(5000);
    expect((snap.items as Trade[]).map((t) => t.id)).toEqual(Array.from({ length: 20 }, (_, i) => String(4981 + i)));
    expect((snap.value as Trade).id).toBe('5000');
    expect(store.pendingUpdates()).toBe(0);
  });

  it('bars of every interval make a list, with the closed bars of `history` before the snapshot', async () => {
    const { store, frames } = await connect();
    store.acquire('bar.5m:AAPL', { limit: 10, history: 3 });
    await waitFor(() => store.snapshot('bar.5m:AAPL').received === 2, 'the bars');
    expect(frames.find((f) => f.op === 'subscribe')).toMatchObject({ channels: ['bar.5m:AAPL'], history: 3 });
    const bars = store.snapshot('bar.5m:AAPL').items as Bar[];
    expect(bars.map((b) => b.t)).toEqual([1, 2, 3, 4].map((n) => T0 + n * 300_000));
    expect(bars[3]).toMatchObject({ c: 120, closed: false }); // the open bar's newer state replaced the older
  });

  it('an emptied bar (`empty: true`, live or in `history`) is removed from the list; a corrected bar replaces; an emptied ticker comes with its flag', async () => {
    const { store } = await connect();
    store.acquire('bar.5m:EMPTY', { limit: 10, history: 4 });
    store.acquire('ticker:EMPTY');
    await waitFor(() => store.snapshot('bar.5m:EMPTY').received === 6 && store.snapshot('ticker:EMPTY').received === 2, 'the bars and tickers');
    const bars = store.snapshot('bar.5m:EMPTY').items as Bar[];
    expect(bars.map((b) => b.t)).toEqual([3, 4, 5].map((n) => T0 + n * 300_000));
    expect(bars.some((b) => b.empty)).toBe(false);
    expect(bars[0]).toMatchObject({ c: 130, corrected: true });
    expect(bars[2]).toMatchObject({ c: 140, closed: false });
    // the latest value is the latest payload as sent, flag included (useChannel shows it as is)
    expect(store.snapshot('bar.5m:EMPTY').value).toMatchObject({ c: 140 });
    expect(store.snapshot('ticker:EMPTY').value).toMatchObject({ p: 98, pc: 98, empty: true }); // what useTicker returns
  });

  it('an order book is the whole book (snapshot plus every update), not the last delta', async () => {
    const { store, frames } = await connect();
    store.acquire('book:AAPL', { depth: 10 });
    await waitFor(() => store.snapshot('book:AAPL').received === 3, 'the book');
    expect(frames.find((f) => f.op === 'subscribe')).toMatchObject({ channels: ['book:AAPL'], depth: 10 });
    const b = store.snapshot('book:AAPL').value as BookPayload;
    expect(b.bids).toEqual([
      [9.5, 4],
      [9, 2],
    ]);
    expect(b.asks).toEqual([
      [11, 2],
      [12, 3],
    ]);
    expect(b.cs).toBe(bookChecksum(b.bids, b.asks));
  });

  it('a book item that does not check out asks for a fresh snapshot, and the book is rebuilt from it', async () => {
    badBookSubscribes = 0;
    const { store, frames } = await connect();
    store.acquire('book:BAD');
    await waitFor(() => badBookSubscribes === 2 && store.snapshot('book:BAD').received === 3, 'the second snapshot');
    expect(frames.filter((f) => f.op === 'unsubscribe' && f.channels?.includes('book:BAD'))).toHaveLength(1);
    const b = store.snapshot('book:BAD').value as BookPayload;
    expect(b.bids).toEqual([[10, 1]]); // the snapshot's, not the mismatched update's size 2
    expect(b.cs).toBe(bookChecksum(b.bids, b.asks));
  });

  it('a channel the server refuses: its snapshot says why, and onError hears it once', async () => {
    const { store, errors } = await connect();
    store.acquire('quote:NOPE');
    store.acquire('quote:NOPE');
    await waitFor(() => store.snapshot('quote:NOPE').error, 'the refusal');
    expect(store.snapshot('quote:NOPE').error).toEqual({ channel: 'quote:NOPE', code: 'UNKNOWN_CHANNEL', reason: 'no such symbol' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'UNKNOWN_CHANNEL' });
  });

  it('an empty channel name (a hook given a symbol not chosen yet) is refused on its own; the channels claimed with it are subscribed', async () => {
    const { store, frames, errors } = await connect();
    store.acquire('quote:AAPL');
    store.acquire('');
    store.acquire('ticker:AAPL');
    await waitFor(() => store.snapshot('').error, 'the refusal');
    expect(store.snapshot('').error).toEqual({ channel: '', code: 'BAD_REQUEST', reason: 'a channel name is a non-empty string' });
    await waitFor(() => frames.filter((f) => f.op === 'subscribe').length > 0, 'the subscribe');
    expect(frames.filter((f) => f.op === 'subscribe').flatMap((f) => f.channels)).toEqual(['quote:AAPL', 'ticker:AAPL']);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: 'BAD_REQUEST' });
    expect(store.claims()).toEqual({ 'quote:AAPL': 1, '': 1, 'ticker:AAPL': 1 });
  });

  it('the connection error is exposed while there is no connection, and cleared when it opens', async () => {
    const port = await freePort();
    client = new TickwireClient({
      url: `ws://127.0.0.1:${port}/v1/stream`,
      encoding: 'json',
      reconnect: { initialDelayMs: 50, maxDelayMs: 100 },
      fallback: false,
    });
    const store = new TickwireStore(client, { schedule: (fn) => void setTimeout(fn, 0) });
    const stop = store.trackConnection();
    let changes = 0;
    store.listenConnectionError(() => changes++);
    client.connect().catch(() => undefined);
    const err = await waitFor(() => store.connectionError(), 'an error while nothing listens');
    expect(err.code).toBe('TRANSPORT');
    const s = await scriptedServer(port);
    wss = s.wss;
    await waitFor(() => client!.state === 'open', { what: 'the connection', timeout: 15_000 });
    expect(store.connectionError()).toBeUndefined();
    expect(changes).toBe(2);
    stop();
  });

  it('a connection the server ends for good says why: a 1008 for an expired token, a close the client does not come back from', async () => {
    const s = await scriptedServer();
    wss = s.wss;
    for (const [code, reason, expected] of [
      [1008, 'token expired', { code: 'UNAUTHENTICATED', reason: 'expired', message: 'connection closed (1008 token expired) and not reconnecting' }],
      [1008, 'closed by an operator', { code: 'FORBIDDEN', message: 'connection closed (1008 closed by an operator) and not reconnecting' }],
      [1001, 'shutting down', { code: 'CONNECTION_LOST', message: 'connection closed (1001 shutting down) and not reconnecting' }],
    ] as const) {
      // reconnect off: the client reports the close as a `close` event (no `error`) and ends `closed`
      client = new TickwireClient({ url: `ws://127.0.0.1:${s.port}/v1/stream`, encoding: 'json', reconnect: false, fallback: false });
      const store = new TickwireStore(client, { schedule: (fn) => void setTimeout(fn, 0) });
      const stop = store.trackConnection();
      await client.connect();
      expect(store.connectionError()).toBeUndefined();
      for (const ws of s.wss.clients) ws.close(code, reason);
      await waitFor(() => client!.state === 'closed', 'the close');
      // (a client that reports a 1008 itself may add to the message: `...: the token cannot be renewed`)
      const { message, ...rest } = expected;
      expect(store.connectionError()).toMatchObject(rest);
      expect(store.connectionError()?.message.startsWith(message)).toBe(true);
      stop();
      await client.close();
    }
  });

  it("errors of an open connection that are not about it (the gateway's RATE_LIMIT notice, an undecodable frame, the token-expiry warning) go to onError, not to useConnectionError", async () => {
    const { store, errors } = await connect();
    const stop = store.trackConnection();
    let changes = 0;
    store.listenConnectionError(() => changes++);
    const [ws] = [...wss!.clients];
    // frames dropped over the message rate: a notice without id, at most once a second (docs/protocol.md#error-codes)
    ws!.send(JSON.stringify({ op: 'error', code: 'RATE_LIMIT', message: 'rate limit: frames dropped' }));
    ws!.send('{not json');
    // the expiry warning, to a client whose fixed token cannot be renewed
    ws!.send(JSON.stringify({ op: 'error', code: 'UNAUTHENTICATED', message: 'token expires soon', expires: Date.now() + 30_000 }));
    await waitFor(() => errors.length === 3, 'the three errors at onError');
    expect(errors.map((e) => (e as { code: string }).code)).toEqual(['RATE_LIMIT', 'BAD_SERVER_FRAME', 'UNAUTHENTICATED']);
    // the connection is up and data flows: nothing to tell the user about it
    expect(client!.state).toBe('open');
    expect(store.connectionError()).toBeUndefined();
    expect(changes).toBe(0);
    // the connection ended for good still says why (a close, then the client's error)
    ws!.close(1008, 'token expired');
    await waitFor(() => client!.state === 'closed', 'the close');
    expect(store.connectionError()).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'expired' });
    stop();
  });

  it('server-side rendering: the hooks render their empty state and nothing connects', async () => {
    const s = await scriptedServer();
    wss = s.wss;
    function Page(): ReturnType<typeof h> {
      const state = useConnectionState();
      const error = useConnectionError();
      const q = useQuote('AAPL');
      const trades = useTrades('AAPL');
      const bars = useBars('AAPL', '1h', { history: 100 });
      const b = useBook('AAPL');
      const snap = useChannelSnapshot('ticker:AAPL');
      const { ref, visible } = useOnScreen<HTMLDivElement>();
      const n = useNotifications();
      return h(
        'div',
        { ref },
        `${state}|${String(error)}|${String(q)}|${trades.length}|${bars.length}|${String(b)}|${snap.received}|${visible}|${n.notifications.length}/${n.unread}`,
      );
    }
    const html = renderToString(h(TickwireProvider, { url: `ws://127.0.0.1:${s.port}/v1/stream`, options: { encoding: 'json' } }, h(Page)));
    expect(html).toBe('<div>idle|undefined|undefined|0|0|undefined|0|true|0/0</div>');
    // nothing to wait for: rendering on the server starts no timer that could connect later
    expect(s.connections()).toBe(0);
  });

  it("the built entry starts with the 'use client' directive (React Server Components: Next.js app router)", () => {
    // A server component (a Next.js layout) that renders <TickwireProvider> imports this package.
    // Where React Server Components run, `react` has no createContext or hooks, and importing the
    // package there failed (`node --conditions=react-server`: "Named export 'createContext' not
    // found"). The directive makes an RSC bundler load it as a client module instead
    const code = readFileSync(join(process.cwd(), 'packages', 'react', 'dist', 'index.js'), 'utf8');
    // (a directive is the first statement: only comments and white space may come before it)
    expect(code).toMatch(/^(?:\s|\/\/[^\n]*\n|\/\*[\s\S]*?\*\/)*(["'])use client\1;/);
  });
});

describe('@tickwire/react store: notifications with their read state, against the engine', () => {
  const SECRET = 'test-secret-for-react-notifications-0123456789';
  const SERVICE_TOKEN = 'service-token-for-react-notifications-0123';

  it("lists the user's notifications, applies read markers (by id and by ids), and a new subscription starts with the unread ones", async () => {
    const engine = await startTestEngine(undefined, { auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
    const token = (): Promise<string> =>
      new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('rhea').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json', token });
    try {
      const post = async (id: string): Promise<void> => {
        const res = await fetch(`http://127.0.0.1:${engine.port}/v1/users/rhea/notifications`, {
          method: 'POST',
          headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id, type: 'note', title: id }),
        });
        expect(res.status).toBeLessThan(300);
      };
      const store = new TickwireStore(client, { schedule: (fn) => void setTimeout(fn, 0) });
      await client.connect();
      const claim = store.acquire('notifications', { limit: 10 });
      const list = (): UserNotification[] => store.snapshot('notifications').items as UserNotification[];
      const read = (): string =>
        list()
          .map((n) => `${n.id}:${n.read ? 'r' : 'u'}`)
          .join(' ');
      await waitFor(() => client.subscriptions.includes('notifications') && client.state === 'open', 'the subscription');
      for (const id of ['n-1', 'n-2', 'n-3']) await post(id);
      await waitFor(() => list().length === 3, 'three notifications');
      expect(read()).toBe('n-1:u n-2:u n-3:u');
      expect(list().map((n) => n.seq)).toEqual([...list().map((n) => n.seq)].sort((a, b) => a! - b!));
      expect(await client.markNotificationsRead({ upToId: 'n-2' })).toMatchObject({ unread: 1 });
      await waitFor(() => read() === 'n-1:r n-2:r n-3:u', 'the read marker up to n-2');
      expect(await client.markNotificationsRead({ ids: ['n-3'] })).toMatchObject({ unread: 0 });
      await waitFor(() => read() === 'n-1:r n-2:r n-3:r', 'the read marker of n-3');
      expect(list().every((n) => n.kind === 'notification')).toBe(true); // markers are not items
      // every claim gone, then a new one: the subscription starts after the read cursor (nothing unread)
      store.release('notifications', claim);
      await waitFor(() => !client.subscriptions.includes('notifications'), 'the unsubscribe');
      store.acquire('notifications', { limit: 10 });
      await post('n-4');
      await waitFor(() => list().some((n) => n.id === 'n-4'), 'n-4');
      expect(
        list()
          .filter((n) => !n.read)
          .map((n) => n.id),
      ).toEqual(['n-4']);
    } finally {
      await client.close();
      await engine.close();
    }
  });
});

describe('@tickwire/react store: an order book against the engine', () => {
  it('the book the store rebuilds from the synthetic feed checks out against every checksum, with no resync', async () => {
    const engine = await startTestEngine(undefined, { synthetic: { seed: 3, rate: 1500 } });
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json' });
    try {
      const store = new TickwireStore(client, { schedule: (fn) => void setTimeout(fn, 0) });
      let gaps = 0;
      client.on('gap', () => gaps++);
      // the store asks for a fresh snapshot when an item does not check out: count those
      let resyncs = 0;
      const resync = client.resync.bind(client);
      client.resync = (channels) => {
        resyncs++;
        resync(channels);
      };
      await client.connect();
      store.acquire('book:BTC-USD', { depth: 10 });
      const snap = (): ReturnType<TickwireStore['snapshot']> => store.snapshot('book:BTC-USD');
      await waitFor(() => snap().received >= 30 && snap().update && !snap().update!.snapshot, { what: '30 book items', timeout: 20_000 });
      const b = snap().value as BookPayload;
      expect(b.bids.length).toBeGreaterThan(0);
      expect(b.asks.length).toBeGreaterThan(0);
      expect(b.bids[0]![0]).toBeLessThan(b.asks[0]![0]); // best bid below best ask
      expect(bookChecksum(b.bids, b.asks)).toBe(b.cs); // the whole book, as the server computed it
      expect(gaps).toBe(0);
      expect(resyncs).toBe(0);
      expect(client.subscriptions).toEqual(['book:BTC-USD']);
    } finally {
      await client.close();
      await engine.close();
    }
  });
});
