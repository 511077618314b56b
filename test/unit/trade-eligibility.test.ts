import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { tickToPayload } from '../../src/fanout/payloads.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import type { TickInput } from '../../feeds/sdk/adapter.js';

/**
 * Trades whose sale conditions say they set no price (odd lots, average-price trades: see
 * docs/feeds.md, "Trade conditions") come from the adapters flagged `volumeOnly`. They are
 * published on the trade channel like any trade, count in volume, and never move the last price,
 * the day's open/high/low or a bar's open/high/low/close.
 */
const T0 = Date.UTC(2026, 10, 20, 14, 30, 0);
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const trade = (ms: number, p: number, s: number, id: string, volumeOnly = false): TickInput => ({
  k: 'trade',
  sym: 'AAPL',
  id,
  p,
  s,
  ...(volumeOnly ? { volumeOnly: true as const } : {}),
  ts: ns(ms),
});

function rig() {
  const bus = new MemoryBus();
  const ticks: Tick[] = [];
  bus.subscribe('md.>', (_s, payload) => ticks.push(decodeTick(payload)));
  const pub = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
  const of = <K extends Tick['k']>(k: K) => ticks.filter((t): t is Extract<Tick, { k: K }> => t.k === k);
  const lastBar = (iv: '1s' | '1m') =>
    of('bar')
      .filter((b) => b.iv === iv)
      .at(-1);
  return { ticks, pub, of, lastBar, lastTicker: () => of('ticker').at(-1) };
}

describe('trades that set no price (volumeOnly)', () => {
  it('count in volume but leave the last price, day high/low and the bar prices alone', () => {
    const r = rig();
    r.pub.publish('polygon', trade(T0 + 1_000, 100, 100, '4:1'));
    r.pub.publish('polygon', trade(T0 + 2_000, 130, 7, '4:2', true)); // odd lot far above the market
    r.pub.publish('polygon', trade(T0 + 3_000, 80, 50, '4:3', true)); // average-price trade far below
    expect(r.lastTicker()).toMatchObject({ p: 100, o: 100, h: 100, l: 100, v: 157 });
    expect(r.lastBar('1m')).toMatchObject({ t: T0, o: 100, h: 100, l: 100, c: 100, v: 157, n: 3, closed: false });
    // the trade channel carries them, flagged, so a client building its own candles can tell
    const flagged = r.of('trade').filter((t) => t.volumeOnly);
    expect(flagged.map((t) => t.id)).toEqual(['4:2', '4:3']);
    expect(tickToPayload(flagged[0]!)).toMatchObject({ id: '4:2', p: 130, s: 7, volumeOnly: true });
    expect(tickToPayload(r.of('trade')[0]!)).not.toHaveProperty('volumeOnly');
  });

  it('before the first priced trade of the day they publish no ticker and open no bar, and their volume is kept for the day', () => {
    const r = rig();
    r.pub.publish('polygon', trade(T0 + 1_000, 130, 7, '4:1', true));
    expect(r.of('ticker')).toHaveLength(0);
    expect(r.of('bar')).toHaveLength(0);
    r.pub.publish('polygon', trade(T0 + 1_500, 130, 3, '4:9', true));
    r.pub.publish('polygon', { k: 'cancel', sym: 'AAPL', ref: '4:9', ts: ns(T0 + 1_600) }); // before any priced trade
    expect(r.of('ticker')).toHaveLength(0);
    r.pub.publish('polygon', trade(T0 + 2_000, 100, 100, '4:2'));
    expect(r.lastTicker()).toMatchObject({ p: 100, o: 100, h: 100, l: 100, v: 107 });
    // the bar the priced trade opens holds the earlier volume-only trade too (the cancelled one
    // not), as the providers' bars do (test/unit/volume-only-first.test.ts); before, v 100, n 1
    expect(r.lastBar('1m')).toMatchObject({ o: 100, h: 100, l: 100, c: 100, v: 107, n: 2 });
  });

  it('a cancel or correction rebuilds bars and the day high/low from priced trades only', () => {
    const r = rig();
    r.pub.publish('polygon', trade(T0 + 1_000, 100, 10, 'a'));
    r.pub.publish('polygon', trade(T0 + 2_000, 105, 10, 'b'));
    r.pub.publish('polygon', trade(T0 + 3_000, 150, 5, 'c', true));
    r.pub.publish('polygon', { k: 'cancel', sym: 'AAPL', ref: 'b', ts: ns(T0 + 4_000) });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 100, l: 100, v: 15 });
    expect(r.lastBar('1m')).toMatchObject({ o: 100, h: 100, l: 100, c: 100, v: 15, n: 2 });
    // a correction of the volume-only trade keeps it volume-only
    r.pub.publish('polygon', { k: 'correction', sym: 'AAPL', ref: 'c', id: 'c2', p: 160, s: 6, ts: ns(T0 + 5_000) });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 100, l: 100, v: 16 });
    expect(r.lastBar('1m')).toMatchObject({ o: 100, h: 100, l: 100, c: 100, v: 16, n: 2 });
  });
});

describe('prints that count in nothing (excluded: official open/close re-reports)', () => {
  it('are delivered flagged, and change no ticker volume, bar volume or trade count', () => {
    const r = rig();
    r.pub.publish('polygon', trade(T0 + 1_000, 100, 100, '4:1'));
    const before = r.of('ticker').length;
    // the official close re-reports the closing auction's 5,000 shares, already counted
    const print = (ms: number, p: number, s: number, id: string): Extract<TickInput, { k: 'trade' }> => ({ k: 'trade', sym: 'AAPL', id, p, s, ts: ns(ms) });
    r.pub.publish('polygon', { ...print(T0 + 2_000, 101, 5_000, '4:2'), volumeOnly: true, excluded: true });
    r.pub.publish('alpaca', { ...print(T0 + 2_500, 102, 4_000, 'V:3'), excluded: true }); // the flag alone implies volumeOnly
    expect(r.of('ticker')).toHaveLength(before);
    expect(r.lastTicker()).toMatchObject({ p: 100, v: 100 });
    expect(r.lastBar('1m')).toMatchObject({ v: 100, n: 1, c: 100 });
    const [a, b] = r.of('trade').slice(1);
    expect(tickToPayload(a!)).toMatchObject({ id: '4:2', s: 5_000, volumeOnly: true, excluded: true });
    expect(tickToPayload(b!)).toMatchObject({ id: 'V:3', volumeOnly: true, excluded: true });
    r.pub.publish('polygon', trade(T0 + 3_000, 99, 10, '4:4'));
    expect(r.lastTicker()).toMatchObject({ p: 99, v: 110 });
    expect(r.lastBar('1m')).toMatchObject({ v: 110, n: 2 });
  });

  // docs/protocol.md#trade-corrections-and-cancels-extension: a correction's `volumeOnly` is absent
  // when the provider did not say what the corrected trade counts in (Alpaca: no `cc`, which its
  // own SDK treats as optional). Such a correction fixes price and size and keeps the trade's
  // flags, whatever they were: an excluded print stays excluded. Before, it was added to the
  // volume, the bars and the last price as if its corrected conditions were a regular sale.
  it('a correction that names no conditions keeps an excluded print excluded; one that names them decides', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 100, 'V:1'));
    r.pub.publish('alpaca', { k: 'trade', sym: 'AAPL', id: 'V:2', p: 150, s: 5_000, excluded: true, ts: ns(T0 + 2_000) });
    const tickers = r.of('ticker').length;
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:2', id: 'V:3', p: 151, s: 4_000, ts: ns(T0 + 5_000) });
    expect(tickToPayload(r.of('correction').at(-1)!)).toMatchObject({ ref: 'V:2', id: 'V:3', applied: false });
    expect(r.of('ticker')).toHaveLength(tickers);
    expect(r.lastTicker()).toMatchObject({ p: 100, v: 100, h: 100 });
    expect(r.lastBar('1m')).toMatchObject({ v: 100, n: 1, h: 100, c: 100 });
    // still excluded in the log: a later correction that names regular conditions makes it count, once
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:3', id: 'V:4', p: 101, s: 50, volumeOnly: false, ts: ns(T0 + 6_000) });
    expect(tickToPayload(r.of('correction').at(-1)!)).toMatchObject({ ref: 'V:3', id: 'V:4', applied: true });
    expect(r.lastTicker()).toMatchObject({ p: 101, v: 150, h: 101 });
    expect(r.lastBar('1m')).toMatchObject({ v: 150, n: 2, h: 101, c: 101 });
  });
});
