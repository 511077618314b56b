import { readFileSync } from 'node:fs';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';
import type { FakeWsConn } from '../sdk/testing/fake-ws-server.js';

/**
 * A local stand-in for the Coinbase Advanced Trade market data WebSocket: subscribe/unsubscribe
 * per channel, a `subscriptions` confirmation, `market_trades`, `ticker` and `heartbeats`
 * messages, and a `sequence_num` that rises by one per message on each connection.
 * `skip(n)` makes the next message jump the sequence by n (a lost-message gap); `drop(n)` loses
 * the next n messages for real (their sequence numbers are used, nothing is sent), as a network
 * that drops messages does. Every `market_trades` subscription gets a `snapshot` event with the
 * product's most recent trades (up to 50, newest first), as Coinbase sends one on every subscribe
 * ("WebSocket Channels" > Market Trades Channel, whose example is a snapshot). `recordTrades`
 * makes trades happen with no one told (a client that is disconnected); `trades()` lists every
 * trade the server made.
 *
 * `level2` (order books): one book per product for the whole server, 40 levels a side around
 * 100.00, 0.02 apart. A subscription gets an `l2_data` `snapshot` event of the whole book; every
 * pump the book changes (a new size, a removed level as new_quantity "0", a new level between
 * existing ones) and each subscriber gets an `update` event with what changed since it was last
 * sent. Sides are "bid" and "offer".
 *
 * `status`: a subscription gets a `snapshot` event listing its products, each with `id`,
 * `status` (`productStatus`, default `online`) and `status_message`, shaped as the documented
 * Status Channel example; `setProductStatus` changes one and sends an `update` event for it to
 * its `status` subscribers, `resendStatus` sends the snapshot again (Coinbase repeats it "on a
 * preset interval").
 */
export const COINBASE_FIXTURES: Record<string, any>[] = JSON.parse(readFileSync(new URL('./fixtures/messages.json', import.meta.url), 'utf8'));

interface CoinbaseConnState {
  seq: number;
  channels: Map<string, Set<string>>;
  fixturesSent: boolean;
  heartbeat: number;
  /** per level2 product: the book this client was last sent */
  books: Map<string, Book>;
}

type Level = [number, number];
interface Book {
  bids: Map<number, number>;
  asks: Map<number, number>;
}

export interface CoinbaseFakeOptions {
  pumpMs?: number;
  replayFixtures?: boolean;
  /** book changes per pump per level2 product (default 1; 0 = only through `bookStep`) */
  bookChangesPerPump?: number;
  /** `status` of products on the status channel (default `online`) */
  productStatus?: Readonly<Record<string, string>>;
  /** handle each client message only after this long (a slow confirmation) */
  ackDelayMs?: number;
}

export type CoinbaseFakeServer = FakeWsServer<CoinbaseConnState> & {
  skip(n: number): void;
  /** lose the next `n` messages: sequence numbers used, nothing sent */
  drop(n: number): void;
  /** every trade the server made, oldest first */
  trades(): FakeTrade[];
  /** make `n` trades of `product` now, sent to no one (they only reach the history, i.e. later snapshots) */
  recordTrades(product: string, n: number): void;
  /** when each client message arrived (ms), oldest first: Coinbase allows 8 a second per IP */
  requestTimes(): number[];
  /** the server's book of `product`, best first */
  fullBook(product: string): { bids: Level[]; asks: Level[] };
  /** remove the best `n` levels of a side (a large price move) and send the update now */
  sweep(product: string, side: 'bids' | 'asks', n: number): void;
  /** change the book of `product` `n` times now and send the changes to its level2 subscribers */
  bookStep(product: string, n?: number): void;
  /** change a product's `status` (and `status_message`) and send an update to its status subscribers */
  setProductStatus(product: string, status: string, message?: string): void;
  /** send every status subscriber the snapshot of its products again */
  resendStatus(): void;
  /**
   * send `msg` (a `{channel, events}` message) to every connection with the next `sequence_num`;
   * `timestamp` is now unless `msg` has one
   */
  push(msg: Record<string, unknown>): void;
};

export interface FakeTrade {
  trade_id: string;
  product_id: string;
  price: string;
  size: string;
  side: string;
  time: string;
}

/** trades per product a `market_trades` snapshot carries */
const SNAPSHOT_TRADES = 50;

export async function startCoinbaseFake(opts: CoinbaseFakeOptions = {}): Promise<CoinbaseFakeServer> {
  let skipNext = 0;
  let dropNext = 0;
  // trade ids are per product and never restart, across connections too (as on Coinbase)
  let tradeId = 700_000;
  const tradeLog: FakeTrade[] = [];
  const requestTimes: number[] = [];
  const makeTrade = (product: string): FakeTrade => {
    const id = ++tradeId;
    const t = {
      trade_id: String(id),
      product_id: product,
      price: (100 + (id % 40) / 10).toFixed(2),
      size: '0.25',
      side: id % 2 ? 'BUY' : 'SELL',
      time: new Date().toISOString(),
    };
    tradeLog.push(t);
    return t;
  };
  const stamp = (conn: { state: CoinbaseConnState; send(v: unknown): void }, msg: Record<string, unknown>): void => {
    conn.state.seq += 1 + skipNext;
    skipNext = 0;
    if (dropNext > 0) {
      dropNext--;
      return;
    }
    conn.send({ ...msg, client_id: '', timestamp: new Date().toISOString(), sequence_num: conn.state.seq });
  };
  const sendTradeSnapshot = (conn: { state: CoinbaseConnState; send(v: unknown): void }, products: readonly string[]): void => {
    const trades: FakeTrade[] = [];
    for (const p of products)
      trades.push(
        ...tradeLog
          .filter((t) => t.product_id === p)
          .slice(-SNAPSHOT_TRADES)
          .reverse(),
      );
    stamp(conn, { channel: 'market_trades', events: [{ type: 'snapshot', trades }] });
  };
  // ---- level2 books ----
  const books = new Map<string, Book>();
  let rnd = 0x9e3779b9;
  const random = (): number => {
    // xorshift32: reproducible books from run to run
    rnd ^= rnd << 13;
    rnd ^= rnd >>> 17;
    rnd ^= rnd << 5;
    return (rnd >>> 0) / 0x1_0000_0000;
  };
  const qty = (): string => (0.001 + random() * 5).toFixed(8);
  const bookOf = (product: string): Book => {
    let b = books.get(product);
    if (!b) {
      b = { bids: new Map(), asks: new Map() };
      for (let i = 0; i < 40; i++) {
        b.bids.set(Number((99.99 - i * 0.02).toFixed(2)), Number(qty()));
        b.asks.set(Number((100 + i * 0.02).toFixed(2)), Number(qty()));
      }
      books.set(product, b);
    }
    return b;
  };
  const sorted = (m: Map<number, number>, side: 'bids' | 'asks'): Level[] =>
    [...m.keys()].sort(side === 'bids' ? (a, b) => b - a : (a, b) => a - b).map((p) => [p, m.get(p)!]);
  const mutate = (product: string): void => {
    const b = bookOf(product);
    const side = random() < 0.5 ? 'bids' : 'asks';
    const levels = sorted(b[side], side);
    const r = random();
    if (r < 0.35 || levels.length <= 30) {
      const step = Math.floor(random() * 60) / 100;
      b[side].set(Number((side === 'bids' ? 99.99 - step : 100 + step).toFixed(2)), Number(qty()));
    } else if (r < 0.65) {
      b[side].delete(levels[Math.floor(random() * Math.min(levels.length, 15))]![0]);
    } else {
      b[side].set(levels[Math.floor(random() * Math.min(levels.length, 15))]![0], Number(qty()));
    }
  };
  const wire = (side: 'bids' | 'asks', levels: Level[], time: string) =>
    levels.map(([p, q]) => ({ side: side === 'bids' ? 'bid' : 'offer', event_time: time, price_level: p.toFixed(2), new_quantity: q.toFixed(8) }));
  const sendSnapshot = (conn: { state: CoinbaseConnState; send(v: unknown): void }, product: string): void => {
    const b = bookOf(product);
    conn.state.books.set(product, { bids: new Map(b.bids), asks: new Map(b.asks) });
    // the documented snapshot example gives every level event_time 1970-01-01T00:00:00Z
    const epoch = '1970-01-01T00:00:00Z';
    stamp(conn, {
      channel: 'l2_data',
      events: [
        { type: 'snapshot', product_id: product, updates: [...wire('bids', sorted(b.bids, 'bids'), epoch), ...wire('asks', sorted(b.asks, 'asks'), epoch)] },
      ],
    });
  };
  const sendUpdate = (conn: { state: CoinbaseConnState; send(v: unknown): void }, product: string): void => {
    const view = conn.state.books.get(product);
    if (!view) return;
    const b = bookOf(product);
    const time = new Date().toISOString();
    const updates: ReturnType<typeof wire> = [];
    for (const side of ['bids', 'asks'] as const) {
      const changed: Level[] = [];
      for (const [p, q] of b[side]) if (view[side].get(p) !== q) changed.push([p, q]);
      for (const p of view[side].keys()) if (!b[side].has(p)) changed.push([p, 0]);
      view[side] = new Map(b[side]);
      updates.push(...wire(side, changed, time));
    }
    if (updates.length > 0) stamp(conn, { channel: 'l2_data', events: [{ type: 'update', product_id: product, updates }] });
  };

  // ---- status channel ----
  const productStatus = new Map<string, { status: string; message: string }>(
    Object.entries(opts.productStatus ?? {}).map(([p, status]) => [p, { status, message: '' }]),
  );
  // the documented Status Channel product, with this product's id, currencies and status
  const statusProduct = (product: string) => {
    const [base, quote] = product.split('-');
    const st = productStatus.get(product) ?? { status: 'online', message: '' };
    return {
      product_type: 'SPOT',
      id: product,
      base_currency: base,
      quote_currency: quote,
      base_increment: '0.00000001',
      quote_increment: '0.01',
      display_name: `${base}/${quote}`,
      status: st.status,
      status_message: st.message,
      min_market_funds: '1',
    };
  };
  const sendStatus = (conn: { state: CoinbaseConnState; send(v: unknown): void }, type: 'snapshot' | 'update', products: readonly string[]): void => {
    if (products.length > 0) stamp(conn, { channel: 'status', events: [{ type, products: products.map(statusProduct) }] });
  };

  const subscriptionsMsg = (state: CoinbaseConnState) => ({
    channel: 'subscriptions',
    events: [{ subscriptions: Object.fromEntries([...state.channels].filter(([, v]) => v.size > 0).map(([k, v]) => [k, [...v]])) }],
  });
  const handle = (conn: FakeWsConn<CoinbaseConnState>, data: Buffer): void => {
    const req = JSON.parse(data.toString('utf8')) as { type: string; channel: string; product_ids?: string[] };
    if (req.type !== 'subscribe' && req.type !== 'unsubscribe') {
      stamp(conn, { type: 'error', message: 'Failed to subscribe', reason: `unknown type ${req.type}` } as never);
      return;
    }
    const set = conn.state.channels.get(req.channel) ?? new Set<string>();
    conn.state.channels.set(req.channel, set);
    for (const p of req.channel === 'heartbeats' ? ['heartbeats'] : (req.product_ids ?? [])) {
      if (req.type === 'subscribe') set.add(p);
      else set.delete(p);
      if (req.channel === 'level2' && req.type === 'unsubscribe') conn.state.books.delete(p);
    }
    if (req.type === 'subscribe' && !conn.state.fixturesSent && opts.replayFixtures !== false) {
      conn.state.fixturesSent = true;
      for (const f of COINBASE_FIXTURES) {
        conn.state.seq = f.sequence_num as number;
        conn.send(f);
      }
    } else stamp(conn, subscriptionsMsg(conn.state));
    if (req.type === 'subscribe' && req.channel === 'level2') for (const p of req.product_ids ?? []) sendSnapshot(conn, p);
    if (req.type === 'subscribe' && req.channel === 'market_trades') sendTradeSnapshot(conn, req.product_ids ?? []);
    if (req.type === 'subscribe' && req.channel === 'status') sendStatus(conn, 'snapshot', req.product_ids ?? []);
  };
  const server = await FakeWsServer.start<CoinbaseConnState>({
    initialState: () => ({ seq: -1, channels: new Map(), fixturesSent: false, heartbeat: 0, books: new Map() }),
    onMessage: (conn, data) => {
      requestTimes.push(Date.now());
      if (opts.ackDelayMs) {
        setTimeout(() => conn.ws.readyState === 1 && handle(conn, data), opts.ackDelayMs);
        return;
      }
      handle(conn, data);
    },
    pumpMs: opts.pumpMs ?? 25,
    onPump: (conn) => {
      const st = conn.state;
      if (st.channels.get('heartbeats')?.size) {
        stamp(conn, { channel: 'heartbeats', events: [{ current_time: new Date().toISOString(), heartbeat_counter: ++st.heartbeat }] });
      }
      for (const product of st.channels.get('market_trades') ?? []) {
        stamp(conn, { channel: 'market_trades', events: [{ type: 'update', trades: [makeTrade(product)] }] });
      }
      for (const product of st.channels.get('level2') ?? []) {
        for (let i = 0; i < (opts.bookChangesPerPump ?? 1); i++) mutate(product);
        sendUpdate(conn, product);
      }
      for (const product of st.channels.get('ticker') ?? []) {
        const px = 100 + (tradeId % 40) / 10;
        stamp(conn, {
          channel: 'ticker',
          events: [
            {
              type: 'update',
              tickers: [
                {
                  type: 'ticker',
                  product_id: product,
                  price: px.toFixed(2),
                  best_bid: (px - 0.01).toFixed(2),
                  best_bid_quantity: '1.5',
                  best_ask: (px + 0.01).toFixed(2),
                  best_ask_quantity: '2',
                },
              ],
            },
          ],
        });
      }
    },
  });
  return Object.assign(server, {
    skip: (n: number) => void (skipNext = n),
    drop: (n: number) => void (dropNext = n),
    trades: () => [...tradeLog],
    requestTimes: () => [...requestTimes],
    recordTrades: (product: string, n: number) => {
      for (let i = 0; i < n; i++) makeTrade(product);
    },
    fullBook: (product: string) => {
      const b = bookOf(product);
      return { bids: sorted(b.bids, 'bids'), asks: sorted(b.asks, 'asks') };
    },
    sweep: (product: string, side: 'bids' | 'asks', n: number) => {
      const b = bookOf(product);
      for (const [p] of sorted(b[side], side).slice(0, n)) b[side].delete(p);
      for (const conn of server.conns) sendUpdate(conn, product);
    },
    bookStep: (product: string, count = 1) => {
      for (let i = 0; i < count; i++) mutate(product);
      for (const conn of server.conns) sendUpdate(conn, product);
    },
    setProductStatus: (product: string, status: string, message = '') => {
      productStatus.set(product, { status, message });
      for (const conn of server.conns) if (conn.state.channels.get('status')?.has(product)) sendStatus(conn, 'update', [product]);
    },
    resendStatus: () => {
      for (const conn of server.conns) sendStatus(conn, 'snapshot', [...(conn.state.channels.get('status') ?? [])]);
    },
    push: (msg: Record<string, unknown>) => {
      for (const conn of server.conns) {
        conn.state.seq += 1;
        conn.send({ client_id: '', timestamp: new Date().toISOString(), ...msg, sequence_num: conn.state.seq });
      }
    },
  });
}
