import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import type { PositionBook } from '../../src/portfolio/positions.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A start reads no book (docs/private-streams.md, "Portfolio"): each is read from the store when
 * first needed, so a start costs the same whatever the number of users ever stored, and a book the
 * store holds behind the log (a crash between an append and its save) still gets its later events.
 */

let n = 0;
const buy = (qty: number): ExecutionPayload => ({ id: `l${++n}`, order: 'o', sym: 'AAPL', side: 'buy', qty, p: 100, t: Date.now() }) as ExecutionPayload;
const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };

/** counts the books read: all at once (load) or one by one (get) */
class CountingStore extends MemoryPositionStore {
  loads = 0;
  gets = 0;
  override async load(): Promise<PositionBook[]> {
    this.loads++;
    return super.load();
  }
  override async get(user: string): Promise<PositionBook | undefined> {
    this.gets++;
    return super.get(user);
  }
}

describe('portfolio start', () => {
  it('reads no book: each comes from the store on its first use, with the log events past its last save', async () => {
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const store = new CountingStore();
    const a = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await a.start();
    for (let i = 0; i < 50; i++) await events.append(`u${i}`, buy(1));
    await events.append('u0', buy(2));
    await a.settled();
    await waitFor(async () => (await store.get('u0'))?.seq === 2, 'the books saved');
    await a.close();
    // stored after the last save, as if the process died before saving it
    await events.append('u0', buy(4));

    store.loads = 0;
    store.gets = 0;
    const b = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await b.start();
    try {
      expect(store.loads).toBe(0);
      expect(b.heldBooks).toBe(0);
      // a GET of a user not in memory: the stored book with the log's later events, not kept
      expect(await b.getPositions('u0')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 7 }] });
      expect(b.heldBooks).toBe(0);
      // a subscriber (kick) brings the book into memory, caught up, and it is valued
      b.kick('u0');
      await b.settled();
      expect(b.heldBooks).toBe(1);
      expect(b.valuation('u0').positions).toMatchObject([{ sym: 'AAPL', qty: 7 }]);
      // the next execution applies on top, once
      await events.append('u0', buy(8));
      await b.settled();
      expect(b.valuation('u0').positions).toMatchObject([{ sym: 'AAPL', qty: 15 }]);
      await waitFor(async () => (await store.get('u0'))?.seq === 4, 'the caught-up book saved');
      expect(b.heldBooks).toBe(1);
    } finally {
      await b.close();
    }
  });
});
