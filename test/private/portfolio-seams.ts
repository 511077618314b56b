import type { Unsubscribe } from '../../src/bus/bus.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { AppendResult, EventListener, EventLog, FollowOptions, StoredEvent } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import type { PositionStore } from '../../src/portfolio/position-store.js';
import type { PositionBook } from '../../src/portfolio/positions.js';
import type { Frame } from '../helpers/ws-client.js';

/** Test seams of the portfolio service: a position store that goes down, a log that replays from a position. */

/**
 * A store whose commands, while it is down, wait for the client's command timeout (here: until the
 * outage ends) and then fail, as ioredis does with an unreachable Redis. `failing` picks which
 * commands are down.
 */
type Command = 'get' | 'save' | 'checkpoint';

export class OutageStore implements PositionStore {
  readonly kind = 'redis' as const;
  readonly inner = new MemoryPositionStore();
  failing = new Set<Command>();
  readonly #waiting: (() => void)[] = [];

  down(...what: Command[]): void {
    this.failing = new Set(what.length > 0 ? what : ['get', 'save', 'checkpoint']);
  }

  up(): void {
    this.failing.clear();
    for (const fail of this.#waiting.splice(0)) fail();
  }

  #call<T>(what: Command, fn: () => Promise<T>): Promise<T> {
    if (!this.failing.has(what)) return fn();
    return new Promise<T>((_, reject) => this.#waiting.push(() => reject(new Error('Command timed out'))));
  }

  load(): Promise<PositionBook[]> {
    return this.inner.load();
  }
  get(user: string): Promise<PositionBook | undefined> {
    return this.#call('get', () => this.inner.get(user));
  }
  save(book: PositionBook): Promise<void> {
    const copy = structuredClone(book); // the store takes the book as it is at the call
    return this.#call('save', () => this.inner.save(copy));
  }
  checkpoint(): Promise<number | undefined> {
    return this.inner.checkpoint();
  }
  setCheckpoint(position: number): Promise<void> {
    return this.#call('checkpoint', () => this.inner.setCheckpoint(position));
  }
  async close(): Promise<void> {}
}

/** A log that replays from a position like JetStream (every event kept, positions 1, 2, 3, ...). */
export class ReplayLog implements EventLog {
  readonly kind = 'jetstream' as const;
  readonly ready = true;
  readonly #log = new MemoryEventLog({ maxPerUser: 100_000, retentionMs: 86_400_000 });
  readonly #all: [string, StoredEvent, number][] = [];
  constructor() {
    this.#log.follow((u, e, p) => void this.#all.push([u, e, p]));
  }
  append(user: string, d: ExecutionPayload): Promise<AppendResult> {
    return this.#log.append(user, d);
  }
  read(user: string, after: number, limit: number): Promise<StoredEvent[]> {
    return this.#log.read(user, after, limit);
  }
  tail(user: string, count: number): Promise<StoredEvent[]> {
    return this.#log.tail(user, count);
  }
  head(user: string): Promise<number> {
    return this.#log.head(user);
  }
  follow(listener: EventListener, opts?: FollowOptions): Unsubscribe {
    for (const [u, e, p] of this.#all) if (p > (opts?.after ?? 0)) listener(u, e, p);
    return this.#log.follow(listener);
  }
  close(): Promise<void> {
    return this.#log.close();
  }
}

/** A USD book with a EUR line (SAP, 2400 EUR at 1.25 USD), as the service publishes it. */
export const FX_PAYLOAD = {
  ccy: 'USD',
  value: 2000 + 2400 * 1.25,
  cost: 1500 + 2600 * 1.25,
  pnl: 500 + (2400 - 2600) * 1.25,
  day_pnl: 100 + -100 * 1.25,
  positions: [
    { sym: 'AAPL', qty: 10, p: 200, value: 2000, pnl: 500, ccy: 'USD', cost: 1500, day_pnl: 100 },
    { sym: 'SAP', qty: 20, p: 120, value: 2400, pnl: -200, ccy: 'EUR', cost: 2600, day_pnl: -100 },
  ],
  t: 1,
  realized: 7,
  fx: { EUR: 1.25 },
};

/** A `portfolio` data frame (its payload untyped, as the tests read it). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const isPf = (f: Frame): f is Frame & { d: any } => f.ch === 'portfolio' && f.d !== undefined;

/** A ticker of `sym` at `p` (open 10 below, previous close 10 below), for publishTick. */
export const ticker = (sym: string, p: number) =>
  ({ k: 'ticker', sym, p, bp: p - 1, ap: p + 1, o: p - 10, h: p + 5, l: p - 20, v: 10, chg: 10, chgp: 1, pc: p - 10 }) as never;
