// A gateway worker (src/workers/gateway-worker.ts) that crashes on demand, for the supervisor
// tests: when the file named by TW_TEST_CRASH_FILE appears, the worker whose index is
// TW_TEST_CRASH_WORKER throws an uncaught error. With TW_TEST_CRASH_ONCE the file is removed
// first, so that the restarted worker stays up.
//
// Plain JavaScript, so that with dist/ fresh (TW_TEST_DIST=1, test/global-setup.ts) the worker
// thread runs the compiled gateway worker without tsx, as gatewayWorkerEntry() gives the other
// tests: a .ts entry made every (re)start load tsx and its hooks first, and from source the whole
// tree through them (the two supervisor tests took 12-16 s at load 10, 8 s like this). Without a
// fresh dist/ it registers tsx itself, as the supervisor does for a .ts entry, and runs the sources.
import { existsSync, rmSync } from 'node:fs';
import { workerData } from 'node:worker_threads';

if (process.env.TW_TEST_DIST === '1') {
  await import(new URL('../../dist/src/workers/gateway-worker.js', import.meta.url).href);
} else {
  const api = await import('tsx/esm/api');
  (api.register ?? api.default.register)();
  await import(new URL('../../src/workers/gateway-worker.ts', import.meta.url).href);
}

const file = process.env.TW_TEST_CRASH_FILE;
const target = process.env.TW_TEST_CRASH_WORKER;
if (file && target !== undefined && workerData.index === Number(target)) {
  const timer = setInterval(() => {
    if (!existsSync(file)) return;
    if (process.env.TW_TEST_CRASH_ONCE) rmSync(file, { force: true });
    clearInterval(timer);
    throw new Error('injected crash (test)');
  }, 50);
  timer.unref();
}
