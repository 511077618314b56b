/**
 * A small typed event emitter that works the same in browsers and Node. A listener that throws
 * does not stop the others: its error is thrown again asynchronously (callAll).
 */
export type Listener<T> = (value: T) => void;

/**
 * Call every listener of a set (a copy: a listener may remove itself) with `args`. One that
 * throws does not stop the others; its error is thrown again in a microtask, where the runtime
 * reports it as uncaught.
 */
export function callAll(set: ReadonlySet<(...args: never[]) => void> | undefined, ...args: unknown[]): void {
  if (set)
    for (const l of [...set]) {
      try {
        (l as (...a: unknown[]) => void)(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
}

export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(event, listener);
  }

  /** Add a listener called at most once. */
  once<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(event, (v) => {
      off();
      listener(v);
    });
    return off;
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(event)?.delete(listener as Listener<never>);
  }

  protected emit<K extends keyof Events>(event: K, value: Events[K]): void {
    callAll(this.#listeners.get(event), value);
  }
}
