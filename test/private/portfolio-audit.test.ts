import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BusRequests } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { portfolioSubject } from '../../src/bus/private-subjects.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { decodeBusMessage, encodeTick } from '../../src/codec/tick-codec.js';
import { DEFAULT_INSTRUMENTS, defaultRegistry, InstrumentRegistry } from '../../src/core/instruments.js';
import type { Tick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { FxRates } from '../../src/portfolio/fx.js';
import { BusPortfolioClient, servePortfolioRpc } from '../../src/portfolio/portfolio-api.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import { applyExecution, emptyBook } from '../../src/portfolio/positions.js';
import type { PositionBook } from '../../src/portfolio/positions.js';
import { valuate } from '../../src/portfolio/valuation.js';
import type { PriceSource } from '../../src/portfolio/valuation.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Audit of the portfolio figures against docs/private-streams.md#portfolio: which day an
 * execution belongs to (its own time `t`, in the instrument's trading day), realized P&L that
 * survives the end of the day, and quantities free of floating-point drift.
 */

const H = 3_600_000;
const D = Date.UTC(2026, 10, 30); // a UTC midnight
let n = 0;
const ex = (side: 'buy' | 'sell', qty: number, p: number, t: number, sym = 'AAPL', fee?: number): ExecutionPayload =>
  ({ id: `x${++n}`, order: 'o', sym, side, qty, p, ...(fee === undefined ? {} : { fee }), t }) as ExecutionPayload;

const usd = new FxRates(defaultRegistry(), () => undefined);
const source = (p: number, open: number | undefined): PriceSource => ({ price: () => ({ p, open }) });

describe('day P&L: an execution belongs to the day of its own time', () => {
  const yesterday = D - 9 * H; // 15:00 UTC the day before
  const morning = D + 10 * H;
  const noon = D + 12 * H;
  const fills = (): ExecutionPayload[] => [ex('buy', 10, 100, yesterday), ex('buy', 5, 104, morning)];

  it('a book rebuilt from the log after a restart has the same day P&L as the live one', () => {
    const live = emptyBook('u', 'USD', yesterday);
    for (const e of fills()) applyExecution(live, e, e.t);
    const rebuilt = emptyBook('u', 'USD', noon);
    for (const e of fills()) applyExecution(rebuilt, e, noon);
    const a = valuate(live, source(106, 105), usd, defaultRegistry(), noon);
    const b = valuate(rebuilt, source(106, 105), usd, defaultRegistry(), noon);
    // held 10 at the day's start (open 105), bought 5 at 104 today: 15 x 106 - 10 x 105 - 5 x 104
    expect(a.day_pnl).toBe(20);
    expect(b.day_pnl).toBe(20);
    expect(b).toEqual(a);
  });

  it("a late execution of yesterday counts in the day's opening quantity, not in today's trades", () => {
    const b = emptyBook('u', 'USD', morning);
    applyExecution(b, ex('buy', 5, 104, morning), morning);
    applyExecution(b, ex('buy', 10, 100, yesterday), noon); // arrives late
    expect(valuate(b, source(106, 105), usd, defaultRegistry(), noon).day_pnl).toBe(20);
  });

  it('an execution stamped in the future (order system clock ahead) counts as today', () => {
    const b = emptyBook('u', 'USD', morning);
    applyExecution(b, ex('buy', 10, 100, D + 40 * H), morning);
    // bought today at 100, now 106: +60 today (and the day is not moved into tomorrow)
    expect(valuate(b, source(106, 105), usd, defaultRegistry(), noon).day_pnl).toBe(60);
  });
});

describe("day P&L follows the instrument's trading day (dayStartUtcMinutes)", () => {
  afterEach(() => vi.useRealTimers());

  it("uses the ticker's day: a fill before the 22:00 UTC day start is yesterday's", async () => {
    const registry = new InstrumentRegistry([
      ...DEFAULT_INSTRUMENTS,
      { symbol: 'FUT', assetClass: 'stock', currency: 'USD', pricePrecision: 2, providers: ['synthetic'], dayStartUtcMinutes: 22 * 60 },
    ]);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(D + 21 * H);
    const bus = new MemoryBus();
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const svc = new PortfolioService({
      bus,
      registry,
      store: new MemoryPositionStore(),
      events,
      config: { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' },
    });
    await svc.start();
    try {
      await svc.putPositions('u', { ccy: 'USD', positions: [{ sym: 'FUT', qty: 10, cost: 1000 }] });
      await events.append('u', ex('buy', 5, 100, D + 21.5 * H, 'FUT'));
      await svc.settled();
      // 23:00 UTC: FUT's trading day started at 22:00, its ticker's open (104) is of that day
      vi.setSystemTime(D + 23 * H);
      const ts = msToNs(D + 23 * H);
      const tick = { k: 'ticker', sym: 'FUT', src: 't', seq: 1, ep: 1, ts, rt: ts, p: 106, bp: 0, ap: 0, o: 104, h: 106, l: 104, v: 1, chg: 2, chgp: 1 };
      bus.publish(marketSubject('stock', 'ticker', 'FUT'), encodeTick(tick as unknown as Tick));
      const v = svc.valuation('u', D + 23 * H);
      // 15 held when the day started at 22:00: 15 x (106 - 104)
      expect(v.positions[0]).toMatchObject({ sym: 'FUT', qty: 15, p: 106, day_pnl: 30 });
      expect(v.day_pnl).toBe(30);
    } finally {
      await svc.close();
    }
  });
});

describe('realized P&L', () => {
  it('is kept when a position closed yesterday is removed at the day change', () => {
    const b = emptyBook('u', 'USD', D + 10 * H);
    applyExecution(b, ex('buy', 10, 100, D + 10 * H), D + 10 * H);
    applyExecution(b, ex('buy', 2, 50, D + 10 * H, 'MSFT'), D + 10 * H);
    applyExecution(b, ex('sell', 10, 110, D + 11 * H), D + 11 * H);
    applyExecution(b, ex('sell', 1, 60, D + 11 * H, 'MSFT'), D + 11 * H);
    expect(valuate(b, source(110, 100), usd, defaultRegistry(), D + 12 * H).realized).toBe(110);
    const next = valuate(b, source(110, 110), usd, defaultRegistry(), D + 36 * H);
    expect(next.positions.map((p) => p.sym)).toEqual(['MSFT']);
    // AAPL's +100 and MSFT's +10 are both still realized the day after
    expect(next.realized).toBe(110);
  });
});

describe('quantities without floating-point drift', () => {
  it('three fills of 100000.1 closed by one of 300000.3 leave no position', () => {
    const b: PositionBook = emptyBook('u', 'USD', D);
    for (let i = 0; i < 3; i++) applyExecution(b, ex('buy', 100000.1, 10, D + H), D + H);
    expect(b.positions.AAPL!.qty).toBe(300000.3);
    applyExecution(b, ex('sell', 300000.3, 11, D + 2 * H), D + 2 * H);
    expect(b.positions.AAPL!.qty).toBe(0);
    expect(valuate(b, source(11, 10), usd, defaultRegistry(), D + 3 * H).positions).toEqual([]);
  });

  it('the positions API shows 0.3 for three fills of 0.1, not 0.30000000000000004', async () => {
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const svc = new PortfolioService({
      bus: new MemoryBus(),
      registry: defaultRegistry(),
      store: new MemoryPositionStore(),
      events,
      config: { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' },
    });
    await svc.start();
    try {
      for (let i = 0; i < 3; i++) await events.append('u', ex('buy', 0.1, 0.1, Date.now(), 'BTC-USD'));
      expect(await svc.getPositions('u')).toMatchObject({ positions: [{ sym: 'BTC-USD', qty: 0.3, cost: 0.03 }] });
    } finally {
      await svc.close();
    }
  });
});

describe('PUT positions: a cost that contradicts the quantity is refused', () => {
  const make = async (): Promise<{ svc: PortfolioService; bus: MemoryBus; close(): Promise<void> }> => {
    const bus = new MemoryBus();
    const svc = new PortfolioService({
      bus,
      registry: defaultRegistry(),
      store: new MemoryPositionStore(),
      events: new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 }),
      config: { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' },
    });
    await svc.start();
    return { svc, bus, close: () => svc.close() };
  };

  it('answers 400 naming the field for a cost without quantity or of the other sign', async () => {
    const { svc, close } = await make();
    try {
      for (const [positions, field] of [
        [[{ sym: 'AAPL', qty: 0, cost: 500 }], 'positions.0.cost'],
        [
          [
            { sym: 'AAPL', qty: 10, cost: 1000 },
            { sym: 'MSFT', qty: 10, cost: -2000 },
          ],
          'positions.1.cost',
        ],
        [[{ sym: 'AAPL', qty: -10, cost: 1500 }], 'positions.0.cost'],
      ] as const) {
        const err = await svc.putPositions('u', { ccy: 'USD', positions: [...positions] }).catch((e: unknown) => e);
        expect(err).toMatchObject({ status: 400, code: 'BAD_REQUEST', field });
      }
      expect(await svc.getPositions('u')).toBeUndefined();
    } finally {
      await close();
    }
  });

  it('a symbol listed twice whose quantities cancel out leaves no position and no cost in the totals', async () => {
    const { svc, bus, close } = await make();
    try {
      await svc.putPositions('u', {
        ccy: 'USD',
        positions: [
          { sym: 'AAPL', qty: 10, cost: 1000 },
          { sym: 'AAPL', qty: -10, cost: -1200 },
          { sym: 'MSFT', qty: 2, cost: 0 },
        ],
      });
      for (const sym of ['AAPL', 'MSFT']) {
        const ts = msToNs(Date.now());
        const tick = { k: 'ticker', sym, src: 't', seq: 1, ep: 1, ts, rt: ts, p: 100, bp: 0, ap: 0, o: 100, h: 100, l: 100, v: 1, chg: 0, chgp: 0 };
        bus.publish(marketSubject('stock', 'ticker', sym), encodeTick(tick as unknown as Tick));
      }
      expect((await svc.getPositions('u'))!.positions).toEqual([{ sym: 'MSFT', qty: 2, cost: 0 }]);
      expect(svc.valuation('u').value).toBe(200);
      expect(svc.valuation('u').cost).toBe(0);
    } finally {
      await close();
    }
  });
});

describe('pf.rpc: a put body is checked like the service API checks it', () => {
  it('answers 400 naming the field (not 500, not a book in currency "usd")', async () => {
    const handlers = new Map<string, (p: Uint8Array) => Promise<Uint8Array>>();
    const requests: BusRequests = {
      serve: (subject, _queue, handler) => {
        handlers.set(subject, handler);
        return () => handlers.delete(subject);
      },
      request: (subject, payload) => handlers.get(subject)!(payload),
    };
    const svc = new PortfolioService({
      bus: new MemoryBus(),
      registry: defaultRegistry(),
      store: new MemoryPositionStore(),
      events: new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 }),
      config: { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' },
    });
    await svc.start();
    const stop = servePortfolioRpc(requests, svc);
    const client = new BusPortfolioClient(requests, 1000);
    try {
      for (const [body, field] of [
        [{ ccy: 'USD', positions: 'all of them' }, 'positions'],
        [{ ccy: 'usd', positions: [] }, 'ccy'],
        [{ ccy: 'USD', positions: [{ sym: 'AAPL', qty: '10', cost: 1 }] }, 'positions.0.qty'],
      ] as const) {
        const err = await client.putPositions('u', body as never).catch((e: unknown) => e);
        expect(err).toMatchObject({ status: 400, code: 'BAD_REQUEST', field });
      }
      expect(await svc.getPositions('u')).toBeUndefined();
      expect(await client.putPositions('u', { ccy: 'EUR', positions: [{ sym: 'AAPL', qty: 1, cost: 200 }] })).toMatchObject({ ccy: 'EUR' });
    } finally {
      stop();
      await svc.close();
    }
  });
});

describe('average cost through zero', () => {
  it("splits a flip's fee pro rata: the closed part is realized, the opened part is in the new side's cost", () => {
    const b = emptyBook('u', 'USD', D + H);
    applyExecution(b, ex('buy', 10, 100, D + H), D + H);
    // sell 15 at 90 with a fee of 3: 10 close the long (fee 2), 5 open a short (fee 1)
    applyExecution(b, ex('sell', 15, 90, D + 2 * H, 'AAPL', 3), D + 2 * H);
    const p = b.positions.AAPL!;
    expect(p.qty).toBe(-5);
    expect(p.realized).toBeCloseTo(-100 - 2, 9);
    // short 5 at 90 receives 450 less the fee 1: cost -449, an average short price of 89.8
    expect(p.cost).toBeCloseTo(-449, 9);
    // the same total as before: covering at 90 realizes -1 more (the opening fee)
    applyExecution(b, ex('buy', 5, 90, D + 3 * H), D + 3 * H);
    expect(b.positions.AAPL!.realized).toBeCloseTo(-103, 9);
  });
});

describe('books across day changes', () => {
  it('a position closed yesterday and reopened today keeps the old realized P&L in the total', () => {
    const b = emptyBook('u', 'USD', D + H);
    applyExecution(b, ex('buy', 10, 100, D + H), D + H);
    applyExecution(b, ex('sell', 10, 105, D + 2 * H), D + 2 * H);
    applyExecution(b, ex('buy', 4, 110, D + 26 * H), D + 26 * H);
    expect(b.positions.AAPL).toMatchObject({ qty: 4, cost: 440, realized: 0, dayQty0: 0 });
    const v = valuate(b, source(112, 111), usd, defaultRegistry(), D + 27 * H);
    expect(v.realized).toBe(50);
    expect(v.day_pnl).toBe(8); // bought 4 at 110 today, now 112
  });

  it('reads a book saved by an earlier version (positions without their own day)', () => {
    const legacy = JSON.parse(
      JSON.stringify({
        user: 'u',
        ccy: 'USD',
        seq: 3,
        day: Math.floor((D + H) / 86_400_000),
        positions: { AAPL: { qty: 10, cost: 1000, dayQty0: 6, dayFlow: 410, realized: 5 } },
        updatedAt: D + H,
      }),
    ) as PositionBook;
    // the same day (AAPL's day is the New York day: D + 6 H is 01:00 EST of the same date): its day fields still count
    expect(valuate(legacy, source(110, 100), usd, defaultRegistry(), D + 6 * H)).toMatchObject({ day_pnl: 1100 - 600 - 410, realized: 5 });
    // the next day: rolled
    expect(valuate(legacy, source(110, 108), usd, defaultRegistry(), D + 30 * H)).toMatchObject({ day_pnl: 20, realized: 5 });
  });
});

describe('restart with a log that only follows from now (Redis, memory)', () => {
  it('applies the executions a book has not seen yet (appended before a crash) at start', async () => {
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const store = new MemoryPositionStore();
    const config = { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };
    const a = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await a.start();
    await events.append('u', ex('buy', 10, 100, Date.now()));
    await a.settled();
    await a.close();
    // stored in the log, but the service stopped before applying them
    await events.append('u', ex('buy', 5, 110, Date.now()));
    await events.append('u', ex('sell', 3, 120, Date.now()));
    const b = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store, events, config });
    await b.start();
    try {
      await events.append('u', ex('buy', 1, 130, Date.now()));
      await b.settled();
      expect(await b.getPositions('u')).toMatchObject({ seq: 4, positions: [{ sym: 'AAPL', qty: 13 }] });
      expect((await b.getPositions('u'))!.positions[0]!.cost).toBeCloseTo((1550 * 12) / 15 + 130, 9);
    } finally {
      await b.close();
    }
  });
});

describe('a user whose first executions were stored but never applied', () => {
  it('gets them applied with the first one the service sees', async () => {
    const events = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 });
    const config = { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };
    // stored while no portfolio service ran (or before a crash, before its first save)
    await events.append('v', ex('buy', 10, 100, Date.now()));
    await events.append('v', ex('buy', 10, 110, Date.now()));
    const svc = new PortfolioService({ bus: new MemoryBus(), registry: defaultRegistry(), store: new MemoryPositionStore(), events, config });
    await svc.start();
    try {
      await events.append('v', ex('sell', 5, 120, Date.now()));
      await svc.settled();
      expect(await svc.getPositions('v')).toMatchObject({ seq: 3, positions: [{ sym: 'AAPL', qty: 15, cost: 1575 }] });
    } finally {
      await svc.close();
    }
  });
});

describe('the day change is published', () => {
  afterEach(() => vi.useRealTimers());

  it('a quiet market: the valuation after the day start has the new day P&L without waiting for a price', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    const nextDay = D + 29 * H; // AAPL's next trading day starts at midnight New York (05:00 UTC in winter)
    vi.setSystemTime(nextDay - 2000);
    const bus = new MemoryBus();
    const seen: { day_pnl: number }[] = [];
    bus.subscribe(portfolioSubject('u'), (_s, payload) => seen.push(decodeBusMessage(payload)));
    const config = { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' };
    const svc = new PortfolioService({
      bus,
      registry: defaultRegistry(),
      store: new MemoryPositionStore(),
      events: new MemoryEventLog({ maxPerUser: 10, retentionMs: H }),
      config,
    });
    await svc.start();
    try {
      await svc.putPositions('u', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 10, cost: 1000 }] });
      const ts = msToNs(Date.now());
      const tick = { k: 'ticker', sym: 'AAPL', src: 't', seq: 1, ep: 1, ts, rt: ts, p: 110, bp: 0, ap: 0, o: 100, h: 110, l: 100, v: 1, chg: 10, chgp: 10 };
      bus.publish(marketSubject('stock', 'ticker', 'AAPL'), encodeTick(tick as unknown as Tick));
      await waitFor(() => seen.some((v) => v.day_pnl === 100), "yesterday's day P&L");
      vi.setSystemTime(nextDay + 1000); // the next New York day, no tick since
      await waitFor(() => seen.at(-1)!.day_pnl === 0, { what: 'a valuation with the new day P&L', timeout: 3000 });
    } finally {
      await svc.close();
    }
  });
});
