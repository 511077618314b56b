import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine, streamUrl } from './helpers.js';

/**
 * #14 item 1: `npm pack` @tickwire/client, install the tarball into a fresh project (no
 * workspace, no source), compile a TypeScript consumer with `tsc --strict` against the packed
 * .d.ts, run it in plain Node against a real engine, and bundle it with esbuild (Node and
 * browser) as a front end would.
 */
const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');
let dir: string;
let engine: Engine;

async function sh(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    return (await run(cmd, args, { cwd, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_loglevel: 'error' } })).stdout;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tickwire-consumer-'));
  // the tarball is made from the build of the test command (scripts/test.sh runs `npm run build`,
  // which builds the packages); rebuilding here would race the other test that packs it
  await sh('npm', ['pack', '--workspace', '@tickwire/client', '--pack-destination', dir, '--silent'], root);
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error('npm pack made no tarball');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        lib: ['ES2022', 'DOM'],
        types: ['node'],
        skipLibCheck: false,
        outDir: 'out',
      },
      files: ['consumer.ts'],
    }),
  );
  copyFileSync(join(import.meta.dirname, 'fixtures', 'consumer', 'consumer.ts'), join(dir, 'consumer.ts'));
  // the published tarball, `ws` for Node 20 (no global WebSocket), and @types/node for the consumer's own use of process
  const wsVersion = (JSON.parse(readFileSync(join(root, 'node_modules', 'ws', 'package.json'), 'utf8')) as { version: string }).version;
  const typesNode = (JSON.parse(readFileSync(join(root, 'node_modules', '@types', 'node', 'package.json'), 'utf8')) as { version: string }).version;
  await sh(
    'npm',
    ['install', `./${tarball}`, `ws@${wsVersion}`, `@types/node@${typesNode}`, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'],
    dir,
  );
  engine = await startTestEngine();
}, 240_000);

afterAll(async () => {
  await engine?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('@tickwire/client from its npm tarball', { timeout: 120_000 }, () => {
  it('is under 15,000 bytes minified and gzipped, as the README and the SDK docs report', () => {
    const size = JSON.parse(readFileSync(join(root, 'packages', 'client', 'dist', 'size.json'), 'utf8')) as { minified: number; gzipped: number };
    expect(size.gzipped).toBeLessThan(15_000);
    const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;
    const readme = readFileSync(join(root, 'README.md'), 'utf8').replace(/\s+/g, ' ');
    expect(readme).toContain(`${kib(size.minified)} minified, ${kib(size.gzipped)} minified and gzipped`);
    const sdkDoc = readFileSync(join(root, 'docs', 'client-sdk.md'), 'utf8').replace(/\s+/g, ' ');
    expect(sdkDoc).toContain(`${kib(size.minified)} minified, ${kib(size.gzipped)} minified and gzipped`);
  });

  it('ships only dist, the license and the readme, with an exports map that names types', () => {
    const pkg = JSON.parse(readFileSync(join(dir, 'node_modules', '@tickwire', 'client', 'package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
      dependencies?: object;
    };
    expect(pkg.exports['.']!.types).toBe('./dist/index.d.ts');
    expect(pkg.exports['./history']!.types).toBe('./dist/history.d.ts');
    expect(pkg.dependencies ?? {}).toEqual({});
    const files = readdirSync(join(dir, 'node_modules', '@tickwire', 'client')).sort();
    expect(files).toEqual(['LICENSE', 'README.md', 'dist', 'package.json']);
  });

  it('type-checks a consumer with tsc --strict, which then receives data in plain Node', async () => {
    await sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir);
    const out = await sh(process.execPath, ['out/consumer.js', streamUrl(engine.port)], dir);
    const line = JSON.parse(out.trim().split('\n').pop()!) as {
      protocol: number;
      subscribed: string[];
      channel: string;
      bp: number;
      codes: unknown[];
      history: unknown;
    };
    expect(line.protocol).toBe(1);
    expect(line.subscribed).toEqual(['quote:BTC-USD']);
    expect(line.channel).toBe('quote:BTC-USD');
    expect(typeof line.bp).toBe('number');
    expect(line.codes).toEqual(['FORBIDDEN', 4009]);
    // @tickwire/client/history from the tarball: a page, and a refusal of the main entry's class
    expect(line.history).toEqual({ page: true, param: 'limit', sameClass: true });
  });

  it(
    'type-checks the same consumer under exactOptionalPropertyTypes with the other moduleResolutions an app may use: bundler, node (node10)',
    { timeout: 300_000 },
    async () => {
      // (nodenext: the test above.) node10 (`"moduleResolution": "node"`, older webpack and CRA
      // setups) reads no `exports`: before `typesVersions`, `@tickwire/client/history` had no types there (TS2307)
      for (const [module, moduleResolution] of [
        ['ESNext', 'Bundler'],
        ['ESNext', 'Node'],
      ] as const) {
        const config = `tsconfig.${moduleResolution.toLowerCase()}.json`;
        writeFileSync(
          join(dir, config),
          JSON.stringify({
            compilerOptions: {
              strict: true,
              exactOptionalPropertyTypes: true,
              noUncheckedIndexedAccess: true,
              target: 'ES2022',
              module,
              moduleResolution,
              lib: ['ES2022', 'DOM'],
              types: ['node'],
              skipLibCheck: false,
              noEmit: true,
            },
            files: ['consumer.ts'],
          }),
        );
        await sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', config], dir);
      }
    },
  );

  it('bundles with esbuild for Node (and runs) and for browsers (no Node built-ins, no ws)', async () => {
    const esbuild = join(root, 'node_modules', 'esbuild', 'bin', 'esbuild');
    await sh(esbuild, ['consumer.ts', '--bundle', '--platform=node', '--format=esm', '--outfile=bundle.mjs', '--log-level=error'], dir);
    const out = await sh(process.execPath, ['bundle.mjs', streamUrl(engine.port)], dir);
    expect(out).toContain('"channel":"quote:BTC-USD"');
    expect(out).toContain('"history":{"page":true,"param":"limit","sameClass":true}');
    writeFileSync(
      join(dir, 'browser.ts'),
      "import { TickwireClient } from '@tickwire/client';\nexport const c = new TickwireClient({ url: 'ws://127.0.0.1:1/v1/stream' });\n",
    );
    const meta = await sh(
      esbuild,
      ['browser.ts', '--bundle', '--platform=browser', '--format=esm', '--minify', '--outfile=browser.js', '--metafile=meta.json', '--log-level=error'],
      dir,
    );
    void meta;
    const inputs = Object.keys((JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { inputs: object }).inputs);
    expect(inputs.filter((p) => !p.startsWith('node_modules/@tickwire/client/') && p !== 'browser.ts')).toEqual([]);
  });
});
