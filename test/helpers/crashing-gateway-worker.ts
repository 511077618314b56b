// A gateway worker (src/workers/gateway-worker.ts) that crashes on demand, for the supervisor
// tests: when the file named by TW_TEST_CRASH_FILE appears, the worker whose index is
// TW_TEST_CRASH_WORKER throws an uncaught error. With TW_TEST_CRASH_ONCE the file is removed
// first, so that the restarted worker stays up.
import { existsSync, rmSync } from 'node:fs';
import { workerData } from 'node:worker_threads';

await import('../../src/workers/gateway-worker.js');

const file = process.env.TW_TEST_CRASH_FILE;
const target = process.env.TW_TEST_CRASH_WORKER;
if (file && target !== undefined && (workerData as { index: number }).index === Number(target)) {
  const timer = setInterval(() => {
    if (!existsSync(file)) return;
    if (process.env.TW_TEST_CRASH_ONCE) rmSync(file, { force: true });
    clearInterval(timer);
    throw new Error('injected crash (test)');
  }, 50);
  timer.unref();
}
