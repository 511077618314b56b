import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine } from '../client/helpers.js';
import { publishTick } from '../auth/helpers.js';

/**
 * The dashboard's alerts and notifications panels in headless Chromium, served by a real engine
 * with its synthetic feeds: an alert created from a board row fires (a trade published over its
 * level), a toast shows it, the unread count goes up, and "Mark all read" brings it to 0.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = join(process.cwd(), 'test', 'artifacts');
const SECRET = 'browser-test-secret-0123456789abcdefghij';
const SERVICE_TOKEN = 'browser-service-token-0123456789';

let webDir: string;
let engine: Engine | undefined;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

describe('dashboard: alerts and notifications', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
    webDir = mkdtempSync(join(tmpdir(), 'tickwire-web-'));
    execFileSync(process.execPath, ['scripts/build-web.mjs', '--outdir', webDir], { stdio: 'pipe' });
    engine = await startTestEngine(undefined, {
      gateway: { webDir },
      auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      alerts: { flushMs: 0 },
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
    page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    page.on('pageerror', (err) => pageErrors.push(String(err)));
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await engine?.close();
    if (webDir) rmSync(webDir, { recursive: true, force: true });
  });

  it('creates an alert from a row, shows a toast when it fires, counts unread and marks read', async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('webby').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    await page.goto(`http://127.0.0.1:${engine!.port}/?token=${jwt}&encoding=json`);
    await expect.poll(() => page.getByTestId('conn-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
    // a row with a price prefills the form
    await expect.poll(() => page.getByTestId('row-AAPL').getAttribute('data-price'), { timeout: 20_000 }).toMatch(/\d/);
    await page.getByTestId('row-AAPL').click();
    await expect.poll(() => page.getByTestId('alert-symbol').inputValue()).toBe('AAPL');
    expect(Number(await page.getByTestId('alert-level').inputValue())).toBeGreaterThan(0);
    // far above the synthetic price, so only our trade crosses it
    await page.getByTestId('alert-level').fill('1000000');
    await page.getByTestId('alert-create').click();
    await expect.poll(() => page.getByTestId('alert-status').textContent(), { timeout: 10_000 }).toBe('alert: AAPL above 1000000');
    await expect.poll(() => page.locator('[data-testid="alerts-list"] li').count(), { timeout: 10_000 }).toBe(1);
    // the synthetic feed's trades arm it; one trade over the level fires it
    await expect
      .poll(
        async () => {
          const r = await fetch(`http://127.0.0.1:${engine!.port}/v1/users/webby/alerts`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
          return ((await r.json()) as { alerts: { state: { phase: string } }[] }).alerts[0]?.state.phase;
        },
        { timeout: 20_000 },
      )
      .toBe('armed');
    publishTick(engine!, 'stock', { k: 'trade', sym: 'AAPL', id: 'big-1', p: 1_000_500, s: 1 } as never);
    // the firing reaches the notifications list (the condition), and the toast shown with it (it lives 8 s)
    await expect.poll(() => page.locator('[data-testid="notification"][data-seq="1"]').count(), { timeout: 20_000 }).toBe(1);
    await expect.poll(() => page.getByTestId('toast').count(), { timeout: 5_000 }).toBeGreaterThanOrEqual(1);
    expect(await page.getByTestId('toast').first().textContent()).toContain('AAPL above 1000000');
    await expect.poll(() => page.getByTestId('unread-count').textContent(), { timeout: 10_000 }).toBe('1');
    // a backend's notification lands in the panel too
    const post = await fetch(`http://127.0.0.1:${engine!.port}/v1/users/webby/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'dep-1', type: 'deposit.credited', title: 'Deposit credited', body: '1,000.00 USD' }),
    });
    expect(post.status).toBe(201);
    await expect.poll(() => page.getByTestId('unread-count').textContent(), { timeout: 10_000 }).toBe('2');
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-alerts.png') });
    await page.getByTestId('mark-all-read').click();
    await expect.poll(() => page.getByTestId('unread-count').textContent(), { timeout: 10_000 }).toBe('0');
    // persisted: the service API agrees
    const list = await fetch(`http://127.0.0.1:${engine!.port}/v1/users/webby/notifications`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
    expect(((await list.json()) as { unread: number }).unread).toBe(0);
    expect(pageErrors).toEqual([]);
  });
});
