import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { InstrumentRegistry } from '../../src/core/instruments.js';
import type { Tick, TickerTick, TradeTick } from '../../src/core/schema.js';
import { TickerBuilder } from '../../src/derive/ticker-builder.js';
import { tickToPayload } from '../../src/fanout/payloads.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';

/**
 * The ticker's previous close `pc` (docs/protocol.md#ticker): the close of the previous trading
 * day that traded, as its bar.1d closed, corrections and late trades included.
 */
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const DAY1 = Date.UTC(2026, 10, 23, 15, 0, 0); // Monday
const DAY2 = Date.UTC(2026, 10, 24, 15, 0, 0);
const DAY4 = Date.UTC(2026, 10, 26, 15, 0, 0);
const trade = (ms: number, p: number, s = 1, id = `${ms}-${p}`): TradeTick => ({
  k: 'trade',
  sym: 'BTC-USD',
  src: 'x',
  seq: 0,
  ep: 0,
  ts: ns(ms),
  rt: ns(ms),
  id,
  p,
  s,
});

describe('TickerBuilder: previous close', () => {
  it('has no pc on the first day seen; the next day carries the day before’s close; chg stays p − o', () => {
    const tb = new TickerBuilder();
    expect(tb.onTrade(trade(DAY1, 100))).not.toHaveProperty('pc');
    tb.onTrade(trade(DAY1 + 1000, 104));
    const s = tb.onTrade(trade(DAY2, 110))!;
    expect(s).toMatchObject({ p: 110, o: 110, chg: 0, pc: 104 });
    // a day without trades keeps the last close that traded (a weekend, a holiday)
    tb.onTrade(trade(DAY2 + 5000, 111));
    expect(tb.onTrade(trade(DAY4, 120))).toMatchObject({ pc: 111, o: 120 });
  });

  it('a volume-only first trade of the new day already rolls pc', () => {
    const tb = new TickerBuilder();
    tb.onTrade(trade(DAY1, 100));
    expect(tb.onTrade({ ...trade(DAY2, 0, 5), volumeOnly: true })).toBeUndefined();
    expect(tb.onTrade(trade(DAY2 + 1, 101))).toMatchObject({ pc: 100, v: 6 });
  });

  it('a restored ticker keeps its pc', () => {
    const tb = new TickerBuilder();
    expect(tb.restore({ p: 10, o: 9, h: 11, l: 8, v: 5, chg: 1, chgp: 11.1, pc: 7, ts: ns(DAY2) })).toBe(true);
    expect(tb.onTrade(trade(DAY2 + 1000, 12))).toMatchObject({ p: 12, pc: 7 });
  });

  it('goes on the wire as pc, absent until known', () => {
    const tb = new TickerBuilder();
    const base = { k: 'ticker' as const, sym: 'BTC-USD', src: 'x', seq: 1, ep: 1, ts: ns(DAY2), rt: ns(DAY2) };
    expect(tickToPayload({ ...base, ...tb.onTrade(trade(DAY1, 100))! })).not.toHaveProperty('pc');
    expect(tickToPayload({ ...base, ...tb.onTrade(trade(DAY2, 101))! })).toMatchObject({ pc: 100 });
  });
});

describe('TickPublisher: pc follows the previous day’s bar.1d', () => {
  const setup = (): { pub: TickPublisher; tickers: () => TickerTick[] } => {
    const bus = new MemoryBus();
    const seen: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
    const registry = new InstrumentRegistry([{ symbol: 'BTC-USD', assetClass: 'crypto', currency: 'USD', pricePrecision: 2, providers: ['x'] }]);
    const pub = new TickPublisher({ bus, registry, barSweepMs: 0, lastValues: new MemoryLastValueStore() });
    return { pub, tickers: () => seen.filter((t): t is TickerTick => t.k === 'ticker') };
  };
  const pubTrade = (pub: TickPublisher, ms: number, p: number, id: string): void => {
    pub.publish('x', { k: 'trade', sym: 'BTC-USD', id, p, s: 1, ts: ns(ms) });
  };

  it('the close is the day’s latest trade by event time, not the last one to arrive', () => {
    const { pub, tickers } = setup();
    const end = Date.UTC(2026, 10, 23, 23, 59, 0);
    pubTrade(pub, end, 100, 'a');
    pubTrade(pub, end - 30_000, 95, 'b'); // arrives last, happened earlier: not the close
    pubTrade(pub, DAY2, 101, 'c');
    expect(tickers().at(-1)).toMatchObject({ p: 101, pc: 100 });
    pub.close();
  });

  it('a correction of the previous day’s last trade after the roll sends the ticker again with the corrected pc', () => {
    const { pub, tickers } = setup();
    const end = Date.UTC(2026, 10, 23, 23, 59, 50);
    pubTrade(pub, end - 1000, 99, 'a');
    pubTrade(pub, end, 100, 'b');
    const next = Date.UTC(2026, 10, 24, 0, 0, 5);
    pubTrade(pub, next, 101, 'c');
    expect(tickers().at(-1)).toMatchObject({ pc: 100 });
    pub.publish('x', { k: 'correction', sym: 'BTC-USD', ref: 'b', id: 'b2', p: 100.5, s: 1, ts: ns(next + 1000) });
    expect(tickers().at(-1)).toMatchObject({ p: 101, o: 101, pc: 100.5 });
    // cancelled: the day closed on its trade before
    pub.publish('x', { k: 'cancel', sym: 'BTC-USD', ref: 'b2', ts: ns(next + 2000) });
    expect(tickers().at(-1)).toMatchObject({ p: 101, pc: 99 });
    pub.close();
  });

  it('a late trade of the previous day, after its last one, moves pc with the day bar', () => {
    const { pub, tickers } = setup();
    const end = Date.UTC(2026, 10, 23, 23, 59, 0);
    pubTrade(pub, end, 100, 'a');
    pubTrade(pub, Date.UTC(2026, 10, 24, 0, 0, 5), 101, 'c');
    pubTrade(pub, end + 30_000, 98, 'late');
    expect(tickers().at(-1)).toMatchObject({ p: 101, pc: 98 });
    pub.close();
  });
});
