import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';

/**
 * The dashboard's alerts panel refreshes its list every 5 s. While the connection is down the
 * client queues each request until it is back: one refresh at a time, or an hour's outage would
 * send 720 `alert.list` at once on reconnect (over the gateway's message burst, so the frames
 * after it, subscribes included, would be dropped). Timers are Playwright's fake clock.
 */
type W = { panel: { calls: string[]; answerAll(): void } };
let rig: BrowserRig;

describe('dashboard alerts panel during an outage', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({
      web: async (webDir) => {
        await build({
          entryPoints: [join(process.cwd(), 'test', 'browser', 'fixtures', 'alerts-panel-page.ts')],
          outfile: join(webDir, 'panel.js'),
          bundle: true,
          format: 'esm',
          platform: 'browser',
          target: ['es2022'],
          logLevel: 'warning',
        });
        writeFileSync(join(webDir, 'panel.html'), '<!doctype html><meta charset="utf-8"><title>panel</title><script type="module" src="/panel.js"></script>');
      },
    });
  }, 120_000);

  afterAll(() => rig?.close());

  it('a minute unanswered asks for the list once, not twelve times; answered, it polls again', async () => {
    const page = await rig.newPage();
    await page.clock.install();
    await page.goto(`http://127.0.0.1:${rig.engine!.port}/panel.html`);
    await page.waitForFunction(() => (window as unknown as Partial<W>).panel !== undefined);
    const lists = (): Promise<number> => page.evaluate(() => (window as unknown as W).panel.calls.filter((c) => c === 'alert.list').length);
    expect(await lists()).toBe(1);
    await page.clock.runFor(60_000);
    expect(await lists()).toBe(1);
    await page.evaluate(() => (window as unknown as W).panel.answerAll());
    await page.clock.runFor(5_000);
    expect(await lists()).toBe(2);
    expect(rig.pageErrors).toEqual([]);
    await page.close();
  });
});
