import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { msToNs } from '../../src/core/time.js';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';

/**
 * The dashboard when cancels empty a day and its bars (docs/protocol.md, "Trade corrections and
 * cancels"): the ticker comes with `empty: true` and the bar with `empty: true`. The board then
 * shows no last price, no change and no day range (not the cancelled price, not the 0 the ticker
 * carries when no previous close is known), the chart drops the candle, and the next trade sets
 * both again. The engine's synthetic feed runs BTC-USD only; AAPL's trades and cancel go in
 * through the publisher, as a provider's would.
 */
const MIN = 60_000;

interface ChartView {
  bars: number;
  newest: number | undefined;
}
const view = (page: Page): Promise<ChartView> => page.evaluate(() => (window as unknown as { tickwire: { chart(): ChartView } }).tickwire.chart());

let rig: BrowserRig;
let engine: Engine;

describe('dashboard: a day emptied by cancels', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({ engine: { synthetic: { symbols: ['BTC-USD'] } } });
    engine = rig.engine!;
  }, 120_000);

  afterAll(() => rig?.close());

  it("shows no last price and no candle once the day's only trade is cancelled, and the next trade sets them again", async () => {
    const page = await rig.newPage({ width: 1280, height: 860 });
    await page.goto(`http://127.0.0.1:${engine.port}/?symbols=AAPL,BTC-USD&interval=1m`);
    await expect.poll(() => page.getByTestId('conn-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
    // the chart (AAPL, selected) is subscribed before the first trade: it comes live
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { tickwire: { client: { subscriptions: string[] } } }).tickwire.client.subscriptions))
      .toContain('bar.1m:AAPL');
    const row = page.getByTestId('row-AAPL');
    const text = (id: string): Promise<string | null> => page.getByTestId(`${id}-AAPL`).textContent();
    const t = Date.now();
    const minute = Math.floor(t / MIN) * MIN;
    engine.publisher!.publish('alpaca', { k: 'trade', sym: 'AAPL', id: 'V:1', p: 187.25, s: 10, ts: msToNs(t) } as never);
    await expect.poll(() => text('price'), { timeout: 20_000 }).toBe('187.25');
    await expect.poll(async () => (await view(page)).newest, { timeout: 20_000 }).toBe(minute);
    expect(await row.getAttribute('data-price')).toBe('187.25');

    // the trade is cancelled: the server sends the ticker with `empty: true` (p, o, h, l are 0, as
    // no previous close is known) and the minute bar with `empty: true`
    engine.publisher!.publish('alpaca', { k: 'cancel', sym: 'AAPL', ref: 'V:1', ts: msToNs(t + 1) } as never);
    await expect.poll(() => text('price'), { timeout: 20_000 }).toBe('—');
    expect(await row.getAttribute('data-empty')).toBe('true');
    expect(await page.getByTestId('price-AAPL').getAttribute('title')).toMatch(/no trade left today/);
    for (const id of ['chg', 'chgp', 'high', 'low']) expect(await text(id), id).toBe('–');
    expect(await row.getAttribute('data-price')).toBeNull(); // nothing to prefill an alert level with
    await expect.poll(async () => (await view(page)).bars, { timeout: 20_000 }).toBe(0);
    await rig.screenshot(page, 'empty-day.png');
    // a page opened now gets the emptied ticker and bar as its snapshots: no price, no candle either
    const late = await rig.newPage({ width: 1280, height: 860 });
    await late.goto(`http://127.0.0.1:${engine.port}/?symbols=AAPL,BTC-USD&interval=1m`);
    const perChannel = (ch: string): Promise<number> =>
      late.evaluate((c) => (window as unknown as { tickwire: { stats: { perChannel: Record<string, number> } } }).tickwire.stats.perChannel[c] ?? 0, ch);
    await expect.poll(() => perChannel('bar.1m:AAPL'), { timeout: 20_000 }).toBeGreaterThan(0);
    await expect.poll(() => perChannel('ticker:AAPL'), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(await late.getByTestId('price-AAPL').textContent()).toBe('—');
    expect((await view(late)).bars).toBe(0);
    await late.close();

    // the next trade is the day's first again: price, change and candle are back
    engine.publisher!.publish('alpaca', { k: 'trade', sym: 'AAPL', id: 'V:2', p: 190, s: 5, ts: msToNs(t + 2) } as never);
    await expect.poll(() => text('price'), { timeout: 20_000 }).toBe('190.00');
    expect(await row.getAttribute('data-empty')).toBeNull();
    expect(await text('chg')).toBe('0.00');
    expect(await text('high')).toBe('190.00');
    await expect.poll(async () => (await view(page)).bars, { timeout: 20_000 }).toBe(1);
    expect(rig.pageErrors).toEqual([]);
    await page.close();
  });
});
