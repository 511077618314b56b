import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * test/durations.json orders the suite longest file first (test/sequencer.ts), keyed by the path of
 * each file in the checkout. It was once written from a clone's report with paths relative to
 * another directory (`../../../tmp/<clone>/test/...`): no key matched, and every CI run fell back
 * to vitest's own order, with long files left to the end.
 */
describe('test/durations.json', () => {
  it('names test files of this checkout, by their path in it', () => {
    const root = join(import.meta.dirname, '..', '..');
    const keys = Object.keys(JSON.parse(readFileSync(join(root, 'test', 'durations.json'), 'utf8')) as Record<string, number>);
    expect(keys.length).toBeGreaterThan(100);
    const missing = keys.filter((k) => k.startsWith('..') || !existsSync(join(root, k)));
    // a file renamed or removed since the last write is harmless, a few at most
    expect(missing.length, `not test files of this checkout: ${missing.slice(0, 5).join(', ')}`).toBeLessThanOrEqual(5);
  });
});
