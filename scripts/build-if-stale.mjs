#!/usr/bin/env node
// Builds dist/ (`npm run build`) only when its inputs changed since the last build, so a second
// `npm start` does not pay for tsc and esbuild again. The inputs are hashed (contents, not mtimes:
// a fresh clone or a `touch` does not force a rebuild, an edit always does); the hash of the last
// successful build is kept in dist/.build-inputs.
// Usage: node scripts/build-if-stale.mjs [--force] [--check]
//   --force  build whatever the hash says
//   --check  print "fresh" or "stale" and exit 0 / 1 without building
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stampFile = join(root, 'dist', '.build-inputs');
/** What `npm run build` reads: sources (tests excluded), the web app, the build configs, the lock. */
const INPUT_DIRS = ['src', 'feeds', 'web', 'packages/client/src'];
const INPUT_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json', 'package-lock.json', 'scripts/build-web.mjs'];
/** Outputs the start command needs: a missing one means a rebuild whatever the hash. */
const OUTPUTS = ['dist/src/cli/main.js', 'dist/web/app.js', 'dist/web/index.html', 'packages/client/dist/index.js'];

function walk(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === 'test' || entry.name === 'node_modules') continue;
      walk(p, out);
    } else if (entry.isFile() && !entry.name.endsWith('.test.ts')) {
      out.push(p);
    }
  }
}

function inputsHash() {
  const files = [];
  for (const d of INPUT_DIRS) if (existsSync(join(root, d))) walk(join(root, d), files);
  for (const f of INPUT_FILES) if (existsSync(join(root, f))) files.push(join(root, f));
  files.sort();
  const h = createHash('sha256');
  for (const f of files) {
    h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex');
}

const argv = process.argv.slice(2);
const hash = inputsHash();
const previous = existsSync(stampFile) ? readFileSync(stampFile, 'utf8').trim() : '';
const outputsPresent = OUTPUTS.every((f) => existsSync(join(root, f)) && statSync(join(root, f)).size > 0);
const fresh = previous === hash && outputsPresent;

if (argv.includes('--check')) {
  console.log(fresh ? 'fresh' : 'stale');
  process.exit(fresh ? 0 : 1);
}
if (fresh && !argv.includes('--force')) process.exit(0);

const started = Date.now();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const r = spawnSync(npm, ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('build failed: dist/ was not updated (see the errors above)');
  process.exit(r.status ?? 1);
}
writeFileSync(stampFile, hash + '\n');
console.error(`built dist/ in ${((Date.now() - started) / 1000).toFixed(1)} s`);
