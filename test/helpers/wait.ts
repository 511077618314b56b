/**
 * The one way tests wait: on a condition (a frame arrived, /health answers, a log line was
 * written), never on the clock. `cond` is polled until it returns a truthy value, which
 * `waitFor` resolves with; an exception from `cond` counts as "not yet" and is reported if the
 * wait times out. A fixed sleep stays only where a test asserts that nothing happens for a
 * while, and says so in a comment (see `quietFor`).
 */
export interface WaitOptions {
  /** what is awaited, for the timeout message */
  what?: string;
  /** ms (default 10 s) */
  timeout?: number;
  /** poll interval in ms (default 50) */
  interval?: number;
}

export async function waitFor<T>(cond: () => T | Promise<T>, opts: WaitOptions | string = {}): Promise<Exclude<T, false | null | undefined | 0 | ''>> {
  const o = typeof opts === 'string' ? { what: opts } : opts;
  const timeout = o.timeout ?? 10_000;
  const interval = o.interval ?? 50;
  const deadline = Date.now() + timeout;
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as Exclude<T, false | null | undefined | 0 | ''>;
      last = undefined;
    } catch (err) {
      if (err instanceof WaitAborted) throw err;
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last === undefined ? '' : `: ${last instanceof Error ? last.message : String(last)}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${o.what ?? 'a condition'}${why}`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * The only fixed wait: for tests that assert that nothing happens during `ms` (no frame, no
 * reconnect, no close). Name the thing that must not happen in `why`.
 */
export function quietFor(ms: number, why: string): Promise<void> {
  void why;
  return new Promise((r) => setTimeout(r, ms));
}

/** Thrown by a condition to end the wait at once (the process it waits on has exited). */
export class WaitAborted extends Error {}
