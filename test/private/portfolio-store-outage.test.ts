import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { OutageStore, ReplayLog } from './portfolio-seams.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The position store (Redis) unreachable while executions go on (docs/private-streams.md,
 * "Portfolio", store outage): the valuation keeps up in memory, the books are saved when the store
 * is back, and no execution is lost or applied twice, after the outage or after a restart.
 */

let n = 0;
const buy = (qty: number, p = 100): ExecutionPayload => ({ id: `x${++n}`, order: 'o', sym: 'AAPL', side: 'buy', qty, p, t: Date.now() }) as ExecutionPayload;
const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };

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
      // a user not in memory: whether the store has a book for them cannot be known yet, their
      // executions wait for it (and hold up nobody else's)
      await events.append('w', buy(5));
      for (let i = 0; i < 2; i++) await events.append('u', buy(1));
      await waitFor(() => qtyOf(a, 'u') === 32, { what: 'the executions applied while the store is down', timeout: 3000 });
      expect(qtyOf(a, 'w')).toBe(0);
      expect(a.unsavedUsers).toBe(1);
      expect(await a.getPositions('u')).toMatchObject({ seq: 23, positions: [{ sym: 'AAPL', qty: 32 }] });
      expect((await store.inner.load()).find((b) => b.user === 'u')).toMatchObject({ seq: 1 });

      store.up();
      await waitFor(async () => (await store.inner.load()).find((b) => b.user === 'u')?.seq === 23, 'the book saved when the store is back');
      await waitFor(() => qtyOf(a, 'w') === 5, "the new user's execution applied once the store answers");
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
        expect(await b.getPositions('u')).toMatchObject({ seq: 25, positions: [{ sym: 'AAPL', qty: 34, cost: 3400 }] });
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
