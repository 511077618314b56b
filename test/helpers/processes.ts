import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { waitFor, WaitAborted } from './wait.js';

/**
 * Whether dist/ is built from the current sources: test/global-setup.ts sets TW_TEST_DIST=1 for
 * the test workers after checking. Unset outside vitest (scripts/soak.ts runs test/soak from
 * source): the sources, through tsx.
 */
export const distFresh = (): boolean => process.env.TW_TEST_DIST === '1';

/**
 * Node arguments that run the `tickwire` CLI: the compiled dist/src/cli/main.js when dist/ is built
 * from the current sources, else src/cli/main.ts through tsx. Append the CLI's own arguments; run
 * with process.execPath from the repository root.
 */
export function tickwireCli(): string[] {
  return distFresh() ? [join(process.cwd(), 'dist', 'src', 'cli', 'main.js')] : ['--import', 'tsx', 'src/cli/main.ts'];
}

/**
 * The `entry` of startGatewayWorkers for tests: the compiled gateway worker when dist/ is fresh
 * (a worker thread from source loads the whole tree through tsx: twice the start-up), else
 * undefined (the supervisor's own choice, the sources).
 */
export function gatewayWorkerEntry(): { entry?: URL } {
  return distFresh() ? { entry: pathToFileURL(join(process.cwd(), 'dist', 'src', 'workers', 'gateway-worker.js')) } : {};
}

/** A `tickwire` CLI process (see tickwireCli), for multi-process tests. */
export interface TickwireProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  /** SIGTERM and wait for exit; returns the exit code */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export function spawnTickwire(args: string[], env: Record<string, string>): TickwireProcess {
  const child = spawn(process.execPath, [...tickwireCli(), ...args], {
    cwd: process.cwd(),
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const collect = (d: Buffer): void => {
    if (out.length < 200_000) out += d.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    output: () => out,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** Throws WaitAborted (ends a wait at once) when the process has exited. */
function checkAlive(proc: TickwireProcess): void {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
    throw new WaitAborted(`process exited early (${proc.child.exitCode ?? proc.child.signalCode}): ${proc.output().slice(-2000)}`);
  }
}

/** GET url until it answers 200 (fails at once, with the output, if `proc` exits meanwhile). */
export async function waitHttpOk(url: string, timeoutMs = 30_000, proc?: TickwireProcess): Promise<void> {
  await waitFor(
    async () => {
      if (proc) checkAlive(proc);
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      return res.ok;
    },
    { what: `${url} to answer 200${proc ? `; output: ${proc.output().slice(-1000)}` : ''}`, timeout: timeoutMs, interval: 50 },
  ).catch((err: Error) => {
    if (proc && !(err instanceof WaitAborted)) err.message += `\n${proc.output().slice(-2000)}`;
    throw err;
  });
}

/**
 * Start `tickwire <args>` with its gateway on port 0 and resolve with the port it bound, read from
 * its "tickwire gateway listening" log line. That line is logged at info, so the process runs at
 * LOG_LEVEL info with JSON logs (do not raise the level in `env`).
 */
export async function spawnListening(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<{ proc: TickwireProcess; port: number }> {
  const proc = spawnTickwire(args, { LOG_LEVEL: 'info', TICKWIRE_LOG_FORMAT: 'json', ...env, PORT: '0' });
  try {
    const port = await waitFor(
      () => {
        checkAlive(proc);
        const m = /"port":(\d+)[^\n]*tickwire gateway listening/.exec(proc.output());
        return m ? Number(m[1]) : undefined;
      },
      { what: 'the "tickwire gateway listening" log line', timeout: timeoutMs, interval: 50 },
    );
    return { proc, port };
  } catch (err) {
    await proc.stop('SIGKILL');
    throw err;
  }
}

/**
 * Run `argv` with node (the same binary as the tests) to its exit, its output apart, killed
 * (SIGKILL) after `killAfterMs`. Not spawnSync: cases that each wait on processes of their own
 * can run at the same time.
 */
export function runToExit(
  argv: string[],
  env: Record<string, string | undefined>,
  killAfterMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
