/**
 * Calls of an expensive read (a metrics render, a gather over worker threads) that share runs:
 * each call gets the result of a run that started at or after the call, so an answer is never
 * older than its request; calls that arrive while a run is waiting to start join it; and runs
 * start at least `minGapMs` apart. A lone caller waits for nothing (its run starts at once when
 * the last one started more than `minGapMs` ago), while a flood of calls costs at most one run
 * per `minGapMs`, however many callers there are.
 */
export function freshFlight<T>(run: () => Promise<T>, minGapMs: number, now: () => number = () => performance.now()): () => Promise<T> {
  let waiting: { promise: Promise<T>; resolve(v: T): void; reject(e: unknown): void } | undefined;
  let running = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let lastStart = -Infinity;

  const start = (): void => {
    const batch = waiting;
    if (!batch) return;
    waiting = undefined;
    running = true;
    lastStart = now();
    let result: Promise<T>;
    try {
      result = run();
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(batch.resolve, batch.reject).finally(() => {
      running = false;
      schedule();
    });
  };
  const schedule = (): void => {
    if (running || timer !== undefined || !waiting) return;
    const wait = lastStart + minGapMs - now();
    if (wait <= 0) start();
    // a timer may fire a little early by this clock (whole milliseconds, the loop's cached time):
    // it checks the gap again rather than starting early
    else
      timer = setTimeout(() => {
        timer = undefined;
        schedule();
      }, Math.ceil(wait));
  };

  return () => {
    if (!waiting) {
      let resolve!: (v: T) => void;
      let reject!: (e: unknown) => void;
      const promise = new Promise<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      waiting = { promise, resolve, reject };
    }
    const mine = waiting.promise;
    schedule();
    return mine;
  };
}
