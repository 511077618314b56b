import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { msToNs } from '../../src/core/time.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Day bars as GET /v1/bars serves them on a real gateway, built from trades across the US
 * daylight-saving change of 2026-03-08 and a weekend: each asset class on its own trading day
 * (forex 17:00 New York, stocks 00:00 New York, crypto 00:00 UTC), times in ms, `iv` 86400000
 * even on the 23-hour day, and no bar for a day without trades (none invented for the weekend).
 * Shorter intervals stay on the UTC clock.
 */
const at = (iso: string): number => Date.parse(iso);
let engine: Engine;
let base = '';

beforeAll(async () => {
  // the synthetic feed runs (the publisher comes with a feed) on one symbol this test does not read
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { rate: 1, symbols: ['ETH-USD'], bookLevels: 0 } },
    { roles: { feeds: ['synthetic'] }, env: {} },
  );
  base = `http://127.0.0.1:${engine.port}`;
  const trades: [string, string, number][] = [
    ['EUR-USD', '2026-03-05T23:00:00Z', 1.08], // Thu 18:00 EST: the day that started 22:00 UTC
    ['EUR-USD', '2026-03-06T20:00:00Z', 1.09], // Fri 15:00 EST: the same day; then the weekend
    ['EUR-USD', '2026-03-08T22:30:00Z', 1.1], // Sun 18:30 EDT: the day that started 21:00 UTC
    ['EUR-USD', '2026-03-09T21:30:00Z', 1.11], // Mon 17:30 EDT
    ['EUR-USD', '2026-03-10T21:30:00Z', 1.12], // closes Monday's bar
    ['AAPL', '2026-03-06T15:00:00Z', 230], // Fri 10:00 EST: the day from 05:00 UTC
    ['AAPL', '2026-03-09T15:00:00Z', 231], // Mon 11:00 EDT: the day from 04:00 UTC
    ['AAPL', '2026-03-10T15:00:00Z', 232],
    ['BTC-USD', '2026-03-07T12:00:00Z', 67000],
    ['BTC-USD', '2026-03-08T12:00:00Z', 67100],
    ['BTC-USD', '2026-03-09T12:00:00Z', 67200],
  ];
  let i = 0;
  for (const [sym, iso, p] of trades) engine.publisher!.publish('synthetic', { k: 'trade', sym, id: `t${i++}`, p, s: 1, ts: msToNs(at(iso)) } as never);
});
afterAll(() => engine?.close());

async function bars(query: string): Promise<{ t: number; iv: number; c: number }[]> {
  const res = await fetch(`${base}/v1/bars?${query}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { bars: { t: number; iv: number; c: number }[] }).bars;
}

describe('day bars across a daylight-saving change and a weekend', () => {
  it('start each on its instrument trading day, with no bar for a day without trades', async () => {
    await waitFor(async () => (await bars('symbol=EUR-USD&interval=1d')).length === 3, { what: 'three EUR-USD day bars' });
    const fx = await bars('symbol=EUR-USD&interval=1d');
    expect(fx.map((b) => new Date(b.t).toISOString())).toEqual(['2026-03-05T22:00:00.000Z', '2026-03-08T21:00:00.000Z', '2026-03-09T21:00:00.000Z']);
    expect(fx.map((b) => b.c)).toEqual([1.09, 1.1, 1.11]);
    expect(fx.every((b) => b.iv === 86_400_000)).toBe(true);
    const stock = await bars('symbol=AAPL&interval=1d');
    expect(stock.map((b) => new Date(b.t).toISOString())).toEqual(['2026-03-06T05:00:00.000Z', '2026-03-09T04:00:00.000Z']);
    const crypto = await bars('symbol=BTC-USD&interval=1d');
    expect(crypto.map((b) => new Date(b.t).toISOString())).toEqual(['2026-03-07T00:00:00.000Z', '2026-03-08T00:00:00.000Z']);
  });

  it('page a day range by the bar starts: `to` exclusive at the 23-hour day', async () => {
    const page = await bars(`symbol=EUR-USD&interval=1d&from=${at('2026-03-06T00:00:00Z')}&to=${at('2026-03-09T21:00:00Z')}`);
    expect(page.map((b) => b.t)).toEqual([at('2026-03-08T21:00:00Z')]);
  });

  it('keep shorter intervals on the UTC clock, times in ms', async () => {
    for (const [iv, ms] of [
      ['1s', 1000],
      ['1m', 60_000],
      ['5m', 300_000],
      ['1h', 3_600_000],
    ] as const) {
      const got = await bars(`symbol=EUR-USD&interval=${iv}`);
      expect(
        got.map((b) => b.t),
        iv,
      ).toEqual(['2026-03-05T23:00:00Z', '2026-03-06T20:00:00Z', '2026-03-08T22:30:00Z', '2026-03-09T21:30:00Z'].map((iso) => Math.floor(at(iso) / ms) * ms));
      expect(got.every((b) => b.iv === ms)).toBe(true);
    }
  });
});
