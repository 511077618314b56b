import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** docs/reliability.md points at tests that exist, and every reliability test file is cited there. */
describe('docs/reliability.md', () => {
  const doc = readFileSync('docs/reliability.md', 'utf8');
  const cited = new Set([...doc.matchAll(/`((?:test|scripts)\/[\w./-]+\.ts)`/g)].map((m) => m[1]!));

  it('cites only files that exist', () => {
    expect(cited.size).toBeGreaterThan(10);
    for (const path of cited) expect(existsSync(path), path).toBe(true);
  });

  it('cites every test file of the reliability suites', () => {
    for (const dir of ['test/faults', 'test/hostile', 'test/property', 'test/compliance', 'test/soak']) {
      for (const f of readdirSync(dir).filter((n) => n.endsWith('.test.ts') && n !== 'reliability-doc.test.ts')) {
        expect(cited.has(join(dir, f)), `${dir}/${f} is not cited in docs/reliability.md`).toBe(true);
      }
    }
  });
});
