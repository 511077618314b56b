#!/usr/bin/env node
// Bundles the dashboard (web/) and the operator's console (web/admin/) with the client SDK into
// dist/web/: index.html, app.js, styles.css, admin.html, admin.js.
// Usage: node scripts/build-web.mjs [--watch] [--no-minify] [--outdir DIR]
import { build, context } from 'esbuild';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const outIdx = argv.indexOf('--outdir');
const outdir = outIdx >= 0 && argv[outIdx + 1] ? resolve(argv[outIdx + 1]) : join(root, 'dist', 'web');
const watch = argv.includes('--watch');
const minify = !argv.includes('--no-minify');
const STATIC = ['index.html', 'styles.css'];

/** @type {import('esbuild').BuildOptions} */
const options = {
  absWorkingDir: root,
  entryPoints: { app: 'web/app.ts', admin: 'web/admin/admin.ts' },
  outdir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify,
  sourcemap: true,
  metafile: true,
  legalComments: 'none',
  logLevel: 'warning',
  // The SDK imports `ws` only in Node, through a non-literal specifier; refuse it here anyway.
  external: ['ws'],
  tsconfig: join(root, 'web', 'tsconfig.json'),
  // workspace packages (@tickwire/client) are bundled from their sources
  conditions: ['tickwire-source'],
};

async function copyStatic() {
  await mkdir(outdir, { recursive: true });
  for (const f of STATIC) await copyFile(join(root, 'web', f), join(outdir, f));
  await copyFile(join(root, 'web', 'admin', 'admin.html'), join(outdir, 'admin.html'));
}

function checkInputs(metafile) {
  const bad = Object.keys(metafile.inputs).filter((p) => /node_modules\/ws\/|^node:|node_modules\/msgpackr\/(pack|node-index)\.js/.test(p));
  if (bad.length) throw new Error(`dashboard bundle pulled in Node-only or unneeded modules: ${bad.join(', ')}`);
}

if (watch) {
  await copyStatic();
  const ctx = await context({ ...options, plugins: [{ name: 'static', setup: (b) => b.onEnd(() => copyStatic()) }] });
  await ctx.watch();
  console.log(`watching web/ -> ${outdir}`);
} else {
  await mkdir(outdir, { recursive: true });
  const result = await build(options);
  checkInputs(result.metafile);
  await copyStatic();
  const size = (await stat(join(outdir, 'app.js'))).size;
  console.log(
    `built ${relative(process.cwd(), outdir) || '.'}/ (app.js ${(size / 1024).toFixed(1)} KiB, ${Object.keys(result.metafile.inputs).length} modules)`,
  );
}
