import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { describeConfig } from '../../src/core/config.js';
import { createMetrics } from '../../src/ops/metrics.js';
import { TickAgeHistogram } from '../../src/ops/tick-age.js';

const doc = readFileSync('docs/operations.md', 'utf8');
const section = (title: string): string => {
  const start = doc.indexOf(`\n## ${title}\n`);
  const end = doc.indexOf('\n## ', start + 1);
  expect(start, title).toBeGreaterThanOrEqual(0);
  return doc.slice(start, end < 0 ? undefined : end);
};

describe('docs/operations.md', () => {
  it('documents exactly the metrics the engine registers', () => {
    const registered = createMetrics({ tickAge: new TickAgeHistogram() }, { defaultMetrics: false })
      .registry.getMetricsAsArray()
      .map((m) => m.name)
      .sort();
    const documented = [...new Set([...section('Metrics').matchAll(/`(tickwire_[a-z0-9_]+)`/g)].map((m) => m[1]!))].sort();
    expect(documented).toEqual(registered);
  });

  it('has a config table whose keys all exist in the schema', () => {
    const keys = new Set(describeConfig().map((r) => r.key));
    const table = doc.slice(doc.indexOf('<!-- config-table:start'), doc.indexOf('<!-- config-table:end'));
    const rows = [...table.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
    expect(rows.length).toBeGreaterThan(20);
    for (const k of rows) expect(keys.has(k), `docs list "${k}" which is not a config key: regenerate with scripts/config-table.mjs --write`).toBe(true);
  });

  it('has the config table scripts/config-table.mjs generates (no row edited by hand)', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/config-table.mjs', '--check'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `${r.stderr}: edit the schema's describe() in src/core/config.ts, then run npm run docs:config`).toBe(0);
  });

  it('scripts/config-table.mjs prints a row for every config key', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/config-table.mjs'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    for (const row of describeConfig()) expect(r.stdout).toContain(`| \`${row.key}\` | \`${row.env}\``);
    // secrets never show a default
    for (const line of r.stdout.split('\n').filter((l) => /secret|token|password/i.test(l.split('|')[1] ?? ''))) {
      expect(line.split('|')[3]!.trim()).toMatch(/^(—|\(secret\))$/);
    }
  });

  it('says the Docker setup was not run here', () => {
    expect(section('Deployment with Docker and Compose')).toMatch(/not built or run here/);
  });
});
