import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { NoUpgradeProxy } from '../helpers/no-upgrade-proxy.js';

/**
 * The SDK in headless Chromium behind a loopback proxy that refuses WebSocket upgrades (403), as
 * some corporate proxies do: the client falls back to the HTTP stream by itself, receives
 * quotes, subscribes and unsubscribes; once upgrades pass again it moves back to WebSocket; and
 * once welcomed over WebSocket, refused upgrades are an outage to it: it stays on WebSocket.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

interface PageApi {
  tw: {
    quotes: Record<string, number>;
    errors: string[];
    state(): string;
    transport(): string;
    subscribe(channels: string[]): Promise<{ subscribed: string[]; rejected: string[] }>;
    unsubscribe(channels: string[]): Promise<string[]>;
    ping(): Promise<number>;
  };
}

let webDir: string;
let engine: Engine;
let proxy: NoUpgradeProxy;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

const tw = <T>(fn: (api: PageApi['tw'], arg: unknown) => T | Promise<T>, arg?: unknown): Promise<T> =>
  page.evaluate(
    ([src, a]) => {
      // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the test's function, run in the page
      const f = new Function('api', 'arg', `return (${src})(api, arg)`) as (api: unknown, arg: unknown) => unknown;
      return f((window as unknown as PageApi).tw, a);
    },
    [fn.toString(), arg] as const,
  ) as Promise<T>;

describe('fallback transport in a browser with WebSocket upgrades refused', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    webDir = mkdtempSync(join(tmpdir(), 'tickwire-fallback-'));
    await build({
      entryPoints: [join(process.cwd(), 'test/browser/fixtures/fallback-page.ts')],
      outfile: join(webDir, 'fallback.js'),
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: ['es2022'],
      external: ['ws'],
      logLevel: 'warning',
      conditions: ['tickwire-source'], // the workspace package from its sources
    });
    writeFileSync(
      join(webDir, 'fallback.html'),
      '<!doctype html><meta charset="utf-8"><title>fallback</title><script type="module" src="/fallback.js"></script>',
    );
    engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { seed: 6, rate: 800 }, gateway: { webDir } }, { env: {} });
    proxy = await NoUpgradeProxy.start(engine.port);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage();
    page.on('pageerror', (err) => pageErrors.push(String(err)));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await proxy?.close();
    await engine?.close();
    if (webDir) rmSync(webDir, { recursive: true, force: true });
  });

  it('falls back to the HTTP stream, receives quotes, subscribes and unsubscribes', async () => {
    await page.goto(`http://127.0.0.1:${proxy.port}/fallback.html?retry=1000`);
    await expect.poll(() => tw((api) => api.state()), { timeout: 20_000 }).toBe('open');
    expect(proxy.refusedUpgrades).toBeGreaterThanOrEqual(1);
    expect(await tw((api) => api.transport())).toBe('http');

    const ack = await tw((api, ch) => api.subscribe(ch as string[]), ['quote:BTC-USD', 'quote:ETH-USD', 'quote:NOPE']);
    expect(ack).toEqual({ subscribed: ['quote:BTC-USD', 'quote:ETH-USD'], rejected: ['quote:NOPE'] });
    await expect.poll(() => tw((api) => api.quotes['quote:BTC-USD'] ?? 0), { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
    await expect.poll(() => tw((api) => api.quotes['quote:ETH-USD'] ?? 0), { timeout: 20_000 }).toBeGreaterThanOrEqual(3);

    expect(await tw((api, ch) => api.unsubscribe(ch as string[]), ['quote:ETH-USD'])).toEqual(['quote:ETH-USD']);
    await tw((api) => api.ping());
    const eth = await tw((api) => api.quotes['quote:ETH-USD'] ?? 0);
    const btc = await tw((api) => api.quotes['quote:BTC-USD'] ?? 0);
    await expect.poll(() => tw((api) => api.quotes['quote:BTC-USD'] ?? 0), { timeout: 20_000 }).toBeGreaterThan(btc + 2);
    expect(await tw((api) => api.quotes['quote:ETH-USD'] ?? 0)).toBe(eth);
    // still on the fallback: the WebSocket retries keep being refused
    expect(await tw((api) => api.transport())).toBe('http');
    expect(pageErrors).toEqual([]);
  });

  it('moves back to WebSocket once upgrades pass, keeping its subscriptions', async () => {
    const refused = proxy.refusedUpgrades;
    await expect.poll(() => proxy.refusedUpgrades, { timeout: 20_000 }).toBeGreaterThan(refused); // a retry, refused
    proxy.allowUpgrades = true;
    await expect.poll(() => tw((api) => `${api.transport()}/${api.state()}`), { timeout: 20_000 }).toBe('websocket/open');
    const btc = await tw((api) => api.quotes['quote:BTC-USD'] ?? 0);
    await expect.poll(() => tw((api) => api.quotes['quote:BTC-USD'] ?? 0), { timeout: 20_000 }).toBeGreaterThan(btc + 2);
    expect(pageErrors).toEqual([]);
  });

  it('once welcomed over WebSocket, refused WebSockets are an outage: it retries WebSocket, not the stream, and comes back over it', async () => {
    // the browser sees a refused upgrade exactly as a server that is down: an opaque error
    proxy.allowUpgrades = false;
    const refused = proxy.refusedUpgrades;
    proxy.dropUpgraded();
    await expect.poll(() => proxy.refusedUpgrades, { timeout: 20_000 }).toBeGreaterThanOrEqual(refused + 2);
    expect(await tw((api) => `${api.transport()}/${api.state()}`)).toBe('websocket/reconnecting');
    proxy.allowUpgrades = true;
    await expect.poll(() => tw((api) => `${api.transport()}/${api.state()}`), { timeout: 20_000 }).toBe('websocket/open');
    const btc = await tw((api) => api.quotes['quote:BTC-USD'] ?? 0);
    await expect.poll(() => tw((api) => api.quotes['quote:BTC-USD'] ?? 0), { timeout: 20_000 }).toBeGreaterThan(btc + 2);
    expect(pageErrors).toEqual([]);
  });
});
