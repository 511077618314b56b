import { afterEach, describe, expect, it } from 'vitest';
import { closePublishers, ns, publisherRig, T0, trade } from '../helpers/publisher-rig.js';

/**
 * A bar's volume and trade count hold every trade of its interval that counts in volume, whatever
 * the order in which they came: the providers filter trades per field and then sum (Alpaca Learn,
 * "Stock Minute Bars": trades are bucketed by time, "filtered by 'trade condition'" per field, and
 * "Volume includes almost all trades"; Polygon/Massive Knowledge Base, "How does Polygon create
 * the OHLCV aggregate bars?": condition 2 `updates_volume: true` but no high/low or open/close).
 * A trade that sets no price (an odd lot, `volumeOnly`) still opens no bar alone (Massive,
 * WebSocket Stocks > Aggregates (Per Minute): "if no eligible trades occur within a given minute,
 * no bar is emitted"), but once a trade of its interval sets a price, its size is in the bar.
 * Before, a volume-only trade that came before the interval's first priced trade was dropped from
 * the bar's `v` and `n` (and a late print before the day's first priced trade from `bar.1d`'s
 * high and low), while the ticker's day volume and a bar rebuilt after a correction held it.
 */
const VO = { volumeOnly: true } as const;
const LATE = { volumeOnly: true, highLowOnly: true } as const;

afterEach(closePublishers);

describe('volume-only trades before the first priced trade of an interval', () => {
  it('count in the bar that trade opens (1m, 1h, 1d), as in the ticker', () => {
    const r = publisherRig({ sweep: true });
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 40, 'V:1', VO)); // an odd lot
    r.pub.publish('alpaca', trade(T0 + 2_000, 99, 7, 'V:2', VO));
    expect(r.bars('1m')).toHaveLength(0); // no bar from volume-only trades alone
    r.pub.publish('alpaca', trade(T0 + 3_000, 101, 100, 'V:3'));
    for (const iv of ['1m', '1h', '1d'] as const) {
      expect(r.lastBar(iv), iv).toMatchObject({ o: 101, h: 101, l: 101, c: 101, v: 147, n: 3, closed: false });
      expect(r.lastBar(iv), iv).not.toHaveProperty('empty');
    }
    expect(r.lastTicker()).toMatchObject({ p: 101, v: 147 });
  });

  it('a volume-only interval that gets no priced trade has no bar, and its volume does not move into the next', () => {
    const r = publisherRig({ sweep: true });
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 40, 'V:1', VO));
    r.pub.publish('alpaca', trade(T0 + 61_000, 102, 100, 'V:2'));
    expect(r.bars('1m').map((b) => b.t)).toEqual([T0 + 60_000]);
    expect(r.lastBar('1m')).toMatchObject({ o: 102, v: 100, n: 1 });
    expect(r.lastBar('1d')).toMatchObject({ o: 102, v: 140, n: 2 }); // same day: the odd lot counts
  });

  it('a cancel of such a trade before the priced one leaves it out', () => {
    const r = publisherRig({ sweep: true });
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 40, 'V:1', VO));
    r.pub.publish('alpaca', trade(T0 + 2_000, 100, 5, 'V:2', VO));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:1', ts: ns(T0 + 2_500) });
    r.pub.publish('alpaca', trade(T0 + 3_000, 101, 100, 'V:3'));
    expect(r.lastBar('1m')).toMatchObject({ v: 105, n: 2 });
    expect(r.lastBar('1d')).toMatchObject({ v: 105, n: 2 });
  });

  it("a late print before the day's first priced trade joins bar.1d's high and low, not the minute's", () => {
    const r = publisherRig({ sweep: true });
    r.pub.publish('alpaca', trade(T0 + 1_000, 110, 10, 'V:1', LATE)); // sold out of sequence
    r.pub.publish('alpaca', trade(T0 + 2_000, 101, 100, 'V:2'));
    expect(r.lastBar('1d')).toMatchObject({ o: 101, h: 110, l: 101, c: 101, v: 110, n: 2 });
    expect(r.lastBar('1m')).toMatchObject({ o: 101, h: 101, l: 101, c: 101, v: 110, n: 2 });
    expect(r.lastTicker()).toMatchObject({ p: 101, h: 110, l: 101 });
  });

  it('a late priced trade of an ended interval whose trades were all volume-only opens its bar with them', () => {
    const r = publisherRig({ sweep: true });
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 40, 'V:1', VO));
    r.pub.publish('alpaca', trade(T0 + 2_000, 100, 6, 'V:2', VO));
    r.pub.publish('alpaca', trade(T0 + 61_000, 102, 100, 'V:3')); // the next minute
    // reported late (Alpaca: up to 10 s; "Alpaca Market Data Update: Bars"), a regular sale of the first minute
    r.pub.publish('alpaca', trade(T0 + 30_000, 101, 10, 'V:4'));
    expect(r.bars('1m').at(-1)).toMatchObject({ t: T0, o: 101, h: 101, l: 101, c: 101, v: 56, n: 3, closed: true });
    expect(r.bars('1m').at(-1)).not.toHaveProperty('corrected'); // its first publication
    // the open bar of the next minute is untouched
    r.pub.publish('alpaca', trade(T0 + 62_000, 103, 1, 'V:5'));
    expect(r.lastBar('1m')).toMatchObject({ t: T0 + 60_000, o: 102, c: 103, v: 101, n: 2, closed: false });
  });

  it('every minute bar holds the size and count of all its trades, in any mix (seeded sequence)', () => {
    const r = publisherRig({ sweep: true });
    let seed = 7;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const want = new Map<number, { v: number; n: number; priced: boolean }>();
    for (let i = 0; i < 300; i++) {
      const ms = T0 + i * 1_000 + Math.floor(rnd() * 900);
      const volumeOnly = rnd() < 0.6; // odd lots are common
      const s = 1 + Math.floor(rnd() * 99);
      r.pub.publish('alpaca', trade(ms, 100 + Math.floor(rnd() * 10), s, `V:${i}`, volumeOnly ? VO : {}));
      const m = Math.floor(ms / 60_000) * 60_000;
      const w = want.get(m) ?? { v: 0, n: 0, priced: false };
      want.set(m, { v: w.v + s, n: w.n + 1, priced: w.priced || !volumeOnly });
    }
    const last = new Map(r.bars('1m').map((b) => [b.t, b]));
    for (const [m, w] of want) {
      if (!w.priced) expect(last.has(m), `minute ${m}`).toBe(false);
      else expect(last.get(m), `minute ${m}`).toMatchObject({ v: w.v, n: w.n });
    }
  });
});
