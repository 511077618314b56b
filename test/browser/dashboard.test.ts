import { SignJWT } from 'jose';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';
import { quietFor } from '../helpers/wait.js';

/**
 * The dashboard in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core),
 * served by a real engine: it connects, prices move, the throttle selector changes the update
 * rate, and it reconnects by itself when the engine restarts on the same port.
 */
const SYMBOLS = ['AAPL', 'MSFT', 'NVDA', 'TSLA', 'BRK.B', 'BTC-USD', 'ETH-USD', 'SOL-USD', 'EUR-USD', 'GBP-USD', 'USD-JPY'];
const TICKERS = SYMBOLS.map((s) => `ticker:${s}`);

/** what web/app.ts exposes on window for tests and debugging */
interface DashboardWindow {
  tickwire: { stats: { perChannel: Record<string, number>; reconnects: number }; throttle(): number };
}

let rig: BrowserRig;
let port: number;
let page: Page;

// auth optional: the board works without a token, the private panels with one
const SECRET = 'browser-test-secret-0123456789abcdefghij';
const SERVICE_TOKEN = 'browser-service-token-0123456789';

async function service(method: string, path: string, body: unknown): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: `Bearer ${SERVICE_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
}

/** Update counts per channel, as counted by the page itself. */
const counts = (): Promise<Record<string, number>> => page.evaluate(() => ({ ...(window as unknown as DashboardWindow).tickwire.stats.perChannel }));
const sumTickers = (c: Record<string, number>): number => TICKERS.reduce((n, ch) => n + (c[ch] ?? 0), 0);
const prices = (): Promise<Record<string, string>> =>
  page.evaluate(() => Object.fromEntries([...document.querySelectorAll<HTMLElement>('tr.row')].map((r) => [r.dataset.symbol!, r.dataset.price ?? ''])));
const connState = (): Promise<string | null> => page.getByTestId('conn-state').getAttribute('data-state');

async function pricesMove(what: string): Promise<void> {
  const before = await prices();
  await expect
    .poll(
      async () => {
        const now = await prices();
        return SYMBOLS.filter((s) => now[s] && before[s] && now[s] !== before[s]).length;
      },
      { timeout: 20_000, interval: 200, message: what },
    )
    .toBeGreaterThan(0);
}

describe('dashboard in a browser', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    // delayed data half a second old (for a token that gets stocks delayed only), so that the
    // portfolio test sees such a line valued within the test
    rig = await bootBrowser({ engine: { auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN, delayMs: 500 } } });
    port = rig.engine!.port;
    page = await rig.newPage({ width: 1280, height: 860 });
  }, 120_000);

  afterAll(() => rig?.close());

  it('connects and shows live prices for stocks, crypto and forex', async () => {
    await page.goto(`http://127.0.0.1:${port}/`);
    await expect.poll(connState, { timeout: 20_000 }).toBe('open');
    // every default symbol gets a price
    await expect.poll(async () => Object.values(await prices()).filter(Boolean).length, { timeout: 20_000 }).toBe(SYMBOLS.length);
    for (const s of ['AAPL', 'BRK.B', 'BTC-USD', 'EUR-USD', 'USD-JPY']) {
      const text = await page.getByTestId(`price-${s}`).textContent();
      expect(text).toMatch(/^[\d,]+\.\d+$/);
    }
    await pricesMove('prices change');
    // the 1s bar chart fills and the heartbeat measures a round trip
    await expect
      .poll(() => page.evaluate(() => (window as unknown as DashboardWindow).tickwire.stats.perChannel['bar.1s:AAPL'] ?? 0), { timeout: 20_000 })
      .toBeGreaterThan(1);
    await expect.poll(async () => page.getByTestId('latency').textContent(), { timeout: 20_000 }).toMatch(/\d+ ms/);
    await expect.poll(async () => Number(await page.getByTestId('update-count').textContent()), { timeout: 10_000 }).toBeGreaterThan(20);
    const bars = await page.evaluate(() => (window as unknown as DashboardWindow).tickwire.stats.perChannel['bar.1s:AAPL'] ?? 0);
    // the chart has drawn a few more candles
    await expect
      .poll(() => page.evaluate(() => (window as unknown as DashboardWindow).tickwire.stats.perChannel['bar.1s:AAPL'] ?? 0), { timeout: 20_000 })
      .toBeGreaterThan(bars + 2);
    await rig.screenshot(page, 'dashboard.png');
    expect(rig.pageErrors).toEqual([]);
  });

  it('the throttle selector changes the update rate', async () => {
    const windowMs = 3000;
    // a rate is updates per unit of time: this window is the measurement, not a wait for an event
    const measure = async (): Promise<{ total: number; max: number }> => {
      const a = await counts();
      await quietFor(windowMs, 'the rate-measuring window');
      const b = await counts();
      const per = TICKERS.map((ch) => (b[ch] ?? 0) - (a[ch] ?? 0));
      return { total: per.reduce((x, y) => x + y, 0), max: Math.max(...per) };
    };
    const select = page.getByTestId('throttle');

    /** every ticker has had an update since the throttle changed (the re-subscription is in place) */
    const settled = async (): Promise<void> => {
      const a = await counts();
      await expect
        .poll(
          async () => {
            const b = await counts();
            return TICKERS.filter((ch) => (b[ch] ?? 0) > (a[ch] ?? 0)).length;
          },
          { timeout: 20_000, interval: 100, message: 'updates on every ticker at the new throttle' },
        )
        .toBe(TICKERS.length);
    };
    await select.selectOption('0');
    await settled();
    const fast = await measure();

    await select.selectOption('1000');
    await settled();
    const slow = await measure();
    expect(await page.evaluate(() => (window as unknown as DashboardWindow).tickwire.throttle())).toBe(1000);

    // at 1000 ms a ticker updates at most once a second (+1 for a window boundary)
    expect(slow.max).toBeLessThanOrEqual(windowMs / 1000 + 1);
    expect(slow.total).toBeGreaterThan(0);
    // unthrottled, the board gets clearly more updates than at 1000 ms
    expect(fast.total).toBeGreaterThan(slow.total * 2);
    expect(fast.max).toBeGreaterThan(windowMs / 1000 + 1);

    await select.selectOption('250');
    await pricesMove('prices keep moving at 250 ms');
  });

  it('reconnects by itself after the engine restarts on the same port', async () => {
    await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 42; // proves the page is not reloaded
    });
    const before = sumTickers(await counts());
    await rig.engine!.close();
    rig.engine = undefined;
    await expect.poll(connState, { timeout: 20_000 }).not.toBe('open');
    await expect.poll(async () => page.getByTestId('event-log').textContent(), { timeout: 20_000 }).toMatch(/reconnect attempt/);
    expect(['reconnecting', 'connecting']).toContain(await connState());
    const during = sumTickers(await counts());

    await rig.startEngine(port);
    await expect.poll(connState, { timeout: 30_000 }).toBe('open');
    await expect.poll(async () => sumTickers(await counts()), { timeout: 20_000 }).toBeGreaterThan(during + SYMBOLS.length);
    await pricesMove('prices flow again after the restart');
    expect(during).toBeGreaterThanOrEqual(before);
    expect(await page.evaluate(() => (window as unknown as { marker: number }).marker)).toBe(42);
    expect(await page.evaluate(() => (window as unknown as DashboardWindow).tickwire.stats.reconnects)).toBeGreaterThan(0);
    expect(await page.getByTestId('event-log').textContent()).toMatch(/reconnect attempt/);
    await rig.screenshot(page, 'dashboard-after-restart.png');
    expect(rig.pageErrors).toEqual([]);
  });

  it('symbol search adds a symbol, shows a rejection inline, and removes a row', async () => {
    const input = page.getByTestId('symbol-input');
    await input.fill('amzn');
    await page.getByTestId('symbol-add').click();
    await expect.poll(() => page.getByTestId('row-AMZN').count(), { timeout: 10_000 }).toBe(1);
    await expect.poll(async () => (await prices()).AMZN ?? '', { timeout: 20_000 }).toMatch(/\d/);
    expect(await page.getByTestId('symbol-error').isHidden()).toBe(true);

    await input.fill('ZZZZ');
    await input.press('Enter');
    const err = page.getByTestId('symbol-error');
    await expect.poll(() => err.isVisible(), { timeout: 10_000 }).toBe(true);
    expect(await err.textContent()).toMatch(/^ZZZZ: .*UNKNOWN_CHANNEL/);
    expect(await page.getByTestId('row-ZZZZ').count()).toBe(0);
    // typing again clears the message
    await input.fill('x');
    expect(await err.isHidden()).toBe(true);
    await input.fill('');

    // remove: the row goes, and its ticker stops counting
    await page.getByTestId('remove-AMZN').click();
    expect(await page.getByTestId('row-AMZN').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { tickwire: { symbols(): string[] } }).tickwire.symbols())).not.toContain('AMZN');
    const stopped = (await counts())['ticker:AMZN'] ?? 0;
    await pricesMove('the rest of the board keeps moving'); // a condition: other rows change meanwhile
    expect((await counts())['ticker:AMZN'] ?? 0).toBeLessThanOrEqual(stopped + 1);
    expect(rig.pageErrors).toEqual([]);
  });

  it('shows system announcements', async () => {
    await service('POST', '/v1/announcements', { level: 'warning', title: 'Maintenance', message: 'Feeds restart at 22:00 UTC' });
    const item = page.getByTestId('announcement');
    await expect.poll(() => item.count(), { timeout: 10_000 }).toBe(1);
    expect(await item.first().textContent()).toContain('Maintenance Feeds restart at 22:00 UTC');
    expect(await item.first().getAttribute('class')).toContain('warning');
    await rig.screenshot(page, 'dashboard-announcement.png');
    expect(rig.pageErrors).toEqual([]);
  });

  it('off-screen rows ask for the slow tier and a hidden tab pauses the board', async () => {
    // a short viewport: most rows are below the fold
    const p3 = await rig.newPage({ width: 1280, height: 260 });
    const sent: Record<string, unknown>[] = [];
    p3.on('websocket', (ws) =>
      ws.on('framesent', (f) => {
        if (typeof f.payload === 'string') sent.push(JSON.parse(f.payload) as Record<string, unknown>);
      }),
    );
    try {
      await p3.goto(`http://127.0.0.1:${port}/?encoding=json`);
      await expect.poll(() => p3.getByTestId('conn-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
      const offScreen = (): string[] => {
        const flag = new Map<string, boolean>();
        for (const f of sent) {
          if (f.op === 'subscribe') for (const c of f.channels as string[]) flag.set(c, f.visible !== false);
          if (f.op === 'visibility' && Array.isArray(f.channels)) for (const c of f.channels as string[]) flag.set(c, f.visible === true);
        }
        return [...flag].filter(([, v]) => !v).map(([c]) => c);
      };
      await expect.poll(() => offScreen().includes('ticker:USD-JPY'), { timeout: 10_000 }).toBe(true);
      expect(offScreen()).not.toContain('ticker:AAPL');
      await p3.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await expect.poll(() => sent.some((f) => f.op === 'visibility' && f.page === 'hidden'), { timeout: 10_000 }).toBe(true);
      await p3.evaluate(() => {
        Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true });
        document.dispatchEvent(new Event('visibilitychange'));
      });
      await expect.poll(() => sent.some((f) => f.op === 'visibility' && f.page === 'visible'), { timeout: 10_000 }).toBe(true);
    } finally {
      await p3.close();
    }
    expect(rig.pageErrors).toEqual([]);
  });

  it('with a token shows the live portfolio and new executions', async () => {
    const user = 'dana';
    await service('PUT', `/v1/users/${user}/positions`, {
      ccy: 'USD',
      positions: [
        { sym: 'AAPL', qty: 10, cost: 2000 },
        { sym: 'BTC-USD', qty: 0.5, cost: 30000 },
      ],
    });
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
    const p2 = await rig.newPage({ width: 1280, height: 900 });
    try {
      await p2.goto(`http://127.0.0.1:${port}/?token=${encodeURIComponent(token)}`);
      await expect.poll(() => p2.getByTestId('conn-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
      await expect(p2.getByTestId('portfolio').isVisible()).resolves.toBe(true);
      await expect.poll(() => p2.getByTestId('portfolio-value').textContent(), { timeout: 20_000 }).toMatch(/^\$[\d,]+\.\d{2}$/);
      await expect.poll(() => p2.getByTestId('position-BTC-USD').count(), { timeout: 20_000 }).toBe(1);
      expect(await p2.getByTestId('position-AAPL').textContent()).toContain('10');

      await service('POST', '/v1/executions', { user, id: 'fill-1', order: 'ord-1', sym: 'NVDA', side: 'buy', qty: 25, p: 131.5, t: Date.now() });
      await expect.poll(() => p2.getByTestId('execution').count(), { timeout: 20_000 }).toBe(1);
      const today = await p2.getByTestId('execution').first().textContent();
      expect(today).toMatch(/BUY 25 NVDA @ 131\.50/);
      expect(today).not.toMatch(/\d{1,2}\/\d{1,2}\/\d{4}/); // today's: the time only
      // an execution from two days ago (a late fill report) shows its date
      const old = Date.now() - 2 * 86_400_000;
      await service('POST', '/v1/executions', { user, id: 'fill-0', order: 'ord-0', sym: 'AAPL', side: 'sell', qty: 3, p: 190, t: old });
      await expect.poll(() => p2.getByTestId('execution').count(), { timeout: 20_000 }).toBe(2);
      const dated = await p2.getByTestId('execution').first().textContent();
      const expected = await p2.evaluate((t) => new Date(t).toLocaleDateString(), old);
      expect(dated).toContain(expected);
      expect(dated).toMatch(/SELL 3 AAPL/);
      await rig.screenshot(p2, 'dashboard-portfolio.png');
    } finally {
      await p2.close();
    }
    // a token that gets stocks delayed only: the AAPL line is valued at the delayed price and
    // marked so; BTC-USD (crypto, real time) is not
    const restricted = await new SignJWT({ ent: { classes: ['crypto'], delayed: ['stock'] } })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(user)
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const p3 = await rig.newPage({ width: 1280, height: 900 });
    try {
      await p3.goto(`http://127.0.0.1:${port}/?token=${encodeURIComponent(restricted)}`);
      await expect.poll(() => p3.getByTestId('position-AAPL').getAttribute('data-delayed'), { timeout: 20_000 }).toBe('500');
      expect(await p3.getByTestId('position-AAPL').getAttribute('title')).toBe('valued at the price of 500 ms ago (delayed data)');
      expect(await p3.getByTestId('position-AAPL').textContent()).toContain('(delayed)');
      expect(await p3.getByTestId('position-BTC-USD').getAttribute('data-delayed')).toBeNull();
      await rig.screenshot(p3, 'dashboard-portfolio-delayed.png');
    } finally {
      await p3.close();
    }
    expect(rig.pageErrors).toEqual([]);
  });
});
