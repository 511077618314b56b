/**
 * Tasks run one after another per key, and tasks of different keys run concurrently: one user's
 * writes in the order they came, while other users' do not wait for them. A task that fails does
 * not stop the next one of its key (its own promise still rejects). A key is forgotten once its
 * last task is done, so the map holds only keys with work in flight.
 */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<void>>();
  /** tasks queued or running per key */
  readonly #counts = new Map<string, number>();

  /** Run `task` after the tasks already queued for `key`; its result. The task is queued at once (synchronously). */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    void tail.then(() => {
      const n = (this.#counts.get(key) ?? 1) - 1;
      if (n > 0) this.#counts.set(key, n);
      else this.#counts.delete(key);
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }

  /** tasks of `key` queued or running */
  pending(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** keys with tasks queued or running */
  get size(): number {
    return this.#tails.size;
  }
}
