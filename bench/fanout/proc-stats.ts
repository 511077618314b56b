/**
 * CPU time and memory of another process, read from /proc the same way for every server under
 * test (Linux only): utime+stime over all threads, and resident set size.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

let clockTicks = 0;
function ticksPerSecond(): number {
  if (clockTicks === 0) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User and system CPU time of the process (all threads) in microseconds; NaN if it is gone. */
export function cpuSplit(pid: number): { user: number; system: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // fields after the command name, which is in parentheses and may contain spaces
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime is field 14, stime field 15
    const hz = ticksPerSecond();
    return { user: (Number(fields[11]) * 1e6) / hz, system: (Number(fields[12]) * 1e6) / hz };
  } catch {
    return { user: NaN, system: NaN };
  }
}

/** User + system CPU time of the process (all threads) in microseconds; NaN if it is gone. */
export function cpuMicros(pid: number): number {
  const c = cpuSplit(pid);
  return c.user + c.system;
}

function statusKb(pid: number, key: string): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status);
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  return statusKb(pid, 'VmRSS') * 1024;
}

/** Peak resident set size in bytes over the process's life. */
export function peakRssBytes(pid: number): number {
  return statusKb(pid, 'VmHWM') * 1024;
}

/** Machine-wide CPU time in microseconds: busy (everything but idle and iowait) and total. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is already in user)
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const hz = ticksPerSecond();
    return { busy: ((total - idle) * 1e6) / hz, total: (total * 1e6) / hz };
  } catch {
    return { busy: NaN, total: NaN };
  }
}
