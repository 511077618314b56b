import type { Logger } from '../core/logger.js';

/**
 * What the composition root started, in order. `close()` stops everything in reverse order of
 * start (clients before the services they use, the bus last), logs a component that fails to
 * stop and goes on with the rest. Idempotent.
 */
export class Lifecycle {
  readonly #closers: { name: string; close: () => unknown }[] = [];
  #closing: Promise<void> | undefined;

  constructor(private readonly log: Pick<Logger, 'warn'>) {}

  /** Register what to do at shutdown for a component that has just started. */
  add(name: string, close: () => unknown): void {
    this.#closers.push({ name, close });
  }

  close(): Promise<void> {
    return (this.#closing ??= this.#closeAll());
  }

  async #closeAll(): Promise<void> {
    for (const { name, close } of this.#closers.splice(0).reverse()) {
      try {
        await close();
      } catch (err) {
        this.log.warn({ err, component: name }, `${name}: close failed`);
      }
    }
  }
}
