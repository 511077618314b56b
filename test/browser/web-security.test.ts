import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import type { Frame, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine } from '../client/helpers.js';
import { bootBrowser, type BrowserRig } from '../helpers/browser.js';
import { waitFor } from '../helpers/wait.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The browser-facing surfaces as a web attacker sees them (docs/operations.md#browser-security),
 * in headless Chromium against a real engine: response headers (nosniff everywhere; CSP,
 * frame-ancestors, X-Frame-Options and Referrer-Policy on the pages; no-store on admin data),
 * framing by another origin, hostile strings in the console, the console's WebSocket target, the
 * dashboard's token in the address bar and in Referer headers, and methods a route does not take.
 */
const SECRET = 'web-security-secret-0123456789abcdefghij';
const SERVICE_TOKEN = 'web-security-service-token-0123456789';

let rig: BrowserRig;
let engine: Engine;
const base = (): string => `http://127.0.0.1:${engine.port}`;
const userToken = (sub: string): Promise<string> =>
  new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
const operator = { authorization: `Bearer ${SERVICE_TOKEN}` };

/** A page of its own; `strict`: console errors count as page errors (a CSP violation is one). */
async function withPage<T>(fn: (page: Page) => Promise<T>, strict = false): Promise<T> {
  const page = await rig.newPage({ width: 1280, height: 900 }, { consoleErrors: strict });
  try {
    return await fn(page);
  } finally {
    await page.close();
  }
}

describe('browser-facing security', { timeout: 120_000 }, () => {
  beforeAll(async () => {
    rig = await bootBrowser({ engine: { auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } } });
    engine = rig.engine!;
  }, 120_000);

  afterAll(() => rig?.close());

  it('every answer says nosniff; the pages carry a CSP, frame and referrer policies; admin data is never stored', async () => {
    const answers = {
      dashboard: await fetch(`${base()}/`),
      index: await fetch(`${base()}/index.html`),
      script: await fetch(`${base()}/app.js`),
      styles: await fetch(`${base()}/styles.css`),
      console: await fetch(`${base()}/admin`),
      consoleFile: await fetch(`${base()}/admin.html`),
      health: await fetch(`${base()}/health`),
      missing: await fetch(`${base()}/nope.html`),
      adminRefused: await fetch(`${base()}/admin/api/overview`),
      adminData: await fetch(`${base()}/admin/api/overview`, { headers: operator }),
      adminMissing: await fetch(`${base()}/admin/api/nope`, { headers: operator }),
    };
    for (const [name, res] of Object.entries(answers)) expect(res.headers.get('x-content-type-options'), name).toBe('nosniff');
    expect(answers.script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(answers.styles.headers.get('content-type')).toBe('text/css; charset=utf-8');

    for (const name of ['dashboard', 'index', 'console', 'consoleFile'] as const) {
      const h = answers[name].headers;
      expect(h.get('content-type'), name).toBe('text/html; charset=utf-8');
      const csp = h.get('content-security-policy') ?? '';
      expect(csp, name).toMatch(/(^|; )script-src 'self'(;|$)/);
      expect(csp, name).toMatch(/(^|; )frame-ancestors 'none'(;|$)/);
      expect(csp, name).toMatch(/(^|; )object-src 'none'(;|$)/);
      expect(csp, name).toMatch(/(^|; )base-uri 'none'(;|$)/);
      expect(h.get('x-frame-options'), name).toBe('DENY');
      expect(h.get('referrer-policy'), name).toBe('no-referrer');
    }
    // the console talks to its own gateway only
    expect(answers.console.headers.get('content-security-policy')).toMatch(/(^|; )connect-src 'self'(;|$)/);
    expect(answers.consoleFile.headers.get('content-security-policy')).toBe(answers.console.headers.get('content-security-policy'));

    // operator data (and the page that shows it) stays out of every cache
    for (const name of ['console', 'consoleFile', 'adminRefused', 'adminData', 'adminMissing'] as const)
      expect(answers[name].headers.get('cache-control'), name).toBe('no-store');
    expect(answers.adminRefused.status).toBe(401);
    expect(answers.adminData.status).toBe(200);

    // the HTTP-stream transport (docs/protocol.md), which writes its own headers: the stream and a refused POST
    const stream = new AbortController();
    const sse = await fetch(`${base()}/v1/stream/sse`, { signal: stream.signal });
    expect(sse.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    expect(sse.headers.get('x-content-type-options')).toBe('nosniff');
    const tooLarge = await fetch(`${base()}/v1/stream/sse`, {
      method: 'POST',
      headers: { 'x-tickwire-session': sse.headers.get('x-tickwire-session')!, 'content-type': 'application/json' },
      body: 'x'.repeat(64 * 1024 * 16 + 1),
    }).catch(() => undefined);
    stream.abort();
    expect(tooLarge?.status).toBe(413);
    expect(tooLarge?.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('static files are served by exact path: traversal and encoded-path tricks find nothing', async () => {
    // raw request targets (fetch would normalize the dots away)
    const raw = (path: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: engine.port, path, method: 'GET' }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    for (const path of [
      '/../../../../etc/passwd',
      '/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
      '/..%2f..%2f..%2fetc%2fpasswd',
      '/%2E%2E%5C%2E%2E%5Cpackage.json',
      '/../package.json',
      '/index.html%00.js',
      '//etc/passwd',
      '/admin.html/..',
    ]) {
      const r = await raw(path);
      expect(r.status, path).toBe(404);
      expect(r.body, path).not.toMatch(/root:|"name"|<html/i);
    }
  });

  it('HEAD /admin answers like GET without a body; a method an admin route does not take is 405 with Allow', async () => {
    const get = await fetch(`${base()}/admin`);
    const head = await fetch(`${base()}/admin`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(head.headers.get('content-length')).toBe(String((await get.arrayBuffer()).byteLength));
    expect(head.headers.get('content-security-policy')).toBe(get.headers.get('content-security-policy'));
    expect(await head.text()).toBe('');

    const wrong = await fetch(`${base()}/admin/api/overview`, { method: 'DELETE', headers: operator });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('GET, HEAD');
    const headApi = await fetch(`${base()}/admin/api/overview`, { method: 'HEAD', headers: operator });
    expect(headApi.status).toBe(200);
    expect(headApi.headers.get('cache-control')).toBe('no-store');
    expect(Number(headApi.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await headApi.text()).toBe('');
    expect((await fetch(`${base()}/admin/api/overview`, { method: 'HEAD' })).status).toBe(401);
    expect(await wrong.json()).toMatchObject({ error: 'METHOD_NOT_ALLOWED' });
    const getPost = await fetch(`${base()}/admin/api/announcements`, { headers: operator });
    expect(getPost.status).toBe(405);
    expect(getPost.headers.get('allow')).toBe('POST');
    const closeGet = await fetch(`${base()}/admin/api/connections/abc/close`, { headers: operator });
    expect(closeGet.status).toBe(405);
    expect(closeGet.headers.get('allow')).toBe('POST');
    // a cross-origin preflight learns the methods and gets no CORS grant: the browser sends nothing
    const preflight = await fetch(`${base()}/admin/api/announcements`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('allow')).toBe('POST');
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
    // a path no admin route has stays 404
    expect((await fetch(`${base()}/admin/api/nope`, { method: 'DELETE', headers: operator })).status).toBe(404);
  });

  it('a method a gateway route does not take is 405 with Allow; OPTIONS lists the methods; an unknown path stays 404', async () => {
    const call = (method: string, path: string): Promise<Response> => fetch(`${base()}${path}`, { method });
    for (const [method, path, allow] of [
      ['POST', '/health', 'GET, HEAD'],
      ['DELETE', '/ready', 'GET, HEAD'],
      ['PUT', '/v1/stats', 'GET, HEAD'],
      ['POST', '/v1/feeds/synthetic', 'GET, HEAD'],
      ['DELETE', '/', 'GET, HEAD'],
      ['PATCH', '/app.js', 'GET, HEAD'],
      ['POST', '/v1/stream', 'GET, HEAD'],
    ] as const) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow'), `${method} ${path}`).toBe(allow);
      expect(await res.json()).toMatchObject({ error: 'METHOD_NOT_ALLOWED' });
    }
    // a GET route answers HEAD like GET without the body (RFC 9110 9.3.2)
    const head = await call('HEAD', '/v1/stats');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('application/json');
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await head.text()).toBe('');
    const options = await fetch(`${base()}/health`, { method: 'OPTIONS', headers: { origin: 'http://evil.example', 'access-control-request-method': 'GET' } });
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('GET, HEAD');
    expect(options.headers.get('access-control-allow-origin')).toBeNull();
    expect((await call('POST', '/no/such/route')).status).toBe(404);
    expect((await call('HEAD', '/no/such/route')).status).toBe(404);
  });

  it('another origin cannot frame the console or the dashboard (clickjacking)', async () => {
    await withPage(async (page) => {
      await page.setContent(`<iframe name="console" src="${base()}/admin"></iframe><iframe name="board" src="${base()}/"></iframe>`);
      const framed = async (name: string): Promise<Frame> => waitFor(() => page.frame({ name }), `frame ${name}`);
      for (const [name, testId] of [
        ['console', 'token'],
        ['board', 'board'],
      ] as const) {
        const frame = await framed(name);
        // a refused frame ends on Chromium's error page; a framed page would show its elements
        await expect.poll(() => frame.url(), { timeout: 10_000 }).not.toBe('about:blank');
        await frame.waitForLoadState('load').catch(() => undefined);
        expect(await frame.locator(`[data-testid="${testId}"]`).count(), `${name} rendered inside a foreign frame`).toBe(0);
      }
    });
  });

  it('the console renders hostile strings (user, announcement) as text, and runs under its CSP without a violation', async () => {
    rig.pageErrors.length = 0;
    const sub = '<img src=x onerror="window.__pwned=1">';
    const victim = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, {
      encoding: 'json',
      headers: { authorization: `Bearer ${await userToken(sub)}`, 'user-agent': '<script>window.__pwned=4</script>' },
    });
    try {
      const welcome = await victim.waitFor((f) => f.op === 'welcome');
      await withPage(async (page) => {
        await page.goto(`${base()}/admin`);
        await page.getByTestId('token').fill(SERVICE_TOKEN);
        await page.getByTestId('sign-in').click();
        const row = page.locator(`tr[data-conn="${welcome.conn}"]`);
        await expect.poll(() => row.count(), { timeout: 20_000 }).toBe(1);
        expect(await row.locator('td').nth(1).textContent()).toBe(sub);
        // the console's own client is subscribed to `system` before the announcement goes out
        await waitFor(() => [...engine.gateway!.connections].some((c) => c.subscriptions().includes('system')), 'the console on system');
        const title = '<script>window.__pwned=2</script>';
        const message = '<img src=x onerror="window.__pwned=3"><a href="javascript:window.__pwned=5">x</a>';
        const res = await fetch(`${base()}/admin/api/announcements`, {
          method: 'POST',
          headers: { ...operator, 'content-type': 'application/json' },
          body: JSON.stringify({ level: 'info', title, message }),
        });
        expect(res.status).toBe(202);
        await expect.poll(() => page.getByTestId('system-message').first().textContent(), { timeout: 10_000 }).toContain(`${title}: ${message}`);
        expect(await page.locator('main img, main script, main a').count()).toBe(0);
        expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
      }, true);
    } finally {
      victim.close();
    }
    expect(rig.pageErrors).toEqual([]);
  });

  it('the dashboard renders hostile strings (symbols, a rejection reason, an announcement) as text', async () => {
    rig.pageErrors.length = 0;
    const evil = '<img src=x onerror="window.__pwned=1">';
    await withPage(async (page) => {
      await page.goto(`${base()}/?symbols=${encodeURIComponent(`AAPL,${evil}`)}`);
      await expect.poll(() => page.getByTestId('conn-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
      // the page waits for `system` before the announcement goes out
      await waitFor(() => [...engine.gateway!.connections].some((c) => c.subscriptions().includes('system')), 'the dashboard on system');
      const res = await fetch(`${base()}/admin/api/announcements`, {
        method: 'POST',
        headers: { ...operator, 'content-type': 'application/json' },
        body: JSON.stringify({ level: 'warning', title: '<script>window.__pwned=2</script>', message: evil }),
      });
      expect(res.status).toBe(202);
      const item = page.getByTestId('announcement').first();
      await expect.poll(() => item.textContent(), { timeout: 10_000 }).toContain(`<script>window.__pwned=2</script> ${evil}`);
      // a symbol the gateway refuses: its reason (which quotes the symbol) is shown as text
      await page.getByTestId('symbol-input').fill('<svg onload=window.__pwned=3>');
      await page.getByTestId('symbol-input').press('Enter');
      await expect.poll(() => page.getByTestId('symbol-error').textContent(), { timeout: 10_000 }).toContain('<SVG ONLOAD=WINDOW.__PWNED=3>');
      expect(await page.locator('main img, main svg, main script, header img').count()).toBe(0);
      expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    }, true);
    expect(rig.pageErrors).toEqual([]);
  });

  it("an unbuilt console says so without naming the gateway host's paths; an operator's own page keeps its ways", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickwire-unbuilt-'));
    // a page of the operator's own in gateway.webDir, with inline script and style: not one of tickwire's pages
    writeFileSync(join(dir, 'mine.html'), '<!doctype html><style>b{color:red}</style><script>document.title="mine"</script><b>mine</b>');
    const bare = await startTestEngine(undefined, { auth: { serviceToken: SERVICE_TOKEN }, gateway: { webDir: dir } });
    try {
      const res = await fetch(`http://127.0.0.1:${bare.port}/admin`);
      expect(res.status).toBe(404);
      const body = await res.text();
      expect(body).toMatch(/not built/);
      expect(body).not.toContain(dir);
      expect(body).not.toContain(process.cwd());
      const mine = await fetch(`http://127.0.0.1:${bare.port}/mine.html`);
      expect(mine.status).toBe(200);
      expect(mine.headers.get('content-security-policy')).toBeNull();
      expect(mine.headers.get('x-frame-options')).toBeNull();
      expect(mine.headers.get('x-content-type-options')).toBe('nosniff');
    } finally {
      await bare.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the console works at /admin/ as at /admin (its script and styles load from either)', async () => {
    rig.pageErrors.length = 0;
    await withPage(async (page) => {
      await page.goto(`${base()}/admin/`);
      await page.getByTestId('token').fill(SERVICE_TOKEN);
      await page.getByTestId('sign-in').click();
      await expect.poll(() => page.getByTestId('api-state').getAttribute('data-state'), { timeout: 10_000 }).toBe('ok');
      // the console's styles applied (web/styles.css: .admin main is a block)
      expect(await page.locator('main').evaluate((m) => getComputedStyle(m).display)).toBe('block');
    }, true);
    expect(rig.pageErrors).toEqual([]);
  });

  it('the console streams from its own gateway only: ?ws= cannot point it at another server', async () => {
    const attacker = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    let dialled = 0;
    attacker.on('connection', (ws) => {
      dialled++;
      ws.close();
    });
    await new Promise((r) => attacker.once('listening', r));
    const port = (attacker.address() as { port: number }).port;
    try {
      await withPage(async (page) => {
        await page.goto(`${base()}/admin?ws=ws://127.0.0.1:${port}/v1/stream`);
        // either the console reached for the other server, or it is on its own gateway's system channel
        await waitFor(() => dialled > 0 || [...engine.gateway!.connections].some((c) => c.subscriptions().includes('system')), {
          what: 'the console to open its stream',
          timeout: 20_000,
        });
        expect(dialled).toBe(0);
      });
    } finally {
      await new Promise((r) => attacker.close(r));
    }
  });

  it('the dashboard takes its token out of the address bar and never sends it in a Referer', async () => {
    rig.pageErrors.length = 0;
    const jwt = await userToken('ann');
    for (const url of [`${base()}/?symbols=AAPL&token=${jwt}`, `${base()}/?symbols=AAPL#token=${jwt}`]) {
      await withPage(async (page) => {
        const referers: string[] = [];
        page.on('request', (r) => {
          void r.headerValue('referer').then((v) => v && referers.push(v));
        });
        await page.goto(url);
        await expect.poll(() => page.getByTestId('conn-state').getAttribute('data-state'), { timeout: 20_000 }).toBe('open');
        // the token was taken: the panels that need one are shown, and the user's channels are open
        expect(await page.locator('#portfolio-panel').isVisible()).toBe(true);
        await waitFor(() => [...engine.gateway!.connections].some((c) => c.principal.user === 'ann'), 'ann connected');
        expect(page.url()).not.toContain(jwt);
        expect(page.url()).toBe(`${base()}/?symbols=AAPL`);
        expect(referers.filter((r) => r.includes(jwt))).toEqual([]);
      }, true);
    }
    // the dashboard runs under its CSP without a violation (styles, scripts, the stream, the chart)
    expect(rig.pageErrors).toEqual([]);
  });
});
