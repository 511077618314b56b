import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { msToNs } from '../../src/core/time.js';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';

/**
 * The dashboard's chart in headless Chromium: it opens with history from the first frame (the
 * subscribe's `history`), draws a time axis, follows live bars, and scrolling back loads older
 * bars through GET /v1/bars. The engine runs the synthetic feed; the older minute bars are
 * provider bars put in through the publisher, as a provider's would be.
 */
const MIN = 60_000;
const HISTORY_BARS = 600;

interface ChartView {
  bars: number;
  oldest: number | undefined;
  newest: number | undefined;
  from: number | undefined;
  to: number | undefined;
  offset: number;
  pagesLoaded: number;
  exhausted: boolean;
}
const view = (page: Page): Promise<ChartView> => page.evaluate(() => (window as unknown as { tickwire: { chart(): ChartView } }).tickwire.chart());

let rig: BrowserRig;
let engine: Engine;
const nowMinute = Math.floor(Date.now() / MIN) * MIN;
const firstBar = nowMinute - (HISTORY_BARS + 5) * MIN;

describe('dashboard chart with history', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({ engine: { synthetic: { rate: 200 } } });
    engine = rig.engine!;
    // ten hours of closed minute bars for AAPL, as a provider sends them
    for (let i = 0; i < HISTORY_BARS; i++) {
      const t = firstBar + i * MIN;
      const c = 180 + 5 * Math.sin(i / 20);
      engine.publisher!.publish('history-provider', {
        k: 'bar',
        sym: 'AAPL',
        iv: '1m',
        t,
        o: c - 0.2,
        h: c + 0.5,
        l: c - 0.5,
        c,
        v: 1000 + i,
        n: 10,
        closed: true,
        ts: msToNs(t + MIN),
      } as never);
    }
  }, 120_000);

  afterAll(() => rig?.close());

  it('opens with history and a time axis, then scrolls back through GET /v1/bars', async () => {
    const page = await rig.newPage({ width: 1280, height: 860 });
    const barRequests: string[] = [];
    page.on('request', (r) => {
      if (r.url().includes('/v1/bars')) barRequests.push(r.url());
    });
    await page.goto(`http://127.0.0.1:${engine.port}/?symbols=AAPL,BTC-USD&interval=1m`);
    // the first bar frame brings 150 closed bars: the chart is full at once, before any scroll
    await expect.poll(async () => (await view(page)).bars, { timeout: 20_000 }).toBeGreaterThanOrEqual(150);
    const first = await view(page);
    expect(first.offset).toBe(0);
    expect(barRequests).toEqual([]); // nothing fetched over HTTP yet: history came with the subscribe
    expect(first.newest! - first.from!).toBeGreaterThanOrEqual(89 * MIN); // a full view of 90 candles
    await rig.screenshot(page, 'chart-history.png');
    // the time axis labels are drawn (HH:MM for minute bars)
    const labels = await page.evaluate(() => {
      const seen: string[] = [];
      const proto = CanvasRenderingContext2D.prototype;
      const orig = proto.fillText;
      proto.fillText = function (text: string, x: number, y: number) {
        seen.push(text);
        return orig.call(this, text, x, y);
      };
      return new Promise<string[]>((resolve) => {
        (window as unknown as { tickwire: { chart(): unknown } }).tickwire.chart();
        window.dispatchEvent(new Event('resize'));
        const canvas = document.getElementById('chart') as HTMLCanvasElement;
        canvas.style.height = '261px'; // a resize makes it draw again
        setTimeout(() => {
          proto.fillText = orig;
          resolve(seen);
        }, 500);
      });
    });
    expect(labels.filter((l) => /^\d\d:\d\d$/.test(l)).length).toBeGreaterThanOrEqual(3);

    // scroll back with the mouse wheel over the chart: older pages load from GET /v1/bars
    const box = (await page.getByTestId('chart').boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < 40; i++) await page.mouse.wheel(0, 200);
    await expect.poll(async () => (await view(page)).oldest, { timeout: 20_000 }).toBeLessThanOrEqual(firstBar + 10 * MIN);
    const back = await view(page);
    expect(back.offset).toBeGreaterThan(0);
    expect(back.pagesLoaded).toBeGreaterThan(0);
    expect(barRequests.length).toBeGreaterThan(0);
    expect(barRequests[0]).toMatch(/symbol=AAPL&interval=1m&to=\d+&limit=\d+/);
    // keep scrolling: every provider bar arrives, then the chart knows there is nothing older
    for (let i = 0; i < 80; i++) await page.mouse.wheel(0, 200);
    await expect.poll(async () => (await view(page)).exhausted, { timeout: 20_000 }).toBe(true);
    expect((await view(page)).oldest).toBe(firstBar);
    await rig.screenshot(page, 'chart-scrolled-back.png');
    // double-click returns to live
    await page.mouse.dblclick(box.x + box.width / 2, box.y + box.height / 2);
    await expect.poll(async () => (await view(page)).offset, { timeout: 5000 }).toBe(0);
    expect(rig.pageErrors).toEqual([]);
    await page.close();
  });
});
