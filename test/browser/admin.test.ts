import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The operator's console (/admin) in headless Chromium against a real engine: the API refuses
 * without the service token (401) and with a user's token (403); the page shows live
 * connections, channels with update rates and feeds; an operator posts an announcement that a
 * client receives on `system`, and closes a client's connection.
 */
const SECRET = 'admin-test-secret-0123456789abcdefghijkl';
const SERVICE_TOKEN = 'admin-service-token-0123456789';
/** auth.serviceTokens entry with admin:read only: the console may show, not act */
const READ_ONLY_TOKEN = 'admin-read-only-token-0123456789';

let rig: BrowserRig;
let engine: Engine;
let page: Page;
const base = (): string => `http://127.0.0.1:${engine.port}`;
const userToken = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));

describe('operator console', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({
      engine: {
        auth: {
          mode: 'optional',
          jwtSecret: SECRET,
          serviceToken: SERVICE_TOKEN,
          serviceTokens: [{ name: 'viewer', token: READ_ONLY_TOKEN, scopes: ['admin:read'] }],
        },
        // the many-connections test opens 120 at once from loopback
        limits: { connectionsPerIpPerSec: 0 },
      },
    });
    engine = rig.engine!;
    page = await rig.newPage({ width: 1280, height: 900 });
  }, 120_000);

  afterAll(() => rig?.close());

  it('the API needs the service token: 401 without it or with a wrong one, 403 with a user token', async () => {
    const get = (auth?: string): Promise<Response> => fetch(`${base()}/admin/api/overview`, auth ? { headers: { authorization: auth } } : {});
    const none = await get();
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect(await none.json()).toMatchObject({ error: 'UNAUTHENTICATED' });
    expect((await get('Bearer not-the-service-token')).status).toBe(401);
    const user = await get(`Bearer ${await userToken('mallory')}`);
    expect(user.status).toBe(403);
    expect(await user.json()).toMatchObject({ error: 'FORBIDDEN', message: expect.stringMatching(/mallory.*not an operator/) });
    const close = await fetch(`${base()}/admin/api/connections/x/close`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await userToken('mallory')}` },
    });
    expect(close.status).toBe(403);
    const ok = await get(`Bearer ${SERVICE_TOKEN}`);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ connections: expect.any(Array), channels: expect.any(Array), feeds: expect.any(Array) });
    // bad input: a clear 400 naming the field, an unknown connection 404
    const auth = { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' };
    const bad = await fetch(`${base()}/admin/api/announcements`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ level: 'loud', title: 't', message: 'm' }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: 'BAD_REQUEST', field: 'level' });
    expect((await fetch(`${base()}/admin/api/connections/nope/close`, { method: 'POST', headers: auth })).status).toBe(404);
  });

  it('shows connections, channels with update rates and feeds; posts an announcement; closes a connection', async () => {
    const zoe = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, {
      encoding: 'json',
      headers: { authorization: `Bearer ${await userToken('zoe')}` },
    });
    const welcome = await zoe.waitFor((f) => f.op === 'welcome');
    await zoe.request({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD', 'trade:BTC-USD', 'system'], throttle: 0 });
    await zoe.waitFor((f) => f.op === 'data' && f.ch === 'quote:BTC-USD');

    await page.goto(`${base()}/admin`);
    await page.getByTestId('token').fill(SERVICE_TOKEN);
    await page.getByTestId('sign-in').click();
    await expect.poll(() => page.getByTestId('api-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('ok');

    // zoe's connection: user, IP, subscriptions
    const row = page.locator(`tr[data-conn="${welcome.conn}"]`);
    await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
    const text = (await row.textContent()) ?? '';
    expect(text).toContain('zoe');
    expect(text).toContain('127.0.0.1');
    expect(text).toContain('quote:BTC-USD');
    // the channel with its subscriber and a measured update rate
    const ch = page.locator('tr[data-channel="quote:BTC-USD"]');
    await expect.poll(async () => Number(await ch.getAttribute('data-subscribers')), { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    await expect.poll(async () => Number((await ch.locator('td').nth(3).textContent()) ?? 0), { timeout: 20_000 }).toBeGreaterThan(0);
    // the synthetic feed, reported on the bus
    await expect.poll(() => page.locator('tr[data-feed="synthetic"]').getAttribute('data-state'), { timeout: 20_000 }).toBe('connected');

    // an announcement: the client gets it on `system`, and so does the page through the SDK
    await page.getByTestId('announce-level').selectOption('warning');
    await page.getByTestId('announce-title').fill('Maintenance');
    await page.getByTestId('announce-message').fill('gateway restarts at 22:00 UTC');
    await page.getByTestId('announce-send').click();
    const sys = await zoe.waitFor((f) => f.op === 'data' && f.ch === 'system' && f.d.title === 'Maintenance', 10_000);
    expect(sys.d).toMatchObject({ level: 'warning', message: 'gateway restarts at 22:00 UTC' });
    await expect.poll(() => page.getByTestId('system-message').first().textContent(), { timeout: 10_000 }).toMatch(/\[warning\] Maintenance: gateway restarts/);
    expect(await page.getByTestId('announce-result').getAttribute('data-status')).toBe('202');

    // closing zoe's connection from the page
    await page.getByTestId(`close-${welcome.conn}`).click();
    expect(await zoe.waitClose(10_000)).toBe(1008);
    expect(zoe.closeReason).toBe('closed by an operator');
    await expect.poll(() => row.count(), { timeout: 10_000 }).toBe(0);
    await rig.screenshot(page, 'admin.png', { fullPage: true });
    expect(rig.pageErrors).toEqual([]);
  });

  it('a read-only token (admin:read) sees the lists but no close buttons and no announcement form', async () => {
    const zoe = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, {
      encoding: 'json',
      headers: { authorization: `Bearer ${await userToken('zoe')}` },
    });
    const welcome = await zoe.waitFor((f) => f.op === 'welcome');
    const p2 = await rig.newPage({ width: 1280, height: 900 });
    try {
      await p2.goto(`${base()}/admin`);
      await p2.getByTestId('token').fill(READ_ONLY_TOKEN);
      await p2.getByTestId('sign-in').click();
      await expect.poll(() => p2.getByTestId('api-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('ok');
      const row = p2.locator(`tr[data-conn="${welcome.conn}"]`);
      await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
      expect(await row.textContent()).toContain('zoe');
      expect(await p2.getByTestId(`close-${welcome.conn}`).count()).toBe(0);
      expect(await p2.locator('button', { hasText: 'close' }).count()).toBe(0);
      expect(await p2.getByTestId('announce').isVisible()).toBe(false);
      expect(await p2.getByTestId('read-only').isVisible()).toBe(true);
      expect(await p2.getByTestId('read-only').textContent()).toContain('admin:write');
      // signing in again with a token that may act brings the actions back
      await p2.getByTestId('token').fill(SERVICE_TOKEN);
      await p2.getByTestId('sign-in').click();
      await expect.poll(() => p2.getByTestId(`close-${welcome.conn}`).count(), { timeout: 20_000 }).toBe(1);
      expect(await p2.getByTestId('announce').isVisible()).toBe(true);
      expect(await p2.getByTestId('read-only').isVisible()).toBe(false);
      await rig.screenshot(p2, 'admin-read-only.png', { fullPage: true });
    } finally {
      await p2.close();
      zoe.close();
    }
  });

  it('the system list keeps the newest 200 announcements, so a tab left open does not grow without bound', async () => {
    const p2 = await rig.newPage();
    try {
      await p2.goto(`${base()}/admin`);
      const headers = { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' };
      const announce = async (i: number): Promise<void> => {
        const res = await fetch(`${base()}/admin/api/announcements`, {
          method: 'POST',
          headers,
          body: JSON.stringify({ level: 'info', title: `cap-${i}`, message: `announcement ${i}` }),
        });
        expect(res.status).toBe(202);
      };
      const items = p2.getByTestId('system-message');
      // once the page's subscription to `system` is in place (an announcement shows), 230 more
      await expect
        .poll(
          async () => {
            await announce(0);
            return items.count();
          },
          { timeout: 20_000 },
        )
        .toBeGreaterThan(0);
      const total = 230;
      for (let i = 1; i <= total; i++) await announce(i);
      // the newest arrived (at the top) and the list holds the newest 200, no more
      await expect.poll(() => items.first().textContent(), { timeout: 20_000 }).toContain(`cap-${total}: announcement ${total}`);
      expect(await items.count()).toBe(200);
      expect(await items.last().textContent()).toContain(`cap-${total - 199}: announcement ${total - 199}`);
      expect(rig.pageErrors).toEqual([]);
    } finally {
      await p2.close();
    }
  });

  it('with more connections than the overview lists: the first 100, the totals, a search by user and IP, all of them page by page', async () => {
    const crowd = await Promise.all(Array.from({ length: 120 }, () => TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' })));
    const needle = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, {
      encoding: 'json',
      headers: { authorization: `Bearer ${await userToken('needle')}` },
    });
    const welcome = await needle.waitFor((f) => f.op === 'welcome');
    await Promise.all(crowd.map((c) => c.waitFor((f) => f.op === 'welcome')));
    const p2 = await rig.newPage({ width: 1280, height: 900 });
    try {
      await p2.goto(`${base()}/admin`);
      await p2.getByTestId('token').fill(SERVICE_TOKEN);
      await p2.getByTestId('sign-in').click();
      const rows = p2.getByTestId('connection');
      // the overview: 100 rows, and the count of them all (the page's own `system` client among them)
      await expect.poll(async () => Number(await p2.getByTestId('connection-count').textContent()), { timeout: 20_000 }).toBeGreaterThanOrEqual(121);
      expect(await rows.count()).toBe(100);
      expect(await p2.getByTestId('connection-shown').textContent()).toMatch(/the 100 that need attention first/);
      // the newest first: needle opened last but for the page's own client
      await expect.poll(() => p2.locator(`tr[data-conn="${welcome.conn}"]`).count()).toBe(1);
      // a search by user finds its one connection
      await p2.getByTestId('search-user').fill('needle');
      await p2.getByTestId('search').click();
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(1);
      expect(await rows.first().getAttribute('data-conn')).toBe(welcome.conn);
      expect(await p2.getByTestId('connection-shown').textContent()).toMatch(/1 of the 1 of user "needle"/);
      // the poll does not replace a search's rows
      await p2.waitForTimeout(1500);
      expect(await rows.count()).toBe(1);
      await rig.screenshot(p2, 'admin-search.png', { fullPage: false });
      // every connection, oldest first, 100 a page, then "more"
      await p2.getByTestId('search-user').fill('');
      await p2.getByTestId('search-ip').fill('127.0.0.1');
      await p2.getByTestId('search').click();
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(100);
      expect(await p2.getByTestId('connection-more').isVisible()).toBe(true);
      await p2.getByTestId('connection-more').click();
      const total = Number(await p2.getByTestId('connection-count').textContent());
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(total);
      expect(await p2.getByTestId('connection-more').isVisible()).toBe(false);
      // back to the overview
      await p2.getByTestId('connection-overview').click();
      await expect.poll(() => rows.count(), { timeout: 10_000 }).toBe(100);
      expect(rig.pageErrors).toEqual([]);
    } finally {
      await p2.close();
      needle.close();
      for (const c of crowd) c.close();
    }
  });

  it('the page reports a refused token', async () => {
    const p2 = await rig.newPage();
    try {
      await p2.goto(`${base()}/admin`);
      await p2.getByTestId('token').fill(await userToken('mallory'));
      await p2.getByTestId('sign-in').click();
      await expect.poll(() => p2.getByTestId('api-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('refused');
      expect(await p2.getByTestId('login-error').textContent()).toMatch(/not an operator/);
    } finally {
      await p2.close();
    }
  });
});
