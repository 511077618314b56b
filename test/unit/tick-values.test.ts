import { afterEach, describe, expect, it } from 'vitest';
import { closePublishers, ns, publisherRig, T0 } from '../helpers/publisher-rig.js';
import type { TickInput } from '../../feeds/sdk/adapter.js';

/**
 * The publisher is where every adapter's ticks enter the engine, the project's own and a feed
 * operator's alike: a tick whose numbers no provider documents (a negative size, a price that is
 * not a positive finite number, a bar whose high is below its low) is refused there, counted, and
 * reported to the feed's health, instead of reaching clients and the derived ticker and bars.
 */

afterEach(closePublishers);

function rig() {
  const r = publisherRig();
  const problems: string[] = [];
  const publish = (t: TickInput) => r.pub.publish('feed-a', t, (detail) => problems.push(detail));
  return { ...r, publish, problems, tickers: () => r.of('ticker') };
}

describe('ticks with values no provider documents', () => {
  it('refuses a trade with a negative size: the day volume is not reduced', () => {
    const r = rig();
    expect(r.publish({ k: 'trade', sym: 'AAPL', id: '1', p: 230, s: 100, ts: ns(T0) })).toBe(true);
    expect(r.publish({ k: 'trade', sym: 'AAPL', id: '2', p: 231, s: -60, ts: ns(T0 + 1000) })).toBe(false);
    expect(r.ticks.filter((t) => t.k === 'trade')).toHaveLength(1);
    expect(r.tickers().at(-1)).toMatchObject({ p: 230, v: 100 });
    expect(r.pub.stats.rejectedBadValue).toBe(1);
    expect(r.problems).toEqual([expect.stringMatching(/tick refused: trade "AAPL" trade s -60 must be a non-negative number/)]);
  });

  it('refuses a trade whose price is not a positive finite number, and a ts that is not bigint nanoseconds', () => {
    const r = rig();
    for (const p of [Number.NaN, 0, -1, Number.POSITIVE_INFINITY]) expect(r.publish({ k: 'trade', sym: 'AAPL', id: `p${p}`, p, s: 1, ts: ns(T0) })).toBe(false);
    expect(r.publish({ k: 'trade', sym: 'AAPL', id: 'n', p: 1, s: 1, ts: T0 as unknown as bigint })).toBe(false);
    expect(r.ticks).toHaveLength(0);
    expect(r.pub.stats.rejectedBadValue).toBe(5);
    expect(r.problems.at(-1)).toMatch(/ts must be bigint nanoseconds/);
  });

  it('refuses a quote with a negative size or a bad price; an absent side is still fine', () => {
    const r = rig();
    expect(r.publish({ k: 'quote', sym: 'BTC-USD', bp: 100, bs: -1, ap: 101, as: 1, ts: ns(T0) })).toBe(false);
    expect(r.publish({ k: 'quote', sym: 'BTC-USD', bp: 100, bs: 1, ap: Number.NaN, ts: ns(T0) })).toBe(false);
    expect(r.publish({ k: 'quote', sym: 'BTC-USD', bp: 100, bs: 1, ts: ns(T0) })).toBe(true);
    expect(r.ticks.filter((t) => t.k === 'quote')).toEqual([expect.objectContaining({ bp: 100, bs: 1 })]);
    expect(r.pub.stats.rejectedBadValue).toBe(2);
  });

  it('refuses a provider bar whose high and low do not bound it, or with a negative volume', () => {
    const r = rig();
    const bar = { k: 'bar' as const, sym: 'AAPL', iv: '1m' as const, t: T0, o: 10, h: 12, l: 9, c: 11, v: 5, n: 2, closed: true, ts: ns(T0 + 60_000) };
    expect(r.publish({ ...bar, h: 8 })).toBe(false);
    expect(r.publish({ ...bar, v: -5 })).toBe(false);
    expect(r.pub.stats.rejectedBadValue).toBe(2);
    expect(r.ticks.filter((t) => t.k === 'bar')).toHaveLength(0);
  });

  it('refuses a correction with a negative size; the corrected trade stays as it was', () => {
    const r = rig();
    r.publish({ k: 'trade', sym: 'AAPL', id: '1', p: 230, s: 100, ts: ns(T0) });
    expect(r.publish({ k: 'correction', sym: 'AAPL', ref: '1', id: '1', p: 230, s: -100, ts: ns(T0) })).toBe(false);
    expect(r.ticks.filter((t) => t.k === 'correction')).toHaveLength(0);
    expect(r.tickers().at(-1)).toMatchObject({ p: 230, v: 100 });
  });
});
