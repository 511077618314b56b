import type { Bus, BusHandler, Unsubscribe } from './bus.js';
import { isValidSubject } from './bus.js';
import { TickwireError } from '../core/errors.js';

interface Node {
  children: Map<string, Node>;
  handlers: Set<BusHandler>;
}
const newNode = (): Node => ({ children: new Map(), handlers: new Set() });

/**
 * In-process bus with NATS subject semantics, backed by a token trie so that matching costs
 * O(tokens), not O(subscriptions). Delivery is synchronous: a publish reaches every matching
 * handler before it returns, in subscription order per pattern.
 */
export class MemoryBus implements Bus {
  readonly #root = newNode();
  #closed = false;
  readonly #onHandlerError: (err: Error) => void;

  /** onHandlerError: a subscriber's handler threw (delivery to others goes on); default console.error */
  constructor(opts: { onHandlerError?: (err: Error) => void } = {}) {
    this.#onHandlerError = opts.onHandlerError ?? ((err) => console.error(err));
  }

  get connected(): boolean {
    return !this.#closed;
  }

  publish(subject: string, payload: Uint8Array): void {
    if (this.#closed) return;
    const tokens = subject.split('.');
    this.#match(this.#root, tokens, 0, subject, payload);
  }

  #match(node: Node, tokens: string[], i: number, subject: string, payload: Uint8Array): void {
    const full = node.children.get('>');
    if (full && i < tokens.length) for (const h of full.handlers) this.#deliver(h, subject, payload);
    if (i === tokens.length) {
      for (const h of node.handlers) this.#deliver(h, subject, payload);
      return;
    }
    const exact = node.children.get(tokens[i]!);
    if (exact) this.#match(exact, tokens, i + 1, subject, payload);
    const star = node.children.get('*');
    if (star) this.#match(star, tokens, i + 1, subject, payload);
  }

  #deliver(h: BusHandler, subject: string, payload: Uint8Array): void {
    try {
      h(subject, payload);
    } catch (err) {
      // one faulty subscriber must not break delivery to the others, nor the publisher
      this.#onHandlerError(new TickwireError('BUS_HANDLER', `bus handler for ${subject} threw`, { cause: err }));
    }
  }

  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe {
    if (!isValidSubject(pattern, true)) throw new TickwireError('BUS_SUBJECT', `invalid subject pattern "${pattern}"`);
    let node = this.#root;
    const path: Node[] = [node];
    const tokens = pattern.split('.');
    for (const t of tokens) {
      let next = node.children.get(t);
      if (!next) {
        next = newNode();
        node.children.set(t, next);
      }
      node = next;
      path.push(node);
    }
    // wrap so the same function can be subscribed twice and removed independently
    const handler: BusHandler = (s, p) => onMessage(s, p);
    node.handlers.add(handler);
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      node.handlers.delete(handler);
      for (let i = path.length - 1; i > 0; i--) {
        const n = path[i]!;
        if (n.handlers.size > 0 || n.children.size > 0) break;
        path[i - 1]!.children.delete(tokens[i - 1]!);
      }
    };
  }

  async flush(): Promise<void> {}

  async close(): Promise<void> {
    this.#closed = true;
    this.#root.children.clear();
    this.#root.handlers.clear();
  }
}
