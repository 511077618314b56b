import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The dependency rules CI runs on the repository (`npm run depcheck`, .dependency-cruiser.cjs): a
 * tree with an upward import, an import cycle or engine code in the SDK fails them, so a future
 * cycle fails the build.
 */
const root = join(import.meta.dirname, '..', '..');
const bin = join(root, 'node_modules', '.bin', 'depcruise');
const work = mkdtempSync(join(tmpdir(), 'tickwire-deps-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function cruise(cwd: string, targets: string[]): { ok: boolean; out: string } {
  try {
    const out = execFileSync(bin, [...targets, '--config', join(root, '.dependency-cruiser.cjs')], { cwd, encoding: 'utf8', stdio: 'pipe' });
    return { ok: true, out };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** A small tree with the repository's folder names. */
function tree(name: string, files: Record<string, string>): string {
  const dir = join(work, name);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  cpSync(join(root, 'tsconfig.json'), join(dir, 'tsconfig.json'));
  return dir;
}

describe('dependency rules', () => {
  it('an import from a lower layer to a higher one fails', () => {
    const dir = tree('upward', {
      'src/core/config.ts': "import { start } from '../app/engine.js';\nexport const x = start;\n",
      'src/app/engine.ts': 'export const start = 1;\n',
    });
    const r = cruise(dir, ['src']);
    expect(r.ok).toBe(false);
    expect(r.out).toContain('no-upward-from-core');
  });

  it('a cycle fails, even inside one folder', () => {
    const dir = tree('cycle', {
      'src/fanout/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'src/fanout/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    });
    const r = cruise(dir, ['src']);
    expect(r.ok).toBe(false);
    expect(r.out).toContain('no-circular');
  });

  it('the browser SDK may not import engine code', () => {
    const dir = tree('client', {
      'src/client/client.ts': "import { loadConfig } from '../core/config.js';\nexport const c = loadConfig;\n",
      'src/core/config.ts': 'export const loadConfig = 1;\n',
    });
    const r = cruise(dir, ['src']);
    expect(r.ok).toBe(false);
    expect(r.out).toContain('client-sdk-has-no-engine-code');
  });
});
