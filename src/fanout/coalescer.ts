import type { ItemOp } from '../protocol/index.js';
/**
 * The coalescing stage, one per (channel, throttle tier). Updates are pushed as they arrive and
 * drained once per tier window. Semantics by mode:
 *
 * - `latest`  (quote, ticker, portfolio): the newest update wins; a window with no update emits
 *   nothing; the emission says how many source updates it stands for (`coalesced`).
 * - `ordered` (trade, executions, system): every update, in order; never dropped or merged.
 * - `bar`     (bar.1s, bar.1m): every closed bar exactly once, in order; of the open bar only the
 *   newest state; an open state superseded by the close of the same bar is not sent.
 *
 * Coalescers hold payload objects (`d`), never encoded bytes: encoding happens once per emission
 * downstream.
 */
export type CoalesceMode = 'latest' | 'ordered' | 'bar';

export interface Update<D = Record<string, unknown>> {
  d: D;
  /** durable sequence (executions): kept as is instead of the tier's counter */
  seq?: number;
  /**
   * item op when it is not `data` (trade `correction` / `cancel`): only on ordered channels,
   * never conflated, never a snapshot
   */
  op?: ItemOp;
}

export interface Emission<D = Record<string, unknown>> {
  d: D;
  /** how many source updates this emission stands for (1 unless conflated) */
  coalesced: number;
  seq?: number;
  op?: ItemOp;
}

export interface Coalescer<D = Record<string, unknown>> {
  readonly mode: CoalesceMode;
  push(u: Update<D>): void;
  readonly pending: boolean;
  /** Take what is due this window, in emission order. */
  drain(): Emission<D>[];
  /**
   * What `drain` would return now, without taking it: the hub hands a re-subscribing subscriber
   * the window its old subscription was owed (Hub.handOff). Absent: no hand-off (order books,
   * whose subscribers always start again from a snapshot).
   */
  peek?(): Emission<D>[];
  /** Source updates replaced by newer ones so far (for metrics). */
  readonly conflated: number;
  /**
   * Channels whose value is built up from updates (order books): the snapshot for a new or
   * resynced subscriber, consistent with the tier's last emission and seq; undefined while there
   * is none yet (the first emission then serves as the snapshot). Absent: the hub uses the
   * channel's last value.
   */
  snapshot?(): D | undefined;
  /** The hub dropped this (channel, tier): release what it holds. */
  close?(): void;
}

class LatestCoalescer<D> implements Coalescer<D> {
  readonly mode = 'latest' as const;
  #last: Update<D> | undefined;
  #count = 0;
  conflated = 0;
  push(u: Update<D>): void {
    if (this.#last) this.conflated++;
    this.#last = u;
    this.#count++;
  }
  get pending(): boolean {
    return this.#last !== undefined;
  }
  drain(): Emission<D>[] {
    const out = this.peek();
    this.#last = undefined;
    this.#count = 0;
    return out;
  }
  peek(): Emission<D>[] {
    const u = this.#last;
    if (!u) return [];
    const e: Emission<D> = { d: u.d, coalesced: this.#count };
    if (u.seq !== undefined) e.seq = u.seq;
    return [e];
  }
}

class OrderedCoalescer<D> implements Coalescer<D> {
  readonly mode = 'ordered' as const;
  #queue: Update<D>[] = [];
  readonly conflated = 0;
  push(u: Update<D>): void {
    this.#queue.push(u);
  }
  get pending(): boolean {
    return this.#queue.length > 0;
  }
  drain(): Emission<D>[] {
    const out = this.peek();
    this.#queue = [];
    return out;
  }
  peek(): Emission<D>[] {
    return this.#queue.map((u) => {
      const e: Emission<D> = u.seq !== undefined ? { d: u.d, coalesced: 1, seq: u.seq } : { d: u.d, coalesced: 1 };
      if (u.op !== undefined) e.op = u.op;
      return e;
    });
  }
}

interface BarLike {
  t: number;
  closed: boolean;
}

class BarCoalescer<D extends BarLike> implements Coalescer<D> {
  readonly mode = 'bar' as const;
  #closed: Emission<D>[] = [];
  #open: D | undefined;
  #openCount = 0;
  conflated = 0;
  push(u: Update<D>): void {
    const bar = u.d;
    if (bar.closed) {
      // the close supersedes any pending open state of the same bar
      let count = 1;
      if (this.#open && this.#open.t <= bar.t) {
        this.conflated += this.#openCount;
        count += this.#openCount;
        this.#open = undefined;
        this.#openCount = 0;
      }
      this.#closed.push({ d: bar, coalesced: count });
      return;
    }
    if (this.#open) this.conflated++;
    this.#open = bar;
    this.#openCount++;
  }
  get pending(): boolean {
    return this.#closed.length > 0 || this.#open !== undefined;
  }
  drain(): Emission<D>[] {
    const out = this.peek();
    this.#closed = [];
    this.#open = undefined;
    this.#openCount = 0;
    return out;
  }
  peek(): Emission<D>[] {
    const out = [...this.#closed];
    if (this.#open) out.push({ d: this.#open, coalesced: this.#openCount });
    return out;
  }
}

/**
 * A pass-through for tier 0 ("as fast as they come"): every update is emitted, in order, batched
 * per event-loop turn; nothing is conflated.
 */
export function createCoalescer<D>(mode: CoalesceMode, tierMs: number): Coalescer<D> {
  if (tierMs === 0 || mode === 'ordered') return new OrderedCoalescer<D>();
  if (mode === 'latest') return new LatestCoalescer<D>();
  return new BarCoalescer<D & BarLike>() as unknown as Coalescer<D>;
}
