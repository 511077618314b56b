import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_INSTRUMENTS } from '../../src/core/instruments.js';
import type { FeedContext, TickInput } from '../../feeds/sdk/adapter.js';
import { MarketModel } from '../../feeds/synthetic/market-model.js';
import { SyntheticFeed } from '../../feeds/synthetic/synthetic-feed.js';

const silent = { info() {}, warn() {}, error() {}, debug() {} };

function ctxCollect(): { ctx: FeedContext; ticks: TickInput[]; states: string[]; abort: AbortController } {
  const ticks: TickInput[] = [];
  const states: string[] = [];
  const abort = new AbortController();
  return { ticks, states, abort, ctx: { emit: (t) => ticks.push(t), status: (s) => states.push(s), signal: abort.signal, log: silent } };
}

describe('synthetic market model', () => {
  it('is deterministic for a seed', () => {
    const a = new MarketModel(DEFAULT_INSTRUMENTS, 7, 'x');
    const b = new MarketModel(DEFAULT_INSTRUMENTS, 7, 'x');
    const c = new MarketModel(DEFAULT_INSTRUMENTS, 8, 'x');
    const seqA = Array.from({ length: 2000 }, () => a.next(1n));
    const seqB = Array.from({ length: 2000 }, () => b.next(1n));
    const seqC = Array.from({ length: 2000 }, () => c.next(1n));
    expect(seqA).toEqual(seqB);
    expect(seqA).not.toEqual(seqC);
  });

  it('produces realistic quotes and trades per asset class', () => {
    const m = new MarketModel(DEFAULT_INSTRUMENTS, 42, 'x');
    const events = Array.from({ length: 50_000 }, () => m.next(1n)!);
    const lastQuote = new Map<string, { bp?: number; ap?: number }>();
    const sides = new Set<string>();
    for (const e of events) {
      if (e.k === 'quote') {
        expect(e.ap).toBeGreaterThan(e.bp!);
        expect(e.bp).toBeGreaterThan(0);
        expect(e.bs).toBeGreaterThan(0);
        lastQuote.set(e.sym, e);
      } else if (e.k === 'trade') {
        expect(e.p).toBeGreaterThan(0);
        expect(e.s).toBeGreaterThan(0);
        if (e.side) sides.add(e.side);
      }
    }
    expect(sides).toEqual(new Set(['buy', 'sell']));
    // prices stay near their reference (random walk, modest volatility)
    for (const inst of DEFAULT_INSTRUMENTS) {
      const q = lastQuote.get(inst.symbol)!;
      expect(q, inst.symbol).toBeDefined();
      const mid = (q.bp! + q.ap!) / 2;
      expect(Math.abs(Math.log(mid / inst.refPrice!))).toBeLessThan(0.2);
      const spreadBps = ((q.ap! - q.bp!) / mid) * 10_000;
      const maxBps = inst.assetClass === 'forex' ? 5 : inst.assetClass === 'crypto' ? 10 : 20;
      expect(spreadBps, inst.symbol).toBeLessThan(maxBps + (10 ** -inst.pricePrecision / mid) * 20_000);
    }
    // forex sizes are in lots, crypto sizes fractional
    const fx = events.find((e) => e.k === 'trade' && e.sym === 'EUR-USD') as { s: number };
    expect(fx.s % 100_000).toBe(0);
  });

  it('gives BTC-USD and EUR-USD at least 10 quotes a second at the default rate', () => {
    const rate = 400; // config default synthetic.rate
    const seconds = 120;
    const m = new MarketModel(DEFAULT_INSTRUMENTS, 42, 'x');
    const quotes = new Map<string, number>();
    for (let i = 0; i < rate * seconds; i++) {
      const e = m.next(1n)!;
      if (e.k === 'quote') quotes.set(e.sym, (quotes.get(e.sym) ?? 0) + 1);
    }
    expect(quotes.get('BTC-USD')! / seconds).toBeGreaterThanOrEqual(10);
    expect(quotes.get('EUR-USD')! / seconds).toBeGreaterThanOrEqual(10);
  });
});

describe('SyntheticFeed pacing', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('emits exactly the configured rate against the clock, up to 50,000 ticks/s', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'performance', 'Date'] });
    for (const rate of [400, 50_000]) {
      const feed = new SyntheticFeed({ instruments: DEFAULT_INSTRUMENTS, seed: 1, rate });
      const { ctx, ticks, states } = ctxCollect();
      await feed.start(ctx);
      vi.advanceTimersByTime(1000);
      expect(ticks.length).toBeGreaterThanOrEqual(rate * 0.99);
      expect(ticks.length).toBeLessThanOrEqual(rate);
      vi.advanceTimersByTime(2000);
      expect(ticks.length).toBeGreaterThanOrEqual(rate * 2.99);
      await feed.stop();
      const n = ticks.length;
      vi.advanceTimersByTime(1000);
      expect(ticks.length).toBe(n);
      expect(states).toEqual(['connecting', 'connected', 'stopped']);
    }
  });

  it('limits generation to subscribed symbols when asked', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'performance', 'Date'] });
    const feed = new SyntheticFeed({ instruments: DEFAULT_INSTRUMENTS, seed: 1, rate: 1000 });
    const { ctx, ticks } = ctxCollect();
    await feed.subscribe(['BTC-USD', 'AAPL']);
    await feed.start(ctx);
    vi.advanceTimersByTime(500);
    expect(ticks.length).toBeGreaterThan(100);
    expect(new Set(ticks.map((t) => t.sym))).toEqual(new Set(['BTC-USD', 'AAPL']));
    await feed.stop();
  });

  it('refuses a non-positive rate', () => {
    expect(() => new SyntheticFeed({ instruments: DEFAULT_INSTRUMENTS, seed: 1, rate: 0 })).toThrow(/rate/);
  });
});
