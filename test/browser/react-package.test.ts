import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine } from '../client/helpers.js';

/**
 * #14: `npm pack` @tickwire/client and @tickwire/react, install both tarballs with React into a
 * fresh project (no workspace, no sources), type-check the React example (examples/react/board.tsx)
 * with `tsc --strict` against the packed declarations, bundle it with esbuild as a front end
 * would, and run it in headless Chromium against a real engine: it receives data.
 */
const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let dir: string;
let engine: Engine | undefined;
let browser: Browser | undefined;

async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    return (await run(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_loglevel: 'error' } })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}
const versionOf = (name: string): string => (JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  dir = mkdtempSync(join(tmpdir(), 'tickwire-react-consumer-'));
  // both packages as the test command built them (scripts/test.sh runs `npm run build`); rebuilding
  // here would race the other test that packs the client
  for (const ws of ['@tickwire/client', '@tickwire/react']) await sh('npm', ['pack', '--workspace', ws, '--pack-destination', dir, '--silent'], root);
  const tarballs = readdirSync(dir)
    .filter((f) => f.endsWith('.tgz'))
    .map((f) => `./${f}`);
  expect(tarballs).toHaveLength(2);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'react-consumer', private: true, type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noUncheckedIndexedAccess: true,
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        jsx: 'react-jsx',
        lib: ['ES2022', 'DOM', 'DOM.Iterable'],
        types: [],
        skipLibCheck: false,
        noEmit: true,
      },
      files: ['board.tsx'],
    }),
  );
  copyFileSync(join(root, 'examples', 'react', 'board.tsx'), join(dir, 'board.tsx'));
  const pins = ['react', 'react-dom', '@types/react', '@types/react-dom'].map((n) => `${n}@${versionOf(n)}`);
  await sh('npm', ['install', ...tarballs, ...pins, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], dir);
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('@tickwire/react from its npm tarball', { timeout: 180_000 }, () => {
  it('ships dist, the license and the readme; react is a peer, the client a dependency', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules', '@tickwire', 'react', 'package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
      dependencies: Record<string, string>;
      peerDependencies: Record<string, string>;
    };
    expect(pkg.exports['.']!.types).toBe('./dist/index.d.ts');
    expect(Object.keys(pkg.dependencies)).toEqual(['@tickwire/client']);
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(['react', 'react-dom']);
    expect(readdirSync(join(dir, 'node_modules', '@tickwire', 'react')).sort()).toEqual(['LICENSE', 'README.md', 'dist', 'package.json']);
    // one copy of the client: the one the app installed
    expect(existsSync(join(dir, 'node_modules', '@tickwire', 'react', 'node_modules'))).toBe(false);
  });

  it('type-checks the example with tsc --strict, bundles it, and it shows live data in Chromium', async () => {
    await sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir);
    const web = join(dir, 'web');
    mkdirSync(web);
    const esbuild = join(root, 'node_modules', 'esbuild', 'bin', 'esbuild');
    await sh(
      esbuild,
      [
        'board.tsx',
        '--bundle',
        '--platform=browser',
        '--format=esm',
        '--jsx=automatic',
        '--minify',
        '--define:process.env.NODE_ENV="production"',
        `--outfile=${join(web, 'board.js')}`,
        '--log-level=error',
      ],
      dir,
    );
    copyFileSync(join(root, 'examples', 'react', 'index.html'), join(web, 'index.html'));
    engine = await startTestEngine(undefined, { gateway: { webDir: web } });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${engine.port}/`);
    await expect.poll(() => page.getByTestId('state').textContent(), { timeout: 30_000 }).toBe('open');
    await expect.poll(() => page.getByTestId('price-BTC-USD').textContent(), { timeout: 30_000 }).toMatch(/^\d/);
    await expect.poll(() => page.getByTestId('tape').locator('li').count(), { timeout: 30_000 }).toBe(5);
    expect(errors).toEqual([]);
  });
});
