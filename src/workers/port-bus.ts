import type { MessagePort } from 'node:worker_threads';
import type { Worker } from 'node:worker_threads';
import type { Bus, BusHandler, Unsubscribe } from '../bus/bus.js';
import { isValidSubject } from '../bus/bus.js';
import { TickwireError } from '../core/errors.js';
import type { ToMain, ToWorker } from './messages.js';

/**
 * The bus of a gateway worker thread in embedded mode: subscriptions and publishes go to the
 * main thread's in-process bus (where the feeds publish) through the worker's port; messages for
 * this worker's subscriptions come back in one port message per main-thread turn.
 */
export class WorkerBus implements Bus {
  readonly #port: MessagePort;
  readonly #handlers = new Map<number, BusHandler>();
  #next = 1;
  #closed = false;

  constructor(port: MessagePort) {
    this.#port = port;
  }

  get connected(): boolean {
    return !this.#closed;
  }

  publish(subject: string, payload: Uint8Array): void {
    if (this.#closed) return;
    // a copy of just these bytes: a view into a pooled buffer would clone the whole pool
    this.#post({ t: 'pub', subject, payload: new Uint8Array(payload) });
  }

  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe {
    if (!isValidSubject(pattern, true)) throw new TickwireError('BUS_SUBJECT', `invalid subject pattern "${pattern}"`);
    const id = this.#next++;
    this.#handlers.set(id, onMessage);
    this.#post({ t: 'sub', id, pattern });
    return () => {
      if (!this.#handlers.delete(id) || this.#closed) return;
      this.#post({ t: 'unsub', id });
    };
  }

  /** Called by the worker for each `msgs` message from the main thread. */
  deliver(items: [number, string, Uint8Array][]): void {
    for (const [id, subject, payload] of items) this.#handlers.get(id)?.(subject, payload);
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    if (this.#closed) return;
    for (const id of this.#handlers.keys()) this.#post({ t: 'unsub', id });
    this.#handlers.clear();
    this.#closed = true;
  }

  #post(m: ToMain): void {
    this.#port.postMessage(m);
  }
}

/**
 * The main thread's side of one worker's WorkerBus: subscribes on the real bus for the worker
 * and batches what arrives into one port message per turn.
 */
export class BusBridge {
  readonly #bus: Bus;
  readonly #worker: Worker;
  readonly #subs = new Map<number, Unsubscribe>();
  #pending: [number, string, Uint8Array][] = [];
  #scheduled = false;

  constructor(bus: Bus, worker: Worker) {
    this.#bus = bus;
    this.#worker = worker;
  }

  /** Handles the bus messages of the worker; false for any other message. */
  handle(m: ToMain): boolean {
    switch (m.t) {
      case 'sub':
        this.#subs.get(m.id)?.();
        this.#subs.set(
          m.id,
          this.#bus.subscribe(m.pattern, (subject, payload) => this.#queue(m.id, subject, payload)),
        );
        return true;
      case 'unsub':
        this.#subs.get(m.id)?.();
        this.#subs.delete(m.id);
        return true;
      case 'pub':
        this.#bus.publish(m.subject, m.payload);
        return true;
      default:
        return false;
    }
  }

  #queue(id: number, subject: string, payload: Uint8Array): void {
    this.#pending.push([id, subject, new Uint8Array(payload)]);
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      const items = this.#pending;
      this.#pending = [];
      if (items.length > 0) this.#worker.postMessage({ t: 'msgs', items } satisfies ToWorker);
    });
  }

  /** The worker ended: drop its subscriptions. */
  close(): void {
    for (const u of this.#subs.values()) u();
    this.#subs.clear();
    this.#pending = [];
  }
}
