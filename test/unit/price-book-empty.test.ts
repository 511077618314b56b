import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { PriceBook, TickDelay } from '../../src/portfolio/price-book.js';

/**
 * docs/protocol.md#ticker: a ticker with `empty: true` says the day has no last price (its trades
 * that set one were cancelled); its `p` is the previous close, or 0 when none is known. A
 * portfolio values at the previous close then, and without one it must not keep valuing at the
 * cancelled trade's price: it falls back to the mid quote, or to no price.
 */
const DAY = 86_400_000;
const T0 = Date.now();
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const ticker = (p: number, extra: Record<string, unknown> = {}): Tick =>
  ({ k: 'ticker', sym: 'AAPL', src: 'alpaca', seq: 1, ep: 1, ts: ns(T0), rt: ns(T0), p, o: p, h: p, l: p, v: 10, chg: 0, chgp: 0, ...extra }) as Tick;
const book = () => new PriceBook(defaultRegistry(), (_sym, ms) => Math.floor(ms / DAY));

describe('portfolio prices after a day is emptied by cancels', () => {
  it('without a previous close, the cancelled price is no longer the price; the mid is, when there is one', () => {
    const b = book();
    b.apply(ticker(100));
    expect(b.source.price('AAPL')?.p).toBe(100);
    b.apply(ticker(0, { v: 0, empty: true }));
    expect(b.source.price('AAPL')).toBeUndefined();
    b.apply({ k: 'quote', sym: 'AAPL', src: 'alpaca', seq: 2, ep: 1, ts: ns(T0), rt: ns(T0), bp: 99, ap: 101 } as Tick);
    expect(b.source.price('AAPL')?.p).toBe(100); // the mid
    b.apply(ticker(104));
    expect(b.source.price('AAPL')?.p).toBe(104);
  });

  it('with a previous close, the price is the previous close', () => {
    const b = book();
    b.apply(ticker(100, { pc: 90 }));
    b.apply(ticker(90, { pc: 90, v: 0, empty: true }));
    expect(b.source.price('AAPL')).toMatchObject({ p: 90, prevClose: 90 });
  });

  it('the delayed price book gets the flag too', () => {
    const d = new TickDelay(1_000, 100);
    d.push(ticker(0, { empty: true }), T0);
    const out: Tick[] = [];
    d.drain(T0 + 2_000, (t) => out.push(t));
    expect(out.find((t) => t.k === 'ticker')).toMatchObject({ empty: true });
  });
});
