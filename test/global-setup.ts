import { spawnSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

/**
 * Runs once per vitest run, before any test file: decides whether the processes and gateway worker
 * threads that tests start run the compiled code (dist/) or the sources through tsx, and tells the
 * test workers with TW_TEST_DIST=1 (read by test/helpers/processes.ts; the workers are started
 * after this, with this process's environment).
 *
 * Compiled code starts in about half the time (tsx resolves and loads every module of the tree
 * through its loader hooks, in each spawned process and in each worker thread), but only dist/
 * built from the current sources may be used: `scripts/build-if-stale.mjs --check` compares the
 * hash of the sources with the one of the last build it made (scripts/test.sh builds through it).
 * A stale or missing dist/ (sources edited since, or built by plain `npm run build`) means the
 * sources through tsx, as before: slower, never wrong. TICKWIRE_TEST_FROM_SOURCE=1 forces the
 * sources. In watch mode the check runs again before every rerun.
 */
function check(): void {
  const fresh =
    process.env.TICKWIRE_TEST_FROM_SOURCE !== '1' &&
    spawnSync(process.execPath, ['scripts/build-if-stale.mjs', '--check'], { encoding: 'utf8' }).stdout?.trim() === 'fresh';
  if (fresh) process.env.TW_TEST_DIST = '1';
  else delete process.env.TW_TEST_DIST;
}

export default function setup(project: TestProject): void {
  check();
  project.onTestsRerun(check);
}
