import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { BarBuilder } from '../../../src/derive/bar-builder.js';
import { PolygonFeed, PolygonOptionsSchema } from '../polygon-feed.js';
import { startPolygonFake } from '../fake-server.js';
import type { PolygonFakeServer } from '../fake-server.js';

const DOC_FRAMES = (JSON.parse(readFileSync(new URL('../fixtures/doc-examples.json', import.meta.url), 'utf8')) as { frames: Record<string, any>[][] }).frames;
const FRACTIONAL_FRAMES = (
  JSON.parse(readFileSync(new URL('../fixtures/fractional-trades.json', import.meta.url), 'utf8')) as { frames: Record<string, any>[][] }
).frames;
const API_KEY = 'poly-test-key';
const options = (url: string, extra: Record<string, unknown> = {}) =>
  PolygonOptionsSchema.parse({ url, symbols: ['AAPL', 'BRK.B'], backoff: { initialMs: 20, maxMs: 200 }, ...extra });
const creds = { key: API_KEY, keyEnv: 'POLYGON_API_KEY' };

runAdapterConformance({
  name: 'polygon',
  startProvider: () => startPolygonFake({ apiKey: API_KEY }),
  createAdapter: (p) => new PolygonFeed('polygon', options(p.url), creds),
  symbols: ['AAPL', 'BRK.B'],
  kinds: ['trade', 'quote', 'bar'],
});

/**
 * A T-channel feed whose fake Polygon runs `act` on the adapter once, just before it answers the
 * opening subscription: symbols added or removed while that subscription is unanswered.
 */
const startActingBeforeOpeningAnswer = (act: (adapter: PolygonFeed) => void): Promise<AdapterHarness<PolygonFakeServer>> => {
  let adapter: PolygonFeed | undefined;
  let acted = false;
  return startHarness(
    () =>
      startPolygonFake({
        apiKey: API_KEY,
        pumpMs: 60_000,
        replayFixtures: false,
        beforeAnswer: () => {
          if (acted) return;
          acted = true;
          act(adapter!);
        },
      }),
    (p) => (adapter = new PolygonFeed('polygon', options(p.url, { channels: ['T'] }), creds)),
  );
};

describe('polygon adapter', () => {
  let h: AdapterHarness<PolygonFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('authenticates, subscribes T./Q./AM. and normalizes the recorded events', async () => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: API_KEY, pumpMs: 60_000 }),
      (p) => new PolygonFeed('polygon', options(p.url), creds),
    );
    await h.waitFor('4 fixture ticks', () => h!.ticks.length >= 4);
    expect(h.provider.receivedJson()).toEqual([
      { action: 'auth', params: API_KEY },
      { action: 'subscribe', params: 'T.AAPL,Q.AAPL,AM.AAPL,T.BRK.B,Q.BRK.B,AM.BRK.B' },
    ]);
    expect(h.state).toBe('connected');
    // trade ids are unique per (ticker, exchange, TRF): the canonical id is exchange-qualified
    // conditions [12, 37]: an odd lot, which sets no price
    expect(h.ticks[0]).toEqual({
      k: 'trade',
      sym: 'AAPL',
      id: '4:52983525029461',
      p: 192.31,
      s: 100,
      venue: '4',
      volumeOnly: true,
      ts: 1718026201234000000n,
    });
    expect(h.ticks[1]).toEqual({ k: 'quote', sym: 'AAPL', bp: 192.3, bs: 2, ap: 192.32, as: 3, ts: 1718026201240000000n });
    expect(h.ticks[2]).toMatchObject({ k: 'trade', sym: 'BRK.B', p: 412.05, s: 5 });
    expect(h.ticks[3]).toEqual({
      k: 'bar',
      sym: 'AAPL',
      iv: '1m',
      t: 1718026140000,
      o: 192.3,
      h: 192.34,
      l: 192.28,
      c: 192.31,
      v: 5400,
      n: 0,
      closed: true,
      ts: 1718026200000000000n,
    });
  });

  it('reports a wrong key as auth_failed naming the env var', async () => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: API_KEY }),
      (p) => new PolygonFeed('polygon', options(p.url), { key: 'nope', keyEnv: 'POLYGON_API_KEY' }),
    );
    await h.waitFor('auth_failed', () => h!.state === 'auth_failed');
    expect(h.states.at(-1)!.detail).toMatch(/authentication failed.*POLYGON_API_KEY/);
    expect(h.ticks).toHaveLength(0);
  });

  const docTicks = async (extra: Record<string, unknown> = {}, frames = DOC_FRAMES) => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: API_KEY, pumpMs: 60_000, replayFixtures: false }),
      (p) => new PolygonFeed('polygon', options(p.url, { symbols: ['MSFT'], ...extra }), creds),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = [...h.provider.conns][0]!;
    for (const frame of frames) conn.send(frame);
    const n = frames.flat().length;
    await h.waitFor(`${n} ticks`, () => h!.ticks.length >= n);
    return h.ticks;
  };

  it('qualifies trade ids with exchange and TRF, so the same id on two venues stays two trades (docs examples and edge cases)', async () => {
    const ticks = await docTicks();
    expect(ticks).toEqual([
      { k: 'trade', sym: 'MSFT', id: '4:12345', p: 114.125, s: 100, venue: '4', ts: 1536036818784000000n },
      { k: 'quote', sym: 'MSFT', bp: 114.125, bs: 100, ap: 114.128, as: 160, ts: 1536036818784000000n },
      { k: 'trade', sym: 'MSFT', id: '11:12345', p: 114.1251, s: 1, venue: '11', ts: 1536036818785000000n },
      { k: 'trade', sym: 'MSFT', id: '4.201:12345', p: 114.12, s: 0.001, venue: '4', volumeOnly: true, ts: 1536036818786000000n },
      { k: 'trade', sym: 'MSFT', id: '4.202:12345', p: 114.123456, s: 2500000, venue: '4', ts: 1536036818787000000n },
      { k: 'quote', sym: 'MSFT', bp: 114.12, bs: 1, ap: 114.13, as: 987654321, ts: 1536036818788000000n },
    ]);
    const ids = ticks.filter((t) => t.k === 'trade').map((t) => (t.k === 'trade' ? t.id : ''));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('a quote with no bid or no ask (price 0 or absent) is published without that side, and the rest of its frame is kept', async () => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: API_KEY, pumpMs: 60_000, replayFixtures: false }),
      (p) => new PolygonFeed('polygon', options(p.url, { symbols: ['MSFT'] }), creds),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = [...h.provider.conns][0]!;
    // Stocks > Quotes Response Attributes (no field is marked required); events share one array
    conn.send([
      { ev: 'Q', sym: 'MSFT', bx: 0, bp: 0, bs: 0, ax: 11, ap: 114.13, as: 100, c: 0, t: 1536036818784, q: 1, z: 3 },
      { ev: 'Q', sym: 'MSFT', ax: 11, ap: 114.14, as: 200, c: 0, t: 1536036818785, q: 2, z: 3 },
      { ev: 'T', sym: 'MSFT', x: 4, i: '77', z: 3, p: 'bad', s: 100, c: [], t: 1536036818786, q: 3 },
      { ev: 'T', sym: 'MSFT', x: 4, i: '78', z: 3, p: 114.125, s: 100, c: [], t: 1536036818787, q: 4 },
      { ev: 'Q', sym: 'MSFT', bx: 4, bp: 114.12, bs: 300, ax: 0, ap: 0, as: 0, c: 0, t: 1536036818788, q: 5, z: 3 },
    ]);
    await h.waitFor('4 ticks', () => h!.ticks.length >= 4);
    expect(h.ticks).toEqual([
      { k: 'quote', sym: 'MSFT', ap: 114.13, as: 100, ts: 1536036818784000000n },
      { k: 'quote', sym: 'MSFT', ap: 114.14, as: 200, ts: 1536036818785000000n },
      { k: 'trade', sym: 'MSFT', id: '4:78', p: 114.125, s: 100, venue: '4', ts: 1536036818787000000n },
      { k: 'quote', sym: 'MSFT', bp: 114.12, bs: 300, ts: 1536036818788000000n },
    ]);
  });

  it('a minute bar sent again (recalculated after late trades) comes out with the start of the bar it replaces (the engine flags it corrected)', async () => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: API_KEY, pumpMs: 60_000, replayFixtures: false }),
      (p) => new PolygonFeed('polygon', options(p.url, { symbols: ['MSFT'] }), creds),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = [...h.provider.conns][0]!;
    // Knowledge Base, "Why am I receiving a late aggregate bar through Polygon's WebSockets?": a
    // minute bar is recalculated and sent out again when later trades arrive (up to 15 minutes)
    const bar = (s: number, c: number, v: number) => ({
      ev: 'AM',
      sym: 'MSFT',
      v,
      av: v,
      op: 100,
      vw: c,
      o: 100,
      c,
      h: 101,
      l: 99,
      a: c,
      z: 10,
      s,
      e: s + 60_000,
    });
    const t0 = 1718026200000;
    conn.send([bar(t0, 100.5, 1000), bar(t0 + 60_000, 100.6, 500), bar(t0, 100.4, 1200), bar(t0 + 120_000, 100.7, 300)]);
    await h.waitFor('4 bars', () => h!.ticks.length >= 4);
    // the engine publishes the third as a correction of the first (BarBuilder.onProviderBar:
    // test/unit/trade-events.test.ts, "a provider bar sent again for the same minute")
    expect(h.ticks.map((t) => (t.k === 'bar' ? [t.t, t.c, t.v, t.closed] : []))).toEqual([
      [t0, 100.5, 1000, true],
      [t0 + 60_000, 100.6, 500, true],
      [t0, 100.4, 1200, true],
      [t0 + 120_000, 100.7, 300, true],
    ]);
    // and published (as the engine's tick publisher hands provider bars to its bar builder) as a
    // correction of the first
    const builder = new BarBuilder('1m');
    expect(h.ticks.map((t) => (t.k === 'bar' ? builder.onProviderBar({ ...t, iv: '1m' }).corrected === true : undefined))).toEqual([false, false, true, false]);
  });

  it('flags trades whose sale conditions set no price (2 average price, 37 odd lot) as volumeOnly; Form T and others are not flagged', async () => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: API_KEY, pumpMs: 60_000, replayFixtures: false }),
      (p) => new PolygonFeed('polygon', options(p.url, { symbols: ['MSFT'] }), creds),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = [...h.provider.conns][0]!;
    const t = (i: string, c: number[] | undefined) => ({ ev: 'T', sym: 'MSFT', x: 4, i, z: 3, p: 114.125, s: 10, ...(c ? { c } : {}), t: 1536036818784, q: 1 });
    conn.send([t('1', [37]), t('2', [2]), t('3', [12, 37]), t('4', [12]), t('5', [14, 41]), t('6', []), t('7', undefined)]);
    await h.waitFor('7 ticks', () => h!.ticks.length >= 7);
    expect(h.ticks.map((x) => [(x as { id: string }).id, (x as { volumeOnly?: true }).volumeOnly ?? false])).toEqual([
      ['4:1', true],
      ['4:2', true],
      ['4:3', true],
      ['4:4', false],
      ['4:5', false],
      ['4:6', false],
      ['4:7', false],
    ]);
  });

  it('a symbol added or removed while the opening subscription is unanswered is subscribed or unsubscribed once it is answered', async () => {
    h = await startActingBeforeOpeningAnswer((a) => {
      void a.subscribe(['MSFT']);
      void a.unsubscribe(['BRK.B']);
    });
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = () => [...h!.provider.conns][0]!;
    await h.waitFor('MSFT subscribed and BRK.B unsubscribed', () => conn().state.subs.has('T.MSFT') && !conn().state.subs.has('T.BRK.B'));
    expect([...conn().state.subs].sort()).toEqual(['T.AAPL', 'T.MSFT']);
  });

  // Stocks WebSocket, "Unsubscribe": Polygon answers with a status once it has processed the
  // request; events sent before that are still on the wire. They are no longer the feed's (the
  // engine left the symbol), so they must not be published (as Binance's are dropped)
  it('drops the trades, quotes and aggregates of a symbol still in flight after its unsubscribe, keeps the other symbols, and publishes it again once re-subscribed', async () => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: API_KEY, pumpMs: 60_000, replayFixtures: false }),
      (p) => new PolygonFeed('polygon', options(p.url, { channels: ['T', 'Q', 'AM', 'LULD'] }), creds),
    );
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected');
    const t = Date.now();
    const s = Math.floor(t / 60_000) * 60_000 - 60_000;
    const frame = (sym: string, n: number): Record<string, any>[] => [
      { ev: 'T', sym, x: 4, i: String(n), z: 3, p: 100, s: 10, c: [], t },
      { ev: 'Q', sym, bx: 11, bp: 99.99, bs: 2, ax: 12, ap: 100.01, as: 3, t, z: 3 },
      { ev: 'AM', sym, v: 1000, o: 100, c: 100, h: 100.5, l: 99.5, s: s + n * 60_000, e: s + (n + 1) * 60_000 },
      { ev: 'LULD', T: sym, h: 105, l: 95, i: [], z: 3, t },
    ];
    const send = (f: Record<string, any>[]): void => [...hh.provider.conns][0]!.send(f);
    send([...frame('BRK.B', 1), ...frame('AAPL', 1)]);
    await hh.waitFor(
      'both symbols published',
      () => hh.ticks.filter((x) => x.sym === 'BRK.B').length === 4 && hh.ticks.filter((x) => x.sym === 'AAPL').length === 4,
    );
    await hh.adapter.unsubscribe(['BRK.B']);
    const after = hh.ticks.length;
    // sent by Polygon before it read the unsubscribe: the same frame with AAPL, which stays
    send([...frame('BRK.B', 2), ...frame('AAPL', 2)]);
    await hh.waitFor('AAPL of the frame published', () => hh.ticks.slice(after).filter((x) => x.sym === 'AAPL').length === 4);
    expect(hh.ticks.slice(after).filter((x) => x.sym === 'BRK.B')).toEqual([]);
    await hh.adapter.subscribe(['BRK.B']);
    await hh.waitFor('BRK.B subscribed again', () => [...hh.provider.conns][0]!.state.subs.has('T.BRK.B'));
    send(frame('BRK.B', 3));
    await hh.waitFor('BRK.B published again', () => hh.ticks.slice(after).filter((x) => x.sym === 'BRK.B').length === 4);
  });

  it('publishes a symbol unsubscribed and subscribed again while the opening subscription is unanswered', async () => {
    h = await startActingBeforeOpeningAnswer((a) => {
      void a.unsubscribe(['BRK.B']);
      void a.subscribe(['BRK.B']);
    });
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected');
    const t = Date.now();
    // wanted again before the opening answer came: the connection streams it as it did
    [...hh.provider.conns][0]!.send([{ ev: 'T', sym: 'BRK.B', x: 4, i: '1', z: 1, p: 400, s: 10, c: [], t }]);
    await hh.waitFor('the BRK.B trade', () => hh.ticks.some((x) => x.sym === 'BRK.B'));
  });

  it('drops the events of a symbol unsubscribed while the opening subscription is unanswered', async () => {
    h = await startActingBeforeOpeningAnswer((a) => {
      void a.unsubscribe(['BRK.B']);
    });
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected');
    const t = Date.now();
    [...hh.provider.conns][0]!.send([
      { ev: 'T', sym: 'BRK.B', x: 4, i: '1', z: 1, p: 400, s: 10, c: [], t },
      { ev: 'T', sym: 'AAPL', x: 4, i: '2', z: 3, p: 100, s: 10, c: [], t },
    ]);
    await hh.waitFor('the AAPL trade', () => hh.ticks.some((x) => x.sym === 'AAPL'));
    expect(hh.ticks.filter((x) => x.sym === 'BRK.B')).toEqual([]);
  });

  it('passes quote sizes through as shares by default and converts round lots to shares when configured', async () => {
    expect(PolygonOptionsSchema.parse({ symbols: ['MSFT'] }).quoteSizeUnit).toBe('shares');
    expect(() => PolygonOptionsSchema.parse({ symbols: ['MSFT'], quoteSizeUnit: 'lots' })).toThrow(/quoteSizeUnit/);
    const lots = (await docTicks({ quoteSizeUnit: 'round-lots' })).filter((t) => t.k === 'quote');
    // the docs example: bs 100 and as 160 round lots of 100 shares
    expect(lots).toEqual([
      { k: 'quote', sym: 'MSFT', bp: 114.125, bs: 10_000, ap: 114.128, as: 16_000, ts: 1536036818784000000n },
      { k: 'quote', sym: 'MSFT', bp: 114.12, bs: 100, ap: 114.13, as: 98_765_432_100, ts: 1536036818788000000n },
    ]);
  });

  it('takes a trade size from `ds` (fractional shares, a decimal string) when it is sent, else from `s`', async () => {
    // Massive WebSocket > Stocks > Trades, Response Attributes: `s` integer "The trade size", `ds`
    // string "The trade size including fractional shares": before, `s` alone was read, so a
    // fractional trade lost its fraction (0.253 shares published as 0, 12.5 as 12)
    const ticks = await docTicks({}, FRACTIONAL_FRAMES);
    expect(ticks.map((t) => (t.k === 'trade' ? [t.id, t.s] : []))).toEqual([
      ['4:12345', 100],
      ['4:12346', 0.253],
      ['4.201:12347', 12.5],
      ['11:12348', 7],
    ]);
  });
});
