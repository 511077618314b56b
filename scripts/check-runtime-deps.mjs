#!/usr/bin/env node
// Lists the packages the CLI can load at run time (static imports and literal dynamic imports
// reachable from src/cli/main.ts, type-only imports excluded) that are not production
// dependencies in package.json. The Docker image prunes dev dependencies, so any such package
// breaks the image; exits 1 and names each one with the file importing it.
//   node scripts/check-runtime-deps.mjs [entry.ts ...]
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const prod = new Set(Object.keys(pkg.dependencies ?? {}));
const builtins = new Set(builtinModules);
const entries = process.argv.slice(2).length ? process.argv.slice(2) : ['src/cli/main.ts'];

const IMPORT = /^\s*(import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*(?:\/\*[^*]*\*\/\s*)?['"]([^'"]+)['"]\s*\)/g;
/** non-literal specifiers we know of: `const spec = 'ws'; import(spec)` */
const INDIRECT = /\bconst\s+\w+\s*=\s*['"]([^'"./][^'"]*)['"];\s*\n[^\n]*\bimport\(/g;

const packageOf = (spec) => (spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]);
function resolveLocal(from, spec) {
  const base = resolve(dirname(from), spec);
  for (const c of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]) if (existsSync(c) && c.endsWith('.ts')) return c;
  return undefined;
}

const seen = new Set();
const missing = new Map();
const queue = entries.map((e) => resolve(root, e));
while (queue.length) {
  const file = queue.pop();
  if (seen.has(file)) continue;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  const specs = [];
  for (const m of text.matchAll(IMPORT)) if (!m[2]) specs.push(m[3]);
  for (const m of text.matchAll(DYNAMIC)) specs.push(m[1]);
  for (const m of text.matchAll(INDIRECT)) specs.push(m[1]);
  for (const spec of specs) {
    if (spec.startsWith('.')) {
      const local = resolveLocal(file, spec);
      if (local) queue.push(local);
      continue;
    }
    const name = packageOf(spec);
    if (spec.startsWith('node:') || builtins.has(name) || prod.has(name)) continue;
    if (!missing.has(name)) missing.set(name, new Set());
    missing.get(name).add(relative(root, file));
  }
}

if (missing.size === 0) {
  console.log(`runtime imports of ${seen.size} modules are all production dependencies`);
} else {
  for (const [name, files] of missing) {
    const where = pkg.devDependencies?.[name] ? 'a devDependency' : 'not in package.json';
    console.error(`${name} is imported at run time by ${[...files].join(', ')} but is ${where}: move it to "dependencies"`);
  }
  process.exit(1);
}
