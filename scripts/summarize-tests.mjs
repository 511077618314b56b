// Prints the plain closing line CI reads: "N passed, N failed" (", N skipped" when any).
import { readFileSync } from 'node:fs';
const path = process.argv[2];
let r;
try {
  r = JSON.parse(readFileSync(path, 'utf8'));
} catch (err) {
  console.log(`tests: could not read ${path}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const passed = r.numPassedTests ?? 0;
const failed = (r.numFailedTests ?? 0) + (r.numFailedTestSuites ?? 0);
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
