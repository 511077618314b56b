/**
 * A watchdog child of the orchestrator: it is told the PIDs of the children that have no IPC
 * channel of their own (nats-server, the tickwire gateway) and, if the orchestrator disappears
 * without cleaning up (SIGKILL, crash), ends them by PID and exits. Before killing it checks that
 * the PID still runs the command it was told about, so a recycled PID is never touched.
 */
import { readFileSync } from 'node:fs';

interface Watched {
  pid: number;
  /** a substring of /proc/<pid>/cmdline identifying the process */
  match: string;
}

const watched = new Map<number, Watched>();

process.on('message', (msg: { watch?: Watched; gone?: number }) => {
  if (msg.watch) watched.set(msg.watch.pid, msg.watch);
  if (msg.gone !== undefined) watched.delete(msg.gone);
});

process.on('disconnect', () => {
  for (const w of watched.values()) {
    try {
      const cmdline = readFileSync(`/proc/${w.pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(w.match)) process.kill(w.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  process.exit(0);
});
