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
 * A user's first executions, stored in a Redis-like log (no replay from a position: the embedded
 * engine with REDIS_URL), applied in memory and never saved (the service stopped while the book's
 * first save was under way or the position store was down). The store then has no book for the
 * user. Before the fix the next service took "no book in the store" for "no positions": a GET
 * answered 404 and a new `portfolio` subscriber got an empty portfolio until the user's next
 * execution, although the log held the user's fills (docs/private-streams.md#portfolio: the log
 * past the stored book is read on first use).
 */

let n = 0;
const buy = (qty: number, p = 100): ExecutionPayload => ({ id: `nu${++n}`, order: 'o', sym: 'AAPL', side: 'buy', qty, p, t: Date.now() }) as ExecutionPayload;
/** A position store whose saves fail while `lost` (Redis unreachable: the command times out). */
class LostSaves extends MemoryPositionStore {
  lost = false;
  override save(book: PositionBook): Promise<void> {
    return this.lost ? Promise.reject(new Error('Command timed out')) : super.save(book);
  }
}

const config = { baseCurrency: 'USD', publishMs: 20, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };

describe('portfolio: a new user whose first book was never saved', () => {
  it('is rebuilt from the log on first use (GET, a subscriber), not taken as having no positions', async () => {
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const store = new LostSaves();
    const a = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await a.start();
    store.lost = true;
    await events.append('nu', buy(10));
    await events.append('nu', buy(5, 110));
    await a.settled();
    expect(await a.getPositions('nu')).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 15, cost: 1550 }] });
    // stops before the book could be saved
    await a.close();
    store.lost = false;
    expect(await store.get('nu')).toBeUndefined();

    const b = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await b.start();
    try {
      expect(await b.getPositions('nu')).toMatchObject({ seq: 2, positions: [{ sym: 'AAPL', qty: 15, cost: 1550 }] });
      b.kick('nu'); // a gateway's new subscriber
      await waitFor(() => b.heldBooks === 1, 'the book brought into memory');
      await b.settled();
      expect(b.valuation('nu').positions).toMatchObject([{ sym: 'AAPL', qty: 15 }]);
      // the next execution continues the book: each execution applied once
      await events.append('nu', buy(1, 100));
      await b.settled();
      expect(await b.getPositions('nu')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 16, cost: 1650 }] });
      // a user with no executions at all still has none
      expect(await b.getPositions('nobody')).toBeUndefined();
    } finally {
      await b.close();
    }
  });
});
