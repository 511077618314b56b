import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { FxRates } from '../../src/portfolio/fx.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import { applyExecution, emptyBook } from '../../src/portfolio/positions.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { valuate } from '../../src/portfolio/valuation.js';

/**
 * Day P&L starts the day from the previous close (docs/private-streams.md#the-portfolio-payload):
 * a position held overnight through a gap has the gap in its day P&L, as brokers count it.
 */
const H = 3_600_000;
const D = Date.UTC(2026, 11, 1, 5); // midnight New York (EST): AAPL's trading day starts
const usd = new FxRates(defaultRegistry(), () => undefined);

describe('valuate: the day starts from the previous close', () => {
  const book = (): ReturnType<typeof emptyBook> => {
    const b = emptyBook('u', 'USD', D - 10 * H);
    const e = { id: 'x1', order: 'o', sym: 'AAPL', side: 'buy', qty: 10, p: 90, t: D - 10 * H } as ExecutionPayload;
    applyExecution(b, e, e.t);
    return b;
  };

  it('held overnight: the gap from the previous close to the open is part of the day', () => {
    const v = valuate(book(), { price: () => ({ p: 106, open: 105, prevClose: 100 }) }, usd, defaultRegistry(), D + 10 * H);
    expect(v.positions[0]).toMatchObject({ sym: 'AAPL', qty: 10, day_pnl: 60 });
    expect(v.day_pnl).toBe(60);
  });

  it('from the open while no previous close is known', () => {
    expect(valuate(book(), { price: () => ({ p: 106, open: 105 }) }, usd, defaultRegistry(), D + 10 * H).day_pnl).toBe(10);
  });
});

describe('the service reads the previous close from the ticker', () => {
  afterEach(() => vi.useRealTimers());

  it("today's ticker's pc, and yesterday's last price before today's first trade", async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(D - 2 * H);
    const bus = new MemoryBus();
    const svc = new PortfolioService({
      bus,
      registry: defaultRegistry(),
      store: new MemoryPositionStore(),
      events: new MemoryEventLog({ maxPerUser: 10, retentionMs: H }),
      config: { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' },
    });
    await svc.start();
    const ticker = (ms: number, fields: Record<string, number>): void => {
      const ts = msToNs(ms);
      const tick = { k: 'ticker', sym: 'AAPL', src: 't', seq: 1, ep: 1, ts, rt: ts, h: 0, l: 0, v: 1, chg: 0, chgp: 0, ...fields };
      bus.publish(marketSubject('stock', 'ticker', 'AAPL'), encodeTick(tick as unknown as Tick));
    };
    try {
      await svc.putPositions('u', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 10, cost: 900 }] });
      ticker(D - 2 * H, { p: 100, o: 95 });
      // yesterday, no previous close known: from the open
      expect(svc.valuation('u', D - 2 * H).day_pnl).toBe(50);
      vi.setSystemTime(D + 4 * H);
      // the new day, no trade yet: yesterday closed at 100, nothing moved
      expect(svc.valuation('u', D + 4 * H).day_pnl).toBe(0);
      ticker(D + 4.5 * H, { p: 106, o: 105, pc: 100 });
      expect(svc.valuation('u', D + 4.5 * H)).toMatchObject({ day_pnl: 60, positions: [{ sym: 'AAPL', day_pnl: 60 }] });
    } finally {
      await svc.close();
    }
  });
});
