import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { AlertErrorCode, parseAlertRule } from '../../src/alerts/rule.js';

const doc = readFileSync('docs/alerts.md', 'utf8');
const blocks = (lang: string): string[] => [...doc.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);

describe('docs/alerts.md', () => {
  it('its example rules are valid', () => {
    const [json] = blocks('json');
    const rules = JSON.parse(json!) as unknown[];
    expect(rules).toHaveLength(3);
    for (const r of rules) expect(() => parseAlertRule(r, { registry: defaultRegistry(), nowMs: Date.UTC(2026, 0, 1) })).not.toThrow();
  });

  it('its TypeScript example prints what the doc says', () => {
    const [ts] = blocks('ts');
    const [expected] = blocks('text');
    // run from a scratch folder inside the repository (ignored by git) so the relative imports resolve one level up
    const dir = mkdtempSync(join(process.cwd(), '.scratch-alerts-'));
    try {
      const file = join(dir, 'alerts-demo.ts');
      writeFileSync(file, ts!.replaceAll("from './src", "from '../src"));
      const r = spawnSync(process.execPath, ['--import', 'tsx', file], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lists every error code and documents the alerts.* config keys with their defaults', () => {
    for (const code of Object.values(AlertErrorCode).filter((c) => c !== 'ALERT_NOT_FOUND')) expect(doc).toContain(`| \`${code}\` |`);
    const rows = describeConfig().filter((r) => r.key.startsWith('alerts.'));
    expect(rows.length).toBe(8);
    for (const r of rows) expect(doc).toContain(`| \`${r.key}\` | \`${JSON.stringify(r.default).replace(/"/g, '')}\``);
  });
});
