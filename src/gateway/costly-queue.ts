/**
 * How many requests of one user for one costly in-band op (ExtensionOp.cost: `alert.list`) may
 * wait, the one being answered included, across the user's connections on a gateway worker; one
 * more is refused RATE_LIMIT at once. The user's 20 connections (limits.connectionsPerUser) may
 * each have one or two waiting; the alert API's own queue allows 32 create/update/delete requests.
 */
export const COSTLY_WAITING_PER_USER = 32;

/**
 * The requests of each user (or anonymous connection) for a costly op, served one after another,
 * across the user's connections on this gateway worker. Each answer is read, redacted and encoded
 * in one go when its read resolves (about 5 ms for 1000 rules): built side by side, the reads of a
 * user's many connections resolved together and held the event loop for all of them at once; and
 * each is answered in an event-loop turn of its own, so that other connections are served between
 * them (test/hostile/alert-lists.test.ts).
 */
export class CostlyQueues {
  readonly #queues = new Map<string, { tail: Promise<void>; waiting: number }>();

  constructor(readonly maxWaiting = COSTLY_WAITING_PER_USER) {}

  /**
   * Serve after the earlier requests of `key`, in order; undefined (not served) when `maxWaiting`
   * of them wait already. With `late`, a request whose turn comes `late.afterMs` or more after it
   * was enqueued (those before it took that long: a backend that does not answer makes each wait
   * out its timeout) gets `late.answer()` instead of `serve()`, so that no request waits for the
   * timeouts of all those before it. Neither rejects.
   */
  enqueue(key: string, serve: () => Promise<void>, late?: { afterMs: number; answer: () => void }): Promise<void> | undefined {
    let q = this.#queues.get(key);
    if (q && q.waiting >= this.maxWaiting) return undefined;
    if (!q) this.#queues.set(key, (q = { tail: Promise.resolve(), waiting: 0 }));
    const entry = q;
    entry.waiting++;
    const since = Date.now();
    // each answer in a turn of its own: an answer read from memory (the embedded alert service)
    // resolves in a microtask, and a chain of them held the event loop until the last was sent
    const run = entry.tail
      .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
      .then(() => (late && Date.now() - since >= late.afterMs ? late.answer() : serve()))
      .finally(() => {
        if (--entry.waiting === 0 && this.#queues.get(key) === entry) this.#queues.delete(key);
      });
    entry.tail = run;
    return run;
  }

  /** users (or connections) with requests waiting or being answered */
  get size(): number {
    return this.#queues.size;
  }
}
