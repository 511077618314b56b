import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';

/**
 * A local stand-in for Binance spot market streams, speaking the documented protocol: combined
 * streams at /stream?streams=a@trade/b@bookTicker, {"stream","data"} frames, live
 * SUBSCRIBE/UNSUBSCRIBE requests answered with {"result":null,"id"}, server ping frames.
 * On connect it first sends the recorded frames of fixtures/combined-stream.json, then generates
 * trades and book tickers for every subscribed stream every `pumpMs`. Times are milliseconds, or
 * microseconds (sub-millisecond digits included) on a connection whose URL has
 * `timeUnit=MICROSECOND` (General WSS information); the recorded frames are converted too.
 *
 * REST "Exchange information" (GET /api/v3/exchangeInfo): with `symbols` (a JSON array) it lists
 * those symbols, each with its `status` (`symbolStatus`, default TRADING; `setSymbolStatus`
 * changes one), shaped as the documented response; a symbol in `invalidSymbols` makes the whole
 * request fail with 400 {"code": -1121, "msg": "Invalid symbol."}, as the page says it does.
 * Without `symbols` it lists every symbol it knows (those asked about, minus the invalid ones).
 */
export const BINANCE_FIXTURES: Record<string, any>[] = JSON.parse(readFileSync(new URL('./fixtures/combined-stream.json', import.meta.url), 'utf8'));

interface BinanceConnState {
  streams: Set<string>;
  /** the URL asked for timeUnit=MICROSECOND */
  micro: boolean;
  pongs: number;
}

/** one trade as REST "Recent trades list" (GET /api/v3/trades) answers it */
export interface FakeBinanceTrade {
  id: number;
  price: string;
  qty: string;
  quoteQty: string;
  time: number;
  isBuyerMaker: boolean;
  isBestMatch: boolean;
}

export interface BinanceFakeOptions {
  pumpMs?: number;
  /** server ping interval (Binance: 20 s) */
  pingMs?: number;
  /** send the recorded fixture frames first on each connection */
  replayFixtures?: boolean;
  /** diff depth streams: how often each subscribed book changes, ms (default pumpMs) */
  depthMs?: number;
  /** answer this many depth snapshot requests with an old snapshot first (stale: step 3 of the procedure) */
  staleSnapshots?: number;
  /** hold each depth snapshot answer this long (events buffer meanwhile) */
  snapshotDelayMs?: number;
  /** `status` of symbols in exchangeInfo (default TRADING), e.g. `{BTCUSDT: 'HALT'}` */
  symbolStatus?: Readonly<Record<string, string>>;
  /** symbols exchangeInfo does not know: asking for one fails the request (-1121 Invalid symbol) */
  invalidSymbols?: readonly string[];
  /** hold each exchangeInfo answer this long (a poll in flight) */
  exchangeInfoDelayMs?: number;
  /** answer every exchangeInfo request with this body as it is (a documented example) */
  exchangeInfoBody?: unknown;
  /**
   * apply each UNSUBSCRIBE this long after it arrives (ms): the streams go on meanwhile, as the
   * events already on their way (or sent before Binance reads the request) still reach a client
   */
  unsubscribeDelayMs?: number;
}

/**
 * Depth of one symbol on the fake exchange: a book with update IDs, changed by events of 1-4
 * level changes (one update ID each) as Binance's diff depth stream sends them.
 */
class FakeDepth {
  readonly bids = new Map<number, number>();
  readonly asks = new Map<number, number>();
  id = 1000;
  #seed: number;
  /** the book as it was at start: what a stale snapshot answers */
  readonly initial: { lastUpdateId: number; bids: [string, string][]; asks: [string, string][] };

  constructor(seed: number) {
    this.#seed = seed;
    for (let i = 1; i <= 40; i++) {
      this.bids.set(round2(100 - i * 0.01), this.#size());
      this.asks.set(round2(100 + i * 0.01), this.#size());
    }
    this.initial = this.snapshot(5000);
  }

  #rand(): number {
    this.#seed = (this.#seed * 1103515245 + 12345) & 0x7fffffff;
    return this.#seed / 0x7fffffff;
  }

  #size(): number {
    return Math.round((0.1 + this.#rand() * 5) * 1e4) / 1e4;
  }

  /** one event's changes: [U, u, bids, asks] */
  step(): { U: number; u: number; b: [string, string][]; a: [string, string][] } {
    const n = 1 + Math.floor(this.#rand() * 4);
    const b: [string, string][] = [];
    const a: [string, string][] = [];
    const U = this.id + 1;
    for (let i = 0; i < n; i++) {
      const bid = this.#rand() < 0.5;
      const px = round2(bid ? 100 - (1 + Math.floor(this.#rand() * 60)) * 0.01 : 100 + (1 + Math.floor(this.#rand() * 60)) * 0.01);
      const q = this.#rand() < 0.25 ? 0 : this.#size();
      const side = bid ? this.bids : this.asks;
      if (q === 0) side.delete(px);
      else side.set(px, q);
      (bid ? b : a).push([px.toFixed(8), q.toFixed(8)]);
      this.id++;
    }
    return { U, u: this.id, b, a };
  }

  snapshot(limit: number): { lastUpdateId: number; bids: [string, string][]; asks: [string, string][] } {
    const fmt = (m: Map<number, number>, desc: boolean): [string, string][] =>
      [...m]
        .sort((x, y) => (desc ? y[0] - x[0] : x[0] - y[0]))
        .slice(0, limit)
        .map(([p, q]) => [p.toFixed(8), q.toFixed(8)]);
    return { lastUpdateId: this.id, bids: fmt(this.bids, true), asks: fmt(this.asks, false) };
  }

  /** the top `depth` levels as numbers (what a correct local book shows) */
  view(depth: number): { bids: [number, number][]; asks: [number, number][] } {
    const s = this.snapshot(depth);
    const num = (l: [string, string][]): [number, number][] => l.map(([p, q]) => [Number(p), Number(q)]);
    return { bids: num(s.bids), asks: num(s.asks) };
  }
}

/** now in ms, or in µs with the sub-millisecond digits */
function timeFor(micro: boolean): number {
  return micro ? Math.floor((performance.timeOrigin + performance.now()) * 1000) : Date.now();
}

/** a recorded frame (times in ms) as a timeUnit=MICROSECOND connection gets it */
function inMicroseconds(frame: Record<string, any>): Record<string, any> {
  const data = { ...(frame.data as Record<string, unknown>) };
  for (const k of ['E', 'T']) if (typeof data[k] === 'number') data[k] = (data[k] as number) * 1000;
  return { ...frame, data };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

export type BinanceFakeServer = FakeWsServer<BinanceConnState> & {
  pongs(): number;
  /** REST base URL (GET /api/v3/depth) */
  readonly restUrl: string;
  /** the exchange's book of a provider symbol (e.g. BTCUSDT), if it has a depth stream */
  depth(symbol: string): FakeDepth | undefined;
  /** lose the next `n` update IDs of a symbol's depth stream (they change the book but are not sent) */
  loseDepthUpdates(symbol: string, n: number): void;
  /** depth snapshot requests answered so far (stale ones included) */
  snapshotRequests(): number;
  /** every trade the exchange made for a provider symbol (e.g. BTCUSDT), oldest first */
  trades(symbol: string): FakeBinanceTrade[];
  /** make `n` trades of a symbol that no connection is sent (as while a client is disconnected) */
  recordTrades(symbol: string, n: number): void;
  /** GET /api/v3/trades requests answered so far */
  tradeRequests(): number;
  /** GET /api/v3/historicalTrades requests answered so far: the `fromId` and `limit` of each */
  historicalTradeRequests(): { fromId: number | undefined; limit: number }[];
  /** when each JSON request (SUBSCRIBE, ...) arrived (ms), oldest first */
  requestTimes(): number[];
  /** change a symbol's `status` in exchangeInfo */
  setSymbolStatus(symbol: string, status: string): void;
  /** GET /api/v3/exchangeInfo requests answered so far: when (ms) and the `symbols` asked (undefined: all) */
  exchangeInfoRequests(): { at: number; symbols: string[] | undefined }[];
  /** answer the next `n` exchangeInfo requests with HTTP `status` (429: too many requests) and a Retry-After of `retryAfterS` */
  failExchangeInfo(n: number, status: number, retryAfterS?: number): void;
  /** answer the next `n` depth snapshot requests with HTTP `status` (429, 418: IP banned) and a Retry-After of `retryAfterS` */
  failDepth(n: number, status: number, retryAfterS?: number): void;
  /** when each depth snapshot request arrived (ms), failed ones included, oldest first */
  depthRequestTimes(): number[];
};

export async function startBinanceFake(opts: BinanceFakeOptions = {}): Promise<BinanceFakeServer> {
  let pongs = 0;
  const pingTimers = new Set<NodeJS.Timeout>();
  // trade ids are per symbol and go on across connections, as on Binance (Trade Streams: `t` Trade ID)
  const tradeLog = new Map<string, FakeBinanceTrade[]>();
  const makeTrade = (S: string): FakeBinanceTrade => {
    let log = tradeLog.get(S);
    if (!log) tradeLog.set(S, (log = []));
    const id = (log.at(-1)?.id ?? 4_000_000_000) + 1; // above the recorded fixtures' ids
    const px = (100 + (id % 50) / 10).toFixed(8);
    const t = { id, price: px, qty: '0.50000000', quoteQty: (Number(px) * 0.5).toFixed(8), time: Date.now(), isBuyerMaker: id % 2 === 0, isBestMatch: true };
    log.push(t);
    return t;
  };
  let tradeRequests = 0;
  const historicalRequests: { fromId: number | undefined; limit: number }[] = [];
  const requestTimes: number[] = [];
  const server = await FakeWsServer.start<BinanceConnState>({
    initialState: () => ({ streams: new Set(), micro: false, pongs: 0 }),
    refuse: (req) => (new URL(req.url ?? '/', 'http://x').pathname.startsWith('/stream') ? undefined : 404),
    onConnection: (conn) => {
      for (const s of (conn.url.searchParams.get('streams') ?? '').split('/')) if (s) conn.state.streams.add(s);
      conn.state.micro = (conn.url.searchParams.get('timeUnit') ?? '').toUpperCase() === 'MICROSECOND';
      conn.ws.on('pong', () => {
        conn.state.pongs++;
        pongs++;
      });
      if (opts.pingMs) {
        const t = setInterval(() => conn.ws.ping(), opts.pingMs);
        pingTimers.add(t);
        conn.ws.on('close', () => {
          clearInterval(t);
          pingTimers.delete(t);
        });
      }
      if (opts.replayFixtures !== false) for (const f of BINANCE_FIXTURES) conn.send(conn.state.micro ? inMicroseconds(f) : f);
    },
    onMessage: (conn, data) => {
      requestTimes.push(Date.now());
      const req = JSON.parse(data.toString('utf8')) as { method: string; params?: string[]; id: number };
      if (req.method === 'SUBSCRIBE') for (const s of req.params ?? []) conn.state.streams.add(s);
      else if (req.method === 'UNSUBSCRIBE') {
        const drop = (): void => {
          for (const s of req.params ?? []) conn.state.streams.delete(s);
          conn.send({ result: null, id: req.id });
        };
        if (opts.unsubscribeDelayMs) setTimeout(drop, opts.unsubscribeDelayMs).unref();
        else drop();
        return;
      } else if (req.method === 'LIST_SUBSCRIPTIONS') {
        conn.send({ result: [...conn.state.streams], id: req.id });
        return;
      } else {
        conn.send({ code: 2, msg: `Invalid request: unknown method ${req.method}`, id: req.id });
        return;
      }
      conn.send({ result: null, id: req.id });
    },
    pumpMs: opts.pumpMs ?? 25,
    onPump: (conn) => {
      const now = timeFor(conn.state.micro);
      for (const stream of conn.state.streams) {
        const [sym, kind] = stream.split('@') as [string, string];
        const S = sym.toUpperCase();
        const px = 100 + ((tradeLog.get(S)?.at(-1)?.id ?? 0) % 50) / 10;
        if (kind === 'trade') {
          const t = makeTrade(S);
          conn.send({ stream, data: { e: 'trade', E: now, s: S, t: t.id, p: t.price, q: t.qty, T: now, m: t.isBuyerMaker, M: true } });
        } else if (kind === 'bookTicker') {
          conn.send({ stream, data: { u: now, s: S, b: (px - 0.01).toFixed(8), B: '2.00000000', a: (px + 0.01).toFixed(8), A: '3.00000000' } });
        }
      }
    },
  });
  // depth: one book per symbol on the exchange, whatever the number of connections
  const books = new Map<string, FakeDepth>();
  const lose = new Map<string, number>();
  const bookOf = (sym: string): FakeDepth => {
    let b = books.get(sym);
    if (!b) books.set(sym, (b = new FakeDepth(sym.length * 7919 + sym.charCodeAt(0))));
    return b;
  };
  let stale = opts.staleSnapshots ?? 0;
  let snapshotRequests = 0;
  const depthTimer = setInterval(
    () => {
      if (server.paused) return;
      const subscribers = new Map<string, { stream: string; micro: boolean; send: (v: unknown) => void }[]>();
      for (const c of server.conns) {
        for (const stream of c.state.streams) {
          const [sym, kind] = stream.split('@') as [string, string];
          if (kind !== 'depth') continue;
          const S = sym.toUpperCase();
          let list = subscribers.get(S);
          if (!list) subscribers.set(S, (list = []));
          list.push({ stream, micro: c.state.micro, send: (v) => c.send(v) });
        }
      }
      for (const [S, list] of subscribers) {
        const book = bookOf(S);
        let n = lose.get(S) ?? 0;
        while (n > 0) {
          const lost = book.step(); // changes the book, never sent
          n -= lost.u - lost.U + 1;
        }
        lose.delete(S);
        const ev = book.step();
        for (const { stream, micro, send } of list) send({ stream, data: { e: 'depthUpdate', E: timeFor(micro), s: S, ...ev } });
      }
    },
    opts.depthMs ?? opts.pumpMs ?? 25,
  );
  const symbolStatus = new Map(Object.entries(opts.symbolStatus ?? {}));
  const invalid = new Set(opts.invalidSymbols ?? []);
  const knownSymbols = new Set<string>();
  const infoRequests: { at: number; symbols: string[] | undefined }[] = [];
  const infoFailures = { n: 0, status: 429, retryAfterS: 0 };
  const depthFailures = { n: 0, status: 429, retryAfterS: 0 };
  const depthTimes: number[] = [];
  // the documented exchangeInfo symbol, with this symbol's name and status
  const infoSymbol = (symbol: string) => ({
    symbol,
    status: symbolStatus.get(symbol) ?? 'TRADING',
    baseAsset: symbol.slice(0, 3),
    baseAssetPrecision: 8,
    quoteAsset: symbol.slice(3),
    quotePrecision: 8,
    quoteAssetPrecision: 8,
    orderTypes: ['LIMIT', 'LIMIT_MAKER', 'MARKET'],
    icebergAllowed: true,
    ocoAllowed: true,
    isSpotTradingAllowed: true,
    isMarginTradingAllowed: true,
    filters: [],
    permissions: [],
  });
  const rest: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/api/v3/exchangeInfo') {
      const raw = u.searchParams.get('symbols');
      let asked: string[] | undefined;
      try {
        asked = raw === null ? undefined : (JSON.parse(raw) as string[]);
        if (asked !== undefined && (!Array.isArray(asked) || asked.some((x) => typeof x !== 'string'))) throw new Error('not a list');
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: -1100, msg: 'Illegal characters found in parameter symbols.' }));
        return;
      }
      infoRequests.push({ at: Date.now(), symbols: asked });
      if (infoFailures.n > 0) {
        infoFailures.n--;
        const headers = { 'content-type': 'application/json', ...(infoFailures.retryAfterS ? { 'retry-after': String(infoFailures.retryAfterS) } : {}) };
        res.writeHead(infoFailures.status, headers).end(JSON.stringify({ code: -1003, msg: 'Too many requests.' }));
        return;
      }
      if (asked?.some((x) => invalid.has(x))) {
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: -1121, msg: 'Invalid symbol.' }));
        return;
      }
      if (opts.exchangeInfoBody !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(opts.exchangeInfoBody));
        return;
      }
      for (const x of asked ?? []) knownSymbols.add(x);
      const list = asked ?? [...new Set([...knownSymbols, ...symbolStatus.keys(), ...tradeLog.keys()])].filter((x) => !invalid.has(x));
      const body = { timezone: 'UTC', serverTime: Date.now(), rateLimits: [], exchangeFilters: [], symbols: list.map(infoSymbol) };
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)), opts.exchangeInfoDelayMs ?? 0);
      return;
    }
    if (u.pathname === '/api/v3/historicalTrades') {
      // REST "Old trade lookup": symbol, limit (default 500, max 1000), fromId ("TradeId to fetch
      // from. Default gets most recent trades"); oldest first; no API key since the security type
      // became NONE (CHANGELOG 2023-07-11: "the X-MBX-APIKEY header is no longer necessary"); times as
      // for /api/v3/trades
      const micro = String(req.headers['x-mbx-time-unit'] ?? '').toUpperCase() === 'MICROSECOND';
      const limit = Math.min(1000, Number(u.searchParams.get('limit') ?? 500));
      const from = u.searchParams.get('fromId');
      const fromId = from === null ? undefined : Number(from);
      historicalRequests.push({ fromId, limit });
      const all = tradeLog.get(u.searchParams.get('symbol') ?? '') ?? [];
      const list = (fromId === undefined ? all.slice(-limit) : all.filter((t) => t.id >= fromId).slice(0, limit)).map((t) =>
        micro ? { ...t, time: t.time * 1000 } : t,
      );
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    if (u.pathname === '/api/v3/trades') {
      // REST "Recent trades list": symbol, limit (default 500, max 1000); oldest first; times in ms,
      // or µs with the header X-MBX-TIME-UNIT: MICROSECOND
      tradeRequests++;
      const micro = String(req.headers['x-mbx-time-unit'] ?? '').toUpperCase() === 'MICROSECOND';
      const limit = Math.min(1000, Number(u.searchParams.get('limit') ?? 500));
      const list = (tradeLog.get(u.searchParams.get('symbol') ?? '') ?? []).slice(-limit).map((t) => (micro ? { ...t, time: t.time * 1000 } : t));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    if (u.pathname !== '/api/v3/depth') {
      res.writeHead(404).end();
      return;
    }
    const sym = u.searchParams.get('symbol') ?? '';
    const limit = Math.min(5000, Number(u.searchParams.get('limit') ?? 100));
    if (!/^[A-Z0-9]+$/.test(sym)) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: -1121, msg: 'Invalid symbol.' }));
      return;
    }
    depthTimes.push(Date.now());
    if (depthFailures.n > 0) {
      // LIMITS > IP Limits: 429 over the request weight limit, 418 an IP ban; Retry-After in seconds
      depthFailures.n--;
      const headers = { 'content-type': 'application/json', ...(depthFailures.retryAfterS ? { 'retry-after': String(depthFailures.retryAfterS) } : {}) };
      res.writeHead(depthFailures.status, headers).end(JSON.stringify({ code: -1003, msg: 'Too many requests.' }));
      return;
    }
    snapshotRequests++;
    const book = bookOf(sym);
    const body = stale > 0 ? (stale--, book.initial) : book.snapshot(limit);
    setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body)), opts.snapshotDelayMs ?? 0);
  });
  await new Promise<void>((r) => rest.listen(0, '127.0.0.1', r));
  const restUrl = `http://127.0.0.1:${(rest.address() as AddressInfo).port}`;
  const origClose = server.close.bind(server);
  return Object.assign(server, {
    pongs: () => pongs,
    restUrl,
    depth: (symbol: string) => books.get(symbol),
    loseDepthUpdates: (symbol: string, n: number) => lose.set(symbol, (lose.get(symbol) ?? 0) + n),
    snapshotRequests: () => snapshotRequests,
    trades: (symbol: string) => [...(tradeLog.get(symbol) ?? [])],
    recordTrades: (symbol: string, n: number) => {
      for (let i = 0; i < n; i++) makeTrade(symbol);
    },
    tradeRequests: () => tradeRequests,
    historicalTradeRequests: () => [...historicalRequests],
    requestTimes: () => [...requestTimes],
    setSymbolStatus: (symbol: string, status: string) => void symbolStatus.set(symbol, status),
    exchangeInfoRequests: () => [...infoRequests],
    failExchangeInfo: (n: number, status: number, retryAfterS = 0) => Object.assign(infoFailures, { n, status, retryAfterS }),
    failDepth: (n: number, status: number, retryAfterS = 0) => void Object.assign(depthFailures, { n, status, retryAfterS }),
    depthRequestTimes: () => [...depthTimes],
    close: async () => {
      for (const t of pingTimers) clearInterval(t);
      pingTimers.clear();
      clearInterval(depthTimer);
      rest.closeAllConnections();
      await new Promise<void>((r) => rest.close(() => r()));
      await origClose();
    },
  });
}
