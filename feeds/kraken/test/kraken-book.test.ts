import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { startKrakenFake } from '../fake-server.js';
import type { KrakenFakeOptions, KrakenFakeServer } from '../fake-server.js';
import { KrakenFeed, KrakenOptionsSchema } from '../kraken-feed.js';
import { best, rebuild } from '../../../test/helpers/book-ticks.js';

type Req = { method: string; params: { channel: string; symbol?: string[]; depth?: number; snapshot?: boolean }; req_id: number };

describe('kraken adapter: order books', () => {
  let h: AdapterHarness<KrakenFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async (fake: KrakenFakeOptions = {}, extra: Record<string, unknown> = {}, symbols = ['BTC-USD']) => {
    h = await startHarness(
      () => startKrakenFake({ replayFixtures: false, pumpMs: 60_000, ...fake }),
      (p) =>
        new KrakenFeed(
          'kraken',
          KrakenOptionsSchema.parse({ url: p.url, symbols, backoff: { initialMs: 20, maxMs: 200 }, book: true, staleAfterMs: 60_000, ...extra }),
        ),
    );
    return h;
  };
  const requests = (p: KrakenFakeServer) => p.receivedJson() as Req[];
  /** the server's book as a subscriber of `depth` sees it */
  const serverView = (p: KrakenFakeServer, pair: string, depth: number) => {
    const b = p.fullBook(pair);
    return { bids: b.bids.slice(0, depth), asks: b.asks.slice(0, depth) };
  };
  const matches = (h: AdapterHarness<KrakenFakeServer>, sym: string, pair: string, depth: number): boolean => {
    const mine = rebuild(h.ticks, sym);
    const theirs = serverView(h.provider, pair, depth);
    return JSON.stringify([best(mine.bids, 'bids'), best(mine.asks, 'asks')]) === JSON.stringify([theirs.bids, theirs.asks]);
  };

  it('gets the precision from the instrument channel, subscribes the book at the configured depth, and publishes snapshot then updates', async () => {
    const h = await start();
    await h.waitFor('book snapshot', () => h.ticks.some((t) => t.k === 'book' && t.reset === true));
    const reqs = requests(h.provider);
    const instrument = reqs.findIndex((r) => r.params.channel === 'instrument');
    const book = reqs.findIndex((r) => r.params.channel === 'book');
    expect(instrument).toBeGreaterThanOrEqual(0);
    expect(book).toBeGreaterThan(instrument); // the book waits for the precision
    expect(reqs[book]!.params).toEqual({ channel: 'book', symbol: ['BTC/USD'], depth: 25, snapshot: true });
    const snap = h.ticks.find((t) => t.k === 'book')!;
    expect(snap).toMatchObject({ k: 'book', sym: 'BTC-USD', reset: true });
    expect(snap.k === 'book' && snap.bids.length).toBe(25);
    expect(snap.k === 'book' && snap.bids[0]).toEqual(h.provider.fullBook('BTC/USD').bids[0]);
    expect(matches(h, 'BTC-USD', 'BTC/USD', 25)).toBe(true);

    // updates: sizes change, levels are removed (size 0) and added, levels fall out of the depth
    for (let i = 0; i < 40; i++) {
      h.provider.bookStep('BTC/USD', 3);
      await h.waitFor(`rebuilt book equals the server book after step ${i}`, () => matches(h, 'BTC-USD', 'BTC/USD', 25), 3000);
    }
    const updates = h.ticks.filter((t) => t.k === 'book' && !t.reset);
    expect(updates.length).toBeGreaterThan(10);
    expect(updates.some((t) => t.k === 'book' && [...t.bids, ...t.asks].some(([, q]) => q === 0))).toBe(true);
    expect(updates.every((t) => t.k === 'book' && typeof t.ts === 'bigint' && t.ts > 0n)).toBe(true);
    expect((h.adapter as KrakenFeed).checksumMismatches).toBe(0);
    expect(h.counters.errors).toEqual([]);
    expect((h.adapter as KrakenFeed).book('BTC-USD')!.bids.length).toBe(25);
    // one connection, one snapshot: the book was kept by updates alone
    expect(h.ticks.filter((t) => t.k === 'book' && t.reset)).toHaveLength(1);
    expect(h.provider.totalConnections).toBe(1);
  });

  it('with bookPrecision configured (and pairStatus off) it does not need the instrument channel', async () => {
    const h = await start({}, { bookPrecision: { 'BTC-USD': { price: 1, qty: 8 } }, bookDepth: 10, pairStatus: false });
    await h.waitFor('book snapshot', () => h.ticks.some((t) => t.k === 'book' && t.reset === true));
    h.provider.bookStep('BTC/USD', 20);
    await h.waitFor('rebuilt book equals the server book', () => matches(h, 'BTC-USD', 'BTC/USD', 10));
    expect(requests(h.provider).some((r) => r.params.channel === 'instrument')).toBe(false);
    expect(requests(h.provider).find((r) => r.params.channel === 'book')!.params.depth).toBe(10);
  });

  it('on a checksum mismatch counts it, resubscribes the book and resets it from the new snapshot', async () => {
    const h = await start();
    await h.waitFor('book snapshot', () => h.ticks.some((t) => t.k === 'book' && t.reset === true));
    h.provider.bookStep('BTC/USD', 5);
    await h.waitFor('in sync', () => matches(h, 'BTC-USD', 'BTC/USD', 25));
    h.provider.corruptChecksum('BTC/USD');
    h.provider.bookStep('BTC/USD', 1);
    await h.waitFor('mismatch counted', () => (h.adapter as KrakenFeed).checksumMismatches === 1);
    expect(h.counters.errors.some((e) => /kraken book BTC\/USD: checksum \d+ does not match Kraken's \d+/.test(e))).toBe(true);
    await h.waitFor('a second snapshot', () => h.ticks.filter((t) => t.k === 'book' && t.reset).length === 2);
    const bookReqs = requests(h.provider).filter((r) => r.params.channel === 'book');
    expect(bookReqs.map((r) => r.method)).toEqual(['subscribe', 'unsubscribe', 'subscribe']);
    h.provider.bookStep('BTC/USD', 10);
    await h.waitFor('in sync again', () => matches(h, 'BTC-USD', 'BTC/USD', 25));
    expect((h.adapter as KrakenFeed).checksumMismatches).toBe(1);
    expect(h.state).toBe('connected');
    expect(h.provider.totalConnections).toBe(1);
  });

  it('an update that cannot be read is reported and the book resubscribed (it would fall behind)', async () => {
    const h = await start();
    await h.waitFor('book snapshot', () => h.ticks.some((t) => t.k === 'book' && t.reset === true));
    const n = h.ticks.length;
    h.provider.broadcast({
      channel: 'book',
      type: 'update',
      data: [{ symbol: 'BTC/USD', bids: [{ price: 99.9, qty: -1 }], asks: [], checksum: 1, timestamp: '2024-06-10T06:13:21.219873Z' }],
    });
    await h.waitFor('a second snapshot', () => h.ticks.filter((t) => t.k === 'book' && t.reset).length === 2);
    expect(h.ticks.slice(n).filter((t) => t.k === 'book' && !t.reset)).toEqual([]);
    expect(h.counters.errors.some((e) => /kraken book: book\.bids\[0\]\.qty: "-1" is negative/.test(e))).toBe(true);
    h.provider.bookStep('BTC/USD', 5);
    await h.waitFor('in sync', () => matches(h, 'BTC-USD', 'BTC/USD', 25), 3000);
  });

  it('a wrong configured precision fails every snapshot: reported naming bookPrecision, no endless resubscribing', async () => {
    const h = await start({}, { bookPrecision: { 'BTC-USD': { price: 1, qty: 6 } } });
    await h.waitFor('the precision error', () =>
      h.counters.errors.some((e) => /3 snapshots in a row fail their checksum.*feeds\.kraken\.bookPrecision\.BTC-USD/.test(e)),
    );
    expect(h.ticks.some((t) => t.k === 'book')).toBe(false);
    expect(requests(h.provider).filter((r) => r.params.channel === 'book' && r.method === 'subscribe')).toHaveLength(3);
    expect(h.state).toBe('connected'); // trades and quotes go on
    await h.waitFor('quotes', () => h.ticks.some((t) => t.k === 'quote'));
  });

  it('a pair the instrument channel does not list is reported naming bookPrecision', async () => {
    const h = await start({ instrumentPairs: ['ETH/USD'] });
    await h.waitFor('the error', () =>
      h.counters.errors.some((e) => /BTC\/USD: the instrument channel gives no price\/qty precision.*feeds\.kraken\.bookPrecision\.BTC-USD/.test(e)),
    );
    expect(requests(h.provider).some((r) => r.params.channel === 'book')).toBe(false);
  });

  it('a reconnect starts the book over from a new snapshot; an unsubscribed symbol stops its book', async () => {
    const h = await start({}, {}, ['BTC-USD', 'ETH-USD']);
    await h.waitFor('two snapshots', () => h.ticks.filter((t) => t.k === 'book' && t.reset).length === 2);
    h.provider.dropAll();
    await h.waitFor('reconnected with new snapshots', () => h.provider.totalConnections >= 2 && h.ticks.filter((t) => t.k === 'book' && t.reset).length === 4);
    h.provider.bookStep('ETH/USD', 10);
    await h.waitFor('ETH in sync', () => matches(h, 'ETH-USD', 'ETH/USD', 25));
    await h.adapter.unsubscribe(['ETH-USD']);
    await h.waitFor('book unsubscribed', () => requests(h.provider).some((r) => r.method === 'unsubscribe' && r.params.channel === 'book'));
    expect((h.adapter as KrakenFeed).book('ETH-USD')).toBeUndefined();
  });

  it('rejects a depth Kraken does not offer, naming the key', () => {
    expect(() => KrakenOptionsSchema.parse({ symbols: ['BTC-USD'], book: true, bookDepth: 50 })).toThrow(/bookDepth/);
    expect(() => KrakenOptionsSchema.parse({ symbols: ['BTC-USD'], bookPrecision: { 'BTC-USD': { price: -1, qty: 8 } } })).toThrow(/bookPrecision/);
  });
});
