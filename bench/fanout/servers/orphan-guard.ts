/**
 * Preloaded (`--import`) into server processes that have no IPC channel (the tickwire gateway):
 * exits when the benchmark orchestrator that started it is gone, so a killed benchmark leaves
 * nothing running. One unref'd timer per second; nothing on the hot path.
 */
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();
