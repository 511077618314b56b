import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';
import { publishTick } from '../auth/helpers.js';

/**
 * The dashboard's alerts and notifications panels in headless Chromium, served by a real engine
 * with its synthetic feeds: an alert created from a board row fires (a trade published over its
 * level), a toast shows it, the unread count goes up, and "Mark all read" brings it to 0.
 */
const SECRET = 'browser-test-secret-0123456789abcdefghij';
const SERVICE_TOKEN = 'browser-service-token-0123456789';

let rig: BrowserRig;
let engine: Engine;
let page: Page;

describe('dashboard: alerts and notifications', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({ engine: { auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, alerts: { flushMs: 0 } } });
    engine = rig.engine!;
    page = await rig.newPage({ width: 1280, height: 1100 });
  }, 120_000);

  afterAll(() => rig?.close());

  it('creates an alert from a row, shows a toast when it fires, counts unread and marks read', async () => {
    const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('webby').setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    await page.goto(`http://127.0.0.1:${engine.port}/?token=${jwt}&encoding=json`);
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
          const r = await fetch(`http://127.0.0.1:${engine.port}/v1/users/webby/alerts`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
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
    const post = await fetch(`http://127.0.0.1:${engine.port}/v1/users/webby/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'dep-1', type: 'deposit.credited', title: 'Deposit credited', body: '1,000.00 USD' }),
    });
    expect(post.status).toBe(201);
    await expect.poll(() => page.getByTestId('unread-count').textContent(), { timeout: 10_000 }).toBe('2');
    await rig.screenshot(page, 'dashboard-alerts.png');
    await page.getByTestId('mark-all-read').click();
    await expect.poll(() => page.getByTestId('unread-count').textContent(), { timeout: 10_000 }).toBe('0');
    // persisted: the service API agrees
    const list = await fetch(`http://127.0.0.1:${engine.port}/v1/users/webby/notifications`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
    expect(((await list.json()) as { unread: number }).unread).toBe(0);
    expect(rig.pageErrors).toEqual([]);
  });
});
