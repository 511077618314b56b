import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnListening, waitHttpOk } from '../helpers/processes.js';
import type { TickwireProcess } from '../helpers/processes.js';
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

/**
 * The same from what a real process serves: `tickwire start` with two gateway workers, whose
 * /metrics merges the workers' registries with the main thread's (types and labels could change
 * in the merge). Every tickwire_* family served is a row of the table, with that type, and its
 * samples carry only the documented labels.
 */
describe('GET /metrics of a real process against the table', () => {
  const procs: TickwireProcess[] = [];
  afterAll(async () => {
    await Promise.allSettled(procs.map((p) => p.stop('SIGKILL')));
  });

  it('tickwire start --workers 2', { timeout: 90_000 }, async () => {
    const { proc, port } = await spawnListening(['start', '--workers', '2'], { HOST: '127.0.0.1', TICKWIRE_SYNTHETIC_RATE: '50' });
    procs.push(proc);
    await waitHttpOk(`http://127.0.0.1:${port}/ready`, 60_000, proc);
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const documented = documentedRows();
    const problems: string[] = [];
    const types = [...text.matchAll(/^# TYPE (tickwire_\w+) (\w+)$/gm)];
    expect(types.length).toBeGreaterThan(40);
    for (const [, name, type] of types) {
      const row = documented.get(name!);
      if (row === undefined) problems.push(`${name}: served but not in the table`);
      else if (row.type !== type) problems.push(`${name}: documented as "${row.type}", served as "${type}"`);
    }
    for (const [, family, labels] of text.matchAll(/^(tickwire_\w+?)(?:_bucket|_sum|_count)?\{([^}]*)\}/gm)) {
      const row = documented.get(family!) ?? documented.get(family!.replace(/_(bucket|sum|count)$/, ''));
      if (row === undefined) continue; // reported above
      for (const [, label] of labels!.matchAll(/(\w+)="/g))
        if (label !== 'le' && !row.labels.includes(label!)) problems.push(`${family}: label "${label}" not documented`);
    }
    expect([...new Set(problems)]).toEqual([]);
    expect(await proc.stop('SIGTERM')).toBe(0);
  });
});
