import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What `npm pack` ships (the test command builds dist/ first): the compiled engine and SDK with
 * their type declarations, the CLI launcher, docs and the license, and every path the `exports`
 * map names.
 */
const root = join(import.meta.dirname, '..', '..');

describe('the npm package', () => {
  it('includes the SDK and engine with .d.ts files, and every file the exports map names', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8' });
    const files = new Set((JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path));
    for (const f of [
      'dist/src/client/index.js',
      'dist/src/client/index.d.ts',
      'dist/src/app/engine.d.ts',
      'bin/tickwire.js',
      'LICENSE',
      'README.md',
      'docs/protocol.md',
    ]) {
      expect(files, f).toContain(f);
    }
    expect([...files].some((f) => f.startsWith('test/') || f.includes('.test.'))).toBe(false);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, { types: string; default: string }> };
    for (const entry of Object.values(pkg.exports)) {
      for (const target of [entry.types, entry.default]) {
        const rel = target.replace(/^\.\//, '');
        expect(files, target).toContain(rel);
        expect(existsSync(join(root, rel)), target).toBe(true);
      }
    }
  });
});
