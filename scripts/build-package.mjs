// The build of a workspace package (packages/*), shared by their build.mjs: an ESM bundle of
// src/index.ts into dist/ (esbuild, source map), its minified+gzipped size (what a front end pays
// on load), and the declarations. Each package says what differs: the externals, whether lazily
// imported modules become chunks of their own, which inputs it refuses, and how its declarations
// are made.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const binOf = (pkg, ...path) => join(dirname(require.resolve(`${pkg}/package.json`, { paths: [root] })), ...path);

/**
 * @param {object} options
 * @param {string} options.name package name, for messages
 * @param {string} options.dir the package folder (holds src/index.ts and its tsconfig files)
 * @param {string[]} options.external imports left as imports
 * @param {boolean} options.chunks split dynamically imported modules into dist/chunks/ (loaded on first use)
 * @param {(inputs: string[]) => void} options.checkInputs throws when the bundle holds an input it must not
 * @param {{ bundle: true } | { tsconfig: string }} options.declarations `bundle`: one dist/index.d.ts
 *   (dts-bundle-generator, relative imports inlined, checked against the package's tsconfig.json);
 *   `tsconfig`: one .d.ts per module, emitted by tsc with that project file (imports stay imports)
 * @param {string} [options.banner] text put before the bundle (a directive such as `"use client";`)
 * @param {RegExp} [options.mangleProps] properties to shorten (esbuild `mangleProps`), in the bundle
 *   shipped as in the one measured: the package's own internal fields (a name convention)
 * @param {boolean} [options.quiet] print nothing
 * @returns {Promise<{ minified: number, gzipped: number, chunksGzipped: number }>} bytes of the
 *   minified entry, of it gzipped, and of the minified chunks gzipped
 */
export async function buildPackage({ name, dir, external, chunks, checkInputs, declarations, banner, mangleProps, quiet = false }) {
  const dist = join(dir, 'dist');
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });

  const common = {
    absWorkingDir: root,
    entryPoints: [join(dir, 'src', 'index.ts')],
    bundle: true,
    format: 'esm',
    // neutral: no Node built-ins, no browser globals assumed at import time
    platform: 'neutral',
    mainFields: ['module', 'main'],
    target: ['es2022'],
    external,
    legalComments: 'inline',
    logLevel: 'warning',
    metafile: true,
    splitting: chunks,
    ...(banner ? { banner: { js: banner } } : {}),
    ...(mangleProps ? { mangleProps } : {}),
  };

  const result = await build({ ...common, outdir: dist, sourcemap: true, ...(chunks ? { chunkNames: 'chunks/[name]-[hash]' } : {}) });
  checkInputs(Object.keys(result.metafile.inputs));

  // minified and gzipped: the entry (paid on load), and the chunks (paid on first use); the
  // chunks sit next to the entry here, as they did when the published figures were measured
  const min = await build({ ...common, outdir: join(dist, 'min'), minify: true, write: false, legalComments: 'none' });
  const entry = min.outputFiles.find((f) => f.path === join(dist, 'min', 'index.js'));
  const gzipped = gzipSync(entry.contents, { level: 9 }).length;
  const rest = min.outputFiles.filter((f) => f !== entry && f.path.endsWith('.js'));
  const chunksGzipped = rest.reduce((n, f) => n + gzipSync(f.contents, { level: 9 }).length, 0);

  if ('bundle' in declarations) {
    execFileSync(
      process.execPath,
      [
        binOf('dts-bundle-generator', 'dist', 'bin', 'dts-bundle-generator.js'),
        '--silent',
        '--no-check',
        '--project',
        join(dir, 'tsconfig.json'),
        '--export-referenced-types',
        'false',
        '-o',
        join(dist, 'index.d.ts'),
        join(dir, 'src', 'index.ts'),
      ],
      { stdio: 'inherit', cwd: root },
    );
  } else {
    execFileSync(process.execPath, [binOf('typescript', 'bin', 'tsc'), '-p', join(dir, declarations.tsconfig)], { stdio: 'inherit', cwd: root });
  }

  const minified = entry.contents.length;
  if (!quiet)
    console.log(
      `built ${name}: dist/index.js (${(minified / 1024).toFixed(1)} KiB minified, ${(gzipped / 1024).toFixed(1)} KiB gzipped) and ${'bundle' in declarations ? 'dist/index.d.ts' : 'dist/*.d.ts'}`,
    );
  return { minified, gzipped, chunksGzipped };
}
