import { readFileSync } from 'node:fs';
import { FakeWsServer } from '../sdk/testing/fake-ws-server.js';

/**
 * A local stand-in for the Coinbase Advanced Trade market data WebSocket: subscribe/unsubscribe
 * per channel, a `subscriptions` confirmation, `market_trades`, `ticker` and `heartbeats`
 * messages, and a `sequence_num` that rises by one per message on each connection.
 * `skip(n)` makes the next message jump the sequence by n (a lost-message gap).
 */
export const COINBASE_FIXTURES: Record<string, any>[] = JSON.parse(readFileSync(new URL('./fixtures/messages.json', import.meta.url), 'utf8'));

interface CoinbaseConnState {
  seq: number;
  channels: Map<string, Set<string>>;
  fixturesSent: boolean;
  heartbeat: number;
}

export interface CoinbaseFakeOptions {
  pumpMs?: number;
  replayFixtures?: boolean;
}

export type CoinbaseFakeServer = FakeWsServer<CoinbaseConnState> & { skip(n: number): void };

export async function startCoinbaseFake(opts: CoinbaseFakeOptions = {}): Promise<CoinbaseFakeServer> {
  let skipNext = 0;
  // trade ids are per product and never restart, across connections too (as on Coinbase)
  let tradeId = 700_000;
  const stamp = (conn: { state: CoinbaseConnState; send(v: unknown): void }, msg: Record<string, unknown>): void => {
    conn.state.seq += 1 + skipNext;
    skipNext = 0;
    conn.send({ ...msg, client_id: '', timestamp: new Date().toISOString(), sequence_num: conn.state.seq });
  };
  const subscriptionsMsg = (state: CoinbaseConnState) => ({
    channel: 'subscriptions',
    events: [{ subscriptions: Object.fromEntries([...state.channels].filter(([, v]) => v.size > 0).map(([k, v]) => [k, [...v]])) }],
  });
  const server = await FakeWsServer.start<CoinbaseConnState>({
    initialState: () => ({ seq: -1, channels: new Map(), fixturesSent: false, heartbeat: 0 }),
    onMessage: (conn, data) => {
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
      }
      if (req.type === 'subscribe' && !conn.state.fixturesSent && opts.replayFixtures !== false) {
        conn.state.fixturesSent = true;
        for (const f of COINBASE_FIXTURES) {
          conn.state.seq = f.sequence_num as number;
          conn.send(f);
        }
        return;
      }
      stamp(conn, subscriptionsMsg(conn.state));
    },
    pumpMs: opts.pumpMs ?? 25,
    onPump: (conn) => {
      const st = conn.state;
      if (st.channels.get('heartbeats')?.size) {
        stamp(conn, { channel: 'heartbeats', events: [{ current_time: new Date().toISOString(), heartbeat_counter: ++st.heartbeat }] });
      }
      const now = new Date().toISOString();
      for (const product of st.channels.get('market_trades') ?? []) {
        const id = ++tradeId;
        const px = (100 + (id % 40) / 10).toFixed(2);
        stamp(conn, {
          channel: 'market_trades',
          events: [
            { type: 'update', trades: [{ trade_id: String(id), product_id: product, price: px, size: '0.25', side: id % 2 ? 'BUY' : 'SELL', time: now }] },
          ],
        });
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
  return Object.assign(server, { skip: (n: number) => void (skipNext = n) });
}
