import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MAX_AMOUNT, MAX_PRICE, MAX_QTY } from '../../src/core/numbers.js';
import type { AssetClass, Tick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { ExecutionSchema, PositionsSchema } from '../../src/executions/schemas.js';
import { FxRates } from '../../src/portfolio/fx.js';
import { PortfolioService } from '../../src/portfolio/portfolio-service.js';
import { MemoryPositionStore } from '../../src/portfolio/position-store.js';
import { applyExecution, emptyBook } from '../../src/portfolio/positions.js';
import type { PortfolioPayload } from '../../src/portfolio/valuation.js';
import { valuate } from '../../src/portfolio/valuation.js';
import { api, SECRET, SERVICE_TOKEN, testEngine } from '../auth/helpers.js';

/**
 * Quantities, costs and prices have bounds (src/core/numbers.ts: MAX_QTY 1e15, MAX_PRICE 1e15,
 * MAX_AMOUNT 1e30), so that a valuation never overflows. A position of qty 1e308 (or cost 1e308,
 * or a qty whose product with a price overflows) was accepted, and since non-finite amounts are
 * sent as 0, the user's portfolio showed a value of 0: silently wrong.
 */

describe('service API: out-of-range numbers are refused with 400 naming the field and the bound', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  });
  afterAll(() => engine.close());

  const put = (positions: unknown) => api(engine, 'PUT', '/v1/users/ann/positions', { ccy: 'USD', positions });

  it('PUT positions: qty or cost too large, not finite, or lines adding up past the bound', async () => {
    for (const [positions, field, bound] of [
      [[{ sym: 'AAPL', qty: 1e308, cost: 1000 }], 'positions.0.qty', '1e15'],
      [[{ sym: 'AAPL', qty: -1e308, cost: -1000 }], 'positions.0.qty', '1e15'],
      [[{ sym: 'AAPL', qty: 10, cost: 1e308 }], 'positions.0.cost', '1e30'],
      // qty x price overflows at any price above 1.8: it used to be accepted and valued at 0
      [[{ sym: 'AAPL', qty: 1e200, cost: 1e300 }], 'positions.0.qty', '1e15'],
      [
        [
          { sym: 'MSFT', qty: 1, cost: 400 },
          { sym: 'AAPL', qty: 6e14, cost: 1e17 },
          { sym: 'AAPL', qty: 6e14, cost: 1e17 },
        ],
        'positions.2.qty',
        '1e15',
      ],
    ] as const) {
      const r = await put(positions);
      expect(r.status, JSON.stringify(positions)).toBe(400);
      expect(r.body).toMatchObject({ error: 'BAD_REQUEST', field });
      expect(r.body.message).toContain(field);
      expect(r.body.message).toContain(bound);
    }
    // JSON has no Infinity, but 1e309 parses to it
    const inf = await api(engine, 'PUT', '/v1/users/ann/positions', '{"ccy":"USD","positions":[{"sym":"AAPL","qty":1e309,"cost":1}]}');
    expect(inf).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', field: 'positions.0.qty' } });
    expect(inf.body.message).toContain('1e15');
    expect((await api(engine, 'GET', '/v1/users/ann/positions')).status).toBe(404); // nothing was stored
    // at the bounds: accepted
    const ok = await put([
      { sym: 'AAPL', qty: MAX_QTY, cost: MAX_AMOUNT },
      { sym: 'MSFT', qty: -MAX_QTY, cost: -MAX_AMOUNT },
    ]);
    expect(ok.status).toBe(200);
    expect(ok.body.positions).toEqual([
      { sym: 'AAPL', qty: 1e15, cost: 1e30 },
      { sym: 'MSFT', qty: -1e15, cost: -1e30 },
    ]);
  });

  it('POST executions: qty, p and fee too large or not finite', async () => {
    const ex = { user: 'ann', id: 'e1', order: 'o1', sym: 'AAPL', side: 'buy', qty: 10, p: 100, t: 1718000000000 };
    for (const [body, field, bound] of [
      [{ ...ex, qty: 1e308 }, 'qty', '1e15'],
      [{ ...ex, p: 1e308 }, 'p', '1e15'],
      [{ ...ex, fee: 1e308 }, 'fee', '1e30'],
    ] as const) {
      const r = await api(engine, 'POST', '/v1/executions', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ error: 'BAD_REQUEST', field });
      expect(r.body.message).toContain(bound);
    }
    const inf = await api(engine, 'POST', '/v1/executions', JSON.stringify(ex).replace('"p":100', '"p":1e309'));
    expect(inf).toMatchObject({ status: 400, body: { field: 'p' } });
    expect(await api(engine, 'POST', '/v1/executions', { ...ex, qty: MAX_QTY, p: MAX_PRICE, fee: MAX_AMOUNT })).toMatchObject({ status: 201 });
  });
});

const ticker = (sym: string, p: number, extra: Record<string, unknown> = {}): Tick => {
  const ts = msToNs(Date.now());
  return { k: 'ticker', sym, src: 't', seq: 1, ep: 1, ts, rt: ts, p, o: p, h: p, l: p, v: 1, chg: 0, chgp: 0, ...extra } as unknown as Tick;
};
const quote = (sym: string, bp: number, ap: number): Tick => {
  const ts = msToNs(Date.now());
  return { k: 'quote', sym, src: 't', seq: 1, ep: 1, ts, rt: ts, bp, ap, bs: 1, as: 1 } as unknown as Tick;
};

async function service(): Promise<{ svc: PortfolioService; send(cls: AssetClass, t: Tick): void; close(): Promise<void> }> {
  const bus = new MemoryBus();
  const svc = new PortfolioService({
    bus,
    registry: defaultRegistry(),
    store: new MemoryPositionStore(),
    events: new MemoryEventLog({ maxPerUser: 1000, retentionMs: 86_400_000 }),
    config: { baseCurrency: 'USD', publishMs: 50, requestTimeoutMs: 1000, redisKeyPrefix: 'pf.' },
  });
  await svc.start();
  return {
    svc,
    send: (cls, t) => bus.publish(marketSubject(cls, t.k === 'quote' ? 'quote' : 'ticker', t.sym), encodeTick(t)),
    close: () => svc.close(),
  };
}

/** every number in a payload, with its path */
function numbers(v: unknown, path = ''): [string, number][] {
  if (typeof v === 'number') return [[path, v]];
  if (v === null || typeof v !== 'object') return [];
  return Object.entries(v).flatMap(([k, x]) => numbers(x, `${path}.${k}`));
}

/** the payload's totals are the sums of its priced lines at their rates (within rounding) */
function expectConsistent(v: PortfolioPayload): void {
  for (const [path, n] of numbers(v)) expect(Number.isFinite(n), path).toBe(true);
  let sum = 0;
  let scale = 0;
  for (const l of v.positions) {
    if (l.priced === false) continue;
    const exact = l.qty * l.p;
    expect(Number.isFinite(exact), `${l.sym} qty x p`).toBe(true);
    expect(Math.abs(l.value - exact)).toBeLessThanOrEqual(Math.abs(exact) * 1e-11);
    const rate = l.ccy === v.ccy ? 1 : v.fx![l.ccy]!;
    sum += l.value * rate;
    scale += Math.abs(l.value * rate);
  }
  expect(Math.abs(v.value - sum)).toBeLessThanOrEqual(scale * 1e-9);
}

describe('valuation: never a silent 0 from an overflow', () => {
  it('a position at the bounds, at the highest price, is valued (1e30), not 0', async () => {
    const { svc, send, close } = await service();
    try {
      await svc.putPositions('u', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: MAX_QTY, cost: MAX_AMOUNT / 2 }] });
      send('stock', ticker('AAPL', MAX_PRICE));
      const v = svc.valuation('u');
      expect(v.positions[0]).toMatchObject({ sym: 'AAPL', qty: 1e15, p: 1e15, value: 1e30, pnl: 5e29 });
      expect(v.value).toBe(1e30);
      expectConsistent(v);
    } finally {
      await close();
    }
  });

  it('a price above MAX_PRICE from a feed (an error: no market trades there) is not taken: the last good price stays, else the position is unpriced', async () => {
    const { svc, send, close } = await service();
    try {
      await svc.putPositions('u', {
        ccy: 'USD',
        positions: [
          { sym: 'AAPL', qty: MAX_QTY, cost: 1e17 },
          { sym: 'MSFT', qty: 10, cost: 4000 },
        ],
      });
      send('stock', ticker('AAPL', 1e300));
      send('stock', ticker('MSFT', 400));
      let v = svc.valuation('u');
      // it was qty x 1e300 = Infinity, sent as value 0 in a priced line, and a total of 0
      expect(v.positions[0]).toMatchObject({ sym: 'AAPL', priced: false, value: 1e17 });
      expect(v.value).toBe(4000);
      send('stock', ticker('AAPL', 100));
      send('stock', ticker('AAPL', 1e300));
      v = svc.valuation('u');
      expect(v.positions[0]).toMatchObject({ sym: 'AAPL', p: 100, value: 1e17 });
      expectConsistent(v);
    } finally {
      await close();
    }
  });

  it('a forex mid whose inverse would overflow the totals gives no rate: the positions in that currency are unpriced, not 0', async () => {
    const { svc, send, close } = await service();
    try {
      // base EUR: AAPL (USD) converts at 1 / EUR-USD
      await svc.putPositions('u', { ccy: 'EUR', positions: [{ sym: 'AAPL', qty: MAX_QTY, cost: 1e17 }] });
      send('stock', ticker('AAPL', MAX_PRICE));
      send('forex', quote('EUR-USD', 1e-300, 1e-300));
      const v = svc.valuation('u');
      expect(v.positions[0]).toMatchObject({ sym: 'AAPL', priced: false });
      expect(v.value).toBe(0); // nothing priced: an empty total, and the line says why
      send('forex', quote('EUR-USD', 1.25, 1.25));
      const w = svc.valuation('u');
      expect(w.positions[0]).toMatchObject({ sym: 'AAPL', p: 1e15, value: 1e30 });
      expect(w.value).toBeCloseTo(0.8e30, -18);
      expectConsistent(w);
    } finally {
      await close();
    }
  });
});

describe('property: inputs within the bounds never overflow', () => {
  const USD_SYMS = ['AAPL', 'MSFT', 'BTC-USD', 'ETH-USD', 'SPY'];
  const qty = fc.double({ min: -MAX_QTY, max: MAX_QTY, noNaN: true, noDefaultInfinity: true });
  const price = fc.double({ min: 1e-12, max: MAX_PRICE, noNaN: true, noDefaultInfinity: true });
  const line = fc
    .record({ sym: fc.constantFrom(...USD_SYMS), qty, frac: fc.double({ min: 0, max: 1, noNaN: true }) })
    // a cost of the quantity's sign, anywhere up to the bound
    .map(({ sym, qty: q, frac }) => ({ sym, qty: q, cost: q === 0 ? 0 : Math.sign(q) * frac * MAX_AMOUNT }));

  it('PUT positions (accepted by the schema and the service) valued at any prices and rates within the bounds: every number finite, totals = sum of lines', async () => {
    const { svc, send, close } = await service();
    let n = 0;
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.uniqueArray(line, { selector: (l) => l.sym, minLength: 1, maxLength: 5 }),
          fc.array(price, { minLength: USD_SYMS.length, maxLength: USD_SYMS.length }),
          fc.constantFrom('USD', 'EUR', 'JPY'),
          fc.double({ min: 1 / MAX_PRICE, max: MAX_PRICE, noNaN: true }),
          fc.double({ min: 1 / MAX_PRICE, max: MAX_PRICE, noNaN: true }),
          async (positions, prices, ccy, eurUsd, usdJpy) => {
            const input = { ccy, positions };
            expect(PositionsSchema.safeParse(input).success).toBe(true);
            const user = `u${++n}`;
            await svc.putPositions(user, input);
            USD_SYMS.forEach((s, i) => send(s.endsWith('-USD') ? 'crypto' : 'stock', ticker(s, prices[i]!, { pc: prices[(i + 1) % prices.length]! })));
            send('forex', quote('EUR-USD', eurUsd, eurUsd));
            send('forex', quote('USD-JPY', usdJpy, usdJpy));
            const v = svc.valuation(user);
            expect(v.positions.every((l) => l.priced !== false)).toBe(true);
            expectConsistent(v);
          },
        ),
        { numRuns: 300 },
      );
    } finally {
      await close();
    }
  });

  it('executions accepted by the schema, applied in any order, valued within the bounds: every number finite', () => {
    const execution = fc.record({
      side: fc.constantFrom('buy', 'sell'),
      qty: fc.double({ min: Number.MIN_VALUE, max: MAX_QTY, noNaN: true }),
      p: fc.double({ min: 0, max: MAX_PRICE, noNaN: true }),
      fee: fc.option(fc.double({ min: 0, max: MAX_AMOUNT, noNaN: true }), { nil: undefined }),
    });
    const registry = defaultRegistry();
    fc.assert(
      fc.property(fc.array(execution, { minLength: 1, maxLength: 30 }), price, price, (exs, p, open) => {
        const book = emptyBook('u', 'USD', Date.now());
        exs.forEach((e, i) => {
          const input = { id: `x${i}`, order: 'o', sym: 'AAPL', ...e, ...(e.fee === undefined ? { fee: undefined } : {}), t: Date.now() };
          if (input.fee === undefined) delete (input as { fee?: number }).fee;
          expect(ExecutionSchema.safeParse(input).success).toBe(true);
          applyExecution(book, input as ExecutionPayload);
        });
        const v = valuate(book, { price: () => ({ p, open }) }, new FxRates(registry, () => undefined), registry);
        expectConsistent(v);
      }),
      { numRuns: 300 },
    );
  });
});
