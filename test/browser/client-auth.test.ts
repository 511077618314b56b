import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { build } from 'esbuild';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, token } from '../auth/helpers.js';
import { startTestEngine } from '../client/helpers.js';

/**
 * #14 item 3 in a real browser: the page (on another origin than the gateway) uses
 * @tickwire/client with the browser's own WebSocket, which learns nothing from a refused
 * upgrade. The client still ends with one UNAUTHENTICATED error carrying the reason, read from
 * the CORS-readable auth check, and a good token connects.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let engine: Engine;
/** the app's own origin: another loopback port than the gateway's (Chromium blocks pages of unknown address space from loopback) */
let app: Server;
let browser: Browser;
let page: Page;

interface Outcome {
  connected: boolean;
  code?: string;
  reason?: string;
  errors: [string, string | undefined][];
  states: string[];
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  engine = await startTestEngine(undefined, { auth: { mode: 'required', jwtSecret: SECRET } });
  const bundle = await build({
    entryPoints: [join(import.meta.dirname, '..', '..', 'packages', 'client', 'src', 'index.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'Tickwire',
    platform: 'browser',
    conditions: ['tickwire-source'],
    write: false,
    logLevel: 'silent',
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
  page = await browser.newPage();
  app = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>'));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  await page.goto(`http://127.0.0.1:${(app.address() as { port: number }).port}/app.html`);
  await page.addScriptTag({ content: bundle.outputFiles[0]!.text });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await engine?.close();
  app?.close();
});

function attempt(tok: string): Promise<Outcome> {
  return page.evaluate(
    async ({ url, tok }) => {
      const { TickwireClient } = (window as unknown as { Tickwire: typeof import('../../packages/client/src/index.js') }).Tickwire;
      const c = new TickwireClient({ url, token: tok, reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      const out: Outcome = { connected: false, errors: [], states: [] };
      c.on('error', (e) => out.errors.push([e.code, e.reason]));
      c.on('state', (s) => out.states.push(s.state));
      try {
        await c.connect();
        out.connected = true;
      } catch (e) {
        const err = e as { code: string; reason?: string };
        out.code = err.code;
        if (err.reason !== undefined) out.reason = err.reason;
      }
      await c.close();
      return out;
    },
    { url: `ws://127.0.0.1:${engine.port}/v1/stream`, tok },
  );
}

describe('@tickwire/client in Chromium, cross-origin', { timeout: 60_000 }, () => {
  it('an expired token: one UNAUTHENTICATED error with reason "expired", connecting -> closed', async () => {
    const out = await attempt(await token({ expIn: -60 }));
    expect(out).toMatchObject({ connected: false, code: 'UNAUTHENTICATED', reason: 'expired' });
    expect(out.errors).toEqual([['UNAUTHENTICATED', 'expired']]);
    expect(out.states).toEqual(['connecting', 'closed']);
  });

  it('a good token connects', async () => {
    const out = await attempt(await token({ sub: 'alice' }));
    expect(out.connected).toBe(true);
    expect(out.errors).toEqual([]);
  });

  it('the token never appears in a URL: the WebSocket carries it as a subprotocol, the auth check in a header', async () => {
    const urls: string[] = [];
    const onSocket = (ws: { url(): string }): void => void urls.push(ws.url());
    const onRequest = (req: { url(): string }): void => void urls.push(req.url());
    page.on('websocket', onSocket);
    page.on('request', onRequest);
    try {
      const good = await token({ sub: 'alice' });
      expect((await attempt(good)).connected).toBe(true);
      const expired = await token({ expIn: -60 });
      expect(await attempt(expired)).toMatchObject({ connected: false, reason: 'expired' });
      // the attempts and the auth check that judged the refused one
      expect(urls.filter((u) => u.includes('/v1/stream')).length).toBeGreaterThanOrEqual(2);
      expect(urls.some((u) => u.includes('/v1/auth/check'))).toBe(true);
      for (const u of urls) {
        expect(u).not.toContain('token=');
        expect(u).not.toContain(good.split('.')[2]!);
        expect(u).not.toContain(expired.split('.')[2]!);
      }
    } finally {
      page.off('websocket', onSocket);
      page.off('request', onRequest);
    }
  });
});
