// Writes test/durations.json (seconds per test file, slowest first) from a vitest JSON report, for
// the sequencer of vitest.config.ts (test/sequencer.ts): run it after a whole `npm test` when files
// were added or got much slower or faster.
// usage: node scripts/test-durations.mjs [test/artifacts/vitest-results.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';

const reportPath = resolve(process.argv[2] ?? 'test/artifacts/vitest-results.json');
const report = JSON.parse(readFileSync(reportPath, 'utf8'));
// paths relative to the checkout the report was written in (<root>/test/artifacts/), as the
// sequencer looks them up: a report from a fresh clone elsewhere (CI) gives the same keys
const root = resolve(dirname(reportPath), '..', '..');
const rows = report.testResults
  .map((f) => [relative(root, f.name), Math.round((f.endTime - f.startTime) / 100) / 10])
  .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
writeFileSync('test/durations.json', JSON.stringify(Object.fromEntries(rows), null, 2) + '\n');
console.log(`test/durations.json: ${rows.length} files, ${Math.round(rows.reduce((s, r) => s + r[1], 0))} s in all`);
