import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tickToPayload } from '../../src/fanout/payloads.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry, DEFAULT_INSTRUMENTS } from '../../src/core/instruments.js';
import type { BarTick, QuoteTick, Tick, TickerTick } from '../../src/core/schema.js';
import { BarBuilder } from '../../src/derive/bar-builder.js';
import { midPoint, midPrice } from '../../src/derive/mid-price.js';
import { TickerBuilder } from '../../src/derive/ticker-builder.js';
import { calendarOf } from '../../src/core/trading-day.js';
import { FeedHost } from '../../src/ingest/feed-host.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import type { SourceSelector } from '../../src/ingest/tick-publisher.js';
import { MemoryLastValueStore } from '../../src/store/last-value-store.js';
import { SyntheticFeed } from '../../feeds/synthetic/synthetic-feed.js';
import type { FeedAdapter } from '../../feeds/sdk/adapter.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Ticker and bars from mid prices for a quote-only source (FeedAdapter.quotesOnly; OANDA):
 * docs/protocol.md#ticker, `basis`. Sources that send trades are unchanged.
 */
// Tuesday 2024-06-11 14:00 UTC (EDT): the forex day started 2024-06-10 21:00 UTC, the next one starts 2024-06-11 21:00 UTC
const T0 = Date.UTC(2024, 5, 11, 14, 0, 0);
const DAY_START = Date.UTC(2024, 5, 10, 21, 0, 0);
const NEXT_DAY = Date.UTC(2024, 5, 11, 21, 0, 0);
const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
const q = (ms: number, bp: number | undefined, ap: number | undefined, seq = 1): QuoteTick => ({
  k: 'quote',
  sym: 'EUR-USD',
  src: 'oanda',
  seq,
  ep: 1,
  ts: ns(ms),
  rt: ns(ms),
  ...(bp === undefined ? {} : { bp }),
  ...(ap === undefined ? {} : { ap }),
});

describe('midPrice / midPoint', () => {
  it('is (bid + ask) / 2 of a two-sided quote, without float noise', () => {
    expect(midPrice({ bp: 1.07612, ap: 1.07626 })).toBe(1.07619);
    expect(midPrice({ bp: 151.418, ap: 151.431 })).toBe(151.4245);
    expect(midPrice({ bp: 0.1, ap: 0.2 })).toBe(0.15); // 0.1 + 0.2 is 0.30000000000000004
  });

  it('is undefined for a one-sided, empty or non-positive quote: it sets no price', () => {
    expect(midPrice({ bp: 1.1 })).toBeUndefined();
    expect(midPrice({ ap: 1.1 })).toBeUndefined();
    expect(midPrice({})).toBeUndefined();
    expect(midPrice({ bp: 0, ap: 1.1 })).toBeUndefined();
    expect(midPrice({ bp: Number.NaN, ap: 1.1 })).toBeUndefined();
    expect(midPoint(q(T0, 1.1, undefined))).toBeUndefined();
  });

  it('is a print of size 0 at the quote time', () => {
    expect(midPoint(q(T0 + 5, 1.1, 1.1002, 7))).toMatchObject({ k: 'trade', sym: 'EUR-USD', p: 1.1001, s: 0, ts: ns(T0 + 5) });
  });
});

describe('builders fed mid points', () => {
  const mids: [number, number, number][] = [
    [T0 + 1_000, 1.07612, 1.07626], // 1.07619
    [T0 + 20_000, 1.07633, 1.07647], // 1.0764
    [T0 + 40_000, 1.07593, 1.07607], // 1.076
    [T0 + 59_000, 1.07603, 1.07617], // 1.0761
  ];

  it('BarBuilder: o h l c of the mids in event time, v 0, n the number of prices', () => {
    const b = new BarBuilder('1m');
    let last;
    for (const [ms, bp, ap] of mids) last = b.onTrade(midPoint(q(ms, bp, ap))!, ms).at(-1);
    expect(last).toEqual({ iv: '1m', t: T0, o: 1.07619, h: 1.0764, l: 1.076, c: 1.0761, v: 0, n: 4, closed: false });
    const closed = b.onTrade(midPoint(q(T0 + 60_500, 1.0762, 1.0763))!, T0 + 60_500);
    expect(closed[0]).toEqual({ iv: '1m', t: T0, o: 1.07619, h: 1.0764, l: 1.076, c: 1.0761, v: 0, n: 4, closed: true });
    expect(closed[1]).toMatchObject({ t: T0 + 60_000, o: 1.07625, n: 1, v: 0 });
  });

  it("TickerBuilder: the day's o h l of mids on the forex day (17:00 New York), p the latest, v 0, pc the day before's last", () => {
    const t = new TickerBuilder(calendarOf(defaultRegistry().get('EUR-USD')));
    let s;
    for (const [ms, bp, ap] of mids) s = t.onTrade(midPoint(q(ms, bp, ap))!);
    expect(s).toMatchObject({ p: 1.0761, o: 1.07619, h: 1.0764, l: 1.076, v: 0 });
    // 16:59:59 New York is still the day; 17:00 starts the next one
    s = t.onTrade(midPoint(q(NEXT_DAY - 1_000, 1.077, 1.0772))!);
    expect(s).toMatchObject({ p: 1.0771, o: 1.07619, h: 1.0771 });
    s = t.onTrade(midPoint(q(NEXT_DAY + 1_000, 1.078, 1.0782))!);
    expect(s).toMatchObject({ p: 1.0781, o: 1.0781, h: 1.0781, l: 1.0781, v: 0, pc: 1.0771 });
  });
});

const silent = { info() {}, warn() {}, error() {}, debug() {} };

function collect(bus: MemoryBus): Tick[] {
  const ticks: Tick[] = [];
  bus.subscribe('md.forex.>', (_s, p) => ticks.push(decodeTick(p)));
  return ticks;
}
const tickers = (ticks: Tick[]): TickerTick[] => ticks.filter((t): t is TickerTick => t.k === 'ticker' && t.sym === 'EUR-USD');
const bars = (ticks: Tick[], iv: string): BarTick[] => ticks.filter((t): t is BarTick => t.k === 'bar' && t.iv === iv && t.sym === 'EUR-USD');

describe('TickPublisher: a quote-only feed', () => {
  const publishers: TickPublisher[] = [];
  afterEach(() => {
    for (const p of publishers.splice(0)) p.close();
  });
  const make = (opts: { selector?: SourceSelector; lastValues?: MemoryLastValueStore } = {}): { publisher: TickPublisher; ticks: Tick[] } => {
    const bus = new MemoryBus();
    const ticks = collect(bus);
    const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0, ...opts });
    publishers.push(publisher);
    return { publisher, ticks };
  };
  const quote = (ms: number, bp?: number, ap?: number) => ({ k: 'quote' as const, sym: 'EUR-USD', ts: ns(ms), ...(bp ? { bp } : {}), ...(ap ? { ap } : {}) });

  it('one-sided and empty quotes set no price: no ticker until the first two-sided quote', () => {
    const { publisher, ticks } = make();
    publisher.declareQuotesOnly('oanda');
    publisher.publish('oanda', quote(T0, 1.1));
    publisher.publish('oanda', quote(T0 + 1, undefined, 1.1002));
    expect(tickers(ticks)).toEqual([]);
    expect(bars(ticks, '1s')).toEqual([]);
    publisher.publish('oanda', quote(T0 + 2, 1.1, 1.1002));
    expect(tickers(ticks)).toHaveLength(1);
    expect(tickers(ticks)[0]).toMatchObject({ p: 1.1001, bp: 1.1, ap: 1.1002, o: 1.1001, v: 0, basis: 'mid' });
    expect(bars(ticks, '1s')[0]).toMatchObject({ t: T0, o: 1.1001, n: 1, v: 0, basis: 'mid' });
    // a one-sided quote after it: bid and ask shown as they are, the price stays, no bar changes
    publisher.publish('oanda', quote(T0 + 3, 1.0999));
    expect(tickers(ticks).at(-1)).toMatchObject({ p: 1.1001, bp: 1.0999, basis: 'mid' });
    expect(tickers(ticks).at(-1)!.ap).toBeUndefined();
    expect(bars(ticks, '1s')).toHaveLength(1);
  });

  it('a quote of an earlier trading day moves no price and still shows its bid and ask', () => {
    const { publisher, ticks } = make();
    publisher.declareQuotesOnly('oanda');
    publisher.publish('oanda', quote(NEXT_DAY + 1_000, 1.1, 1.1002));
    publisher.publish('oanda', quote(NEXT_DAY - 1_000, 1.2, 1.2002)); // reported late, of the day before
    const last = tickers(ticks).at(-1)!;
    expect(last).toMatchObject({ p: 1.1001, o: 1.1001, h: 1.1001, bp: 1.2, ap: 1.2002, basis: 'mid' });
    expect(tickers(ticks)).toHaveLength(2);
  });

  it('a feed that sends trades is unchanged: quotes set no price, trades do, no basis', () => {
    const { publisher, ticks } = make();
    publisher.declareQuotesOnly('oanda'); // another feed
    publisher.publish('synthetic', quote(T0, 1.1, 1.1002));
    expect(tickers(ticks)).toEqual([]);
    publisher.publish('synthetic', { k: 'trade', sym: 'EUR-USD', id: 't1', p: 1.1005, s: 1000, ts: ns(T0 + 1) });
    publisher.publish('synthetic', quote(T0 + 2, 1.2, 1.2002));
    const last = tickers(ticks).at(-1)!;
    expect(last).toMatchObject({ p: 1.1005, bp: 1.2, v: 1000 });
    expect(last.basis).toBeUndefined();
    expect(bars(ticks, '1s').map((b) => [b.o, b.v, b.n, b.basis])).toEqual([[1.1005, 1000, 1, undefined]]);
  });

  it('failover: mids while the quote-only standby serves the symbol, trades again when the trade source is back', () => {
    let active = 'synthetic';
    const selector: SourceSelector = { accept: (feed) => feed === active };
    const { publisher, ticks } = make({ selector });
    publisher.declareQuotesOnly('oanda');
    publisher.publish('synthetic', { k: 'trade', sym: 'EUR-USD', id: 't1', p: 1.1, s: 1000, ts: ns(T0) });
    // the standby's quotes are not accepted: nothing derived from them
    publisher.publish('oanda', quote(T0 + 100, 1.2, 1.2002));
    expect(tickers(ticks).at(-1)).toMatchObject({ p: 1.1, v: 1000 });
    active = 'oanda';
    publisher.publish('oanda', quote(T0 + 200, 1.1002, 1.1004));
    expect(tickers(ticks).at(-1)).toMatchObject({ p: 1.1003, o: 1.1, h: 1.1003, v: 1000, basis: 'mid' });
    expect(bars(ticks, '1s').at(-1)).toMatchObject({ o: 1.1, c: 1.1003, v: 1000, n: 2, basis: 'mid' });
    active = 'synthetic';
    publisher.publish('synthetic', { k: 'trade', sym: 'EUR-USD', id: 't2', p: 1.1001, s: 500, ts: ns(T0 + 300) });
    const back = tickers(ticks).at(-1)!;
    expect(back).toMatchObject({ p: 1.1001, v: 1500 });
    expect(back.basis).toBeUndefined();
  });

  it('closed mid bars go to the bar store with the marker, and the marker survives a restart', async () => {
    const lastValues = new MemoryLastValueStore();
    const { publisher } = make({ lastValues });
    publisher.declareQuotesOnly('oanda');
    publisher.publish('oanda', quote(T0 + 10, 1.1, 1.1002));
    publisher.close(); // the throttled open bars go to the store too
    const bus = new MemoryBus();
    const ticks = collect(bus);
    const stored: Record<string, unknown>[] = [];
    const next = new TickPublisher({
      bus,
      registry: defaultRegistry(),
      barSweepMs: 0,
      lastValues,
      bars: { put: (ch, b) => ch === 'bar.1m:EUR-USD' && stored.push(b) },
    });
    publishers.push(next);
    expect(await next.restore()).toBeGreaterThan(0);
    next.sweepBars(Date.now() + 2 * 86_400_000);
    expect(bars(ticks, '1m')).toEqual([expect.objectContaining({ t: T0, closed: true, basis: 'mid', n: 1 })]);
    expect(stored).toEqual([expect.objectContaining({ t: T0, o: 1.1001, v: 0, n: 1, basis: 'mid' })]);
    expect(bars(ticks, '1d')).toEqual([expect.objectContaining({ t: DAY_START, closed: true, basis: 'mid' })]);
  });
});

describe("the default engine's EUR-USD (synthetic feed, which sends trades)", () => {
  it('stays trade-based: no basis on its ticker and bars, traded volume', async () => {
    const feed = new SyntheticFeed({ instruments: DEFAULT_INSTRUMENTS, seed: 1, rate: 2000 });
    expect((feed as FeedAdapter).quotesOnly ?? false).toBe(false);
    const bus = new MemoryBus();
    const ticks = collect(bus);
    const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    const host = new FeedHost(publisher, silent);
    try {
      await feed.subscribe(['EUR-USD']);
      await host.start(feed);
      await waitFor(() => tickers(ticks).length >= 3 && bars(ticks, '1s').length > 0, { what: 'EUR-USD tickers and bars' });
    } finally {
      await host.stopAll();
      publisher.close();
    }
    expect(tickers(ticks).every((t) => t.basis === undefined && t.v > 0)).toBe(true);
    expect(bars(ticks, '1s').every((b) => b.basis === undefined && b.v > 0)).toBe(true);
  });
});

/** The field names of the markdown table after `heading` in docs/protocol.md (`o` `h` `l` is three, `pc`? is pc). */
function documentedFields(heading: string): Set<string> {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
  const at = doc.indexOf(`\n${heading}\n`);
  expect(at, heading).toBeGreaterThanOrEqual(0);
  const fields = new Set<string>();
  for (const line of doc.slice(at).split('\n').slice(2)) {
    if (!line.startsWith('|')) {
      if (fields.size) break;
      continue;
    }
    for (const m of line.split('|')[1]!.matchAll(/`(\w+)`/g)) fields.add(m[1]!);
  }
  return fields;
}

describe('docs/protocol.md: the mid-basis ticker and bar are documented', () => {
  it('every field of their payloads is a row of the ticker and bar tables, basis among them', () => {
    const bus = new MemoryBus();
    const ticks = collect(bus);
    const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    try {
      publisher.declareQuotesOnly('oanda');
      publisher.publish('oanda', { k: 'quote', sym: 'EUR-USD', bp: 1.1, ap: 1.1002, ts: ns(T0) });
      publisher.publish('oanda', { k: 'quote', sym: 'EUR-USD', bp: 1.1004, ap: 1.1006, ts: ns(T0 + 1_500) });
    } finally {
      publisher.close();
    }
    const ticker = tickToPayload(tickers(ticks).at(-1)!);
    const bar = tickToPayload(bars(ticks, '1s').find((b) => b.closed)!);
    expect(ticker.basis).toBe('mid');
    expect(bar.basis).toBe('mid');
    const tickerFields = documentedFields('### ticker');
    const barFields = documentedFields('### bar (`bar.1s`, `bar.1m`, `bar.5m`, `bar.1h`, `bar.1d`)');
    for (const k of Object.keys(ticker)) expect(tickerFields, `ticker field ${k}`).toContain(k);
    for (const k of Object.keys(bar)) expect(barFields, `bar field ${k}`).toContain(k);
  });
});
