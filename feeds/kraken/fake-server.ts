import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';
import type { FakeWsConn } from '../sdk/testing/fake-ws-server.js';
import { bookChecksum } from './book.js';
import type { BookPrecision, Level } from './book.js';

/**
 * A local stand-in for Kraken's Spot WebSocket v2 public endpoint, speaking the documented
 * protocol (see feeds/kraken/kraken-feed.ts for the doc sections):
 *
 * - a `status` message on connect (the documented example, first fixture);
 * - `subscribe` / `unsubscribe` requests for `trade` and `ticker`, answered with one ack per
 *   symbol (`success`, `result.channel`, `result.symbol`, `time_in`, `time_out`, `req_id`), or with
 *   `success: false` and `error` for a pair in `unsupported`;
 * - `ping` answered with `pong`;
 * - a trade snapshot (the last 50 trades of the pair) when `snapshot: true`, and a ticker
 *   snapshot unless `snapshot: false`;
 * - trades and tickers for every subscribed pair every `pumpMs`, and a `heartbeat` when a
 *   connection got nothing else for `heartbeatMs`.
 *
 * Trade ids are one sequence per pair for the whole server (Kraken: "unique per book"), and every
 * trade is kept in the pair's history, so trades made while a client is away are in the snapshot
 * it gets on its return. `trade(pair, n)` makes n trades now; `skip(pair, n)` makes the next trade
 * id jump by n (lost trades); `quiet()` stops data but not heartbeats; `pause()` stops both.
 * On the first subscribe of each connection the recorded frames of fixtures/messages.json are
 * sent (byte for byte, so the 64-bit connection_id keeps its digits).
 *
 * Order books (`book` channel, websocket-v2/book and the v2 book checksum guide): one book per
 * pair for the whole server, 40 levels a side around 100.0, 0.2 apart (price precision 1, qty precision 8,
 * as the `instrument` channel reports them). A subscription gets a snapshot of `depth` levels a
 * side with its CRC32 checksum; every pump the book changes (a size, a level removed, a level
 * added) and each subscriber gets the changes inside its depth, as Kraken sends them: a removed
 * level as qty 0, a level that only falls out of the subscribed depth not at all, a level that
 * comes into scope as a new level. `corruptChecksum(pair)` sends the next update with a wrong
 * checksum.
 *
 * Pair states (`instrument` channel, `pairs[].status`): `pairStatus` sets them for the snapshot,
 * `setPairStatus(pair, status)` changes one and sends an `instrument` update listing that pair.
 */
const FIXTURE_TEXT = readFileSync(new URL('./fixtures/messages.json', import.meta.url), 'utf8');
const FIXTURE_ENTRIES = JSON.parse(FIXTURE_TEXT) as { source: string; frame: Record<string, any> }[];
/** the raw text of each fixture frame (one entry per line in the file) */
export const KRAKEN_FIXTURE_FRAMES: string[] = FIXTURE_TEXT.split('\n')
  .filter((l) => l.includes('"frame": '))
  .map((l) => l.slice(l.indexOf('"frame": ') + '"frame": '.length, l.lastIndexOf('}')));
if (
  KRAKEN_FIXTURE_FRAMES.length !== FIXTURE_ENTRIES.length ||
  KRAKEN_FIXTURE_FRAMES.some((raw, i) => !isDeepStrictEqual(JSON.parse(raw), FIXTURE_ENTRIES[i]!.frame))
) {
  throw new Error('feeds/kraken/fixtures/messages.json: keep one {"source", "frame"} entry per line');
}
export const KRAKEN_FIXTURES = FIXTURE_ENTRIES;

interface KrakenConnState {
  id: number;
  /** when this connection's requests counted by `msgRate` arrived */
  requestTimes: number[];
  subs: Record<'trade' | 'ticker' | 'book' | 'instrument', Set<string>>;
  /** per subscribed book pair: the depth and the view (levels within depth) this client was last sent */
  books: Map<string, { depth: number; bids: Map<number, number>; asks: Map<number, number> }>;
  fixturesSent: boolean;
  lastSentAt: number;
}

/** Precision the fake reports for every pair on the `instrument` channel */
export const KRAKEN_FAKE_PRECISION: BookPrecision = { price: 1, qty: 8 };

export interface KrakenTrade {
  symbol: string;
  side: 'buy' | 'sell';
  price: number;
  qty: number;
  ord_type: 'limit' | 'market';
  trade_id: number;
  timestamp: string;
}

export interface KrakenFakeOptions {
  pumpMs?: number;
  heartbeatMs?: number;
  /** send the recorded fixture frames on the first subscribe of each connection (default true) */
  replayFixtures?: boolean;
  /** pairs refused with `Currency pair not supported` */
  unsupported?: readonly string[];
  /** answer subscribe/unsubscribe requests only after this long (a slow acknowledgement) */
  ackDelayMs?: number;
  /** exchange status in the greeting (default: the fixture's `online`) */
  system?: 'online' | 'maintenance' | 'cancel_only' | 'post_only';
  /** pairs listed by the `instrument` channel (default: every pair the server has been asked about) */
  instrumentPairs?: readonly string[];
  /** each pair's `status` on the `instrument` channel (default `online`), e.g. `{'BTC/USD': 'cancel_only'}` */
  pairStatus?: Readonly<Record<string, string>>;
  /** book changes per pump per pair (default 1; 0 = books change only through `bookStep`) */
  bookChangesPerPump?: number;
  /** hold the `instrument` snapshot until `sendInstrumentSnapshot()` (the order of the channels' first messages is not promised) */
  holdInstrumentSnapshot?: boolean;
  /** refuse `instrument` subscriptions (success: false) */
  refuseInstrument?: boolean;
  /**
   * a message-rate limit per connection: a `subscribe` or `unsubscribe` request beyond `max` in
   * any `windowMs` is refused whole with `Exceeded msg rate` (success: false, its req_id, no
   * symbol), as Kraken refuses a connection's requests over its message rate (see
   * feeds/kraken/kraken-feed.ts, KRAKEN_TRANSIENT_ERRORS). Kraken publishes no number for it
   */
  msgRate?: { max: number; windowMs: number };
}

/** one subscribe/unsubscribe request as the fake received it */
export interface KrakenFakeRequest {
  at: number;
  conn: number;
  method: string;
  channel: string;
  symbols: string[];
  /** refused for the message rate */
  rateRefused: boolean;
}

export type KrakenFakeServer = FakeWsServer<KrakenConnState> & {
  /** make `n` trades of `pair` now (sent to subscribers, kept in the history) */
  trade(pair: string, n?: number): KrakenTrade[];
  /** the next trade id of `pair` jumps by `n` */
  skip(pair: string, n: number): void;
  /** stop trades and tickers; heartbeats go on */
  quiet(on?: boolean): void;
  /** every trade made so far for `pair`, oldest first */
  history(pair: string): KrakenTrade[];
  /** send a frame to every open connection */
  broadcast(frame: unknown): void;
  /** the server's whole book of `pair` (40 levels a side), best first */
  fullBook(pair: string): { bids: Level[]; asks: Level[] };
  /** change the book of `pair` `n` times now and send the changes to its subscribers */
  bookStep(pair: string, n?: number): void;
  /** the next book update of `pair` carries a wrong checksum */
  corruptChecksum(pair: string): void;
  /** change the pair's `status` and send an `instrument` update listing that pair to its subscribers */
  setPairStatus(pair: string, status: string): void;
  /** send the `instrument` snapshot held by `holdInstrumentSnapshot` to every subscriber */
  sendInstrumentSnapshot(): void;
  /** every subscribe/unsubscribe request received, in order, with when and whether `msgRate` refused it */
  readonly requestLog: KrakenFakeRequest[];
};

/** RFC 3339 with microseconds, as Kraken writes it */
function krakenTime(d = new Date()): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, (_m, ms: string) => `.${ms}${String(Math.floor(Math.random() * 1000)).padStart(3, '0')}Z`);
}

export async function startKrakenFake(opts: KrakenFakeOptions = {}): Promise<KrakenFakeServer> {
  const heartbeatMs = opts.heartbeatMs ?? 1000;
  const unsupported = new Set(opts.unsupported ?? []);
  const nextId = new Map<string, number>();
  const history = new Map<string, KrakenTrade[]>();
  const skipBy = new Map<string, number>();
  let quiet = false;
  let n = 0;
  let connIds = 0;
  const requestLog: KrakenFakeRequest[] = [];
  // continue the ids after the fixtures' trades, so that replayed fixtures never collide with new trades
  for (const { frame } of FIXTURE_ENTRIES) {
    if (frame.channel !== 'trade') continue;
    for (const t of frame.data as { symbol: string; trade_id?: number }[]) {
      if (typeof t.trade_id === 'number') nextId.set(t.symbol, Math.max(nextId.get(t.symbol) ?? 0, t.trade_id + 1));
    }
  }

  const send = (conn: FakeWsConn<KrakenConnState>, frame: unknown): void => {
    conn.state.lastSentAt = Date.now();
    conn.send(frame);
  };
  const makeTrade = (pair: string): KrakenTrade => {
    const id = (nextId.get(pair) ?? 1_000_000) + (skipBy.get(pair) ?? 0);
    skipBy.delete(pair);
    nextId.set(pair, id + 1);
    const t: KrakenTrade = {
      symbol: pair,
      side: id % 2 === 0 ? 'buy' : 'sell',
      price: Number((100 + (id % 40) / 10).toFixed(1)),
      qty: Number((0.001 + (id % 7) * 0.12345678).toFixed(8)),
      ord_type: id % 3 === 0 ? 'market' : 'limit',
      trade_id: id,
      timestamp: krakenTime(),
    };
    const h = history.get(pair) ?? [];
    h.push(t);
    if (h.length > 1000) h.splice(0, h.length - 1000);
    history.set(pair, h);
    return t;
  };
  const ticker = (pair: string) => {
    const last = history.get(pair)?.at(-1)?.price ?? 100;
    return {
      symbol: pair,
      bid: Number((last - 0.1).toFixed(1)),
      bid_qty: 1.5,
      ask: Number((last + 0.1).toFixed(1)),
      ask_qty: 0.25,
      last,
      volume: 1234.5678,
      vwap: last,
      low: last - 5,
      high: last + 5,
      change: 0.5,
      change_pct: 0.5,
      timestamp: krakenTime(),
    };
  };

  // ---- order books ----
  const books = new Map<string, { bids: Map<number, number>; asks: Map<number, number> }>();
  const corrupt = new Set<string>();
  const knownPairs = new Set<string>(['BTC/USD', 'ETH/USD']);
  let rnd = 0x2545f491;
  const random = (): number => {
    // xorshift32: reproducible books from run to run
    rnd ^= rnd << 13;
    rnd ^= rnd >>> 17;
    rnd ^= rnd << 5;
    return (rnd >>> 0) / 0x1_0000_0000;
  };
  const qty = (): number => Number((0.001 + random() * 5).toFixed(8));
  const bookOf = (pair: string) => {
    let b = books.get(pair);
    if (!b) {
      b = { bids: new Map(), asks: new Map() };
      for (let i = 0; i < 40; i++) {
        // every other tick of the 0.1 grid, so that new levels can appear between existing ones
        b.bids.set(Number((99.9 - i * 0.2).toFixed(1)), qty());
        b.asks.set(Number((100 + i * 0.2).toFixed(1)), qty());
      }
      books.set(pair, b);
    }
    return b;
  };
  const sorted = (m: Map<number, number>, side: 'bids' | 'asks', limit = Infinity): Level[] =>
    [...m.keys()]
      .sort(side === 'bids' ? (a, b) => b - a : (a, b) => a - b)
      .slice(0, limit)
      .map((p) => [p, m.get(p)!]);
  const wire = (levels: Level[]) => levels.map(([price, q]) => ({ price, qty: q }));
  /** one change: a new size, a removed level, or a new level between the existing ones (the book keeps 30 to 50 levels a side) */
  const mutate = (pair: string): void => {
    const b = bookOf(pair);
    const side = random() < 0.5 ? 'bids' : 'asks';
    const m = b[side];
    const levels = sorted(m, side);
    const i = Math.floor(random() * Math.min(levels.length, 15));
    const r = random();
    if (r < 0.4 || levels.length <= 30) {
      // a new level near the top: prices on a 0.1 grid, within 6.0 of the best
      const best = side === 'bids' ? 99.9 : 100;
      const step = Math.floor(random() * 60) / 10;
      const p = Number((side === 'bids' ? best - step : best + step).toFixed(1));
      m.set(p, qty());
    } else if (r < 0.7 && levels.length > 30) {
      m.delete(levels[i]![0]);
    } else {
      m.set(levels[i]![0], qty());
    }
    if (m.size > 50) for (const [p] of sorted(m, side).slice(50)) m.delete(p);
  };
  const snapshotFor = (conn: FakeWsConn<KrakenConnState>, pair: string, depth: number) => {
    const b = bookOf(pair);
    const bids = sorted(b.bids, 'bids', depth);
    const asks = sorted(b.asks, 'asks', depth);
    conn.state.books.set(pair, { depth, bids: new Map(bids), asks: new Map(asks) });
    send(conn, {
      channel: 'book',
      type: 'snapshot',
      data: [{ symbol: pair, bids: wire(bids), asks: wire(asks), checksum: bookChecksum(bids, asks, KRAKEN_FAKE_PRECISION) }],
    });
  };
  /** send `conn` what changed in its view of `pair` since it was last sent */
  const bookUpdateFor = (conn: FakeWsConn<KrakenConnState>, pair: string): void => {
    const view = conn.state.books.get(pair);
    if (!view) return;
    const b = bookOf(pair);
    const changes = { bids: [] as Level[], asks: [] as Level[] };
    for (const side of ['bids', 'asks'] as const) {
      const now = new Map(sorted(b[side], side, view.depth));
      for (const [p, q] of now) if (view[side].get(p) !== q) changes[side].push([p, q]);
      // a level gone from the book is sent as qty 0; one only pushed out of the depth is not sent
      for (const p of view[side].keys()) if (!now.has(p) && !b[side].has(p)) changes[side].push([p, 0]);
      view[side] = now;
    }
    if (changes.bids.length + changes.asks.length === 0) return;
    let checksum = bookChecksum(sorted(view.bids, 'bids', 10), sorted(view.asks, 'asks', 10), KRAKEN_FAKE_PRECISION);
    if (corrupt.delete(pair)) checksum = (checksum + 1) >>> 0;
    send(conn, {
      channel: 'book',
      type: 'update',
      data: [{ symbol: pair, bids: wire(changes.bids), asks: wire(changes.asks), checksum, timestamp: krakenTime() }],
    });
  };
  const pairStatus = new Map(Object.entries(opts.pairStatus ?? {}));
  const instrumentData = (only?: readonly string[]) => ({
    assets: [],
    pairs: [...(only ?? opts.instrumentPairs ?? knownPairs)].map((symbol) => ({
      symbol,
      base: symbol.split('/')[0],
      quote: symbol.split('/')[1],
      status: pairStatus.get(symbol) ?? 'online',
      price_precision: KRAKEN_FAKE_PRECISION.price,
      qty_precision: KRAKEN_FAKE_PRECISION.qty,
      price_increment: 0.1,
      qty_increment: 1e-8,
    })),
  });

  const answer = (conn: FakeWsConn<KrakenConnState>, data: Buffer): void => {
    const time_in = krakenTime();
    let req: { method?: string; params?: { channel?: string; symbol?: string[]; snapshot?: boolean; depth?: number }; req_id?: number };
    try {
      req = JSON.parse(data.toString('utf8'));
    } catch {
      send(conn, { error: 'Malformed request', method: 'error', success: false, time_in, time_out: krakenTime() });
      return;
    }
    const reqId = req.req_id === undefined ? {} : { req_id: req.req_id };
    if (req.method === 'ping') {
      send(conn, { method: 'pong', ...reqId, time_in, time_out: krakenTime() });
      return;
    }
    if (req.method !== 'subscribe' && req.method !== 'unsubscribe') {
      send(conn, { error: `Method not supported: ${String(req.method)}`, method: req.method, success: false, ...reqId, time_in, time_out: krakenTime() });
      return;
    }
    const channel = req.params?.channel;
    if (channel !== 'trade' && channel !== 'ticker' && channel !== 'book' && channel !== 'instrument') {
      send(conn, { error: `Channel not supported: ${String(channel)}`, method: req.method, success: false, ...reqId, time_in, time_out: krakenTime() });
      return;
    }
    const snapshot = req.params?.snapshot ?? true;
    const now = Date.now();
    let rateRefused = false;
    if (opts.msgRate) {
      const times = conn.state.requestTimes.filter((t) => now - t < opts.msgRate!.windowMs);
      rateRefused = times.length >= opts.msgRate.max;
      if (!rateRefused) times.push(now);
      conn.state.requestTimes = times;
    }
    requestLog.push({ at: now, conn: conn.state.id, method: req.method, channel, symbols: [...(req.params?.symbol ?? [])], rateRefused });
    if (rateRefused) {
      send(conn, { error: 'Exceeded msg rate', method: req.method, success: false, ...reqId, time_in, time_out: krakenTime() });
      return;
    }
    if (channel === 'instrument' && opts.refuseInstrument) {
      send(conn, { error: 'Subscription refused', method: req.method, success: false, ...reqId, time_in, time_out: krakenTime() });
      return;
    }
    if (channel === 'instrument') {
      // [instrument] no symbol: one ack, then the snapshot of every pair
      if (req.method === 'unsubscribe') conn.state.subs.instrument.clear();
      else conn.state.subs.instrument.add('*');
      send(conn, { method: req.method, result: { channel, snapshot }, success: true, ...reqId, time_in, time_out: krakenTime() });
      if (req.method === 'subscribe' && snapshot && !opts.holdInstrumentSnapshot)
        send(conn, { channel: 'instrument', type: 'snapshot', data: instrumentData() });
      return;
    }
    const depth = req.params?.depth ?? 10;
    if (channel === 'book' && ![10, 25, 100, 500, 1000].includes(depth)) {
      send(conn, { error: `Invalid depth ${depth}`, method: req.method, success: false, ...reqId, time_in, time_out: krakenTime() });
      return;
    }
    for (const pair of req.params?.symbol ?? []) {
      if (unsupported.has(pair)) {
        send(conn, {
          error: `Currency pair not supported ${pair}`,
          method: req.method,
          success: false,
          symbol: pair,
          ...reqId,
          time_in,
          time_out: krakenTime(),
        });
        continue;
      }
      knownPairs.add(pair);
      if (req.method === 'unsubscribe') {
        conn.state.subs[channel].delete(pair);
        if (channel === 'book') conn.state.books.delete(pair);
      } else conn.state.subs[channel].add(pair);
      send(conn, {
        method: req.method,
        result: { channel, symbol: pair, ...(channel === 'book' ? { depth } : {}), ...(req.method === 'subscribe' ? { snapshot } : {}) },
        success: true,
        ...reqId,
        time_in,
        time_out: krakenTime(),
      });
      if (req.method === 'subscribe' && snapshot) {
        if (channel === 'trade') send(conn, { channel: 'trade', type: 'snapshot', data: (history.get(pair) ?? []).slice(-50) });
        else if (channel === 'book') snapshotFor(conn, pair, depth);
        else send(conn, { channel: 'ticker', type: 'snapshot', data: [ticker(pair)] });
      }
    }
    if (req.method === 'subscribe' && !conn.state.fixturesSent && opts.replayFixtures !== false) {
      conn.state.fixturesSent = true;
      for (const raw of KRAKEN_FIXTURE_FRAMES.slice(1)) send(conn, raw);
    }
  };

  const server = await FakeWsServer.start<KrakenConnState>({
    initialState: () => ({
      id: ++connIds,
      requestTimes: [],
      subs: { trade: new Set(), ticker: new Set(), book: new Set(), instrument: new Set() },
      books: new Map(),
      fixturesSent: false,
      lastSentAt: Date.now(),
    }),
    onConnection: (conn) => {
      const greeting = KRAKEN_FIXTURE_FRAMES[0]!;
      conn.state.lastSentAt = Date.now();
      conn.send(opts.system ? greeting.replace('"system":"online"', `"system":"${opts.system}"`) : greeting);
    },
    onMessage: (conn, data) => {
      if (opts.ackDelayMs) setTimeout(() => answer(conn, data), opts.ackDelayMs);
      else answer(conn, data);
    },
    pumpMs: opts.pumpMs ?? 25,
    onPump: (conn) => {
      if (!quiet) {
        for (const pair of conn.state.subs.trade) {
          const trades = [makeTrade(pair)];
          if (++n % 3 === 0) trades.push(makeTrade(pair)); // several trades in one message, as Kraken batches them
          send(conn, { channel: 'trade', type: 'update', data: trades });
        }
        for (const pair of conn.state.subs.ticker) send(conn, { channel: 'ticker', type: 'update', data: [ticker(pair)] });
        for (const pair of conn.state.books.keys()) {
          for (let i = 0; i < (opts.bookChangesPerPump ?? 1); i++) mutate(pair);
          bookUpdateFor(conn, pair);
        }
      }
      const subscribed = conn.state.subs.trade.size + conn.state.subs.ticker.size + conn.state.subs.book.size > 0;
      if (subscribed && Date.now() - conn.state.lastSentAt >= heartbeatMs) send(conn, { channel: 'heartbeat' });
    },
  });

  return Object.assign(server, {
    requestLog,
    trade(pair: string, count = 1): KrakenTrade[] {
      const made: KrakenTrade[] = [];
      for (let i = 0; i < count; i++) made.push(makeTrade(pair));
      for (const conn of server.conns) if (conn.state.subs.trade.has(pair)) send(conn, { channel: 'trade', type: 'update', data: made });
      return made;
    },
    skip(pair: string, by: number): void {
      skipBy.set(pair, by);
    },
    quiet(on = true): void {
      quiet = on;
    },
    history(pair: string): KrakenTrade[] {
      return [...(history.get(pair) ?? [])];
    },
    broadcast(frame: unknown): void {
      for (const conn of server.conns) send(conn, frame);
    },
    fullBook(pair: string) {
      const b = bookOf(pair);
      return { bids: sorted(b.bids, 'bids'), asks: sorted(b.asks, 'asks') };
    },
    bookStep(pair: string, count = 1): void {
      for (let i = 0; i < count; i++) mutate(pair);
      for (const conn of server.conns) bookUpdateFor(conn, pair);
    },
    corruptChecksum(pair: string): void {
      corrupt.add(pair);
    },
    setPairStatus(pair: string, status: string): void {
      pairStatus.set(pair, status);
      // [instrument] an update has the snapshot's structure and lists the pairs that changed
      for (const conn of server.conns)
        if (conn.state.subs.instrument.size > 0) send(conn, { channel: 'instrument', type: 'update', data: instrumentData([pair]) });
    },
    sendInstrumentSnapshot(): void {
      for (const conn of server.conns) if (conn.state.subs.instrument.size > 0) send(conn, { channel: 'instrument', type: 'snapshot', data: instrumentData() });
    },
  });
}
