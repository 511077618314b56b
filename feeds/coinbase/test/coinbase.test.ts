import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { aggressorSide, CoinbaseFeed, CoinbaseOptionsSchema } from '../coinbase-feed.js';
import { quietFor } from '../../../test/helpers/wait.js';
import { startCoinbaseFake } from '../fake-server.js';
import type { CoinbaseFakeServer } from '../fake-server.js';

const DOC = JSON.parse(readFileSync(new URL('../fixtures/doc-examples.json', import.meta.url), 'utf8')) as Record<string, Record<string, any>>;
const options = (url: string, extra: Record<string, unknown> = {}) =>
  CoinbaseOptionsSchema.parse({ url, symbols: ['BTC-USD', 'ETH-USD'], backoff: { initialMs: 20, maxMs: 200 }, ...extra });

runAdapterConformance({
  name: 'coinbase',
  startProvider: () => startCoinbaseFake(),
  createAdapter: (p) => new CoinbaseFeed('coinbase', options(p.url)),
  symbols: ['BTC-USD', 'ETH-USD'],
  kinds: ['trade', 'quote'],
});

describe('coinbase adapter', () => {
  let h: AdapterHarness<CoinbaseFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('subscribes to market_trades, ticker and heartbeats and normalizes the recorded messages', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ pumpMs: 60_000 }),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('4 fixture ticks', () => h!.ticks.length >= 4);
    // the subscribes can wait behind the earlier tests' messages (Coinbase's limit is per IP: one window per process)
    await h.waitFor('4 subscribes', () => h!.provider.receivedJson().length >= 4);
    const subs = h.provider.receivedJson() as { type: string; channel: string; product_ids: string[] }[];
    expect(subs.map((s) => s.channel).sort()).toEqual(['heartbeats', 'market_trades', 'status', 'ticker']);
    expect(subs.every((s) => s.type === 'subscribe' && s.product_ids.join() === 'BTC-USD,ETH-USD')).toBe(true);
    expect(h.state).toBe('connected');
    // the snapshot trade (history) is skipped; updates come through in order. Coinbase's `side`
    // is the maker's: SELL (a resting sell was lifted) is a buy aggressor, BUY a sell aggressor.
    expect(h.ticks[0]).toEqual({ k: 'trade', sym: 'BTC-USD', id: '650123', p: 67251.37, s: 0.00412, side: 'buy', ts: 1718000001219873000n });
    expect(h.ticks[1]).toMatchObject({ k: 'trade', id: '650124', side: 'sell', p: 67251.38, s: 0.1 });
    expect(h.ticks[2]).toEqual({ k: 'quote', sym: 'BTC-USD', bp: 67251.37, bs: 0.51, ap: 67251.4, as: 1.2, ts: 1718000001300000123n });
    expect(h.ticks[3]).toMatchObject({ k: 'quote', sym: 'ETH-USD', bp: 3550.4, ap: 3550.42 });
    expect(h.counters.gaps).toBe(0);
  });

  it('counts a sequence gap and resubscribes the data channels', async () => {
    h = await startHarness(
      () => startCoinbaseFake(),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('connected with data', () => h!.state === 'connected' && h!.ticks.length > 5);
    // the opening subscribes can wait behind the earlier tests' messages (one window per process)
    await h.waitFor('the 4 opening subscribes', () => h!.provider.receivedJson().length >= 4);
    const subscribesBefore = (h.provider.receivedJson() as { type: string }[]).filter((m) => m.type === 'subscribe').length;
    h.provider.skip(7);
    await h.waitFor('a gap counted', () => h!.counters.gaps >= 1);
    await h.waitFor(
      'resubscribed',
      () => (h!.provider.receivedJson() as { type: string }[]).filter((m) => m.type === 'subscribe').length >= subscribesBefore + 2,
    );
    const msgs = h.provider.receivedJson() as { type: string; channel: string }[];
    expect(
      msgs
        .filter((m) => m.type === 'unsubscribe')
        .map((m) => m.channel)
        .sort(),
    ).toEqual(['market_trades', 'status', 'ticker']);
    expect((h.adapter as CoinbaseFeed).resubscribes).toBe(1);
    const n = h.ticks.length;
    await h.waitFor('data continues', () => h!.ticks.length > n + 3);
  });

  it('treats heartbeats as liveness: a connection without them goes stale and reconnects', async () => {
    h = await startHarness(
      () => startCoinbaseFake(),
      (p) => new CoinbaseFeed('coinbase', options(p.url, { staleAfterMs: 1000 })),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const before = h.counters.messages;
    await h.waitFor('heartbeats arriving', () => h!.counters.messages > before + 5);
    expect(h.states.some((s) => s.state === 'stale')).toBe(false);
    h.provider.pause();
    await h.waitFor('stale', () => h!.states.some((s) => s.state === 'stale'));
    h.provider.resume();
    await h.waitFor('connected again', () => h!.provider.totalConnections >= 2 && h!.state === 'connected');
  });

  it('logs provider error messages and counts them', async () => {
    h = await startHarness(
      () => startCoinbaseFake(),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    [...h.provider.conns][0]!.send({ type: 'error', message: 'Failed to subscribe', reason: 'product FOO-USD is not available' });
    await h.waitFor('error counted', () => h!.counters.errors.some((e) => /FOO-USD/.test(e)));
    expect(h.logs.some((l) => l.level === 'error' && /Failed to subscribe/.test(l.msg))).toBe(true);
  });

  it('maps the maker side to the aggressor side (BUY maker = sell aggressor) on the docs example', async () => {
    expect(aggressorSide('BUY')).toBe('sell');
    expect(aggressorSide('SELL')).toBe('buy');
    expect(aggressorSide('sell')).toBe('buy');
    expect(aggressorSide('UNKNOWN_ORDER_SIDE')).toBeUndefined();
    h = await startHarness(
      () => startCoinbaseFake({ pumpMs: 60_000 }),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('fixtures and confirmations', () => h!.ticks.length >= 4 && h!.counters.messages >= 8);
    const conn = [...h.provider.conns][0]!;
    const before = h.ticks.length;
    for (const k of ['market_trades', 'ticker', 'heartbeats'])
      conn.send({ ...DOC[k], sequence_num: conn.state.seq + 1 + ['market_trades', 'ticker', 'heartbeats'].indexOf(k) });
    await h.waitFor('doc example ticks', () => h!.ticks.length >= before + 2);
    expect(h.ticks[before]).toEqual({ k: 'trade', sym: 'ETH-USD', id: '000000000', p: 1260.01, s: 0.3, side: 'sell', ts: 1565815347265000000n });
    expect(h.ticks[before + 1]).toEqual({ k: 'quote', sym: 'BTC-USD', bp: 21931.98, bs: 8000.21, ap: 21933.98, as: 8038.07770938, ts: 1675974637167359596n });
    expect(h.counters.gaps).toBe(0);
  });

  it('keeps unseen trades of a late (lower sequence_num) message, drops repeated trade ids and the late ticker', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ pumpMs: 60_000 }),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('fixtures and confirmations', () => h!.ticks.length >= 4 && h!.counters.messages >= 8);
    const conn = [...h.provider.conns][0]!;
    const seq = conn.state.seq;
    const trade = (id: string, px: string, size: string, side: string) => ({
      trade_id: id,
      product_id: 'BTC-USD',
      price: px,
      size,
      side,
      time: '2024-06-10T06:13:30.123456Z',
    });
    const before = h.ticks.length;
    // several trades in one frame; many decimals; tiny and huge sizes; both sides
    conn.send({
      channel: 'market_trades',
      client_id: '',
      timestamp: '2024-06-10T06:13:30.200000000Z',
      sequence_num: seq + 1,
      events: [{ type: 'update', trades: [trade('900001', '67251.12345678', '0.00000001', 'BUY'), trade('900002', '67251.5', '12345.67891234', 'SELL')] }],
    });
    await h.waitFor('2 trades', () => h!.ticks.length >= before + 2);
    // a late message (sequence_num below the last one): one trade already seen, one new; and a late ticker
    conn.send({
      channel: 'market_trades',
      client_id: '',
      timestamp: '2024-06-10T06:13:30.100000000Z',
      sequence_num: seq,
      events: [{ type: 'update', trades: [trade('900001', '67251.12345678', '0.00000001', 'BUY'), trade('899999', '67250.99', '0.5', 'SELL')] }],
    });
    conn.send({
      channel: 'ticker',
      client_id: '',
      timestamp: '2024-06-10T06:13:29.000000000Z',
      sequence_num: seq - 1,
      events: [
        {
          type: 'update',
          tickers: [{ type: 'ticker', product_id: 'BTC-USD', price: '1', best_bid: '1', best_bid_quantity: '1', best_ask: '2', best_ask_quantity: '1' }],
        },
      ],
    });
    // an in-order marker to know both late messages were handled
    conn.send({
      channel: 'market_trades',
      client_id: '',
      timestamp: '2024-06-10T06:13:31.000000000Z',
      sequence_num: seq + 2,
      events: [{ type: 'update', trades: [trade('900003', '67252', '1', 'BUY')] }],
    });
    await h.waitFor('marker trade', () => h!.ticks.some((t) => t.k === 'trade' && t.id === '900003'));
    const ids = h.ticks.slice(before).map((t) => (t.k === 'trade' ? t.id : t.k));
    expect(ids).toEqual(['900001', '900002', '899999', '900003']);
    expect(h.ticks[before]).toEqual({ k: 'trade', sym: 'BTC-USD', id: '900001', p: 67251.12345678, s: 1e-8, side: 'sell', ts: 1718000010123456000n });
    expect(h.ticks[before + 1]).toMatchObject({ id: '900002', s: 12345.67891234, side: 'buy' });
    expect(h.ticks[before + 2]).toMatchObject({ id: '899999', p: 67250.99, s: 0.5, side: 'buy' });
    expect(h.counters.gaps).toBe(0);
    // a repeat of an in-order trade id on a later message is dropped too
    conn.send({
      channel: 'market_trades',
      client_id: '',
      timestamp: '2024-06-10T06:13:32.000000000Z',
      sequence_num: seq + 3,
      events: [{ type: 'update', trades: [trade('900003', '67252', '1', 'BUY'), trade('900004', '67253', '2', 'SELL')] }],
    });
    await h.waitFor('900004', () => h!.ticks.some((t) => t.k === 'trade' && t.id === '900004'));
    expect(h.ticks.filter((t) => t.k === 'trade' && t.id === '900003')).toHaveLength(1);
  });

  /** every trade the fake made up to the newest one the adapter published is published exactly once */
  const expectEveryTradeOnce = (h: AdapterHarness<CoinbaseFakeServer>): void => {
    const published = h.ticks.filter((t) => t.k === 'trade' && Number(t.id) > 700_000).map((t) => `${t.sym}/${t.k === 'trade' ? t.id : ''}`);
    expect(new Set(published).size).toBe(published.length);
    const newest = Math.max(...published.map((k) => Number(k.split('/')[1])));
    const made = h.provider
      .trades()
      .filter((t) => Number(t.trade_id) <= newest)
      .map((t) => `${t.product_id}/${t.trade_id}`);
    expect(made.filter((k) => !published.includes(k))).toEqual([]);
  };

  it('recovers the trades lost in a sequence gap from the market_trades snapshot of the resubscription, each once', async () => {
    h = await startHarness(
      () => startCoinbaseFake(),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    const trades = () => h!.ticks.filter((t) => t.k === 'trade');
    await h.waitFor('live trades', () => h!.state === 'connected' && trades().length > 6);
    // six messages in a row lost: each pump sends a heartbeat, two trades and two tickers, so at least two trades
    h.provider.drop(6);
    await h.waitFor('a gap counted', () => h!.counters.gaps >= 1);
    const n = trades().length;
    await h.waitFor('trades after the resubscription', () => trades().length > n + 6);
    expectEveryTradeOnce(h);
    expect((h.adapter as CoinbaseFeed).recoveredTrades).toBeGreaterThanOrEqual(2);
  });

  it('after a reconnect, publishes the trades made while it was disconnected (from the snapshot), each once', async () => {
    h = await startHarness(
      () => startCoinbaseFake(),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    const trades = () => h!.ticks.filter((t) => t.k === 'trade');
    await h.waitFor('live trades', () => h!.state === 'connected' && trades().length > 4);
    h.provider.dropAll();
    // trades happen on Coinbase while the adapter is away
    h.provider.recordTrades('BTC-USD', 3);
    h.provider.recordTrades('ETH-USD', 2);
    await h.waitFor('reconnected', () => h!.provider.totalConnections >= 2 && h!.state === 'connected');
    const n = trades().length;
    await h.waitFor('new trades after the reconnect', () => trades().length > n + 4);
    expectEveryTradeOnce(h);
    expect((h.adapter as CoinbaseFeed).recoveredTrades).toBeGreaterThanOrEqual(5);
  });

  it('does not publish the snapshot history of a first subscription, nor of a product subscribed again later', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ replayFixtures: false }),
      (p) => {
        return new CoinbaseFeed('coinbase', options(p.url, { symbols: ['BTC-USD'] }));
      },
    );
    // history from before the feed started: in the first snapshot only
    h.provider.recordTrades('BTC-USD', 5);
    h.provider.recordTrades('ETH-USD', 5);
    const trades = () => h!.ticks.filter((t) => t.k === 'trade');
    await h.waitFor('live trades', () => h!.state === 'connected' && trades().length > 3);
    await h.adapter.subscribe(['ETH-USD']);
    await h.waitFor('ETH-USD live', () => trades().filter((t) => t.sym === 'ETH-USD').length > 2);
    await h.adapter.unsubscribe(['ETH-USD']);
    await h.waitFor('ETH-USD unsubscribed', () =>
      (h!.provider.receivedJson() as { type: string; product_ids?: string[] }[]).some((m) => m.type === 'unsubscribe' && m.product_ids?.includes('ETH-USD')),
    );
    // trades of ETH-USD while it is not subscribed are not ours to publish when it comes back
    h.provider.recordTrades('ETH-USD', 3);
    const skipped = h.provider
      .trades()
      .filter((t) => t.product_id === 'ETH-USD')
      .slice(-3);
    await h.adapter.subscribe(['ETH-USD']);
    const n = trades().filter((t) => t.sym === 'ETH-USD').length;
    await h.waitFor('ETH-USD live again', () => trades().filter((t) => t.sym === 'ETH-USD').length > n + 2);
    const ids = trades().map((t) => (t.k === 'trade' ? t.id : ''));
    for (const t of h.provider.trades().slice(0, 10)) expect(ids).not.toContain(t.trade_id);
    for (const t of skipped) expect(ids).not.toContain(t.trade_id);
    expect((h.adapter as CoinbaseFeed).recoveredTrades).toBe(0);
  });

  it('subscribes and unsubscribes products changed before the opening subscription is confirmed', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ replayFixtures: false, ackDelayMs: 300 }),
      (p) => new CoinbaseFeed('coinbase', options(p.url, { symbols: ['BTC-USD', 'ETH-USD'] })),
    );
    await h.waitFor('the opening subscribe sent', () => h!.provider.requestTimes().length >= 1);
    // the socket is open, the subscriptions confirmation is not there yet
    await h.adapter.subscribe(['SOL-USD']);
    await h.adapter.unsubscribe(['ETH-USD']);
    await h.waitFor('connected', () => h!.state === 'connected');
    const of = (sym: string) => h!.ticks.filter((t) => t.k === 'trade' && t.sym === sym).length;
    await h.waitFor('SOL-USD trades', () => of('SOL-USD') > 2);
    const conn = [...h.provider.conns][0]!;
    await h.waitFor('ETH-USD unsubscribed at Coinbase', () => !conn.state.channels.get('market_trades')?.has('ETH-USD'));
    const eth = of('ETH-USD');
    await quietFor(200, 'no more ETH-USD');
    expect(of('ETH-USD')).toBe(eth);
  });

  it('publishes nothing more of a product once it is unsubscribed, while its unsubscribe waits for the rate limit', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ replayFixtures: false }),
      (p) => new CoinbaseFeed('coinbase', options(p.url, { symbols: ['BTC-USD', 'ETH-USD'] })),
    );
    const ethTrades = () => h!.ticks.filter((t) => t.k === 'trade' && t.sym === 'ETH-USD').length;
    await h.waitFor('ETH-USD live', () => h!.state === 'connected' && ethTrades() > 2);
    // a burst of new products fills the 8-a-second budget: the unsubscribe of ETH-USD goes out after them
    for (const p of ['SOL-USD', 'ADA-USD', 'XRP-USD', 'DOT-USD']) await h.adapter.subscribe([p]);
    await h.adapter.unsubscribe(['ETH-USD']);
    const atUnsubscribe = ethTrades();
    await h.waitFor('the unsubscribe reached Coinbase', () =>
      (h!.provider.receivedJson() as { type: string; channel: string; product_ids?: string[] }[]).some(
        (m) => m.type === 'unsubscribe' && m.channel === 'market_trades' && m.product_ids?.includes('ETH-USD'),
      ),
    );
    // Coinbase kept sending ETH-USD meanwhile (the subscription was still open): none of it is ours any more
    expect(ethTrades()).toBe(atUnsubscribe);
  });

  it("sends at most 8 messages a second (Coinbase's limit), in order, none dropped, when a gap and new products come together", async () => {
    const products = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'ADA-USD', 'XRP-USD', 'DOT-USD'];
    h = await startHarness(
      () => startCoinbaseFake({ replayFixtures: false }),
      (p) => new CoinbaseFeed('coinbase', options(p.url, { symbols: products.slice(0, 3), book: true })),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    // the 5 opening subscribes can wait behind the earlier tests' messages (one window per process)
    await h.waitFor('the 5 opening subscribes', () => h!.provider.requestTimes().length >= 5);
    // a sequence gap (unsubscribe + subscribe of market_trades, ticker, level2, status) and three products added at once
    // when the adapter sends each subscription message: the pacing is the sender's, so it is read
    // where the sender writes (arrival times at the fake bunch up when this process is loaded)
    const ws = createRequire(import.meta.url)('ws') as typeof import('ws');
    const send = ws.WebSocket.prototype.send;
    const sentAt: number[] = [];
    const spy = vi.spyOn(ws.WebSocket.prototype, 'send').mockImplementation(function (
      this: InstanceType<typeof ws.WebSocket>,
      ...args: Parameters<typeof send>
    ) {
      if (/"type":"(un)?subscribe"/.test(String(args[0]))) sentAt.push(Date.now());
      return send.apply(this, args);
    });
    h.provider.skip(4);
    await h.adapter.subscribe(products.slice(3));
    const conn = [...h.provider.conns][0]!;
    // 5 opening subscribes, 5 for the added products, 8 for the gap's resubscription
    await h.waitFor(
      'all 18 messages sent, and every channel has every product',
      () =>
        h!.provider.requestTimes().length >= 18 &&
        ['market_trades', 'ticker', 'level2'].every((ch) => products.every((p) => conn.state.channels.get(ch)?.has(p))),
    );
    expect((h.adapter as CoinbaseFeed).resubscribes).toBe(1);
    spy.mockRestore();
    expect(h.provider.requestTimes()).toHaveLength(18);
    // the 13 sent after the gap and the new products (5 opening subscribes went before the spy)
    expect(sentAt).toHaveLength(13);
    // Advanced Trade WebSocket Rate Limits: "unauthenticated messages are rate-limited at 8 per second per IP address"
    const busiest = Math.max(...sentAt.map((t) => sentAt.filter((u) => u >= t && u < t + 1000).length));
    expect(busiest).toBeLessThanOrEqual(8);
    // the resubscription kept its order: each channel's unsubscribe before its subscribe
    const msgs = h.provider.receivedJson() as { type: string; channel: string }[];
    for (const ch of ['market_trades', 'ticker', 'level2']) {
      const un = msgs.findIndex((m) => m.type === 'unsubscribe' && m.channel === ch);
      expect(msgs.findIndex((m, i) => i > un && m.type === 'subscribe' && m.channel === ch)).toBeGreaterThan(un);
    }
  });

  it('keeps publishing new trades after a reconnect (trade ids seen before the drop stay deduplicated)', async () => {
    h = await startHarness(
      () => startCoinbaseFake(),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    const trades = () => h!.ticks.filter((t) => t.k === 'trade');
    await h.waitFor('trades', () => h!.state === 'connected' && trades().length > 4);
    h.provider.dropAll();
    await h.waitFor('reconnected', () => h!.provider.totalConnections >= 2 && h!.state === 'connected');
    const n = trades().length;
    await h.waitFor('new trades after the reconnect', () => trades().length > n + 4);
    const ids = trades().map((t) => `${t.sym}/${t.k === 'trade' ? t.id : ''}`);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('coinbase ticker with an empty side', () => {
  let h: AdapterHarness<CoinbaseFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('publishes a ticker whose best_bid or best_ask is "" without that side, and none when both are empty; no error', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const quotes = () => h!.ticks.filter((t) => t.k === 'quote');
    // "WebSocket Channels" > Ticker Channel: best_bid/best_bid_quantity, best_ask/best_ask_quantity
    const ticker = (tk: Record<string, string>, timestamp: string) =>
      h!.provider.push({
        channel: 'ticker',
        timestamp,
        events: [{ type: 'update', tickers: [{ type: 'ticker', product_id: 'BTC-USD', price: '100.5', ...tk }] }],
      });
    ticker({ best_bid: '', best_bid_quantity: '', best_ask: '100.6', best_ask_quantity: '0.5' }, '2024-06-10T06:13:21.000000001Z');
    ticker({ best_bid: '100.4', best_bid_quantity: '1.5', best_ask: '', best_ask_quantity: '0' }, '2024-06-10T06:13:21.000000002Z');
    ticker({ best_bid: '', best_bid_quantity: '', best_ask: '', best_ask_quantity: '' }, '2024-06-10T06:13:21.000000003Z');
    ticker({ best_bid: '100.4', best_bid_quantity: '1', best_ask: '100.6', best_ask_quantity: '2' }, '2024-06-10T06:13:21.000000004Z'); // a sentinel
    await h.waitFor('the sentinel quote', () => quotes().some((q) => q.ts === 1718000001000000004n));
    expect(quotes()).toEqual([
      { k: 'quote', sym: 'BTC-USD', ap: 100.6, as: 0.5, ts: 1718000001000000001n },
      { k: 'quote', sym: 'BTC-USD', bp: 100.4, bs: 1.5, ts: 1718000001000000002n },
      { k: 'quote', sym: 'BTC-USD', bp: 100.4, bs: 1, ap: 100.6, as: 2, ts: 1718000001000000004n },
    ]);
    expect(h.counters.errors).toEqual([]);
  });
});

describe('coinbase market_trades update order', () => {
  let h: AdapterHarness<CoinbaseFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('emits the trades of an update oldest first (by time, then numeric trade_id), whatever their order in the batch', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    // "WebSocket Channels" > Market Trades Channel: updates are collected over 250 ms and sent
    // together; the page does not give their order. Here newest first, two in one microsecond.
    const trade = (trade_id: string, time: string) => ({ trade_id, product_id: 'BTC-USD', price: '67000.5', size: '0.1', side: 'BUY', time });
    h.provider.push({
      channel: 'market_trades',
      events: [
        {
          type: 'update',
          trades: [
            trade('1001', '2024-06-10T06:13:21.200000Z'),
            trade('1000', '2024-06-10T06:13:21.100000Z'),
            trade('999', '2024-06-10T06:13:21.100000Z'),
            trade('998', '2024-06-10T06:13:21.000001Z'),
          ],
        },
      ],
    });
    await h.waitFor('4 trades', () => h!.ticks.filter((t) => t.k === 'trade').length >= 4);
    const trades = h.ticks.filter((t) => t.k === 'trade');
    expect(trades.map((t) => (t.k === 'trade' ? t.id : ''))).toEqual(['998', '999', '1000', '1001']);
    expect(trades.map((t) => t.ts)).toEqual([1718000001000001000n, 1718000001100000000n, 1718000001100000000n, 1718000001200000000n]);
    expect(h.counters.errors).toEqual([]);
  });

  it('a trade whose time cannot be read goes last and is reported; the others of its update go out first', async () => {
    h = await startHarness(
      () => startCoinbaseFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new CoinbaseFeed('coinbase', options(p.url)),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const trade = (trade_id: string, time: string) => ({ trade_id, product_id: 'BTC-USD', price: '67000.5', size: '0.1', side: 'BUY', time });
    h.provider.push({
      channel: 'market_trades',
      events: [
        { type: 'update', trades: [trade('2001', 'not a time'), trade('2003', '2024-06-10T06:13:21.200000Z'), trade('2002', '2024-06-10T06:13:21.100000Z')] },
      ],
    });
    await h.waitFor('the error', () => h!.counters.errors.length > 0);
    expect(h.ticks.filter((t) => t.k === 'trade').map((t) => (t.k === 'trade' ? t.id : ''))).toEqual(['2002', '2003']);
    expect(h.counters.errors.join(' ')).toMatch(/not a time/);
  });
});
