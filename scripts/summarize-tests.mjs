// Prints the plain closing line CI reads: "N passed, N failed" (", N skipped" when any).
// usage: node scripts/summarize-tests.mjs <vitest json report> [vitest exit status]
// Errors vitest reports outside any test (unhandled rejections, uncaught exceptions) fail the run
// too: they count as failures here so the line never says "0 failed" for a failing run.
import { readFileSync } from 'node:fs';
const path = process.argv[2];
const vitestStatus = Number(process.argv[3] ?? 0);
let r;
try {
  r = JSON.parse(readFileSync(path, 'utf8'));
} catch (err) {
  console.log(`tests: could not read ${path}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const passed = r.numPassedTests ?? 0;
// a file that failed without any failed test (it did not load, or a hook threw) counts once
const failedFilesWithoutTests = (r.testResults ?? []).filter(
  (f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed'),
).length;
let failed = (r.numFailedTests ?? 0) + failedFilesWithoutTests;
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
if (vitestStatus !== 0 && failed === 0) {
  console.log('tests: vitest reported errors outside the tests (see "Errors" above); counted as 1 failure');
  failed = 1;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
