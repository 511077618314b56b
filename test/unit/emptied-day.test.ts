import { afterEach, describe, expect, it } from 'vitest';
import { closePublishers, ns, publisherRig, T0, trade } from '../helpers/publisher-rig.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { tickToPayload } from '../../src/fanout/payloads.js';
import type { StoredBar } from '../../src/history/bar-store.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';

/**
 * docs/protocol.md, "Trade corrections and cancels": when a cancel (or a correction into a print
 * that counts in nothing) leaves a day or a bar with no trade that sets a price, the ticker and
 * the bar say so (`empty: true`) instead of showing the cancelled trade's price; and a correction
 * that turns an `excluded` print into a counting trade adds it as a new trade would be.
 */

afterEach(closePublishers);

function rig() {
  const lastValues = new MemoryLastValueStore();
  const stored: StoredBar[] = [];
  const r = publisherRig({ lastValues, bars: { put: (_ch, bar) => stored.push(bar as StoredBar) } });
  return { ...r, lastValues, stored };
}

describe('a day or bar left with no trade that sets a price', () => {
  it("cancelling the day's only trade publishes an empty ticker (no last price, volume 0) and empty bars", async () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:1', ts: ns(T0 + 5_000) });
    const ticker = r.lastTicker()!;
    expect(ticker).toMatchObject({ v: 0, empty: true });
    // no previous close known: no price to show
    expect(ticker).toMatchObject({ p: 0, o: 0, h: 0, l: 0, chg: 0, chgp: 0 });
    expect(tickToPayload(ticker)).toMatchObject({ v: 0, empty: true });
    for (const iv of ['1s', '1m', '5m', '1h', '1d'] as const) {
      expect(r.lastBar(iv), iv).toMatchObject({ v: 0, n: 0, empty: true, closed: false });
    }
    expect(tickToPayload(r.lastBar('1m')!)).toMatchObject({ n: 0, empty: true });
    // the snapshot a new subscriber gets is the empty ticker, not the cancelled price
    const [lv] = await r.lastValues.getMany(['ticker:AAPL']);
    expect(decodeTick(lv!)).toMatchObject({ k: 'ticker', empty: true, v: 0 });
    // quotes still update the day's ticker
    r.pub.publish('alpaca', { k: 'quote', sym: 'AAPL', bp: 99, ap: 101, ts: ns(T0 + 6_000) });
    expect(r.lastTicker()).toMatchObject({ bp: 99, ap: 101, empty: true });
    // the next trade sets the day again, as the day's first trade
    r.pub.publish('alpaca', trade(T0 + 7_000, 104, 3, 'V:2'));
    const next = r.lastTicker()!;
    expect(next).toMatchObject({ p: 104, o: 104, h: 104, l: 104, v: 3, chg: 0 });
    expect(next).not.toHaveProperty('empty');
    expect(r.lastBar('1m')).toMatchObject({ o: 104, h: 104, l: 104, c: 104, v: 3, n: 1 });
    expect(r.lastBar('1m')).not.toHaveProperty('empty');
    r.pub.sweepBars(); // open bar.1d states go out at most every 250 ms: the held one now
    expect(r.lastBar('1d')).toMatchObject({ o: 104, c: 104, v: 3, n: 1 });
    expect(r.lastBar('1d')).not.toHaveProperty('empty');
  });

  it('with a previous close, the emptied day shows it as the price with no change; the day keeps pc', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 - 86_400_000, 90, 5, 'V:0')); // the day before
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    expect(r.lastTicker()).toMatchObject({ p: 100, pc: 90 });
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:1', id: 'V:1b', p: 100, s: 10, volumeOnly: true, excluded: true, ts: ns(T0 + 5_000) });
    expect(r.lastTicker()).toMatchObject({ p: 90, o: 90, h: 90, l: 90, chg: 0, chgp: 0, pc: 90, v: 0, empty: true });
  });

  it('an emptied closed bar is published again corrected and empty, and stored so', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', trade(T0 + 61_000, 101, 1, 'V:2')); // closes minute T0
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:1', ts: ns(T0 + 62_000) });
    const bar = r
      .of('bar')
      .filter((b) => b.iv === '1m' && b.t === T0)
      .at(-1);
    expect(bar).toMatchObject({ closed: true, corrected: true, n: 0, v: 0, empty: true });
    expect(r.stored.filter((b) => b.t === T0 && b.iv === 60_000).at(-1)).toMatchObject({ n: 0, v: 0, empty: true, corrected: true });
    // the day still has V:2: not empty
    expect(r.lastTicker()).toMatchObject({ p: 101, h: 101, l: 101, v: 1 });
    expect(r.lastTicker()).not.toHaveProperty('empty');
  });

  it('an empty day is taken up empty after a restart (the last-value store), and its next trade opens it', async () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:1', ts: ns(T0 + 5_000) });
    r.pub.close();
    const { pub: next, ticks } = publisherRig({ lastValues: r.lastValues });
    expect(await next.restore()).toBeGreaterThan(0);
    next.publish('alpaca', { k: 'quote', sym: 'AAPL', bp: 99, ap: 101, ts: ns(T0 + 6_000) });
    expect(ticks.filter((t) => t.k === 'ticker').at(-1)).toMatchObject({ empty: true, v: 0, bp: 99, ap: 101 });
    next.publish('alpaca', trade(T0 + 7_000, 104, 3, 'V:2'));
    const after = ticks.filter((t) => t.k === 'ticker').at(-1)!;
    expect(after).toMatchObject({ p: 104, o: 104, h: 104, l: 104, v: 3 });
    expect(after).not.toHaveProperty('empty');
  });

  it("a correction that makes a day's only trade set a price (volume-only to regular) sets the day", () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1', { volumeOnly: true }));
    expect(r.of('ticker')).toHaveLength(0);
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:1', id: 'V:2', p: 101, s: 10, volumeOnly: false, ts: ns(T0 + 5_000) });
    expect(r.lastTicker()).toMatchObject({ p: 101, o: 101, h: 101, l: 101, v: 10 });
    // the interval's bar opens too (test/unit/volume-only-corrected.test.ts)
    expect(r.lastBar('1m')).toMatchObject({ o: 101, c: 101, v: 10, n: 1 });
    // and after the day was emptied by a cancel
    r.pub.publish('alpaca', trade(T0 + 6_000, 100, 5, 'V:3', { volumeOnly: true }));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:2', ts: ns(T0 + 7_000) });
    expect(r.lastTicker()).toMatchObject({ empty: true, v: 5 });
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:3', id: 'V:4', p: 102, s: 5, volumeOnly: false, ts: ns(T0 + 8_000) });
    const t = r.lastTicker()!;
    expect(t).toMatchObject({ p: 102, o: 102, h: 102, l: 102, v: 5 });
    expect(t).not.toHaveProperty('empty');
  });

  it("an empty day's prices follow its previous close when a correction of the day before changes it", () => {
    const r = rig();
    const day = Date.UTC(2026, 10, 20, 5, 0, 0); // the start of AAPL's trading day of T0
    // the day before's last trade, a second before the day ends (still in the trade log)
    r.pub.publish('alpaca', trade(day - 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', trade(day + 1_000, 105, 3, 'V:2'));
    expect(r.lastTicker()).toMatchObject({ p: 105, pc: 100 });
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:2', ts: ns(day + 2_000) });
    expect(r.lastTicker()).toMatchObject({ empty: true, p: 100, o: 100, h: 100, l: 100, pc: 100, chg: 0 });
    // the day before's last trade corrected: its close, today's previous close, is 99
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:1', id: 'V:3', p: 99, s: 10, ts: ns(day + 3_000) });
    expect(
      r
        .of('bar')
        .filter((b) => b.iv === '1d' && b.t < day)
        .at(-1),
    ).toMatchObject({ c: 99, closed: true, corrected: true });
    // the empty day's ticker goes out again, its prices the new previous close (docs/protocol.md#ticker)
    expect(r.lastTicker()).toMatchObject({ empty: true, p: 99, o: 99, h: 99, l: 99, pc: 99, chg: 0, chgp: 0 });
  });

  it('a day with only volume-only trades left is empty, with their volume', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 130, 7, 'V:2', { volumeOnly: true }));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:1', ts: ns(T0 + 5_000) });
    expect(r.lastTicker()).toMatchObject({ v: 7, empty: true, p: 0 });
    expect(r.lastBar('1m')).toMatchObject({ v: 7, n: 1, empty: true });
  });
});

describe('a correction that turns a print counting in nothing into a regular trade', () => {
  it('adds it to volume, prices and bars as a new trade would be', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 105, 20, 'V:2', { volumeOnly: true, excluded: true }));
    expect(r.lastTicker()).toMatchObject({ p: 100, v: 10 });
    // corrected conditions of a regular sale: the Alpaca adapter says `volumeOnly: false` (a
    // correction that names no conditions leaves the print excluded: trade-eligibility.test.ts)
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:2', id: 'V:3', p: 106, s: 20, volumeOnly: false, ts: ns(T0 + 9_000) });
    expect(r.of('correction').at(-1)).toMatchObject({ ref: 'V:2', id: 'V:3', applied: true });
    expect(r.lastTicker()).toMatchObject({ p: 106, h: 106, l: 100, v: 30, o: 100 });
    expect(r.lastBar('1m')).toMatchObject({ t: T0, o: 100, h: 106, l: 100, c: 106, v: 30, n: 2 });
    r.pub.sweepBars(); // open bar.1d states go out at most every 250 ms: the held one now
    expect(r.lastBar('1d')).toMatchObject({ c: 106, v: 30, n: 2 });
    // it is a trade of the log now: it can be cancelled like one
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:3', ts: ns(T0 + 10_000) });
    expect(r.of('cancel').at(-1)).toMatchObject({ applied: true });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 100, v: 10 });
  });

  it('a trade corrected into one that counts in nothing, and corrected again into a regular trade, counts again', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 105, 20, 'V:2'));
    // corrected into a print that counts in nothing: taken out as a cancel would be
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:2', id: 'V:3', p: 105, s: 20, volumeOnly: true, excluded: true, ts: ns(T0 + 5_000) });
    expect(r.of('correction').at(-1)).toMatchObject({ ref: 'V:2', id: 'V:3', applied: true });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 100, v: 10 });
    // it is an excluded print now: a correction that makes it count adds it again (docs/protocol.md#trade)
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:3', id: 'V:4', p: 106, s: 20, volumeOnly: false, ts: ns(T0 + 9_000) });
    expect(r.of('correction').at(-1)).toMatchObject({ ref: 'V:3', id: 'V:4', applied: true });
    expect(r.lastTicker()).toMatchObject({ p: 106, h: 106, l: 100, v: 30 });
    expect(r.lastBar('1m')).toMatchObject({ t: T0, o: 100, h: 106, c: 106, v: 30, n: 2 });
  });

  it('corrected into a volume-only condition it counts in volume only; a cancel of an excluded print changes nothing', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 105, 20, 'V:2', { volumeOnly: true, excluded: true }));
    r.pub.publish('alpaca', trade(T0 + 2_500, 107, 5, 'V:4', { volumeOnly: true, excluded: true }));
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:2', id: 'V:3', p: 106, s: 20, volumeOnly: true, ts: ns(T0 + 9_000) });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 100, v: 30 });
    expect(r.lastBar('1m')).toMatchObject({ c: 100, h: 100, v: 30, n: 2 });
    const n = r.of('ticker').length;
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:4', ts: ns(T0 + 10_000) });
    expect(r.of('cancel').at(-1)).toMatchObject({ ref: 'V:4', applied: false });
    expect(r.of('ticker')).toHaveLength(n);
  });
});
