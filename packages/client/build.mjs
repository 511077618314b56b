#!/usr/bin/env node
// Builds @tickwire/client into dist/: index.js (ESM, browser + Node, the protocol module of
// src/protocol and msgpackr's decoder bundled in, no dependencies) and index.d.ts (one bundled
// declaration file, the protocol types inlined). Prints the minified+gzipped size a front end
// pays. Usage: node build.mjs [--quiet]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const dist = join(here, 'dist');
const quiet = process.argv.includes('--quiet');

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });

const common = {
  absWorkingDir: root,
  entryPoints: [join(here, 'src', 'index.ts')],
  bundle: true,
  format: 'esm',
  // neutral: no Node built-ins, no browser globals assumed at import time; `ws` is imported on
  // demand in Node only, through a non-literal specifier
  platform: 'neutral',
  mainFields: ['module', 'main'],
  target: ['es2022'],
  external: ['ws'],
  legalComments: 'inline',
  logLevel: 'warning',
  metafile: true,
};

// splitting: the HTTP-streaming fallback is a chunk of its own, imported on first use
const result = await build({ ...common, outdir: dist, splitting: true, chunkNames: 'chunks/[name]-[hash]', sourcemap: true });
const engine = Object.keys(result.metafile.inputs).filter((p) => /^(src|feeds)\//.test(p) && !p.startsWith('src/protocol/'));
if (engine.length) throw new Error(`@tickwire/client pulled in engine code: ${engine.join(', ')}`);
if (Object.keys(result.metafile.inputs).some((p) => p.startsWith('node:'))) throw new Error('@tickwire/client pulled in a Node built-in');

// the size a front end pays on load (the entry), and the fallback chunk it loads only when
// WebSocket upgrades are refused: minified and gzipped
const min = await build({ ...common, outdir: join(dist, 'min'), splitting: true, minify: true, write: false, legalComments: 'none' });
const entry = min.outputFiles.find((f) => f.path.endsWith(`${join('min', 'index.js')}`));
const bytes = entry.contents;
const gz = gzipSync(bytes, { level: 9 }).length;
const rest = min.outputFiles.filter((f) => f !== entry && f.path.endsWith('.js'));
const fallbackGz = rest.reduce((n, f) => n + gzipSync(f.contents, { level: 9 }).length, 0);
writeFileSync(join(dist, 'size.json'), `${JSON.stringify({ minified: bytes.length, gzipped: gz, fallbackGzipped: fallbackGz }, null, 2)}\n`);

// one declaration file: dts-bundle-generator inlines the relative imports (src/protocol)
const require = createRequire(import.meta.url);
const dtsBin = join(dirname(require.resolve('dts-bundle-generator/package.json', { paths: [root] })), 'dist', 'bin', 'dts-bundle-generator.js');
execFileSync(
  process.execPath,
  [
    dtsBin,
    '--silent',
    '--no-check',
    '--project',
    join(here, 'tsconfig.json'),
    '--export-referenced-types',
    'false',
    '-o',
    join(dist, 'index.d.ts'),
    join(here, 'src', 'index.ts'),
  ],
  { stdio: 'inherit', cwd: root },
);

if (!quiet)
  console.log(
    `built @tickwire/client: dist/index.js (${(bytes.length / 1024).toFixed(1)} KiB minified, ${(gz / 1024).toFixed(1)} KiB gzipped) and dist/index.d.ts`,
  );
