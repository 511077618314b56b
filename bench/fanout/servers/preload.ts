/**
 * Preloaded (`--import`) into every server under test, identically:
 * - exits when the benchmark orchestrator that started it is gone, so a killed benchmark leaves
 *   nothing running (one unref'd timer per second);
 * - on SIGUSR2 runs a full garbage collection when node was started with --expose-gc, so the
 *   idle-memory scenario compares live memory rather than garbage not yet collected.
 * - with BENCH_LOOP_FILE, samples the event-loop delay (below).
 * Nothing here runs on the hot path.
 */
import { writeFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();

process.on('SIGUSR2', () => {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
});

// BENCH_LOOP_FILE: sample the event-loop delay every 2 ms (a timer, the same for every server);
// on SIGURG write p99 and max since the previous SIGURG to that file and start again. A server
// turn that writes a burst to many sockets shows as a delay of that length.
const loopFile = process.env.BENCH_LOOP_FILE;
if (loopFile) {
  const h = monitorEventLoopDelay({ resolution: 2 });
  h.enable();
  let n = 0;
  process.on('SIGURG', () => {
    writeFileSync(loopFile, JSON.stringify({ n: ++n, p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6, count: h.count }));
    h.reset();
  });
}
