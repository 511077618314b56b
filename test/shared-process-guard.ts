import { createHook } from 'node:async_hooks';
import { afterAll, expect, vi } from 'vitest';
import { waitFor } from './helpers/wait.js';

/**
 * Setup file of the `shared` vitest project (vitest.config.ts): its test files run one after
 * another in the same worker process (`isolate: false`), so a file must leave the process as it
 * found it, or the next file would run on its leftovers. Checked after every file, failing that
 * file (the one that leaked, not the one that would have been hurt by it):
 * - timers are real again (`vi.useFakeTimers` undone);
 * - process.env, the working directory and the process-wide listeners (signals, warnings,
 *   uncaught errors) are as before;
 * - nothing is left running: no socket, server, timer, child process or worker thread that was
 *   not there before the file (closes are asynchronous: waited for, on the condition).
 * A test file that cannot meet this belongs in the `isolated` project (ISOLATED in
 * vitest.config.ts).
 */

const LISTENED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'exit', 'beforeExit', 'warning', 'uncaughtException', 'unhandledRejection'] as const;

const env = { ...process.env };
const cwd = process.cwd();
/**
 * Not a leftover: on-exit-leak-free (pino's flush of its destinations at exit) keeps one 'exit'
 * listener while any logger it holds, weakly, is alive, and removes it when they are collected.
 */
const benign = (l: unknown): boolean => /callRefs\(/.test(String(l));
/** process.listeners(), without the per-event overloads of its type */
const listenersOf = (event: string): unknown[] => (process.listeners as (e: string) => unknown[])(event);
const listeners = new Map(LISTENED.map((e) => [e, new Set(listenersOf(e))]));
const resources = count(process.getActiveResourcesInfo());

/**
 * Timers, sockets, servers, children and worker threads made while the file runs, by async id,
 * until they are destroyed (a timer fired or cleared, a handle closed). getActiveResourcesInfo()
 * above does not list an unref()'d timer, which keeps running in a shared process all the same.
 */
const TRACKED = new Set(['Timeout', 'Immediate', 'TCPWRAP', 'TCPSERVERWRAP', 'PIPEWRAP', 'PIPESERVERWRAP', 'UDPWRAP', 'PROCESSWRAP', 'WORKER']);
const made = new Map<number, { type: string; resource: unknown }>();
/** TW_GUARD_STACKS=1: where each of them was made, in the failure message (slower) */
const stacks = process.env.TW_GUARD_STACKS === '1' ? new Map<number, string>() : undefined;
let closing = false;
const hook = createHook({
  init(id, type, _trigger, resource) {
    if (closing || !TRACKED.has(type)) return;
    made.set(id, { type, resource });
    stacks?.set(id, new Error().stack!.split('\n').slice(2, 12).join('\n'));
  },
  destroy(id) {
    made.delete(id);
    stacks?.delete(id);
  },
}).enable();

/**
 * The timer of an AbortSignal.timeout() (a fetch's time limit, say): unref'd, it holds its signal
 * weakly and only aborts that signal, if still alive, when it fires. Not a leftover.
 */
function abortSignalTimer(resource: unknown): boolean {
  const onTimeout = (resource as { _onTimeout?: unknown } | null)?._onTimeout;
  return typeof onTimeout === 'function' && /weakRef\.deref\(\)/.test(String(onTimeout));
}

function count(list: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of list) m.set(r, (m.get(r) ?? 0) + 1);
  return m;
}

/** resources running now beyond those running before the file, e.g. "TCPServerWrap x1" */
function leftOver(): string[] {
  const now = count(process.getActiveResourcesInfo());
  const extra: string[] = [];
  for (const [kind, n] of now) if (n > (resources.get(kind) ?? 0)) extra.push(`${kind} x${n - (resources.get(kind) ?? 0)}`);
  const left = [...made.entries()].filter(([, m]) => !abortSignalTimer(m.resource));
  for (const [kind, n] of count(left.map(([, m]) => m.type))) extra.push(`made by the file, not destroyed: ${kind} x${n} (TW_GUARD_STACKS=1 says where)`);
  for (const [id, m] of left) if (stacks?.has(id)) extra.push(`${m.type} made at\n${stacks.get(id)}`);
  return extra;
}

afterAll(async () => {
  closing = true;
  expect(vi.isFakeTimers(), 'fake timers left on (vi.useRealTimers() in an afterEach)').toBe(false);
  const changedEnv = [...new Set([...Object.keys(env), ...Object.keys(process.env)])].filter((k) => env[k] !== process.env[k]);
  expect(changedEnv, 'process.env changed and not restored').toEqual([]);
  expect(process.cwd(), 'working directory changed').toBe(cwd);
  const added = LISTENED.flatMap((e) =>
    listenersOf(e)
      .filter((l) => !listeners.get(e)!.has(l) && !benign(l))
      .map((l) => `${e}: ${String(l).slice(0, 300)}`),
  );
  expect(added, 'process listeners added and not removed').toEqual([]);
  await waitFor(() => leftOver().length === 0, { what: 'resources opened by this file to close', timeout: 5_000 }).catch(() => {
    expect(leftOver(), 'left running after the file (sockets, servers, timers, children, workers)').toEqual([]);
  });
  hook.disable();
  // no hook timeout: vitest's timer for it would be a Timeout this file made and left; the wait
  // above is bounded
}, 0);
