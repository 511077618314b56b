/**
 * Child processes of the benchmark: every one is tracked and ended by PID (SIGTERM, then SIGKILL
 * after a grace period), on success, error, timeout and signals alike. Children started with IPC
 * also exit by themselves when the orchestrator goes away (`disconnect`).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { openSync, closeSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const ext = extname(fileURLToPath(import.meta.url));
/** Under tsx the children are .ts and need its loader; compiled, they are plain .js. */
export const TS_EXEC_ARGV: string[] = ext === '.ts' ? ['--import', 'tsx'] : [];

const live = new Set<ChildProcess>();

export function trackedCount(): number {
  return live.size;
}

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** A log file for a child's stdout/stderr. */
function logFd(logDir: string, name: string): number {
  return openSync(join(logDir, `${name}.log`), 'a');
}

/** Fork a module of this folder (e.g. `load-process`, `servers/uws-raw`) with IPC. */
export function forkModule(
  name: string,
  opts: { args?: string[]; env?: NodeJS.ProcessEnv; logDir: string; logName: string; execArgv?: string[] },
): ChildProcess {
  const fd = logFd(opts.logDir, opts.logName);
  const child = fork(join(here, name + ext), opts.args ?? [], {
    execArgv: [...TS_EXEC_ARGV, ...(opts.execArgv ?? [])],
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd, 'ipc'],
    serialization: 'advanced',
  });
  closeSync(fd);
  return track(child);
}

let reaper: ChildProcess | undefined;

/** Start the watchdog that ends IPC-less children if this process dies without cleaning up. */
export function startReaper(logDir: string): void {
  reaper = forkModule('reaper', { logDir, logName: 'reaper' });
  reaper.unref();
  reaper.channel?.unref();
}

/**
 * Spawn any command with its output to a log file. It has no IPC channel, so it is registered
 * with the reaper (identified by `match` in its command line).
 */
export function spawnLogged(
  command: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; logDir: string; logName: string; match: string },
): ChildProcess {
  const fd = logFd(opts.logDir, opts.logName);
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const pid = child.pid;
  if (pid !== undefined && reaper?.connected) {
    reaper.send({ watch: { pid, match: opts.match } });
    child.once('exit', () => {
      if (reaper?.connected) reaper.send({ gone: pid });
    });
  }
  return track(child);
}

/** Wait for the first IPC message that `pick` maps to a value. */
export function waitMessage<T>(child: ChildProcess, pick: (msg: any) => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const onMessage = (msg: any): void => {
      if (msg && msg.type === 'fatal') {
        cleanup();
        reject(new Error(`${what}: child failed: ${msg.message}`));
        return;
      }
      const v = pick(msg);
      if (v !== undefined) {
        cleanup();
        resolve(v);
      }
    };
    const onExit = (code: number | null, signal: string | null): void => {
      cleanup();
      reject(new Error(`${what}: child exited (code ${code}, signal ${signal})`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/** End one child by PID: SIGTERM, SIGKILL after `graceMs`. Resolves when it has exited. */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      try {
        process.kill(child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(child.pid!, 'SIGTERM');
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

export async function stopAll(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, graceMs)));
}

/** Last resort from an `exit` handler: SIGKILL whatever is left, by PID. */
export function killAllSync(): void {
  for (const c of live) {
    if (c.pid === undefined) continue;
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
