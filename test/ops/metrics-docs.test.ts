import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/ops/metrics.js';
import { TickAgeHistogram } from '../../src/ops/tick-age.js';

/**
 * docs/operations.md's metrics table against the real registry: every metric the engine registers
 * is a row with its type and its labels, and every row names a registered metric. The registry is
 * the one `createMetrics` builds for a process (every role's metrics are registered; a role only
 * decides which have values), so a metric added or relabelled without its row fails here.
 */
const doc = readFileSync('docs/operations.md', 'utf8');
const start = doc.indexOf('\n## Metrics\n');
const metricsSection = doc.slice(start, doc.indexOf('\n## ', start + 1));

interface Row {
  type: string;
  labels: string[];
}
function documentedRows(): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const line of metricsSection.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    // | metric | type | labels | meaning |
    if (cells.length < 6 || !cells[1]!.includes('`tickwire_')) continue;
    const names = [...cells[1]!.matchAll(/`(tickwire_[a-z0-9_]+)`/g)].map((m) => m[1]!);
    const labels = [...cells[3]!.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).sort();
    for (const n of names) {
      expect(rows.has(n), `${n} has two rows in the metrics table`).toBe(false);
      rows.set(n, { type: cells[2]!, labels });
    }
  }
  return rows;
}

describe('docs/operations.md metrics table', () => {
  const registry = createMetrics({ tickAge: new TickAgeHistogram() }, { defaultMetrics: false }).registry;
  const registered = new Map(
    registry.getMetricsAsArray().map((m) => {
      const metric = m as unknown as { name: string; labelNames?: readonly string[]; get(): Promise<{ type: string }> | { type: string } };
      return [metric.name, metric] as const;
    }),
  );
  const documented = documentedRows();

  it('lists every registered metric with its type and labels', async () => {
    const problems: string[] = [];
    for (const [name, metric] of registered) {
      const row = documented.get(name);
      if (row === undefined) {
        problems.push(`${name}: registered but not in the table`);
        continue;
      }
      const { type } = await metric.get();
      if (row.type !== type) problems.push(`${name}: documented as "${row.type}", registered as "${type}"`);
      const labels = [...(metric.labelNames ?? [])].filter((l) => l !== 'le' && l !== 'quantile').sort();
      if (row.labels.join(',') !== labels.join(',')) problems.push(`${name}: documented labels [${row.labels.join(', ')}], registered [${labels.join(', ')}]`);
    }
    expect(problems).toEqual([]);
  });

  it('documents no metric the engine does not register', () => {
    expect([...documented.keys()].filter((n) => !registered.has(n))).toEqual([]);
  });
});
