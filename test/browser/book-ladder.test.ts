import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookChecksum } from '../../src/protocol/book.js';
import { bootBrowser } from '../helpers/browser.js';
import type { BrowserRig } from '../helpers/browser.js';

/**
 * The dashboard's depth ladder (web/book.ts) in headless Chromium: picking a crypto symbol shows
 * its order book, asks above bids, updating live, and the book the page rebuilt checks out
 * against the server's checksums (no resync needed) and, once the market is stopped, equals the
 * engine's book.
 */
interface LadderWindow {
  tickwire: { ladder: { stats: { items: number; resyncs: number }; snapshot(): { checksum: number; bids: [number, number][]; asks: [number, number][] } } };
}

let rig: BrowserRig;
let page: Page;

describe('dashboard depth ladder', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({ engine: { synthetic: { seed: 3, rate: 1500 } } });
    page = await rig.newPage({ width: 1280, height: 1100 });
  }, 120_000);
  afterAll(async () => {
    await rig?.close();
  });

  const ladder = (): Promise<{ items: number; resyncs: number; checksum: number; bids: [number, number][]; asks: [number, number][] }> =>
    page.evaluate(() => {
      const l = (window as unknown as LadderWindow).tickwire.ladder;
      return { ...l.stats, ...l.snapshot() };
    });

  it("shows the selected crypto symbol's book, live, exactly the server's", async () => {
    const engine = rig.engine!;
    await page.goto(`http://127.0.0.1:${engine.port}/?throttle=100`);
    await expect.poll(() => page.getByTestId('conn-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
    await expect.poll(() => page.getByTestId('book-symbol').textContent(), { timeout: 10_000 }).toMatch(/no book/); // AAPL: a stock
    await page.locator('tr[data-symbol="BTC-USD"]').click();
    await expect.poll(() => page.getByTestId('book-symbol').textContent(), { timeout: 10_000 }).toBe('BTC-USD');
    await expect.poll(async () => page.locator('tr[data-testid="book-bid"]').count(), { timeout: 20_000 }).toBe(10);
    await expect.poll(async () => page.locator('tr[data-testid="book-ask"]').count(), { timeout: 20_000 }).toBe(10);
    // live: the ladder's top changes
    const top = async (): Promise<string | null> => page.locator('tr[data-testid="book-bid"]').first().getAttribute('data-price');
    const first = await top();
    const items0 = (await ladder()).items;
    await expect.poll(async () => (await ladder()).items, { timeout: 20_000 }).toBeGreaterThan(items0 + 10);
    await expect.poll(top, { timeout: 20_000 }).not.toBe(first);
    // asks above bids, best prices next to the spread
    const prices = await page
      .locator('tr[data-testid^="book-"]')
      .evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-testid'), Number(r.getAttribute('data-price'))]));
    const asks = prices.filter(([k]) => k === 'book-ask').map(([, p]) => p as number);
    const bids = prices.filter(([k]) => k === 'book-bid').map(([, p]) => p as number);
    expect(asks).toEqual([...asks].sort((a, b) => b - a));
    expect(bids).toEqual([...bids].sort((a, b) => b - a));
    expect(Math.min(...asks)).toBeGreaterThan(Math.max(...bids));
    await rig.screenshot(page, 'dashboard-book.png');

    // stop the market: the page's book is the engine's book, and never needed a resync
    await engine.feeds!.stopAll();
    const truth = engine.publisher!.books.get('BTC-USD')!;
    await expect
      .poll(async () => JSON.stringify({ bids: (await ladder()).bids, asks: (await ladder()).asks }), { timeout: 10_000 })
      .toBe(JSON.stringify(truth.view(10)));
    const l = await ladder();
    expect(l.checksum).toBe(bookChecksum(truth.view(10).bids, truth.view(10).asks));
    expect(l.resyncs).toBe(0);
    expect(rig.pageErrors).toEqual([]);
  });
});
