import { afterEach, describe, expect, it } from 'vitest';
import { closePublishers, ns, publisherRig, T0, trade } from '../helpers/publisher-rig.js';
import { tickToPayload } from '../../src/fanout/payloads.js';

/**
 * docs/protocol.md#trade, `highLowOnly`: a late or prior-reference print (SIP `Z`, `P`, `4`, UTDF
 * `G`; Polygon 33, 22, 10, 5) counts in the volume and in the day's high and low (the ticker and
 * `bar.1d`), never in the last price, the open or a close, nor in an intraday bar's high and low
 * (Alpaca Market Data FAQ, "How are bars aggregated?": such a print updates a daily bar's high /
 * low, not a minute bar's, "because that price possibly happened in another minute"). Before,
 * these prints were `volumeOnly`, and the day's high and low left them out.
 */
const HL = { volumeOnly: true, highLowOnly: true } as const;

afterEach(closePublishers);

const rig = (tradeLog?: { retainMs: number }) => publisherRig({ sweep: true, ...(tradeLog ? { tradeLog } : {}) });

describe('prints that update the high and low, not the last price (highLowOnly)', () => {
  it("count in the volume and the day's high/low (ticker, bar.1d), not in the last price, open, close or a minute bar's range", () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'a'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 110, 5, 'z1', HL)); // sold out of sequence, above the market
    r.pub.publish('alpaca', trade(T0 + 3_000, 90, 5, 'z2', HL)); // prior reference price, below it
    expect(r.lastTicker()).toMatchObject({ p: 100, o: 100, h: 110, l: 90, v: 20 });
    expect(r.lastBar('1d')).toMatchObject({ o: 100, h: 110, l: 90, c: 100, v: 20, n: 3 });
    expect(r.lastBar('1m')).toMatchObject({ o: 100, h: 100, l: 100, c: 100, v: 20, n: 3 });
    expect(r.lastBar('1h')).toMatchObject({ o: 100, h: 100, l: 100, c: 100, v: 20, n: 3 });
    // on the wire: flagged, always with volumeOnly (a reader that knows only that takes no price)
    const flagged = r.of('trade').filter((t) => t.id === 'z1');
    expect(tickToPayload(flagged[0]!)).toMatchObject({ id: 'z1', p: 110, volumeOnly: true, highLowOnly: true });
    expect(tickToPayload(r.of('trade')[0]!)).not.toHaveProperty('highLowOnly');
  });

  it("before the day's first priced trade: no ticker; that trade's ticker takes the earlier print's high", () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 120, 5, 'z', HL));
    expect(r.of('ticker')).toHaveLength(0);
    expect(r.of('bar')).toHaveLength(0);
    r.pub.publish('alpaca', trade(T0 + 2_000, 100, 10, 'a'));
    expect(r.lastTicker()).toMatchObject({ p: 100, o: 100, h: 120, l: 100, v: 15 });
  });

  it('a cancel of the print that set the high takes it out of the day again (ticker and bar.1d)', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'a'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 110, 5, 'z', HL));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'z', ts: ns(T0 + 4_000) });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 100, l: 100, v: 10 });
    expect(r.lastBar('1d')).toMatchObject({ o: 100, h: 100, l: 100, c: 100, v: 10, n: 1 });
  });

  it('corrections carry the flag: into highLowOnly, out of it to volume only, and back to a regular sale', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'a'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 105, 10, 'b'));
    // b corrected into a late print: no longer the last price, still in the high
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'b', id: 'b2', p: 108, s: 10, ...HL, ts: ns(T0 + 3_000) });
    const c = r.of('correction')[0];
    expect(tickToPayload(c!)).toMatchObject({ ref: 'b', id: 'b2', volumeOnly: true, highLowOnly: true, applied: true });
    expect(r.lastTicker()).toMatchObject({ p: 100, o: 100, h: 108, l: 100, v: 20 });
    expect(r.lastBar('1d')).toMatchObject({ o: 100, h: 108, l: 100, c: 100, v: 20, n: 2 });
    expect(r.lastBar('1m')).toMatchObject({ o: 100, h: 100, l: 100, c: 100, v: 20, n: 2 });
    // corrected again, to a volume-only condition (an odd lot): out of the high
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'b2', id: 'b3', p: 108, s: 10, volumeOnly: true, ts: ns(T0 + 4_000) });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 100, l: 100, v: 20 });
    expect(r.lastBar('1d')).toMatchObject({ h: 100, l: 100, c: 100 });
    // and to a regular sale: the last price again
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'b3', id: 'b4', p: 107, s: 10, volumeOnly: false, ts: ns(T0 + 5_000) });
    expect(r.lastTicker()).toMatchObject({ p: 107, h: 107, l: 100, v: 20 });
  });

  it('a correction that does not say leaves the flag as it was', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'a'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 110, 5, 'z', HL));
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'z', id: 'z2', p: 112, s: 5, ts: ns(T0 + 3_000) });
    expect(r.lastTicker()).toMatchObject({ p: 100, h: 112, l: 100, v: 15 });
    expect(r.lastBar('1d')).toMatchObject({ h: 112, c: 100 });
  });

  it("cancelling the day's only priced trade empties the day, even with a highLowOnly print left", () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'a'));
    r.pub.publish('alpaca', trade(T0 + 2_000, 110, 5, 'z', HL));
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'a', ts: ns(T0 + 3_000) });
    expect(r.lastTicker()).toMatchObject({ empty: true, v: 5 });
    expect(r.lastBar('1d')).toMatchObject({ empty: true, v: 5 });
    // the next priced trade opens the day again, with the print's high
    r.pub.publish('alpaca', trade(T0 + 4_000, 101, 1, 'b'));
    expect(r.lastTicker()).toMatchObject({ p: 101, o: 101, h: 110, l: 101, v: 6 });
    expect(r.lastTicker()).not.toHaveProperty('empty');
  });

  it('a cancel when the trade log no longer holds the whole day amends the day from its minutes', () => {
    // the log keeps 1 minute: the day's first trades are pruned, so bar.1d is amended, not rebuilt
    const r = rig({ retainMs: 60_000 });
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'a'));
    r.pub.publish('alpaca', trade(T0 + 120_000, 99, 10, 'b'));
    r.pub.publish('alpaca', trade(T0 + 121_000, 115, 5, 'z', HL));
    r.pub.publish('alpaca', trade(T0 + 122_000, 101, 10, 'c'));
    expect(r.lastTicker()).toMatchObject({ p: 101, o: 100, h: 115, l: 99, v: 35 });
    expect(r.lastBar('1d')).toMatchObject({ o: 100, h: 115, l: 99, c: 101, v: 35, n: 4 });
    r.pub.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'z', ts: ns(T0 + 123_000) });
    expect(r.lastTicker()).toMatchObject({ p: 101, o: 100, h: 101, l: 99, v: 30 });
    expect(r.lastBar('1d')).toMatchObject({ o: 100, h: 101, l: 99, c: 101, v: 30, n: 3 });
  });
});
