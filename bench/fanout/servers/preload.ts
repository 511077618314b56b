/**
 * Preloaded (`--import`) into every server under test, identically:
 * - exits when the benchmark orchestrator that started it is gone, so a killed benchmark leaves
 *   nothing running (one unref'd timer per second);
 * - on SIGUSR2 runs a full garbage collection when node was started with --expose-gc, so the
 *   idle-memory scenario compares live memory rather than garbage not yet collected.
 * Nothing here runs on the hot path.
 */
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();

process.on('SIGUSR2', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
});
