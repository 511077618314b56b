import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { OrderBook } from '../../../src/book/order-book.js';
import type { TickInput } from '../../sdk/adapter.js';
import { BinanceFeed, BinanceOptionsSchema } from '../binance-feed.js';
import { quietFor } from '../../../test/helpers/wait.js';
import { DepthSync, MAX_BUFFERED_EVENTS, MAX_SNAPSHOT_RETRY_MS, rateLimitWaitMs, snapshotRetryMs } from '../depth-sync.js';
import { startBinanceFake } from '../fake-server.js';
import type { BinanceFakeOptions, BinanceFakeServer } from '../fake-server.js';

const options = (url: string, restUrl: string, extra: Record<string, unknown> = {}) =>
  BinanceOptionsSchema.parse({
    url,
    restUrl,
    symbols: ['BTC-USD'],
    symbolMap: { 'BTC-USD': 'BTCUSDT' },
    streams: ['depth'],
    depthRetryMs: 20,
    backoff: { initialMs: 20, maxMs: 200 },
    ...extra,
  });

/** The book the adapter's ticks build (what the publisher will hold). */
function rebuild(ticks: readonly TickInput[]): { book: OrderBook; resets: number } {
  const book = new OrderBook(5000);
  let resets = 0;
  for (const t of ticks) {
    if (t.k !== 'book') continue;
    if (t.reset) {
      resets++;
      book.reset(t.bids, t.asks);
    } else book.apply(t.bids, t.asks);
  }
  return { book, resets };
}

describe('binance depth: the documented local order book procedure', () => {
  let h: AdapterHarness<BinanceFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const start = async (fake: BinanceFakeOptions = {}): Promise<AdapterHarness<BinanceFakeServer>> =>
    (h = await startHarness(
      () => startBinanceFake({ replayFixtures: false, depthMs: 10, ...fake }),
      (p) => new BinanceFeed('binance', options(p.url, (p as BinanceFakeServer).restUrl)),
    ));

  /** freeze the exchange, let the last events arrive, then the adapter's book must be the exchange's */
  const expectSameBook = async (hh: AdapterHarness<BinanceFakeServer>): Promise<void> => {
    hh.provider.pause();
    const truth = (): string => JSON.stringify(hh.provider.depth('BTCUSDT')!.view(5000));
    await hh.waitFor('the adapter book equals the exchange book', () => JSON.stringify(rebuild(hh.ticks).book.view(5000)) === truth(), 5000);
    expect(rebuild(hh.ticks).book.view(5000)).toEqual(hh.provider.depth('BTCUSDT')!.view(5000));
  };

  it('subscribes to <symbol>@depth@100ms, starts from a REST snapshot and follows the diff stream', async () => {
    const hh = await start({ snapshotDelayMs: 60 }); // events buffer while the snapshot is on its way
    await hh.waitFor('connected', () => hh.provider.conns.size === 1);
    const conn = [...hh.provider.conns][0]!;
    expect(conn.url.searchParams.get('streams')).toBe('btcusdt@depth@100ms');
    await hh.waitFor('a reset then 30 updates', () => hh.ticks.filter((t) => t.k === 'book').length > 30);
    const first = hh.ticks.find((t) => t.k === 'book')!;
    expect(first).toMatchObject({ k: 'book', sym: 'BTC-USD', reset: true });
    expect(rebuild(hh.ticks).resets).toBe(1);
    await expectSameBook(hh);
  });

  it('asks again when the snapshot is stale (lastUpdateId < U of the first buffered event)', async () => {
    const hh = await start({ staleSnapshots: 2, snapshotDelayMs: 20 });
    await hh.waitFor('synced after stale snapshots', () => hh.ticks.some((t) => t.k === 'book' && t.reset === true));
    expect(hh.provider.snapshotRequests()).toBeGreaterThanOrEqual(3);
    // nothing was emitted from a stale snapshot: the first book tick is the good reset
    expect(hh.ticks.filter((t) => t.k === 'book')[0]).toMatchObject({ reset: true });
    await hh.waitFor('live updates', () => hh.ticks.filter((t) => t.k === 'book').length > 10);
    await expectSameBook(hh);
  });

  it('detects lost updates (U > update ID + 1), counts a gap and syncs again from a new snapshot', async () => {
    const hh = await start();
    await hh.waitFor('synced', () => hh.ticks.filter((t) => t.k === 'book').length > 5);
    hh.provider.loseDepthUpdates('BTCUSDT', 3);
    await hh.waitFor('a gap and a second reset', () => hh.counters.gaps >= 1 && rebuild(hh.ticks).resets >= 2);
    expect(hh.logs.some((l) => /depth stream gap/.test(l.msg))).toBe(true);
    await expectSameBook(hh);
  });

  // REST "LIMITS" > IP Limits: "When a 429 is received, it's your obligation as an API to back off
  // and not spam the API"; failing to back off brings an IP ban (418). "A Retry-After header is sent
  // with a 418 or 429 response": the seconds to wait to avoid the ban, or until it is over.
  for (const status of [429, 418]) {
    it(`waits the Retry-After of a ${status} before asking for the depth snapshot again`, async () => {
      const hh = await start();
      await hh.waitFor('synced', () => rebuild(hh.ticks).resets === 1 && hh.ticks.length > 5);
      hh.provider.failDepth(1, status, 1);
      const before = hh.provider.depthRequestTimes().length;
      hh.provider.loseDepthUpdates('BTCUSDT', 3); // a gap: the book needs a new snapshot
      await hh.waitFor('synced again after the refusal', () => rebuild(hh.ticks).resets >= 2, 10_000);
      const times = hh.provider.depthRequestTimes().slice(before);
      expect(times.length).toBe(2); // the refused request, then one after the wait: no retries meanwhile
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(1000);
      expect(hh.counters.errors.some((e) => e.includes(`HTTP ${status}`))).toBe(true);
      await expectSameBook(hh);
    });
  }

  it('a Retry-After longer than a timer can hold (over 24.8 days) still waits, it does not ask at once', async () => {
    const hh = await start();
    await hh.waitFor('synced', () => rebuild(hh.ticks).resets === 1 && hh.ticks.length > 5);
    hh.provider.failDepth(1, 418, 30 * 86_400);
    const before = hh.provider.depthRequestTimes().length;
    hh.provider.loseDepthUpdates('BTCUSDT', 3);
    await hh.waitFor('refused', () => hh.counters.errors.some((e) => e.includes('HTTP 418')));
    // a timer over 2^31-1 ms fires at once (Node: TimeoutOverflowWarning): the wait was a 1 ms spin
    let overflows = 0;
    const onWarning = (w: Error): void => void (w.name === 'TimeoutOverflowWarning' && overflows++);
    process.on('warning', onWarning);
    try {
      await quietFor(500, 'a second snapshot request, or a timer that overflows');
    } finally {
      process.off('warning', onWarning);
    }
    expect(hh.provider.depthRequestTimes().length).toBe(before + 1);
    expect(overflows).toBe(0);
  });

  it("holds every symbol's snapshot request back for a Retry-After (the limit is per IP)", async () => {
    h = await startHarness(
      () => startBinanceFake({ replayFixtures: false, depthMs: 10 }),
      (p) =>
        new BinanceFeed(
          'binance',
          options(p.url, (p as BinanceFakeServer).restUrl, { symbols: ['BTC-USD', 'ETH-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT' } }),
        ),
    );
    const hh = h;
    const resets = (): number => hh.ticks.filter((t) => t.k === 'book' && t.reset).length;
    await hh.waitFor('both synced', () => new Set(hh.ticks.filter((t) => t.k === 'book' && t.reset).map((t) => t.sym)).size === 2);
    hh.provider.failDepth(1, 429, 1);
    const before = hh.provider.depthRequestTimes().length;
    hh.provider.loseDepthUpdates('BTCUSDT', 3);
    // the adapter has read the refusal (not only the fake its request): from now on every request waits
    await hh.waitFor(
      "BTCUSDT's request refused",
      () => hh.provider.depthRequestTimes().length === before + 1 && hh.counters.errors.some((e) => e.includes('HTTP 429')),
    );
    const refusedAt = hh.provider.depthRequestTimes()[before]!;
    hh.provider.loseDepthUpdates('ETHUSDT', 3); // ETHUSDT needs a snapshot while the IP must wait
    await hh.waitFor('both synced again', () => resets() >= 4, 10_000);
    const later = hh.provider.depthRequestTimes().slice(before + 1);
    expect(later.length).toBe(2);
    for (const t of later) expect(t - refusedAt).toBeGreaterThanOrEqual(1000);
  });

  // LIMITS > IP Limits: the request limits are per IP, so every REST request of the adapter (the
  // exchangeInfo status poll, the depth snapshots) waits once either side was told to back off
  it('a 429 on the exchangeInfo status poll holds the depth snapshot requests for its Retry-After', async () => {
    const hh = await start();
    await hh.waitFor('synced, status read', () => rebuild(hh.ticks).resets === 1 && hh.provider.exchangeInfoRequests().length >= 1);
    hh.provider.failExchangeInfo(1, 429, 1);
    await (hh.adapter as BinanceFeed).pollStatusNow();
    const refusedAt = hh.provider.exchangeInfoRequests().at(-1)!.at;
    const before = hh.provider.depthRequestTimes().length;
    hh.provider.loseDepthUpdates('BTCUSDT', 3); // the book needs a snapshot while the IP must wait
    await hh.waitFor('synced again', () => rebuild(hh.ticks).resets >= 2, 10_000);
    const later = hh.provider.depthRequestTimes().slice(before);
    expect(later.length).toBe(1);
    expect(later[0]! - refusedAt).toBeGreaterThanOrEqual(1000);
  });

  it('a 429 on a depth snapshot holds the exchangeInfo status poll for its Retry-After', async () => {
    const hh = await start();
    await hh.waitFor('synced, status read', () => rebuild(hh.ticks).resets === 1 && hh.provider.exchangeInfoRequests().length >= 1);
    hh.provider.failDepth(1, 429, 1);
    const before = hh.provider.depthRequestTimes().length;
    hh.provider.loseDepthUpdates('BTCUSDT', 3);
    await hh.waitFor('depth refused', () => hh.provider.depthRequestTimes().length === before + 1 && hh.counters.errors.some((e) => e.includes('HTTP 429')));
    const refusedAt = hh.provider.depthRequestTimes()[before]!;
    const polls = hh.provider.exchangeInfoRequests().length;
    await (hh.adapter as BinanceFeed).pollStatusNow(); // asked now: it waits for the end of the pause instead
    expect(hh.provider.exchangeInfoRequests().length).toBe(polls);
    await hh.waitFor('status read after the pause', () => hh.provider.exchangeInfoRequests().length > polls, 10_000);
    expect(hh.provider.exchangeInfoRequests()[polls]!.at - refusedAt).toBeGreaterThanOrEqual(1000);
  });

  // "How to manage a local order book correctly", the note: "Since depth snapshots retrieved from the
  // API have a limit on the number of price levels (5000 on each side maximum), you won't learn the
  // quantities for the levels outside of the initial snapshot unless they change."
  it('never shows a level beyond the snapshot: the book is always an exact top of the exchange book', async () => {
    h = await startHarness(
      () => startBinanceFake({ replayFixtures: false, depthMs: 5 }),
      (p) => new BinanceFeed('binance', options(p.url, (p as BinanceFakeServer).restUrl, { depthLimit: 10 })),
    );
    const hh = h;
    await hh.waitFor('synced and 200 updates', () => rebuild(hh.ticks).resets >= 1 && hh.ticks.filter((t) => t.k === 'book').length > 200);
    hh.provider.pause();
    const truth = hh.provider.depth('BTCUSDT')!.view(5000);
    const prefix = (): boolean => {
      const b = rebuild(hh.ticks).book.view(5000);
      return (
        JSON.stringify(b.bids) === JSON.stringify(truth.bids.slice(0, b.bids.length)) &&
        JSON.stringify(b.asks) === JSON.stringify(truth.asks.slice(0, b.asks.length))
      );
    };
    await hh.waitFor('the last events in', () => prefix(), 2000).catch(() => undefined);
    const mine = rebuild(hh.ticks).book.view(5000);
    // every level shown is the exchange's, in its place: no hole where a level outside the snapshot was never learned
    expect(mine.bids).toEqual(truth.bids.slice(0, mine.bids.length));
    expect(mine.asks).toEqual(truth.asks.slice(0, mine.asks.length));
    expect(mine.bids.length).toBeGreaterThan(0);
    expect(mine.asks.length).toBeGreaterThan(0);
  });

  it('refuses a depthUpdate whose event time is not a time, before it reaches the book (no crash, no silent loss)', async () => {
    // no generated depth events: the test sends its own (the fake's book is at update ID 1000)
    const hh = await start({ depthMs: 3_600_000 });
    await hh.waitFor('connected', () => hh.provider.conns.size === 1);
    const conn = [...hh.provider.conns][0]!;
    const frame = (E: unknown) => ({ stream: 'btcusdt@depth@100ms', data: { e: 'depthUpdate', E, s: 'BTCUSDT', U: 999, u: 1001, b: [], a: [] } });
    // as the first buffered event its time stamps the snapshot's reset: read after the REST answer,
    // outside the message handler's guard, it was an unhandled rejection (a crash of the process)
    conn.send(frame(1.5));
    await hh.waitFor('the event refused', () => hh.counters.errors.some((e) => /depthUpdate\.E/.test(e)));
    conn.send(frame(Date.now()));
    await hh.waitFor('synced from the good event', () => rebuild(hh.ticks).resets === 1);
    expect(hh.provider.snapshotRequests()).toBe(1);
  });

  // WebSocket Streams > Live Subscribing/Unsubscribing to streams: the UNSUBSCRIBE goes out paced
  // (WebSocket Limits) and Binance stops a stream only once it has read the request, so events of
  // the stream still arrive after the symbol left the feed. They are not the feed's any more: before,
  // they started a new book (a REST snapshot of weight 50, a reset published for a symbol no longer
  // served), left synced at an old update ID, so subscribing the symbol again counted a false gap.
  it('ignores the depth (and trade) events of a symbol still in flight after its unsubscribe', async () => {
    h = await startHarness(
      () => startBinanceFake({ replayFixtures: false, depthMs: 10, unsubscribeDelayMs: 400 }),
      (p) =>
        new BinanceFeed(
          'binance',
          options(p.url, (p as BinanceFakeServer).restUrl, {
            symbols: ['BTC-USD', 'ETH-USD'],
            symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT' },
            streams: ['depth', 'trade'],
          }),
        ),
    );
    const hh = h;
    const resets = (sym: string): number => hh.ticks.filter((t) => t.k === 'book' && t.sym === sym && t.reset === true).length;
    await hh.waitFor('both books synced', () => resets('BTC-USD') === 1 && resets('ETH-USD') === 1);
    const snapshotsBefore = hh.provider.snapshotRequests();
    await hh.adapter.unsubscribe(['ETH-USD']);
    const after = hh.ticks.length;
    const conn = [...hh.provider.conns][0]!;
    await hh.waitFor('Binance applied the UNSUBSCRIBE', () => ![...conn.state.streams].some((s) => s.startsWith('ethusdt@')), 5000);
    await quietFor(100, 'the events sent before Binance applied the UNSUBSCRIBE arriving');
    expect(hh.ticks.slice(after).filter((t) => t.sym === 'ETH-USD')).toEqual([]);
    expect(hh.provider.snapshotRequests()).toBe(snapshotsBefore); // no snapshot asked for a symbol the feed left
    // subscribed again: a new book from a new snapshot, and no gap
    await hh.adapter.subscribe(['ETH-USD']);
    await hh.waitFor('ETH-USD synced again', () => resets('ETH-USD') === 2, 5000);
    expect(hh.counters.gaps).toBe(0);
  });

  it('starts every book over after a reconnect', async () => {
    const hh = await start();
    await hh.waitFor('synced', () => rebuild(hh.ticks).resets === 1 && hh.ticks.length > 5);
    hh.provider.dropAll();
    await hh.waitFor('a second reset after the reconnect', () => rebuild(hh.ticks).resets >= 2);
    await expectSameBook(hh);
  });
});

describe('DepthSync (the procedure as a state machine)', () => {
  const ev = (U: number, u: number, b: [number, number][] = [], a: [number, number][] = []) => ({ U, u, E: 1, b, a });

  it('drops buffered events the snapshot covers, applies the one that straddles it, ignores old ones', () => {
    const s = new DepthSync();
    expect(s.onEvent(ev(157, 160, [[1, 1]])).fetch).toBe(true);
    s.fetching = true;
    expect(s.onEvent(ev(161, 165, [[2, 2]])).fetch).toBe(false);
    s.onEvent(ev(166, 170, [[3, 3]]));
    const r = s.onSnapshot({ lastUpdateId: 163, bids: [[9, 9]], asks: [] });
    expect(r.stale).toBe(false);
    if (r.stale) return;
    // the 157-160 event is dropped (u <= 163); 161-165 holds 163 in its range and applies
    expect(r.out.map((o) => o.kind)).toEqual(['reset', 'update', 'update']);
    expect(r.out[1]!.bids).toEqual([[2, 2]]);
    expect(s.onEvent(ev(168, 170)).out).toBeUndefined(); // u <= update ID: ignored
    expect(s.onEvent(ev(171, 171, [[4, 0]])).out).toMatchObject({ kind: 'update', bids: [[4, 0]] });
    const gap = s.onEvent(ev(175, 176));
    expect(gap.gap).toMatch(/172..174 missing/);
    expect(gap.fetch).toBe(true);
    expect(s.synced).toBe(false);
  });

  it('calls a snapshot older than the first buffered event stale', () => {
    const s = new DepthSync();
    s.onEvent(ev(500, 505));
    expect(s.onSnapshot({ lastUpdateId: 499, bids: [], asks: [] })).toEqual({ stale: true });
    expect(s.synced).toBe(false);
    expect(s.onSnapshot({ lastUpdateId: 502, bids: [], asks: [] }).stale).toBe(false);
  });

  it('keeps the events after a gap inside the buffer for the next snapshot', () => {
    const s = new DepthSync();
    s.onEvent(ev(10, 12, [[1, 1]]));
    s.onEvent(ev(15, 16, [[2, 2]])); // 13-14 were lost before the book was ever synced
    s.onEvent(ev(17, 18, [[3, 3]]));
    expect(s.onSnapshot({ lastUpdateId: 11, bids: [], asks: [] })).toEqual({ stale: true });
    // the next snapshot straddles the 17-18 event: it is still buffered and applies
    const r = s.onSnapshot({ lastUpdateId: 17, bids: [[9, 9]], asks: [] });
    expect(r.stale).toBe(false);
    if (r.stale) return;
    expect(r.out.map((o) => o.kind)).toEqual(['reset', 'update']);
    expect(r.out[1]!.bids).toEqual([[3, 3]]);
    expect(s.onEvent(ev(19, 19)).gap).toBeUndefined();
  });

  it('leaves out the levels beyond a snapshot cut at its limit, on that side only', () => {
    const s = new DepthSync(3);
    s.onEvent(ev(1, 1));
    const r = s.onSnapshot({
      lastUpdateId: 1,
      bids: [
        [10, 1],
        [9, 1],
        [8, 1],
      ],
      asks: [
        [11, 1],
        [12, 1],
      ],
    });
    expect(r.stale).toBe(false);
    // bids: 3 levels = the limit, known down to 8; asks: 2 < 3 levels, the whole side
    expect(
      s.onEvent(
        ev(
          2,
          2,
          [
            [7.5, 1],
            [8, 2],
            [9.5, 1],
          ],
          [[50, 1]],
        ),
      ).out,
    ).toMatchObject({
      bids: [
        [8, 2],
        [9.5, 1],
      ],
      asks: [[50, 1]],
    });
    expect(s.onEvent(ev(3, 3, [[7, 1]])).out).toBeUndefined(); // nothing inside the known range
    expect(s.onEvent(ev(4, 4, [], [[13, 0]])).out).toMatchObject({ bids: [], asks: [[13, 0]] });
  });

  it('asks for a new snapshot when a side cut at the limit has lost half of the levels it knows', () => {
    const s = new DepthSync(4);
    s.onEvent(ev(1, 1));
    s.onSnapshot({
      lastUpdateId: 1,
      bids: [
        [10, 1],
        [9, 1],
        [8, 1],
        [7, 1],
      ],
      asks: [[11, 1]],
    });
    // the price falls: better bids go, new ones beyond 7 are unknown levels and left out
    expect(
      s.onEvent(
        ev(2, 2, [
          [10, 0],
          [6, 1],
        ]),
      ).fetch,
    ).toBe(false); // 3 of 4 known
    const r = s.onEvent(
      ev(3, 3, [
        [9, 0],
        [8, 0],
      ]),
    ); // 1 of 4, fewer than half: the book would soon show only a part of the side
    expect(r.out).toMatchObject({
      kind: 'update',
      bids: [
        [9, 0],
        [8, 0],
      ],
    }); // this event still applies
    expect(r.fetch).toBe(true);
    expect(r.refresh).toMatch(/bids known to 1 of 4/);
    expect(s.synced).toBe(false); // later events buffer for the new snapshot
    expect(s.onEvent(ev(4, 4, [[5, 1]])).out).toBeUndefined();
    s.onEvent(ev(5, 5, [[6, 2]]));
    const again = s.onSnapshot({
      lastUpdateId: 4,
      bids: [
        [7, 1],
        [6, 1],
        [5.5, 1],
        [5, 1],
      ],
      asks: [[11, 1]],
    });
    expect(again.stale).toBe(false);
    if (again.stale) return;
    expect(again.out.map((o) => o.kind)).toEqual(['reset', 'update']);
    expect(again.out[1]!.bids).toEqual([[6, 2]]);
    // a side the snapshot gave whole (fewer levels than the limit) never asks
    expect(s.onEvent(ev(6, 6, [], [[11, 0]])).fetch).toBe(false);
  });

  it('holds a bounded buffer while no snapshot comes (a 418 ban can last for hours): the newest events', () => {
    const s = new DepthSync();
    for (let i = 1; i <= MAX_BUFFERED_EVENTS + 5000; i++) s.onEvent(ev(i, i, [[i, 1]]));
    expect(s.buffered).toBe(MAX_BUFFERED_EVENTS);
    // a snapshot older than what is held is stale; a newer one applies the events after it
    expect(s.onSnapshot({ lastUpdateId: 4000, bids: [], asks: [] }).stale).toBe(true);
    const r = s.onSnapshot({ lastUpdateId: MAX_BUFFERED_EVENTS + 4999, bids: [], asks: [] });
    expect(r.stale).toBe(false);
    if (r.stale) return;
    expect(r.out.map((o) => o.kind)).toEqual(['reset', 'update']);
    expect(r.out[1]!.bids).toEqual([[MAX_BUFFERED_EVENTS + 5000, 1]]);
  });

  it("stamps the snapshot's reset with the time of the event its lastUpdateId falls in, not the first buffered one", () => {
    const s = new DepthSync();
    s.onEvent({ ...ev(10, 12), E: 1000 });
    s.onEvent({ ...ev(13, 15), E: 61_000 }); // a minute later: the snapshot waited out a Retry-After
    s.onEvent({ ...ev(16, 18), E: 61_100 });
    const r = s.onSnapshot({ lastUpdateId: 14, bids: [[9, 9]], asks: [] });
    expect(r.stale).toBe(false);
    if (r.stale) return;
    expect(r.out[0]).toMatchObject({ kind: 'reset', E: 61_000 });
    expect(r.out.slice(1).map((o) => o.E)).toEqual([61_000, 61_100]);
  });

  it('backs off while snapshots keep failing: the base wait, doubling, at most 30 s', () => {
    expect([1, 2, 3, 4].map((n) => snapshotRetryMs(n, 250))).toEqual([250, 500, 1000, 2000]);
    expect(snapshotRetryMs(12, 250)).toBe(MAX_SNAPSHOT_RETRY_MS);
    expect(snapshotRetryMs(1000, 250)).toBe(MAX_SNAPSHOT_RETRY_MS);
    expect(snapshotRetryMs(3, 60_000)).toBe(60_000); // a base above the cap is kept as it is
  });

  it('reads the Retry-After of a 429 or 418 (seconds), 60 s when it is missing or unreadable', () => {
    expect(rateLimitWaitMs(429, '3')).toBe(3000);
    expect(rateLimitWaitMs(418, '120')).toBe(120_000);
    expect(rateLimitWaitMs(429, null)).toBe(60_000);
    expect(rateLimitWaitMs(429, 'soon')).toBe(60_000);
    expect(rateLimitWaitMs(500, '3')).toBeUndefined();
    expect(rateLimitWaitMs(200, null)).toBeUndefined();
  });
});
