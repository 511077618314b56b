import { describe, expect, it } from 'vitest';
import { decodeTick, encodeTick } from '../../src/codec/tick-codec.js';
import { DEFAULT_INSTRUMENTS, InstrumentRegistry, defaultRegistry } from '../../src/core/instruments.js';
import type { QuoteTick, TradeTick } from '../../src/core/schema.js';
import { msToNs, nowNs, nsToMs } from '../../src/core/time.js';
import { Sequencer } from '../../src/ingest/sequencer.js';
import { tickToPayload } from '../../src/fanout/payloads.js';

describe('canonical schema', () => {
  it('round-trips ticks through the bus codec with exact nanosecond times', () => {
    const ts = 1_732_000_000_123_456_789n;
    const t: TradeTick = { k: 'trade', sym: 'BRK.B', src: 'x', seq: 7, ep: 3, ts, rt: ts + 1000n, id: 'a1', p: 452.17, s: 10, side: 'buy' };
    const back = decodeTick(encodeTick(t));
    expect(back).toEqual(t);
    expect(typeof back.ts).toBe('bigint');
  });

  it('converts engine nanoseconds to wire milliseconds with a fraction', () => {
    expect(nsToMs(1_732_000_000_123_456_789n)).toBeCloseTo(1_732_000_000_123.456, 3);
    expect(msToNs(1500.5)).toBe(1_500_500_000n);
    const now = nowNs();
    expect(Math.abs(nsToMs(now) - Date.now())).toBeLessThan(1000);
  });

  it('maps ticks to protocol payloads without undefined fields', () => {
    const ts = 1_700_000_000_000_000_000n;
    const q: QuoteTick = { k: 'quote', sym: 'EUR-USD', src: 'synthetic', seq: 1, ep: 9, ts, rt: ts, bp: 1.1, ap: 1.1002 };
    const d = tickToPayload(q);
    expect(d).toEqual({ bp: 1.1, ap: 1.1002, t: 1_700_000_000_000, src: 'synthetic', ep: 9 });
    expect(Object.values(d).includes(undefined)).toBe(false);
    const t: TradeTick = { k: 'trade', sym: 'AAPL', src: 's', seq: 1, ep: 1, ts, rt: ts, id: 'z', p: 1, s: 2 };
    expect(Object.keys(tickToPayload(t))).toEqual(['id', 'p', 's', 't', 'src', 'ep']);
  });

  it('has the default universe across stocks, crypto and forex', () => {
    const reg = defaultRegistry();
    for (const s of ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'BRK.B', 'BTC-USD', 'ETH-USD', 'SOL-USD', 'EUR-USD', 'GBP-USD', 'USD-JPY']) {
      expect(reg.has(s)).toBe(true);
    }
    expect(reg.get('USD-JPY')).toMatchObject({ assetClass: 'forex', currency: 'JPY', pricePrecision: 3 });
    expect(reg.get('BTC-USD')).toMatchObject({ assetClass: 'crypto', currency: 'USD' });
    expect(reg.get('BRK.B')).toMatchObject({ assetClass: 'stock', currency: 'USD', providers: ['synthetic'] });
    expect(reg.byClass('forex').length).toBeGreaterThanOrEqual(3);
    expect(reg.size).toBe(DEFAULT_INSTRUMENTS.length);
  });

  it('refuses non-canonical instrument symbols', () => {
    expect(() => new InstrumentRegistry([{ symbol: 'aapl', assetClass: 'stock', currency: 'USD', pricePrecision: 2, providers: [] }])).toThrow(/not canonical/);
  });
});

describe('sequencer', () => {
  it('numbers each (symbol, kind) contiguously from 1 within an epoch', () => {
    const s = new Sequencer(100);
    expect(s.next('AAPL', 'trade')).toEqual({ seq: 1, ep: 100 });
    expect(s.next('AAPL', 'trade')).toEqual({ seq: 2, ep: 100 });
    expect(s.next('AAPL', 'quote')).toEqual({ seq: 1, ep: 100 });
    expect(s.next('MSFT', 'trade')).toEqual({ seq: 1, ep: 100 });
  });

  it('starts a new epoch per symbol on a provider switch, and for all on restart', () => {
    const s = new Sequencer(100);
    s.next('AAPL', 'trade');
    s.next('MSFT', 'trade');
    const ep = s.bumpEpoch('AAPL');
    expect(ep).toBeGreaterThan(100);
    expect(s.next('AAPL', 'trade')).toEqual({ seq: 1, ep });
    expect(s.next('MSFT', 'trade')).toEqual({ seq: 2, ep: 100 });
    s.bumpAll();
    const after = s.next('MSFT', 'trade');
    expect(after.seq).toBe(1);
    expect(after.ep).toBeGreaterThan(100);
  });
});
