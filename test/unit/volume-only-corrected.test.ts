import { afterEach, describe, expect, it } from 'vitest';
import { closePublishers, ns, publisherRig, T0, trade } from '../helpers/publisher-rig.js';

/**
 * docs/protocol.md, "Trade corrections and cancels": a trade that sets no price (`volumeOnly`)
 * opens no bar, so an interval whose only trades are volume-only has none. A correction that
 * turns one of them into a regular sale makes the interval priced: its bar opens (or, for an
 * interval that has ended, is published closed) as it would for a new trade, from the interval's
 * remaining trades (the volume-only ones count in its volume and count). Before, no bar opened.
 */
const VO = { volumeOnly: true } as const;

afterEach(closePublishers);

const rig = (tradeLog?: { retainMs: number }) => publisherRig({ sweep: true, ...(tradeLog ? { tradeLog } : {}) });

describe('a correction that makes a volume-only interval priced', () => {
  it('opens the interval bar from its trades, as a new trade would (1m, 1h, 1d)', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1', VO));
    r.pub.publish('alpaca', trade(T0 + 2_000, 99, 3, 'V:2', VO));
    expect(r.bars('1m')).toHaveLength(0);
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:1', id: 'V:1b', p: 101, s: 10, volumeOnly: false, ts: ns(T0 + 5_000) });
    for (const iv of ['1m', '1h', '1d'] as const) {
      expect(r.lastBar(iv), iv).toMatchObject({ o: 101, h: 101, l: 101, c: 101, v: 13, n: 2 });
      expect(r.lastBar(iv)).not.toHaveProperty('empty');
    }
    expect(r.lastBar('1m')).toMatchObject({ t: T0, closed: false });
    expect(r.lastBar('1d')).toMatchObject({ t: Date.UTC(2026, 10, 20, 5, 0, 0) }); // AAPL's day starts 00:00 New York
    // a later trade goes on in the same bar
    r.pub.publish('alpaca', trade(T0 + 6_000, 103, 2, 'V:3'));
    expect(r.lastBar('1m')).toMatchObject({ o: 101, h: 103, l: 101, c: 103, v: 15, n: 3, closed: false });
    expect(r.lastBar('1d')).toMatchObject({ o: 101, h: 103, l: 101, c: 103, v: 15, n: 3 });
  });

  it('an interval that has ended gets its closed bar', () => {
    const r = rig();
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1', VO));
    r.pub.publish('alpaca', trade(T0 + 61_000, 105, 1, 'V:2'));
    expect(r.bars('1m').map((b) => b.o)).toEqual([105]);
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:1', id: 'V:1b', p: 101, s: 10, volumeOnly: false, ts: ns(T0 + 62_000) });
    expect(r.bars('1m').at(-1)).toMatchObject({ t: T0, o: 101, h: 101, l: 101, c: 101, v: 10, n: 1, closed: true });
    expect(r.bars('1m').at(-1)).not.toHaveProperty('corrected'); // its first publication
    // the open bar of the next minute is untouched, and the day starts at the corrected trade
    r.pub.publish('alpaca', trade(T0 + 63_000, 106, 1, 'V:3'));
    expect(r.lastBar('1m')).toMatchObject({ o: 105, c: 106, v: 2, n: 2, closed: false });
    expect(r.lastBar('1d')).toMatchObject({ o: 101, h: 106, l: 101, c: 106, v: 12, n: 3 });
  });
  it('a bar longer than the trades held (the day) opens from the corrected trade, as a new trade would', () => {
    const r = rig({ retainMs: 60_000 });
    r.pub.publish('alpaca', trade(T0 - 3_600_000, 98, 7, 'V:0', VO)); // no longer held when the next comes
    r.pub.publish('alpaca', trade(T0 + 1_000, 100, 10, 'V:1', VO));
    r.pub.publish('alpaca', { k: 'correction', sym: 'AAPL', ref: 'V:1', id: 'V:1b', p: 101, s: 10, volumeOnly: false, ts: ns(T0 + 5_000) });
    expect(r.lastBar('1d')).toMatchObject({ o: 101, h: 101, l: 101, c: 101, v: 10, n: 1 });
    expect(r.lastBar('1m')).toMatchObject({ t: T0, o: 101, v: 10, n: 1, closed: false });
  });
});
