import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { PriceBook } from '../../src/portfolio/price-book.js';

/**
 * docs/protocol.md#quote: a side the provider reports empty is published without that side, and
 * an empty book as a quote with neither side (Coinbase, when its synced book runs empty). Such a
 * quote has no mid: a position valued by the mid must not keep the last mid; it is valued by the
 * last trade price when there is one, else it has no price (`priced: false`).
 */
const DAY = 86_400_000;
const T0 = Date.now();
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const quote = (sides: { bp?: number; ap?: number }): Tick =>
  ({ k: 'quote', sym: 'BTC-USD', src: 'coinbase', seq: 1, ep: 1, ts: ns(T0), rt: ns(T0), ...sides }) as Tick;
const ticker = (p: number): Tick =>
  ({ k: 'ticker', sym: 'BTC-USD', src: 'coinbase', seq: 1, ep: 1, ts: ns(T0), rt: ns(T0), p, o: p, h: p, l: p, v: 1, chg: 0, chgp: 0 }) as Tick;
const book = () => new PriceBook(defaultRegistry(), (_sym, ms) => Math.floor(ms / DAY));

describe('portfolio prices after a quote loses a side', () => {
  it('a quote with neither side drops the mid: no price without a last trade', () => {
    const b = book();
    b.apply(quote({ bp: 99, ap: 101 }));
    expect(b.source.price('BTC-USD')?.p).toBe(100);
    expect(b.apply(quote({}))).toBe(true);
    expect(b.source.price('BTC-USD')).toBeUndefined();
    expect(b.has('BTC-USD', 'quote')).toBe(true); // a quote is held (the book is empty), not awaited
    b.apply(quote({ bp: 103, ap: 105 }));
    expect(b.source.price('BTC-USD')?.p).toBe(104);
  });

  it.each([[{ bp: 99 }], [{ ap: 101 }]])('a one-sided quote %o drops the mid', (sides) => {
    const b = book();
    b.apply(quote({ bp: 98, ap: 102 }));
    expect(b.apply(quote(sides))).toBe(true);
    expect(b.source.price('BTC-USD')).toBeUndefined();
    expect(b.apply(quote(sides))).toBe(false); // nothing more changed
  });

  it('with a last trade price, the position is valued by it', () => {
    const b = book();
    b.apply(quote({ bp: 99, ap: 101 }));
    b.apply(ticker(97));
    b.apply(quote({}));
    expect(b.source.price('BTC-USD')?.p).toBe(97);
  });

  it('a forex rate from a mid goes with the mid', () => {
    const b = book();
    const q = (sides: { bp?: number; ap?: number }): Tick => ({ ...quote(sides), sym: 'EUR-USD', src: 'oanda' }) as Tick;
    b.apply(q({ bp: 1.1, ap: 1.1002 }));
    expect(b.fx.rate('EUR', 'USD')).toBeCloseTo(1.1001, 6);
    b.apply(q({ ap: 1.1002 }));
    expect(b.fx.rate('EUR', 'USD')).toBeUndefined();
  });

  it('a side priced out of range is an error, not an empty side: the last good mid stays', () => {
    const b = book();
    b.apply(quote({ bp: 99, ap: 101 }));
    expect(b.apply(quote({ bp: 99, ap: Number.MAX_VALUE }))).toBe(false);
    expect(b.source.price('BTC-USD')?.p).toBe(100);
  });
});
