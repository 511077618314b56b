import { describe, expect, it } from 'vitest';
import type { Unsubscribe } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { AppendResult, EventListener, EventLog, FollowOptions, StoredEvent } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import type { PositionStore } from '../../src/portfolio/position-store.js';
import type { PositionBook } from '../../src/portfolio/positions.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The position store (Redis) unreachable while executions go on (docs/private-streams.md,
 * "Portfolio", store outage): the valuation keeps up in memory, the books are saved when the store
 * is back, and no execution is lost or applied twice, after the outage or after a restart.
 */

let n = 0;
const buy = (qty: number, p = 100): ExecutionPayload => ({ id: `x${++n}`, order: 'o', sym: 'AAPL', side: 'buy', qty, p, t: Date.now() }) as ExecutionPayload;
const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };

/**
 * A store whose commands, while it is down, wait for the client's command timeout (here: until the
 * outage ends) and then fail, as ioredis does with an unreachable Redis. `failing` picks which
 * commands are down.
 */
class OutageStore implements PositionStore {
  readonly kind = 'redis' as const;
  readonly inner = new MemoryPositionStore();
  failing = new Set<'save' | 'checkpoint'>();
  readonly #waiting: (() => void)[] = [];

  down(...what: ('save' | 'checkpoint')[]): void {
    this.failing = new Set(what.length > 0 ? what : ['save', 'checkpoint']);
  }

  up(): void {
    this.failing.clear();
    for (const fail of this.#waiting.splice(0)) fail();
  }

  #call<T>(what: 'save' | 'checkpoint', fn: () => Promise<T>): Promise<T> {
    if (!this.failing.has(what)) return fn();
    return new Promise<T>((_, reject) => this.#waiting.push(() => reject(new Error('Command timed out'))));
  }

  load(): Promise<PositionBook[]> {
    return this.inner.load();
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
class ReplayLog implements EventLog {
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

const qtyOf = (svc: PortfolioService, user: string): number => svc.valuation(user).positions.find((p) => p.sym === 'AAPL')?.qty ?? 0;

describe('portfolio while the position store is down', () => {
  it('keeps the valuation up with the executions, saves when the store returns, and a restart applies nothing twice (Redis-like log)', async () => {
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const store = new OutageStore();
    const a = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await a.start();
    let closed = false;
    try {
      await events.append('u', buy(10));
      await waitFor(async () => (await store.inner.load())[0]?.seq === 1, 'the first execution saved');

      store.down();
      for (let i = 0; i < 20; i++) await events.append('u', buy(1));
      await events.append('w', buy(5));
      // every execution applied in memory, none waiting for the store
      await waitFor(() => qtyOf(a, 'u') === 30 && qtyOf(a, 'w') === 5, { what: 'the executions applied while the store is down', timeout: 3000 });
      expect(a.unsavedUsers).toBe(2);
      expect(await a.getPositions('u')).toMatchObject({ seq: 21, positions: [{ sym: 'AAPL', qty: 30 }] });
      expect((await store.inner.load()).find((b) => b.user === 'u')).toMatchObject({ seq: 1 });

      store.up();
      await waitFor(async () => (await store.inner.load()).find((b) => b.user === 'u')?.seq === 21, 'the book saved when the store is back');
      await waitFor(() => a.unsavedUsers === 0, 'nothing left unsaved');
      expect((await store.inner.load()).find((b) => b.user === 'w')).toMatchObject({ seq: 1, positions: { AAPL: { qty: 5 } } });
      await a.close();
      closed = true;

      await events.append('u', buy(1));
      const b = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
      await b.start();
      try {
        await events.append('u', buy(1));
        await b.settled();
        expect(await b.getPositions('u')).toMatchObject({ seq: 23, positions: [{ sym: 'AAPL', qty: 32, cost: 3200 }] });
        expect(await b.getPositions('w')).toMatchObject({ seq: 1, positions: [{ sym: 'AAPL', qty: 5 }] });
      } finally {
        await b.close();
      }
    } finally {
      if (!closed) await a.close();
    }
  });

  it('a restart during the outage replays what was never saved (JetStream-like log): no execution lost or applied twice', async () => {
    const events = new ReplayLog();
    const store = new OutageStore();
    const a = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await a.start();
    await events.append('u', buy(10));
    await events.append('v', buy(3));
    await a.settled();
    await waitFor(async () => (await store.inner.checkpoint()) === 2, 'the checkpoint after two saved executions');

    // the books cannot be saved, the checkpoint can: it must not pass the first unsaved execution
    store.down('save');
    await events.append('v', buy(1)); // position 3
    for (let i = 0; i < 5; i++) await events.append('u', buy(1)); // positions 4..8
    await waitFor(() => qtyOf(a, 'u') === 15 && qtyOf(a, 'v') === 4, { what: 'the executions applied in memory', timeout: 3000 });
    await a.close(); // a stop (or crash) before the store came back
    expect(await store.inner.checkpoint()).toBeLessThanOrEqual(2);

    store.up();
    const b = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await b.start();
    try {
      await b.settled();
      expect(await b.getPositions('u')).toMatchObject({ seq: 6, positions: [{ sym: 'AAPL', qty: 15, cost: 1500 }] });
      expect(await b.getPositions('v')).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 4, cost: 400 }] });
      await waitFor(async () => (await store.inner.load()).find((x) => x.user === 'u')?.seq === 6, 'the replayed book saved');
    } finally {
      await b.close();
    }
  });

  it('a PUT while the store is down is refused with 503 and changes nothing', async () => {
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const store = new OutageStore();
    const a = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await a.start();
    try {
      await events.append('u', buy(10));
      await waitFor(async () => (await store.inner.load())[0]?.seq === 1, 'the first execution saved');
      store.down();
      const put = a.putPositions('u', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 1, cost: 100 }] });
      setTimeout(() => store.up(), 50); // the command times out
      await expect(put).rejects.toMatchObject({ status: 503, code: 'UNAVAILABLE' });
      expect(await a.getPositions('u')).toMatchObject({ seq: 1, positions: [{ sym: 'AAPL', qty: 10 }] });
      expect(qtyOf(a, 'u')).toBe(10);
      await events.append('u', buy(1));
      await waitFor(async () => (await store.inner.load())[0]?.seq === 2, 'the next execution saved');
      expect((await store.inner.load())[0]).toMatchObject({ positions: { AAPL: { qty: 11 } } });
    } finally {
      await a.close();
    }
  });
});
