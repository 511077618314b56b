import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';

/**
 * The dashboard's chart (web/chart.ts) on its own in headless Chromium, fed bars by the page: a
 * bar flagged `empty` (docs/protocol.md, "Trade corrections and cancels": its trades were
 * cancelled, and the bar store keeps it flagged, so it comes back in `history` and in
 * GET /v1/bars pages) never becomes a candle, takes the candle with its `t` off, keeps a
 * scrolled-back view on the same bars, and a run of them in the pages loaded while scrolling back
 * is paged past (each page asked once) down to the oldest bar.
 */
const MIN = 60_000;
const T = 1_700_000_040_000; // a minute boundary

const HARNESS = `
import { BarChart } from ${JSON.stringify(join(process.cwd(), 'web', 'chart.ts'))};
const MIN = ${MIN};
const T = ${T};
const bar = (i, extra = {}) => ({ t: T + i * MIN, iv: MIN, o: 10, h: 11, l: 9, c: 10.5, v: 1, n: 1, closed: true, ...extra });
const emptied = (i) => bar(i, { v: 0, n: 0, empty: true, corrected: true });
window.harness = {
  bar,
  emptied,
  make(store) {
    const canvas = document.body.appendChild(document.createElement('canvas'));
    canvas.style.width = '900px';
    canvas.style.height = '300px';
    const asked = [];
    // GET /v1/bars as the gateway answers it: the \`limit\` newest stored bars before \`to\`, emptied ones flagged
    const loadOlder = (before, limit) =>
      new Promise((resolve) => setTimeout(() => {
        asked.push(before);
        resolve(store.filter((b) => b.t < before).slice(-limit));
      }, 1));
    return { chart: new BarChart(canvas, { visible: 90, pageBars: 100, loadOlder }), asked };
  },
};
`;

interface ChartView {
  bars: number;
  oldest: number | undefined;
  newest: number | undefined;
  from: number | undefined;
  to: number | undefined;
  offset: number;
  exhausted: boolean;
}

let rig: BrowserRig;
let page: Page;

describe('dashboard chart: bars emptied by cancels', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({
      web: async (webDir) => {
        await build({
          stdin: { contents: HARNESS, resolveDir: process.cwd(), loader: 'js' },
          bundle: true,
          format: 'esm',
          platform: 'browser',
          outfile: join(webDir, 'harness.js'),
          logLevel: 'warning',
        });
        writeFileSync(join(webDir, 'index.html'), '<!doctype html><meta charset="utf-8"><body><script type="module" src="harness.js"></script></body>');
      },
      engine: { synthetic: { symbols: ['BTC-USD'], rate: 1, bookLevels: 0 } },
    });
    page = await rig.newPage({ width: 1000, height: 700 });
    await page.goto(`http://127.0.0.1:${rig.engine!.port}/`);
    await page.waitForFunction(() => 'harness' in window);
  }, 120_000);

  afterAll(() => rig?.close());

  it('an empty bar, live or in history, is no candle and takes the candle with its t off; scrolled back, the view stays on the same bars', async () => {
    const v = await page.evaluate(() => {
      type Bar = { t: number; empty?: true };
      const h = (
        window as unknown as {
          harness: {
            bar(i: number, extra?: object): Bar;
            emptied(i: number): Bar;
            make(s: Bar[]): { chart: { load(b: Bar[]): void; push(b: Bar): void; scrollBy(n: number): void; view(): ChartView } };
          };
        }
      ).harness;
      const { chart } = h.make([]);
      const views: Record<string, ChartView> = {};
      // history with two emptied bars among 300
      chart.load(Array.from({ length: 300 }, (_, i) => (i === 10 || i === 150 ? h.emptied(i) : h.bar(i))));
      views.history = chart.view();
      // live, following: the open bar emptied goes, the one before it is the newest
      chart.push(h.bar(300, { closed: false }));
      chart.push({ ...h.emptied(300), closed: false } as Bar);
      views.live = chart.view();
      // an emptied bar never seen: nothing changes
      chart.push(h.emptied(301));
      views.unseen = chart.view();
      // scrolled back 50 candles: the newest bar (right of the view) emptied, the view keeps its bars
      chart.scrollBy(50);
      views.back = chart.view();
      chart.push(h.emptied(299));
      views.backAfter = chart.view();
      // a bar in the view emptied: it goes, the view still ends on the same bar
      chart.push(h.emptied(240));
      views.inView = chart.view();
      return views;
    });
    const at = (i: number): number => T + i * MIN;
    expect(v.history).toMatchObject({ bars: 298, oldest: at(0), newest: at(299) });
    expect(v.live).toMatchObject({ bars: 298, newest: at(299), offset: 0 });
    expect(v.unseen).toEqual(v.live);
    expect(v.back).toMatchObject({ offset: 50, to: at(249) });
    expect(v.backAfter).toMatchObject({ bars: 297, newest: at(298), offset: 49, from: v.back!.from, to: v.back!.to });
    expect(v.inView).toMatchObject({ bars: 296, offset: 49, to: at(249) });
    expect(rig.pageErrors).toEqual([]);
  });

  it('scrolling back pages past a run of emptied bars, each page asked once, down to the oldest bar', async () => {
    const r = await page.evaluate(async () => {
      type Bar = { t: number; empty?: true };
      const h = (
        window as unknown as {
          harness: {
            bar(i: number): Bar;
            emptied(i: number): Bar;
            make(s: Bar[]): { chart: { load(b: Bar[]): void; scrollBy(n: number): void; view(): ChartView }; asked: number[] };
          };
        }
      ).harness;
      // 1000 stored bars before the live ones; 500 in the middle emptied (5 whole pages of 100)
      const store = Array.from({ length: 1000 }, (_, i) => (i >= 200 && i < 700 ? h.emptied(i - 1000) : h.bar(i - 1000)));
      const { chart, asked } = h.make(store);
      chart.load(Array.from({ length: 150 }, (_, i) => h.bar(i)));
      const until = performance.now() + 10_000;
      while (!chart.view().exhausted && asked.length < 100 && performance.now() < until) {
        chart.scrollBy(1000);
        await new Promise((res) => setTimeout(res, 5));
      }
      return { view: chart.view(), asked };
    });
    expect(r.view.exhausted).toBe(true);
    expect(r.view.oldest).toBe(T - 1000 * MIN);
    expect(r.view.bars).toBe(150 + 500);
    expect(new Set(r.asked).size).toBe(r.asked.length); // no page asked twice
    expect(r.asked.length).toBeLessThanOrEqual(12); // 10 pages of 100 and the empty answer
    expect(rig.pageErrors).toEqual([]);
  });
});
