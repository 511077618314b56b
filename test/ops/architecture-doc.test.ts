import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * docs/architecture.md#folders says a folder imports only the folders above it in its table; the
 * rules that enforce it (`npm run depcheck`) are built from the LAYERS list of
 * .dependency-cruiser.cjs. The table must list the layers in that order, and name every folder of
 * src/.
 */
const doc = readFileSync('docs/architecture.md', 'utf8');
const table = doc.slice(doc.indexOf('\n## Folders\n'), doc.indexOf('\n## ', doc.indexOf('\n## Folders\n') + 1));
/** the first cell of each row: the folders it names */
const rows = [...table.matchAll(/^\| (`[^|]+`) \|/gm)].map((m) => [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!));

interface Rule {
  name: string;
  from: { path?: string };
}
const rules = (createRequire(import.meta.url)('../../.dependency-cruiser.cjs') as { forbidden: Rule[] }).forbidden;
/** the layers in order, as the row that names them: `src/<dir>`, or the row of the feeds */
const layers = rules
  .filter((r) => r.name.startsWith('no-upward-from-'))
  .map((r) => /^\^src\/([a-z-]+)\/$/.exec(r.from.path ?? '')?.[1])
  .map((dir) => (dir ? `src/${dir}` : 'feeds'))
  .filter((row, i, all) => all.indexOf(row) === i);

/** which row of the table names `folder` (or, for 'feeds', a folder of feeds/) */
const rowOf = (folder: string): number => rows.findIndex((names) => names.some((n) => (folder === 'feeds' ? n.startsWith('feeds/') : n === folder)));

describe('docs/architecture.md folders table', () => {
  it('lists the dependency layers of .dependency-cruiser.cjs in their order (a folder imports only those above it)', () => {
    expect(layers.length).toBeGreaterThan(20);
    const at = layers.map((l) => [l, rowOf(l)] as const);
    for (const [layer, row] of at) expect(row, `${layer} has no row in docs/architecture.md#folders`).toBeGreaterThanOrEqual(0);
    const inTableOrder = [...at].sort((a, b) => a[1] - b[1]).map(([l]) => l);
    expect(inTableOrder).toEqual(layers);
  });

  it('names every folder of src/', () => {
    const named = new Set(table.match(/`src\/[a-z-]+`/g)!.map((n) => n.slice(1, -1)));
    const dirs = readdirSync('src', { withFileTypes: true })
      .filter((d) => d.isDirectory())
      .map((d) => `src/${d.name}`);
    expect(dirs.filter((d) => !named.has(d))).toEqual([]);
  });
});
