/**
 * Tasks run one after another per key, and tasks of different keys run concurrently: one user's
 * writes in the order they came, while other users' do not wait for them. A task that fails does
 * not stop the next one of its key (its own promise still rejects). A key is forgotten once its
 * last task is done, so the map holds only keys with work in flight.
 */
export class KeyedSerial {
  readonly #tails = new Map<string, Promise<void>>();

  /** Run `task` after the tasks already queued for `key`; its result. The task is queued at once (synchronously). */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(task);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    void tail.then(() => {
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    });
    return run;
  }

  /** keys with tasks queued or running */
  get size(): number {
    return this.#tails.size;
  }
}
