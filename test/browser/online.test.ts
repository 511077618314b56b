import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';

/**
 * Chromium going offline and online again (playwright's network emulation fires the window's
 * `offline` and `online` events): a client waiting out a long backoff delay after an outage
 * reconnects as soon as the network is back, not minutes later; an open connection is given up
 * when the network goes (not shown as open, with stale data, until the heartbeat gives up).
 */
interface Tw {
  state(): string;
  transport(): string;
  delays: number[];
  closes: string[];
}
type W = { tw: Tw };
let rig: BrowserRig;

describe('the SDK in a browser that goes offline and online', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({
      web: async (webDir) => {
        await build({
          entryPoints: [join(process.cwd(), 'test', 'browser', 'fixtures', 'online-page.ts')],
          outfile: join(webDir, 'online.js'),
          bundle: true,
          format: 'esm',
          platform: 'browser',
          target: ['es2022'],
          external: ['ws'],
          logLevel: 'warning',
        });
        writeFileSync(
          join(webDir, 'online.html'),
          '<!doctype html><meta charset="utf-8"><title>online</title><script type="module" src="/online.js"></script>',
        );
      },
    });
  }, 120_000);

  afterAll(() => rig?.close());

  it('the online event ends a 300 s backoff wait: the client is back within seconds', async () => {
    const port = rig.engine!.port;
    const page = await rig.newPage();
    await page.goto(`http://127.0.0.1:${port}/online.html`);
    await expect.poll(() => page.evaluate(() => (window as unknown as W).tw.state()), { timeout: 20_000 }).toBe('open');
    // an outage: the gateway goes away, the client waits its backoff delay
    await rig.engine!.close();
    rig.engine = undefined;
    await expect.poll(() => page.evaluate(() => (window as unknown as W).tw.delays.length), { timeout: 20_000 }).toBeGreaterThan(0);
    expect(await page.evaluate(() => (window as unknown as W).tw.delays[0])).toBe(300_000);
    await rig.startEngine(port);
    // the laptop's network drops and comes back
    await page.context().setOffline(true);
    await page.context().setOffline(false);
    await expect.poll(() => page.evaluate(() => (window as unknown as W).tw.state()), { timeout: 20_000 }).toBe('open');
    expect(await page.evaluate(() => (window as unknown as W).tw.transport())).toBe('websocket');
    expect(rig.pageErrors).toEqual([]);
    await page.close();
  });

  it('the offline event ends an open connection at once, and the online event brings it back', async () => {
    const page = await rig.newPage();
    await page.goto(`http://127.0.0.1:${rig.engine!.port}/online.html`);
    const state = (): Promise<string> => page.evaluate(() => (window as unknown as W).tw.state());
    await expect.poll(state, { timeout: 20_000 }).toBe('open');
    // the laptop's Wi-Fi drops: the socket may say nothing for a long time (a real network leaves
    // it open until TCP or the heartbeat, 15 + 10 s, gives up; here frames still pass), but the
    // browser knows, and so must the page: `reconnecting`, not `open` with stale prices
    await page.context().setOffline(true);
    await expect.poll(state, { timeout: 3_000 }).toBe('reconnecting');
    expect(await page.evaluate(() => (window as unknown as W).tw.closes)).toEqual(['4000 offline']);
    // the 300 s backoff wait is cut short by the network coming back
    await page.context().setOffline(false);
    await expect.poll(state, { timeout: 20_000 }).toBe('open');
    expect(rig.pageErrors).toEqual([]);
    await page.close();
  });

  it('the tab shown again ends a 300 s backoff wait: the client is back within seconds', async () => {
    const port = rig.engine!.port;
    const page = await rig.newPage();
    await page.goto(`http://127.0.0.1:${port}/online.html`);
    const state = (): Promise<string> => page.evaluate(() => (window as unknown as W).tw.state());
    await expect.poll(state, { timeout: 20_000 }).toBe('open');
    // headless Chromium keeps every tab visible: the page's visibility is set as a browser sets it
    // when the user switches tabs (visibilityState, then the visibilitychange event)
    const setVisibility = (v: 'hidden' | 'visible'): Promise<void> =>
      page.evaluate((value) => {
        Object.defineProperty(document, 'visibilityState', { value, configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      }, v);
    // the user switches to another tab; the gateway restarts meanwhile; the client waits its backoff
    await setVisibility('hidden');
    const before = await page.evaluate(() => (window as unknown as W).tw.delays.length);
    await rig.engine!.close();
    rig.engine = undefined;
    await expect.poll(() => page.evaluate(() => (window as unknown as W).tw.delays.length), { timeout: 20_000 }).toBeGreaterThan(before);
    await rig.startEngine(port);
    // back to the tab: the board fills again now, not up to 5 minutes later
    await setVisibility('visible');
    await expect.poll(state, { timeout: 20_000 }).toBe('open');
    expect(rig.pageErrors).toEqual([]);
    await page.close();
  });
});
