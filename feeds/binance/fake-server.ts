import { readFileSync } from 'node:fs';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';

/**
 * A local stand-in for Binance spot market streams, speaking the documented protocol: combined
 * streams at /stream?streams=a@trade/b@bookTicker, {"stream","data"} frames, live
 * SUBSCRIBE/UNSUBSCRIBE requests answered with {"result":null,"id"}, server ping frames.
 * On connect it first sends the recorded frames of fixtures/combined-stream.json, then generates
 * trades and book tickers for every subscribed stream every `pumpMs`.
 */
export const BINANCE_FIXTURES: Record<string, any>[] = JSON.parse(readFileSync(new URL('./fixtures/combined-stream.json', import.meta.url), 'utf8'));

interface BinanceConnState {
  streams: Set<string>;
  pongs: number;
  tradeId: number;
}

export interface BinanceFakeOptions {
  pumpMs?: number;
  /** server ping interval (Binance: 20 s) */
  pingMs?: number;
  /** send the recorded fixture frames first on each connection */
  replayFixtures?: boolean;
}

export type BinanceFakeServer = FakeWsServer<BinanceConnState> & { pongs(): number };

export async function startBinanceFake(opts: BinanceFakeOptions = {}): Promise<BinanceFakeServer> {
  let pongs = 0;
  const pingTimers = new Set<NodeJS.Timeout>();
  const server = await FakeWsServer.start<BinanceConnState>({
    initialState: () => ({ streams: new Set(), pongs: 0, tradeId: 9_000_000 }),
    refuse: (req) => (new URL(req.url ?? '/', 'http://x').pathname.startsWith('/stream') ? undefined : 404),
    onConnection: (conn) => {
      for (const s of (conn.url.searchParams.get('streams') ?? '').split('/')) if (s) conn.state.streams.add(s);
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
      if (opts.replayFixtures !== false) for (const f of BINANCE_FIXTURES) conn.send(f);
    },
    onMessage: (conn, data) => {
      const req = JSON.parse(data.toString('utf8')) as { method: string; params?: string[]; id: number };
      if (req.method === 'SUBSCRIBE') for (const s of req.params ?? []) conn.state.streams.add(s);
      else if (req.method === 'UNSUBSCRIBE') for (const s of req.params ?? []) conn.state.streams.delete(s);
      else if (req.method === 'LIST_SUBSCRIPTIONS') {
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
      const now = Date.now();
      for (const stream of conn.state.streams) {
        const [sym, kind] = stream.split('@') as [string, string];
        const S = sym.toUpperCase();
        const px = 100 + (conn.state.tradeId % 50) / 10;
        if (kind === 'trade') {
          const id = ++conn.state.tradeId;
          conn.send({ stream, data: { e: 'trade', E: now, s: S, t: id, p: px.toFixed(8), q: '0.50000000', T: now, m: id % 2 === 0, M: true } });
        } else if (kind === 'bookTicker') {
          conn.send({ stream, data: { u: now, s: S, b: (px - 0.01).toFixed(8), B: '2.00000000', a: (px + 0.01).toFixed(8), A: '3.00000000' } });
        }
      }
    },
  });
  const origClose = server.close.bind(server);
  return Object.assign(server, {
    pongs: () => pongs,
    close: async () => {
      for (const t of pingTimers) clearInterval(t);
      pingTimers.clear();
      await origClose();
    },
  });
}
