import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { CoinbaseFeed, CoinbaseOptionsSchema } from '../coinbase-feed.js';
import { startCoinbaseFake } from '../fake-server.js';
import type { CoinbaseFakeOptions, CoinbaseFakeServer } from '../fake-server.js';
import { bookSide, parseL2Event } from '../level2.js';
import { isoToNs } from '../../sdk/time.js';
import { best, rebuild } from '../../../test/helpers/book-ticks.js';

const DOC = JSON.parse(readFileSync(new URL('../fixtures/doc-examples.json', import.meta.url), 'utf8')) as Record<string, Record<string, any>>;

describe('coinbase level2 parsing', () => {
  it('reads the documented snapshot example', () => {
    const ev = parseL2Event(DOC.level2!.events[0], isoToNs);
    expect(ev).toEqual({
      type: 'snapshot',
      productId: 'BTC-USD',
      bids: [
        [21921.73, 0.06317902],
        [21921.3, 0.02],
      ],
      asks: [],
      unknownSides: [],
    }); // the 1970 event_time of snapshot levels is not used as a time
  });

  it('maps bid and offer and guesses no other side', () => {
    expect(bookSide('bid')).toBe('bids');
    expect(bookSide('offer')).toBe('asks');
    expect(bookSide('ask')).toBeUndefined();
    expect(bookSide('BUY')).toBeUndefined();
    const ev = parseL2Event(
      {
        type: 'update',
        product_id: 'BTC-USD',
        updates: [
          { side: 'offer', event_time: '2024-06-10T06:13:30.123456789Z', price_level: '100.5', new_quantity: '0' },
          { side: 'sell', event_time: '2024-06-10T06:13:30.1Z', price_level: '100.6', new_quantity: '1' },
        ],
      },
      isoToNs,
    );
    expect(ev.asks).toEqual([[100.5, 0]]);
    expect(ev.unknownSides).toEqual(['sell']);
    expect(ev.eventTime).toBe(1718000010123456789n);
  });

  it('rejects malformed events naming the field', () => {
    expect(() => parseL2Event({ type: 'delta', product_id: 'BTC-USD', updates: [] }, isoToNs)).toThrow(/l2_data\.type/);
    expect(() => parseL2Event({ type: 'update', product_id: 'BTC-USD', updates: [{ side: 'bid', price_level: 'x', new_quantity: '1' }] }, isoToNs)).toThrow(
      /updates\[0\]\.price_level/,
    );
    expect(() => parseL2Event({ type: 'update', product_id: 'BTC-USD', updates: [{ side: 'bid', price_level: '1', new_quantity: '-1' }] }, isoToNs)).toThrow(
      /updates\[0\]\.new_quantity/,
    );
  });
});

describe('coinbase adapter: order books (level2)', () => {
  let h: AdapterHarness<CoinbaseFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async (fake: CoinbaseFakeOptions = {}, extra: Record<string, unknown> = {}) => {
    h = await startHarness(
      () => startCoinbaseFake({ pumpMs: 60_000, replayFixtures: false, ...fake }),
      (p) =>
        new CoinbaseFeed(
          'coinbase',
          CoinbaseOptionsSchema.parse({
            url: p.url,
            symbols: ['BTC-USD', 'ETH-USD'],
            backoff: { initialMs: 20, maxMs: 200 },
            book: true,
            staleAfterMs: 60_000,
            ...extra,
          }),
        ),
    );
    return h;
  };
  const matches = (h: AdapterHarness<CoinbaseFakeServer>, sym: string): boolean => {
    const mine = rebuild(h.ticks, sym);
    const theirs = h.provider.fullBook(sym);
    return JSON.stringify([best(mine.bids, 'bids'), best(mine.asks, 'asks')]) === JSON.stringify([theirs.bids, theirs.asks]);
  };
  const resets = (h: AdapterHarness<CoinbaseFakeServer>, sym: string) => h.ticks.filter((t) => t.k === 'book' && t.sym === sym && t.reset).length;

  it('is off by default; with book: true subscribes level2 and publishes the snapshot, then every update', async () => {
    expect(CoinbaseOptionsSchema.parse({ symbols: ['BTC-USD'] }).book).toBe(false);
    const h = await start();
    await h.waitFor('two snapshots', () => resets(h, 'BTC-USD') === 1 && resets(h, 'ETH-USD') === 1);
    const subs = h.provider.receivedJson() as { type: string; channel: string; product_ids: string[] }[];
    expect(subs.filter((s) => s.type === 'subscribe').map((s) => s.channel)).toEqual(['market_trades', 'ticker', 'level2', 'status', 'heartbeats']);
    expect(subs.find((s) => s.channel === 'level2')!.product_ids).toEqual(['BTC-USD', 'ETH-USD']);
    const snap = h.ticks.find((t) => t.k === 'book' && t.sym === 'BTC-USD')!;
    expect(snap.k === 'book' && [snap.bids.length, snap.asks.length]).toEqual([40, 40]);
    expect(matches(h, 'BTC-USD')).toBe(true);
    for (let i = 0; i < 30; i++) {
      h.provider.bookStep('BTC-USD', 3);
      await h.waitFor(`rebuilt book equals the server book after step ${i}`, () => matches(h, 'BTC-USD'), 3000);
    }
    const updates = h.ticks.filter((t) => t.k === 'book' && t.sym === 'BTC-USD' && !t.reset);
    expect(updates.length).toBeGreaterThanOrEqual(30);
    expect(updates.some((t) => t.k === 'book' && [...t.bids, ...t.asks].some(([, q]) => q === 0))).toBe(true); // removals
    // update times are the engine's event_time (now), not the 1970 of snapshot levels
    expect(updates.every((t) => Number(t.ts / 1_000_000n) > Date.now() - 60_000)).toBe(true);
    expect(resets(h, 'BTC-USD')).toBe(1);
    expect(h.counters.errors).toEqual([]);
  });

  it('publishes the documented snapshot example as a reset with the message timestamp', async () => {
    const h = await start();
    await h.waitFor('snapshots', () => resets(h, 'BTC-USD') === 1);
    const conn = [...h.provider.conns][0]!;
    conn.send({ ...DOC.level2, sequence_num: conn.state.seq + 1 });
    await h.waitFor('the doc snapshot', () => resets(h, 'BTC-USD') === 2);
    expect(h.ticks.filter((t) => t.k === 'book').at(-1)).toEqual({
      k: 'book',
      sym: 'BTC-USD',
      reset: true,
      bids: [
        [21921.73, 0.06317902],
        [21921.3, 0.02],
      ],
      asks: [],
      ts: 1675974770714964855n,
    });
  });

  it('a sequence gap drops the books until the snapshots of the new subscription reset them', async () => {
    const h = await start();
    await h.waitFor('snapshots', () => resets(h, 'BTC-USD') === 1 && resets(h, 'ETH-USD') === 1);
    h.provider.bookStep('BTC-USD', 3);
    await h.waitFor('in sync', () => matches(h, 'BTC-USD'));
    h.provider.skip(5); // the next message jumps sequence_num: 5 messages lost
    h.provider.bookStep('BTC-USD', 3);
    await h.waitFor('gap counted', () => h.counters.gaps >= 1);
    await h.waitFor('new snapshots', () => resets(h, 'BTC-USD') === 2 && resets(h, 'ETH-USD') === 2);
    expect((h.adapter as CoinbaseFeed).bookResyncs).toBe(1);
    const msgs = h.provider.receivedJson() as { type: string; channel: string }[];
    expect(msgs.filter((m) => m.type === 'unsubscribe').map((m) => m.channel)).toEqual(['market_trades', 'ticker', 'level2', 'status']);
    for (let i = 0; i < 10; i++) {
      h.provider.bookStep('BTC-USD', 2);
      await h.waitFor(`in sync after step ${i}`, () => matches(h, 'BTC-USD'), 3000);
    }
  });

  it('reports an unknown side without guessing and keeps the other levels', async () => {
    const h = await start();
    await h.waitFor('snapshots', () => resets(h, 'BTC-USD') === 1);
    const conn = [...h.provider.conns][0]!;
    const n = h.ticks.length;
    conn.send({
      channel: 'l2_data',
      client_id: '',
      timestamp: '2024-06-10T06:13:30.2Z',
      sequence_num: conn.state.seq + 1,
      events: [
        {
          type: 'update',
          product_id: 'BTC-USD',
          updates: [
            { side: 'ask', event_time: '2024-06-10T06:13:30.1Z', price_level: '100.01', new_quantity: '1' },
            { side: 'bid', event_time: '2024-06-10T06:13:30.1Z', price_level: '99.99', new_quantity: '7' },
          ],
        },
      ],
    });
    conn.state.seq += 1;
    await h.waitFor('the update', () => h.ticks.length > n);
    expect(h.ticks.filter((t) => t.k === 'book').at(-1)).toMatchObject({ k: 'book', sym: 'BTC-USD', bids: [[99.99, 7]], asks: [] });
    expect(h.counters.errors.some((e) => /coinbase level2 BTC-USD: unknown side "ask" \(expected "bid" or "offer"\); 1 level\(s\) left out/.test(e))).toBe(
      true,
    );
  });

  it('an update that cannot be read is reported and that book resubscribed (it would fall behind)', async () => {
    const h = await start();
    await h.waitFor('snapshots', () => resets(h, 'BTC-USD') === 1);
    const conn = [...h.provider.conns][0]!;
    conn.send({
      channel: 'l2_data',
      client_id: '',
      timestamp: '2024-06-10T06:13:30.2Z',
      sequence_num: conn.state.seq + 1,
      events: [
        { type: 'update', product_id: 'BTC-USD', updates: [{ side: 'bid', event_time: '2024-06-10T06:13:30.1Z', price_level: '99.99', new_quantity: 'lots' }] },
      ],
    });
    conn.state.seq += 1;
    await h.waitFor('a new BTC-USD snapshot', () => resets(h, 'BTC-USD') === 2);
    expect(h.counters.errors.some((e) => /coinbase level2: l2_data\.updates\[0\]\.new_quantity: "lots" is not a decimal number/.test(e))).toBe(true);
    expect((h.adapter as CoinbaseFeed).bookResyncs).toBe(1);
    h.provider.bookStep('BTC-USD', 5);
    await h.waitFor('in sync', () => matches(h, 'BTC-USD'), 3000);
  });

  it('a level2 update whose message timestamp cannot be read still applies (its levels were lost, the book left behind)', async () => {
    const h = await start();
    await h.waitFor('snapshots', () => resets(h, 'BTC-USD') === 1);
    const conn = [...h.provider.conns][0]!;
    conn.send({
      channel: 'l2_data',
      client_id: '',
      timestamp: 'yesterday',
      sequence_num: conn.state.seq + 1,
      events: [
        { type: 'update', product_id: 'BTC-USD', updates: [{ side: 'bid', event_time: '2024-06-10T06:13:30.1Z', price_level: '1', new_quantity: '7' }] },
      ],
    });
    conn.state.seq += 1;
    await h.waitFor('the update applied', () => h.ticks.some((t) => t.k === 'book' && t.bids.some(([p, q]) => p === 1 && q === 7)));
    // its time is the levels' event_time; the unreadable envelope time is reported
    expect(h.ticks.find((t) => t.k === 'book' && t.bids.some(([p]) => p === 1))!.ts).toBe(1718000010100000000n);
    expect(h.counters.errors.some((e) => /timestamp.*yesterday/.test(e))).toBe(true);
    expect((h.adapter as CoinbaseFeed).bookResyncs).toBe(0);
  });

  it('a late level2 message resubscribes that book instead of applying it out of order', async () => {
    const h = await start();
    await h.waitFor('snapshots', () => resets(h, 'BTC-USD') === 1);
    const conn = [...h.provider.conns][0]!;
    conn.send({
      channel: 'l2_data',
      client_id: '',
      timestamp: '2024-06-10T06:13:30.2Z',
      sequence_num: conn.state.seq - 1,
      events: [
        { type: 'update', product_id: 'BTC-USD', updates: [{ side: 'bid', event_time: '2024-06-10T06:13:30.1Z', price_level: '1', new_quantity: '7' }] },
      ],
    });
    await h.waitFor('a new BTC-USD snapshot', () => resets(h, 'BTC-USD') === 2);
    expect(h.ticks.some((t) => t.k === 'book' && t.bids.some(([p]) => p === 1))).toBe(false);
    expect((h.adapter as CoinbaseFeed).bookResyncs).toBe(1);
    expect(h.counters.errors.some((e) => /arrived out of order/.test(e))).toBe(true);
    h.provider.bookStep('BTC-USD', 5);
    await h.waitFor('in sync', () => matches(h, 'BTC-USD'), 3000);
  });
  it('refreshes a side that dropped levels past bookLevels once it is down to a quarter of them, never a whole thin side', async () => {
    expect(CoinbaseOptionsSchema.parse({ symbols: ['BTC-USD'] }).bookLevels).toBe(1000);
    expect(() => CoinbaseOptionsSchema.parse({ symbols: ['BTC-USD'], bookLevels: 5 })).toThrow(/bookLevels/);
    const h = await start({}, { bookLevels: 10 });
    await h.waitFor('two snapshots', () => resets(h, 'BTC-USD') === 1 && resets(h, 'ETH-USD') === 1);
    const feed = h.adapter as CoinbaseFeed;
    // the opening subscribes (market_trades, ticker, heartbeats, level2, status) can wait behind
    // the earlier tests' messages: Coinbase's limit is per IP, so the process shares one window
    await h.waitFor('the 5 opening subscribes', () => h.provider.receivedJson().length >= 5);
    // 40 levels a side: 10 kept, 5 bids removed leaves 5 (at least a quarter): no refresh
    h.provider.sweep('BTC-USD', 'bids', 5);
    await h.waitFor('the update', () => h.ticks.some((t) => t.k === 'book' && t.sym === 'BTC-USD' && !t.reset));
    expect(feed.bookRefreshes).toBe(0);
    const sent = h.provider.receivedJson().length;
    // 3 more: 2 kept of 10, fewer than a quarter: level2 resubscribed for BTC-USD only, a new snapshot resets it
    h.provider.sweep('BTC-USD', 'bids', 3);
    await h.waitFor('a new BTC-USD snapshot', () => resets(h, 'BTC-USD') === 2);
    expect(feed.bookRefreshes).toBe(1);
    const again = (h.provider.receivedJson() as { type: string; channel: string; product_ids: string[] }[]).slice(sent);
    expect(again.map((m) => [m.type, m.channel, m.product_ids])).toEqual([
      ['unsubscribe', 'level2', ['BTC-USD']],
      ['subscribe', 'level2', ['BTC-USD']],
    ]);
    expect(resets(h, 'ETH-USD')).toBe(1);
    expect(matches(h, 'BTC-USD')).toBe(true);
  });

  // quotes from the book: the ticker is sent only "every time a match happens" (WebSocket Channels,
  // channel table), level2 with every change of the book ("guarantees delivery of all updates")
  const quotes = (h: AdapterHarness<CoinbaseFakeServer>, sym = 'BTC-USD') => h.ticks.filter((t) => t.k === 'quote' && t.sym === sym);
  const topQuote = (h: AdapterHarness<CoinbaseFakeServer>, sym = 'BTC-USD') => {
    const { bids, asks } = h.provider.fullBook(sym);
    return { bp: bids[0]![0], bs: bids[0]![1], ap: asks[0]![0], as: asks[0]![1] };
  };
  const ticker = (product: string, bid: string, ask: string) => ({
    channel: 'ticker',
    events: [
      {
        type: 'update',
        tickers: [{ type: 'ticker', product_id: product, price: bid, best_bid: bid, best_bid_quantity: '9', best_ask: ask, best_ask_quantity: '9' }],
      },
    ],
  });

  it('with book on, the quote follows the book: its snapshot, then a change of the best ask with no trade', async () => {
    const h = await start();
    await h.waitFor('two snapshots', () => resets(h, 'BTC-USD') === 1 && resets(h, 'ETH-USD') === 1);
    // the first quote after a snapshot is the snapshot's top, at the snapshot's time
    await h.waitFor('the snapshot quote', () => quotes(h).length === 1);
    const snap = h.ticks.find((t) => t.k === 'book' && t.sym === 'BTC-USD' && t.reset)!;
    expect(quotes(h)[0]).toEqual({ k: 'quote', sym: 'BTC-USD', ...topQuote(h), ts: snap.ts });
    // the best ask is taken away (no trade, no ticker): the quote shows the next ask at once
    h.provider.sweep('BTC-USD', 'asks', 1);
    await h.waitFor('a quote with the new ask', () => quotes(h).length === 2);
    const update = h.ticks.filter((t) => t.k === 'book' && t.sym === 'BTC-USD' && !t.reset).at(-1)!;
    expect(quotes(h)[1]).toEqual({ k: 'quote', sym: 'BTC-USD', ...topQuote(h), ts: update.ts });
    expect(h.ticks.some((t) => t.k === 'trade')).toBe(false);
    expect(h.counters.errors).toEqual([]);
  });

  it('a change below the best levels gives no quote; every change of the top does', async () => {
    const h = await start();
    await h.waitFor('snapshots and their quotes', () => quotes(h).length === 1 && quotes(h, 'ETH-USD').length === 1);
    const conn = [...h.provider.conns][0]!;
    const [deepPrice, deepQty] = h.provider.fullBook('BTC-USD').bids[10]!;
    const setDeep = (q: number) => {
      const now = new Date().toISOString();
      conn.send({
        channel: 'l2_data',
        client_id: '',
        timestamp: now,
        sequence_num: conn.state.seq + 1,
        events: [
          { type: 'update', product_id: 'BTC-USD', updates: [{ side: 'bid', event_time: now, price_level: deepPrice.toFixed(2), new_quantity: q.toFixed(8) }] },
        ],
      });
      conn.state.seq += 1;
    };
    // the 11th bid changes and changes back (so the book is the fake's again): the top stays
    setDeep(42);
    setDeep(deepQty);
    await h.waitFor('the deep updates', () => h.ticks.some((t) => t.k === 'book' && t.bids.some(([p, q]) => p === deepPrice && q === deepQty)));
    // a sentinel: a change of the top after it
    h.provider.sweep('BTC-USD', 'bids', 1);
    await h.waitFor('the sentinel quote', () => quotes(h).some((q) => q.k === 'quote' && q.bp === topQuote(h).bp));
    expect(quotes(h)).toHaveLength(2); // the snapshot's and the sentinel's: none for the deep level
    for (let i = 0; i < 20; i++) {
      h.provider.bookStep('BTC-USD', 3);
      await h.waitFor(`book in sync after step ${i}`, () => matches(h, 'BTC-USD'), 3000);
      expect(quotes(h).at(-1)).toMatchObject(topQuote(h));
    }
  });

  // docs/feeds.md "Empty quote sides": a side with no order is published absent. A synced level2
  // book is the whole book ("guarantees delivery of all updates"), so when it runs empty the quote
  // says so, with both sides absent; before, no quote went out and the last top stayed.
  it('a side taken empty is quoted without it, and an emptied book with neither side', async () => {
    const h = await start();
    await h.waitFor('snapshots and their quotes', () => quotes(h).length === 1 && quotes(h, 'ETH-USD').length === 1);
    const depth = (side: 'bids' | 'asks') => h.provider.fullBook('BTC-USD')[side].length;
    h.provider.sweep('BTC-USD', 'asks', depth('asks'));
    await h.waitFor('a quote without the ask', () => quotes(h).some((q) => q.k === 'quote' && q.ap === undefined));
    const bidOnly = quotes(h).at(-1)!;
    expect(bidOnly).toMatchObject({ bp: h.provider.fullBook('BTC-USD').bids[0]![0] });
    expect(bidOnly).not.toHaveProperty('as');
    h.provider.sweep('BTC-USD', 'bids', depth('bids'));
    await h.waitFor('a quote with neither side', () => quotes(h).some((q) => q.k === 'quote' && q.bp === undefined && q.ap === undefined), 3000);
    const none = quotes(h).at(-1)!;
    const update = h.ticks.filter((t) => t.k === 'book' && t.sym === 'BTC-USD' && !t.reset).at(-1)!;
    expect(none).toEqual({ k: 'quote', sym: 'BTC-USD', ts: update.ts });
    expect(h.counters.errors).toEqual([]);
  });

  it('a ticker while the book is synced publishes no quote (it would put back a stale top)', async () => {
    const h = await start();
    await h.waitFor('snapshots and their quotes', () => quotes(h).length === 1 && quotes(h, 'ETH-USD').length === 1);
    h.provider.push(ticker('BTC-USD', '99.50', '100.50'));
    h.provider.sweep('BTC-USD', 'asks', 1); // sentinel: a quote from the book, sent after the ticker
    await h.waitFor('the sentinel quote', () => quotes(h).length === 2);
    expect(quotes(h).map((q) => q.k === 'quote' && [q.bp, q.ap])).toEqual([
      [topQuote(h).bp, 100],
      [topQuote(h).bp, topQuote(h).ap],
    ]);
    expect(h.counters.errors).toEqual([]);
  });

  it("after a sequence gap the ticker's quotes are published until the new snapshot, then the book's again", async () => {
    // subscriptions are answered 1 s late: the resubscription's snapshot comes well after the gap
    const h = await start({ ackDelayMs: 1000 });
    await h.waitFor('snapshots and their quotes', () => quotes(h).length === 1 && quotes(h, 'ETH-USD').length === 1, 10_000);
    h.provider.skip(5);
    h.provider.bookStep('BTC-USD', 1);
    await h.waitFor('gap counted', () => h.counters.gaps >= 1);
    h.provider.push(ticker('BTC-USD', '99.50', '100.50'));
    await h.waitFor("the ticker's quote", () => quotes(h).length === 2);
    expect(quotes(h)[1]).toMatchObject({ bp: 99.5, bs: 9, ap: 100.5, as: 9 });
    expect(resets(h, 'BTC-USD')).toBe(1); // still waiting for the new snapshot
    await h.waitFor('the new snapshot', () => resets(h, 'BTC-USD') === 2, 10_000);
    // the first quote after the snapshot is the book's top, whether or not it changed meanwhile
    await h.waitFor("the new snapshot's quote", () => quotes(h).length === 3);
    const snap = h.ticks.filter((t) => t.k === 'book' && t.sym === 'BTC-USD' && t.reset).at(-1)!;
    expect(quotes(h)[2]).toEqual({ k: 'quote', sym: 'BTC-USD', ...topQuote(h), ts: snap.ts });
    // synced again: a ticker is not published
    h.provider.push(ticker('BTC-USD', '99.40', '100.60'));
    h.provider.sweep('BTC-USD', 'bids', 1);
    await h.waitFor('the sentinel quote', () => quotes(h).length === 4);
    expect(quotes(h)[3]).toMatchObject(topQuote(h));
    expect(quotes(h).some((q) => q.k === 'quote' && q.bp === 99.4)).toBe(false);
  });

  it('a thin side (fewer levels than bookLevels, none dropped) is the whole side: never refreshed', async () => {
    const h = await start();
    await h.waitFor('two snapshots', () => resets(h, 'BTC-USD') === 1 && resets(h, 'ETH-USD') === 1);
    h.provider.sweep('BTC-USD', 'bids', 38);
    await h.waitFor('in sync', () => matches(h, 'BTC-USD'), 3000);
    expect((h.adapter as CoinbaseFeed).bookRefreshes).toBe(0);
    expect(resets(h, 'BTC-USD')).toBe(1);
  });
});
