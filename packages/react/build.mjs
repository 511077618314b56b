#!/usr/bin/env node
// Builds @tickwire/react into dist/: index.js (ESM; react and @tickwire/client stay imports, so
// the app's single copies are used) and .d.ts files (tsc, checked against
// @tickwire/client's published types: build that package first). Prints the
// minified+gzipped size. Usage: node build.mjs [--quiet]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
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
  platform: 'neutral',
  mainFields: ['module', 'main'],
  target: ['es2022'],
  external: ['react', 'react-dom', '@tickwire/client'],
  legalComments: 'inline',
  logLevel: 'warning',
  metafile: true,
};

const result = await build({ ...common, outfile: join(dist, 'index.js'), sourcemap: true });
const foreign = Object.keys(result.metafile.inputs).filter((p) => !p.startsWith('packages/react/src/'));
if (foreign.length) throw new Error(`@tickwire/react bundled code from outside its package: ${foreign.join(', ')}`);

const min = await build({ ...common, minify: true, write: false, legalComments: 'none' });
const bytes = min.outputFiles[0].contents;
const gz = gzipSync(bytes, { level: 9 }).length;

// declarations per module with tsc: imports of @tickwire/client and react stay imports, so the
// app's TickwireClient is the one the provider takes (a bundled copy would be another type)
const require = createRequire(import.meta.url);
const tsc = join(dirname(require.resolve('typescript/package.json', { paths: [root] })), 'bin', 'tsc');
execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.build.json')], { stdio: 'inherit', cwd: root });

if (!quiet)
  console.log(`built @tickwire/react: dist/index.js (${(bytes.length / 1024).toFixed(1)} KiB minified, ${(gz / 1024).toFixed(1)} KiB gzipped) and dist/*.d.ts`);
