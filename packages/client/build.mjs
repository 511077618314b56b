#!/usr/bin/env node
// Builds @tickwire/client into dist/: index.js (ESM, browser + Node, the protocol module of
// src/protocol and msgpackr's decoder bundled in, no dependencies) and index.d.ts (one bundled
// declaration file, the protocol types inlined), and history.js + history.d.ts, the subpath
// `@tickwire/client/history` (GET /v1/bars pages), which imports the main entry instead of bundling
// it again. Writes and prints the minified+gzipped size a front end pays (dist/size.json; the main
// entry's, which the history entry does not add to). Usage: node build.mjs [--quiet]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildPackage } from '../../scripts/build-package.mjs';

const here = dirname(fileURLToPath(import.meta.url));

const size = await buildPackage({
  name: '@tickwire/client',
  dir: here,
  // `ws` is imported on demand in Node only, through a non-literal specifier
  external: ['ws'],
  // the HTTP-streaming fallback is a chunk of its own, imported on first use (when WebSocket
  // upgrades are refused)
  chunks: true,
  checkInputs(inputs) {
    const engine = inputs.filter((p) => /^(src|feeds)\//.test(p) && !p.startsWith('src/protocol/'));
    if (engine.length) throw new Error(`@tickwire/client pulled in engine code: ${engine.join(', ')}`);
    if (inputs.some((p) => p.startsWith('node:'))) throw new Error('@tickwire/client pulled in a Node built-in');
  },
  // the client's internal fields end in `_` (src/client.ts): shortened like local names, in the
  // shipped bundle too (a front end's minifier cannot tell them from the public API's)
  mangleProps: /_$/,
  // one declaration file: dts-bundle-generator inlines the relative imports (src/protocol)
  declarations: { bundle: true },
  quiet: process.argv.includes('--quiet'),
});

// the history entry: its own bundle, with `./index.js` (the main entry) left as an import, so the
// error class is the one of the main entry and nothing is loaded twice
const root = join(here, '..', '..');
const mainEntry = {
  name: 'main-entry',
  setup(b) {
    b.onResolve({ filter: /^\.\/index\.js$/ }, (args) =>
      args.importer.endsWith(join('src', 'history.ts')) ? { path: './index.js', external: true } : undefined,
    );
  },
};
const historyBuild = {
  absWorkingDir: root,
  entryPoints: [join(here, 'src', 'history.ts')],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: ['es2022'],
  plugins: [mainEntry],
  logLevel: 'warning',
  metafile: true,
};
const history = await build({ ...historyBuild, outfile: join(here, 'dist', 'history.js'), sourcemap: true });
const historyInputs = Object.keys(history.metafile.inputs);
if (historyInputs.some((p) => p !== 'packages/client/src/history.ts'))
  throw new Error(`@tickwire/client/history bundled more than its own module: ${historyInputs.join(', ')}`);
const historyMin = await build({ ...historyBuild, write: false, minify: true, outfile: join(here, 'dist', 'min', 'history.js') });
const historyGzipped = gzipSync(historyMin.outputFiles.find((f) => f.path.endsWith('.js')).contents, { level: 9 }).length;
// its declarations: tsc's for the module, which imports the types of ./index.js (dist/index.d.ts)
const require = createRequire(import.meta.url);
const tsc = join(dirname(require.resolve('typescript/package.json', { paths: [root] })), 'bin', 'tsc');
const tmp = mkdtempSync(join(tmpdir(), 'tickwire-client-dts-'));
try {
  execFileSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json'), '--noEmit', 'false', '--declaration', '--emitDeclarationOnly', '--outDir', tmp], {
    stdio: 'inherit',
    cwd: root,
  });
  copyFileSync(join(tmp, 'packages', 'client', 'src', 'history.d.ts'), join(here, 'dist', 'history.d.ts'));
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
if (!process.argv.includes('--quiet'))
  console.log(`built @tickwire/client/history: dist/history.js (${(historyGzipped / 1024).toFixed(1)} KiB gzipped) and dist/history.d.ts`);

writeFileSync(
  join(here, 'dist', 'size.json'),
  `${JSON.stringify({ minified: size.minified, gzipped: size.gzipped, fallbackGzipped: size.chunksGzipped, historyGzipped }, null, 2)}\n`,
);
