import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { InstrumentRegistry, defaultRegistry } from '../../src/core/instruments.js';
import { loadRegistry } from '../../src/core/instruments-file.js';
import type { Tick } from '../../src/core/schema.js';
import { TradingCalendar, calendarOf } from '../../src/core/trading-day.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { applyExecution, emptyBook } from '../../src/portfolio/positions.js';

/**
 * Trading days that follow a time zone: forex rolls at 17:00 New York time (22:00 UTC in winter,
 * 21:00 UTC in summer), US stocks at midnight New York time, across both US daylight-saving
 * switches of 2026 (Sunday 8 March 02:00 EST -> 03:00 EDT, Sunday 1 November 02:00 EDT -> 01:00 EST).
 */
const at = (iso: string): number => Date.parse(iso);
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;

describe('TradingCalendar', () => {
  const fx = new TradingCalendar(17 * 60, 'America/New_York');

  it('starts the forex day at 17:00 New York: 22:00 UTC in winter, 21:00 UTC in summer', () => {
    expect(fx.startOf(at('2026-01-15T21:59:59.999Z'))).toBe(at('2026-01-14T22:00:00Z'));
    expect(fx.startOf(at('2026-01-15T22:00:00Z'))).toBe(at('2026-01-15T22:00:00Z'));
    expect(fx.startOf(at('2026-07-15T20:59:59.999Z'))).toBe(at('2026-07-14T21:00:00Z'));
    expect(fx.startOf(at('2026-07-15T21:00:00Z'))).toBe(at('2026-07-15T21:00:00Z'));
    expect(fx.endOf(at('2026-07-15T21:00:00Z'))).toBe(at('2026-07-16T21:00:00Z'));
  });

  it('has a 23-hour day across the March switch and a 25-hour day across the November one', () => {
    // Saturday 17:00 EST to Sunday 17:00 EDT
    const march = fx.startOf(at('2026-03-08T12:00:00Z'));
    expect(march).toBe(at('2026-03-07T22:00:00Z'));
    expect(fx.endOf(march)).toBe(at('2026-03-08T21:00:00Z'));
    expect(fx.dayOf(at('2026-03-08T20:59:59.999Z')) + 1).toBe(fx.dayOf(at('2026-03-08T21:00:00Z')));
    // Saturday 17:00 EDT to Sunday 17:00 EST
    const november = fx.startOf(at('2026-11-01T12:00:00Z'));
    expect(november).toBe(at('2026-10-31T21:00:00Z'));
    expect(fx.endOf(november)).toBe(at('2026-11-01T22:00:00Z'));
    expect(fx.dayOf(at('2026-11-01T21:30:00Z'))).toBe(fx.dayOf(november));
  });

  it('numbers days consecutively and each instant lies in exactly one day', () => {
    for (const cal of [
      fx,
      new TradingCalendar(0, 'America/New_York'),
      new TradingCalendar(150, 'America/New_York'),
      new TradingCalendar(90, 'Europe/London'),
    ]) {
      let prev = cal.dayOf(at('2026-02-25T00:00:00Z'));
      for (let ms = at('2026-02-25T00:00:00Z'); ms < at('2026-04-05T00:00:00Z'); ms += 17 * 60_000) {
        const d = cal.dayOf(ms);
        expect(d === prev || d === prev + 1).toBe(true);
        expect(cal.startOf(ms)).toBeLessThanOrEqual(ms);
        expect(cal.endOf(ms)).toBeGreaterThan(ms);
        expect(cal.startOfDay(d)).toBe(cal.startOf(ms));
        prev = d;
      }
    }
  });

  it('starts a day whose local start falls in the spring-forward gap at the end of the gap, and at the first of a repeated time', () => {
    const gap = new TradingCalendar(2 * 60 + 30, 'America/New_York'); // 02:30 does not exist on 8 March 2026
    expect(gap.startOf(at('2026-03-08T12:00:00Z'))).toBe(at('2026-03-08T07:00:00Z')); // 03:00 EDT
    const twice = new TradingCalendar(60 + 30, 'America/New_York'); // 01:30 happens twice on 1 November 2026
    expect(twice.startOf(at('2026-11-01T12:00:00Z'))).toBe(at('2026-11-01T05:30:00Z')); // 01:30 EDT
  });

  it('keeps the old fixed UTC minute for dayStartUtcMinutes, with the same day numbers', () => {
    const legacy = calendarOf({ assetClass: 'forex', dayStartUtcMinutes: 1320 });
    const ms = at('2026-07-15T21:30:00Z');
    expect(legacy.startOf(ms)).toBe(at('2026-07-14T22:00:00Z'));
    expect(legacy.dayOf(ms)).toBe(Math.floor((ms - 1320 * 60_000) / 86_400_000));
    expect(calendarOf({ assetClass: 'crypto' }).startOf(ms)).toBe(at('2026-07-15T00:00:00Z'));
  });
});

describe('the day of the shipped asset classes', () => {
  function publisher(registry = defaultRegistry()): { pub: TickPublisher; seen: Tick[] } {
    const bus = new MemoryBus();
    const seen: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => seen.push(decodeTick(p)));
    return { pub: new TickPublisher({ bus, registry, barSweepMs: 0 }), seen };
  }
  const dayBars = (seen: Tick[]): Extract<Tick, { k: 'bar' }>[] => seen.filter((t): t is Extract<Tick, { k: 'bar' }> => t.k === 'bar' && t.iv === '1d');
  const lastTicker = (seen: Tick[]): Extract<Tick, { k: 'ticker' }> => seen.filter((t): t is Extract<Tick, { k: 'ticker' }> => t.k === 'ticker').at(-1)!;

  it('EUR-USD: bar.1d and the ticker roll at 17:00 New York, 21:00 UTC in summer and 22:00 UTC in winter', () => {
    const { pub, seen } = publisher();
    const fx = (iso: string, p: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'EUR-USD', id: iso, p, s: 1000, ts: ns(at(iso)) });
    fx('2026-07-15T20:30:00Z', 1.1);
    fx('2026-07-15T21:00:00.001Z', 1.2); // 17:00:00.001 EDT: a new forex day
    expect(dayBars(seen).map((b) => [b.t, b.closed, b.o])).toEqual([
      [at('2026-07-14T21:00:00Z'), false, 1.1],
      [at('2026-07-14T21:00:00Z'), true, 1.1],
      [at('2026-07-15T21:00:00Z'), false, 1.2],
    ]);
    expect(lastTicker(seen)).toMatchObject({ o: 1.2, h: 1.2, l: 1.2, v: 1000 });
    fx('2026-07-16T00:00:01Z', 1.25); // UTC midnight is no day boundary for forex
    expect(lastTicker(seen)).toMatchObject({ o: 1.2, p: 1.25, v: 2000 });
    seen.length = 0;
    fx('2027-01-15T21:30:00Z', 1.3); // winter: 16:30 EST, still the day that began at 22:00 UTC yesterday
    fx('2027-01-15T22:00:00Z', 1.4);
    expect(dayBars(seen).map((b) => [b.t, b.closed])).toEqual([
      [at('2026-07-15T21:00:00Z'), true], // the summer day closes
      [at('2027-01-14T22:00:00Z'), false],
      [at('2027-01-14T22:00:00Z'), true],
      [at('2027-01-15T22:00:00Z'), false],
    ]);
    pub.close();
  });

  it('EUR-USD: the day after the March switch is 23 hours, and the close comes at its end', () => {
    const { pub, seen } = publisher();
    pub.publish('synthetic', { k: 'trade', sym: 'EUR-USD', id: 'a', p: 1.1, s: 1, ts: ns(at('2026-03-08T20:59:00Z')) });
    // the source clock passes Sunday 17:00 EDT (21:00 UTC): the quiet day closes
    pub.sweepBars(Date.now() + 61_000 + 250);
    const closed = dayBars(seen).filter((b) => b.closed);
    expect(closed.map((b) => b.t)).toEqual([at('2026-03-07T22:00:00Z')]);
    pub.close();
  });

  it('AAPL: an after-hours trade at 19:30 New York in winter (00:30 UTC) is in the New York day it happened on', () => {
    const { pub, seen } = publisher();
    const st = (iso: string, p: number): void => void pub.publish('synthetic', { k: 'trade', sym: 'AAPL', id: iso, p, s: 1, ts: ns(at(iso)) });
    st('2026-01-14T20:59:00Z', 200); // 15:59 EST
    st('2026-01-15T00:30:00Z', 201); // 19:30 EST, after hours, the same New York day
    expect(dayBars(seen).every((b) => b.t === at('2026-01-14T05:00:00Z'))).toBe(true);
    expect(lastTicker(seen)).toMatchObject({ o: 200, p: 201, v: 2 });
    st('2026-01-15T14:30:00Z', 205); // 09:30 EST: the next day
    expect(dayBars(seen).at(-1)).toMatchObject({ t: at('2026-01-15T05:00:00Z'), closed: false, o: 205 });
    expect(lastTicker(seen)).toMatchObject({ o: 205, v: 1 });
    pub.close();
  });

  it("a correction of the day's last trade after UTC midnight updates the ticker's last price (day start 22:00 UTC)", () => {
    const base = defaultRegistry().get('EUR-USD')!;
    const { pub, seen } = publisher(new InstrumentRegistry([{ ...base, dayStartUtcMinutes: 1320 }]));
    pub.publish('x', { k: 'trade', sym: 'EUR-USD', id: 'a', p: 1.1, s: 1000, ts: ns(at('2026-07-16T00:59:00Z')) });
    pub.publish('x', { k: 'trade', sym: 'EUR-USD', id: 'b', p: 1.3, s: 1000, ts: ns(at('2026-07-16T01:00:00Z')) });
    pub.publish('x', { k: 'correction', sym: 'EUR-USD', ref: 'b', id: 'b2', p: 1.2, s: 1000, ts: ns(at('2026-07-16T01:00:05Z')) });
    expect(lastTicker(seen)).toMatchObject({ p: 1.2, h: 1.2, l: 1.1, v: 2000 });
    pub.close();
  });

  it('portfolio day P&L counts a forex fill after 17:00 New York in the new day', () => {
    const cal = calendarOf(defaultRegistry().get('EUR-USD'));
    const book = emptyBook('u', 'USD');
    applyExecution(book, { id: 'e1', sym: 'EUR-USD', side: 'buy', qty: 1000, p: 1.1, t: at('2026-07-15T20:30:00Z') } as never, at('2026-07-15T20:30:00Z'), cal);
    applyExecution(book, { id: 'e2', sym: 'EUR-USD', side: 'buy', qty: 500, p: 1.2, t: at('2026-07-15T21:30:00Z') } as never, at('2026-07-15T21:30:00Z'), cal);
    // the first fill is yesterday's (forex day): it is in the day's opening quantity, not in its flow
    expect(book.positions['EUR-USD']).toMatchObject({ qty: 1500, dayQty0: 1000, dayFlow: 600 });
  });
});

describe('instruments file: dayStartTime and timeZone', () => {
  const file = (body: unknown): string => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-day-'));
    const p = join(dir, 'instruments.json');
    writeFileSync(p, JSON.stringify(body));
    return p;
  };
  const fxInst = { symbol: 'EUR-USD', assetClass: 'forex', currency: 'USD' };

  it('accepts a local start in an IANA zone and uses it for the day', () => {
    const reg = loadRegistry(file([{ ...fxInst, dayStartTime: '17:00', timeZone: 'America/New_York' }]));
    expect(reg.get('EUR-USD')).toMatchObject({ dayStartTime: '17:00', timeZone: 'America/New_York' });
    expect(calendarOf(reg.get('EUR-USD')).startOf(at('2026-07-15T22:00:00Z'))).toBe(at('2026-07-15T21:00:00Z'));
    const tokyo = loadRegistry(file([{ ...fxInst, timeZone: 'Asia/Tokyo', dayStartTime: '07:00' }]));
    expect(calendarOf(tokyo.get('EUR-USD')).startOf(at('2026-07-15T23:00:00Z'))).toBe(at('2026-07-15T22:00:00Z'));
  });

  it('refuses a bad zone, a bad time, or both kinds of day start, naming the key', () => {
    expect(() => loadRegistry(file([{ ...fxInst, timeZone: 'Mars/Olympus' }]))).toThrow(/instruments\[0\]\.timeZone: an IANA time zone/);
    expect(() => loadRegistry(file([{ ...fxInst, dayStartTime: '24:00' }]))).toThrow(/instruments\[0\]\.dayStartTime: a local time "HH:MM"/);
    expect(() => loadRegistry(file([{ ...fxInst, dayStartTime: '5pm' }]))).toThrow(/instruments\[0\]\.dayStartTime/);
    expect(() => loadRegistry(file([{ ...fxInst, dayStartUtcMinutes: 1320, timeZone: 'America/New_York' }]))).toThrow(
      /instruments\[0\]\.dayStartUtcMinutes: set either dayStartUtcMinutes .* or dayStartTime\/timeZone, not both/,
    );
    expect(
      () => new InstrumentRegistry([{ symbol: 'X', assetClass: 'stock', currency: 'USD', pricePrecision: 2, providers: ['x'], timeZone: 'Nowhere/Land' }]),
    ).toThrow(/instrument X: timeZone "Nowhere\/Land" is not an IANA time zone/);
  });
});
