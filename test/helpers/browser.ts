import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine } from '../client/helpers.js';
import { distFresh } from './processes.js';

/**
 * The one way browser tests (test/browser) boot: pages built into a temporary folder, a real
 * engine that serves them (`gateway.webDir`), and headless Chromium (Debian's chromium driven by
 * playwright-core). Page errors are collected so that each test can assert there were none.
 */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** where screenshots go (not committed) */
export const ARTIFACTS = join(process.cwd(), 'test', 'artifacts');

export interface BrowserRigOptions {
  /** writes the pages into the folder the engine serves; default: the dashboard (scripts/build-web.mjs) */
  web?: (webDir: string) => void | Promise<void>;
  /** engine config on top of the test defaults (loopback, silent); `gateway.webDir` is added */
  engine?: Record<string, unknown>;
}

export interface BrowserRig {
  readonly browser: Browser;
  readonly webDir: string;
  /** undefined while a test has it stopped */
  engine: Engine | undefined;
  /** page errors (and console errors and warnings where asked for) of every page opened by newPage */
  readonly pageErrors: string[];
  /** a new page whose errors go to pageErrors */
  newPage(viewport?: { width: number; height: number }, opts?: { consoleErrors?: boolean }): Promise<Page>;
  /** an engine with the same config again (on `port`: a restart on the same address) */
  startEngine(port?: number): Promise<Engine>;
  /** a screenshot into test/artifacts/<file> */
  screenshot(page: Page, file: string, opts?: { fullPage?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * The dashboard pages: a copy of dist/web when dist/ is built from the current sources (distFresh,
 * test/global-setup.ts: scripts/test.sh has just built it with scripts/build-web.mjs), else built
 * into `webDir` by the same script. Each browser file used to run esbuild again for the same bytes.
 */
const buildDashboard = (webDir: string): void => {
  const built = join(process.cwd(), 'dist', 'web');
  if (distFresh() && existsSync(join(built, 'app.js'))) {
    cpSync(built, webDir, { recursive: true });
    return;
  }
  execFileSync(process.execPath, ['scripts/build-web.mjs', '--outdir', webDir], { stdio: 'pipe' });
};

export async function bootBrowser(opts: BrowserRigOptions = {}): Promise<BrowserRig> {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const webDir = mkdtempSync(join(tmpdir(), 'tickwire-web-'));
  let browser: Browser | undefined;
  const pageErrors: string[] = [];
  const config = { ...opts.engine, gateway: { ...(opts.engine?.gateway as object | undefined), webDir } };
  const rig: BrowserRig = {
    get browser(): Browser {
      return browser!;
    },
    webDir,
    engine: undefined,
    pageErrors,
    async newPage(viewport, pageOpts = {}) {
      const page = await browser!.newPage(viewport ? { viewport } : {});
      page.on('pageerror', (err) => pageErrors.push(String(err)));
      if (pageOpts.consoleErrors)
        page.on('console', (m) => {
          if (m.type() === 'error' || m.type() === 'warning') pageErrors.push(`console ${m.type()}: ${m.text()}`);
        });
      return page;
    },
    async startEngine(port) {
      rig.engine = await startTestEngine(port, config);
      return rig.engine;
    },
    async screenshot(page, file, shotOpts = {}) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, file), ...shotOpts });
    },
    async close() {
      await browser?.close();
      await rig.engine?.close();
      rig.engine = undefined;
      rmSync(webDir, { recursive: true, force: true });
    },
  };
  try {
    await (opts.web ?? buildDashboard)(webDir);
    await rig.startEngine();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  } catch (err) {
    await rig.close();
    throw err;
  }
  return rig;
}
