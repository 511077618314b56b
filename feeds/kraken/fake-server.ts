import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';
import type { FakeWsConn } from '../sdk/testing/fake-ws-server.js';

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
  subs: Record<'trade' | 'ticker', Set<string>>;
  fixturesSent: boolean;
  lastSentAt: number;
}

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

  const answer = (conn: FakeWsConn<KrakenConnState>, data: Buffer): void => {
    const time_in = krakenTime();
    let req: { method?: string; params?: { channel?: string; symbol?: string[]; snapshot?: boolean }; req_id?: number };
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
    if (channel !== 'trade' && channel !== 'ticker') {
      send(conn, { error: `Channel not supported: ${String(channel)}`, method: req.method, success: false, ...reqId, time_in, time_out: krakenTime() });
      return;
    }
    const snapshot = req.params?.snapshot ?? true;
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
      if (req.method === 'unsubscribe') conn.state.subs[channel].delete(pair);
      else conn.state.subs[channel].add(pair);
      send(conn, {
        method: req.method,
        result: { channel, symbol: pair, ...(req.method === 'subscribe' ? { snapshot } : {}) },
        success: true,
        ...reqId,
        time_in,
        time_out: krakenTime(),
      });
      if (req.method === 'subscribe' && snapshot) {
        if (channel === 'trade') send(conn, { channel: 'trade', type: 'snapshot', data: (history.get(pair) ?? []).slice(-50) });
        else send(conn, { channel: 'ticker', type: 'snapshot', data: [ticker(pair)] });
      }
    }
    if (req.method === 'subscribe' && !conn.state.fixturesSent && opts.replayFixtures !== false) {
      conn.state.fixturesSent = true;
      for (const raw of KRAKEN_FIXTURE_FRAMES.slice(1)) send(conn, raw);
    }
  };

  const server = await FakeWsServer.start<KrakenConnState>({
    initialState: () => ({ subs: { trade: new Set(), ticker: new Set() }, fixturesSent: false, lastSentAt: Date.now() }),
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
      }
      const subscribed = conn.state.subs.trade.size + conn.state.subs.ticker.size > 0;
      if (subscribed && Date.now() - conn.state.lastSentAt >= heartbeatMs) send(conn, { channel: 'heartbeat' });
    },
  });

  return Object.assign(server, {
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
  });
}
