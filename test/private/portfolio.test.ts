import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRegistry, InstrumentRegistry, DEFAULT_INSTRUMENTS } from '../../src/core/instruments.js';
import type { Engine } from '../../src/app/engine.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { FxRates } from '../../src/portfolio/fx.js';
import { applyExecution, emptyBook, utcDay } from '../../src/portfolio/positions.js';
import { valuate } from '../../src/portfolio/valuation.js';
import type { PriceSource } from '../../src/portfolio/valuation.js';
import { startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

const e = (side: 'buy' | 'sell', qty: number, p: number, fee?: number, sym = 'AAPL'): ExecutionPayload =>
  ({ id: `${side}${qty}@${p}`, order: 'o', sym, side, qty, p, ...(fee === undefined ? {} : { fee }), t: 0 }) as ExecutionPayload;

describe('positions: average cost', () => {
  it('adds to a long, reduces it at average cost, realizes the difference', () => {
    const b = emptyBook('u', 'USD');
    applyExecution(b, e('buy', 10, 100, 1));
    applyExecution(b, e('buy', 10, 110));
    expect(b.positions.AAPL).toMatchObject({ qty: 20, cost: 2101 });
    applyExecution(b, e('sell', 5, 120, 2));
    const p = b.positions.AAPL!;
    expect(p.qty).toBe(15);
    expect(p.cost).toBeCloseTo(2101 * 0.75, 9);
    expect(p.realized).toBeCloseTo((120 - 105.05) * 5 - 2, 9);
  });

  it('goes through zero: closes the long and opens a short at the trade price', () => {
    const b = emptyBook('u', 'USD');
    applyExecution(b, e('buy', 10, 100));
    applyExecution(b, e('sell', 15, 90));
    expect(b.positions.AAPL).toMatchObject({ qty: -5, cost: -450 });
    expect(b.positions.AAPL!.realized).toBeCloseTo(-100, 9);
    applyExecution(b, e('buy', 5, 80));
    expect(b.positions.AAPL).toMatchObject({ qty: 0, cost: 0 });
    expect(b.positions.AAPL!.realized).toBeCloseTo(-100 + 50, 9);
  });
});

describe('currency conversion', () => {
  const mids: Record<string, number> = { 'EUR-USD': 1.25, 'GBP-USD': 1.5, 'USD-JPY': 150 };
  const fx = new FxRates(defaultRegistry(), (pair) => mids[pair]);

  it('uses the direct pair, its inverse, or two legs through USD', () => {
    expect(fx.rate('EUR', 'USD')).toBe(1.25);
    expect(fx.rate('USD', 'EUR')).toBeCloseTo(0.8, 12);
    expect(fx.rate('USD', 'JPY')).toBe(150);
    expect(fx.rate('JPY', 'USD')).toBeCloseTo(1 / 150, 15);
    expect(fx.rate('EUR', 'JPY')).toBeCloseTo(187.5, 9);
    expect(fx.rate('GBP', 'EUR')).toBeCloseTo(1.2, 12);
    expect(fx.rate('USD', 'USD')).toBe(1);
    expect(fx.rate('USD', 'SEK')).toBeUndefined();
    expect(fx.pairsFor('EUR', 'JPY').sort()).toEqual(['EUR-USD', 'USD-JPY']);
  });
});

describe('valuation arithmetic', () => {
  const registry = new InstrumentRegistry([
    ...DEFAULT_INSTRUMENTS,
    { symbol: 'SAP', assetClass: 'stock', currency: 'EUR', pricePrecision: 2, providers: ['synthetic'] },
    { symbol: '7203.T', assetClass: 'stock', currency: 'JPY', pricePrecision: 0, providers: ['synthetic'] },
  ]);
  const mids: Record<string, number> = { 'EUR-USD': 1.25, 'USD-JPY': 150 };
  const fx = new FxRates(registry, (pair) => mids[pair]);
  const prices: Record<string, { p: number; open: number | undefined }> = {
    AAPL: { p: 200, open: 190 },
    SAP: { p: 120, open: 125 },
    '7203.T': { p: 3000, open: 2900 },
  };
  const source: PriceSource = { price: (s) => prices[s] };

  it('values each position in its currency and totals in the base currency', () => {
    const now = Date.now();
    const b = emptyBook('u', 'EUR', now);
    b.positions.AAPL = { qty: 10, cost: 1800, dayQty0: 10, dayFlow: 0, realized: 0 };
    b.positions.SAP = { qty: 20, cost: 2600, dayQty0: 20, dayFlow: 0, realized: 0 };
    b.positions['7203.T'] = { qty: 100, cost: 280_000, dayQty0: 100, dayFlow: 0, realized: 0 };
    const v = valuate(b, source, fx, registry, now);
    const pos = Object.fromEntries(v.positions.map((p) => [p.sym, p]));
    expect(pos.AAPL).toMatchObject({ qty: 10, p: 200, value: 2000, pnl: 200, ccy: 'USD', cost: 1800, day_pnl: 100 });
    expect(pos.SAP).toMatchObject({ value: 2400, pnl: -200, ccy: 'EUR', day_pnl: -100 });
    expect(pos['7203.T']).toMatchObject({ value: 300_000, pnl: 20_000, ccy: 'JPY', day_pnl: 10_000 });
    // USD -> EUR: / 1.25; JPY -> EUR: / 150 / 1.25 = / 187.5
    expect(v.ccy).toBe('EUR');
    expect(v.value).toBeCloseTo(2000 / 1.25 + 2400 + 300_000 / 187.5, 6);
    expect(v.cost).toBeCloseTo(1800 / 1.25 + 2600 + 280_000 / 187.5, 6);
    expect(v.pnl).toBeCloseTo(v.value - v.cost, 6);
    expect(v.day_pnl).toBeCloseTo(100 / 1.25 - 100 + 10_000 / 187.5, 6);
    expect(v.t).toBe(now);
  });

  it("counts today's trades in day P&L by cash flow, and leaves unpriced positions out of the totals", () => {
    const now = Date.now();
    const b = emptyBook('u', 'USD', now);
    b.day = utcDay(now);
    // held 10 since the day started (open 190), bought 5 more today at 195
    b.positions.AAPL = { qty: 10, cost: 1800, dayQty0: 10, dayFlow: 0, realized: 0 };
    // (an execution belongs to the day of its own time `t`: this one is today's)
    applyExecution(b, { ...e('buy', 5, 195, 1), t: now }, now);
    b.positions.MSFT = { qty: 3, cost: 1200, dayQty0: 3, dayFlow: 0, realized: 0 };
    const v = valuate(b, source, fx, registry, now);
    const aapl = v.positions.find((p) => p.sym === 'AAPL')!;
    // 15 x 200 - 10 x 190 - (5 x 195 + 1) = 3000 - 1900 - 976
    expect(aapl.day_pnl).toBeCloseTo(124, 9);
    const msft = v.positions.find((p) => p.sym === 'MSFT')!;
    expect(msft).toMatchObject({ priced: false, p: 400, value: 1200, pnl: 0 });
    expect(v.value).toBeCloseTo(3000, 9);
    expect(v.cost).toBeCloseTo(1800 + 976, 9);
  });
});

const isPf = (f: Frame) => f.op === 'data' && f.ch === 'portfolio';

describe('portfolio channel (embedded)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, portfolio: { publishMs: 100 } });
  });
  afterAll(() => engine.close());

  it('publishes the valuation on subscribe, on price changes, on executions; only on change', async () => {
    publishTick(engine, 'forex', { k: 'quote', sym: 'GBP-USD', bp: 1.5, ap: 1.5 } as never);
    const put = await api(engine, 'PUT', '/v1/users/olga/positions', { ccy: 'GBP', positions: [{ sym: 'BTC-USD', qty: 0.5, cost: 30_000 }] });
    expect(put.status).toBe(200);
    publishTick(engine, 'forex', { k: 'quote', sym: 'GBP-USD', bp: 1.5, ap: 1.5 } as never);
    publishTick(engine, 'crypto', {
      k: 'ticker',
      sym: 'BTC-USD',
      p: 66_000,
      bp: 65_990,
      ap: 66_010,
      o: 64_000,
      h: 66_100,
      l: 63_900,
      v: 10,
      chg: 2000,
      chgp: 3.125,
    } as never);
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'olga' })}` }, encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['portfolio'], throttle: 0 });
    const first = await c.waitFor((f) => isPf(f) && f.d.value > 0);
    expect(first.d).toMatchObject({ ccy: 'GBP', positions: [{ sym: 'BTC-USD', qty: 0.5, p: 66_000, value: 33_000, pnl: 3000, ccy: 'USD' }] });
    expect(first.d.value).toBeCloseTo(22_000, 6);
    expect(first.d.cost).toBeCloseTo(20_000, 6);
    expect(first.d.day_pnl).toBeCloseTo(1000 / 1.5, 6);
    expect(Object.keys(first.d).slice(0, 7)).toEqual(['ccy', 'value', 'cost', 'pnl', 'day_pnl', 'positions', 't']);

    const count = () => c.frames.filter(isPf).length;
    await quietFor(400, 'the valuations of the prices above have all been sent');
    const settled = count();
    // the same price again: no new valuation
    publishTick(engine, 'crypto', {
      k: 'ticker',
      sym: 'BTC-USD',
      p: 66_000,
      bp: 65_990,
      ap: 66_010,
      o: 64_000,
      h: 66_100,
      l: 63_900,
      v: 11,
      chg: 2000,
      chgp: 3.125,
    } as never);
    await quietFor(400, 'no valuation for an unchanged price');
    expect(count()).toBe(settled);
    // a burst of prices: at most a few valuations, the last one right
    for (let i = 1; i <= 50; i++) {
      publishTick(engine, 'crypto', {
        k: 'ticker',
        sym: 'BTC-USD',
        p: 66_000 + i * 10,
        bp: 0,
        ap: 0,
        o: 64_000,
        h: 67_000,
        l: 63_900,
        v: 11 + i,
        chg: 0,
        chgp: 0,
      } as never);
    }
    const last = await c.waitFor((f) => isPf(f) && f.d.positions[0]?.p === 66_500);
    expect(last.d.value).toBeCloseTo((0.5 * 66_500) / 1.5, 6);
    expect(count() - settled).toBeLessThanOrEqual(5);

    await api(engine, 'POST', '/v1/executions', { user: 'olga', id: 'x1', order: 'o1', sym: 'BTC-USD', side: 'sell', qty: 0.25, p: 66_500, t: Date.now() });
    const sold = await c.waitFor((f) => isPf(f) && f.d.positions[0]?.qty === 0.25);
    expect(sold.d.positions[0].cost).toBeCloseTo(15_000, 6);
    expect(sold.d.realized).toBeCloseTo((0.25 * (66_500 - 60_000)) / 1.5, 6);
    expect((await api(engine, 'GET', '/v1/users/olga/positions')).body).toMatchObject({
      user: 'olga',
      ccy: 'GBP',
      seq: 1,
      positions: [{ sym: 'BTC-USD', qty: 0.25, cost: 15_000 }],
    });
    c.close();
  });

  it("sends an empty portfolio to a user without positions, and never another user's", async () => {
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'paul' })}` }, encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['portfolio'] });
    const v = await c.waitFor(isPf);
    expect(v.d).toMatchObject({ ccy: 'USD', value: 0, cost: 0, pnl: 0, day_pnl: 0, positions: [] });
    await quietFor(300, "no valuation with another user's positions");
    expect(c.frames.filter(isPf).every((f) => f.d.positions.length === 0)).toBe(true);
    c.close();
  });
});

describe('positions in Redis (embedded with REDIS_URL)', () => {
  let redis: TestServer & { destroy(): Promise<void> };
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis.destroy());

  it('keeps positions and executions across an engine restart', async () => {
    const cfg = { redisUrl: redis.url, auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } };
    const a = await testEngine(cfg);
    await api(a, 'PUT', '/v1/users/quinn/positions', { ccy: 'USD', positions: [{ sym: 'TSLA', qty: 4, cost: 1000 }] });
    const r1 = { user: 'quinn', id: 'r1', order: 'o', sym: 'TSLA', side: 'buy', qty: 1, p: 260, t: Date.now() };
    await api(a, 'POST', '/v1/executions', r1);
    await waitFor(async () => (await api(a, 'GET', '/v1/users/quinn/positions')).body.positions?.[0]?.qty === 5);
    await a.close();
    const b = await testEngine(cfg);
    try {
      expect((await api(b, 'GET', '/v1/users/quinn/positions')).body).toMatchObject({ seq: 1, positions: [{ sym: 'TSLA', qty: 5, cost: 1260 }] });
      const c = await TestClient.connect(wsUrl(b), { headers: { authorization: `Bearer ${await token({ sub: 'quinn' })}` }, encoding: 'json' });
      await c.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 0 });
      expect((await c.waitFor((f) => f.op === 'data' && f.ch === 'executions')).d.id).toBe('r1');
      // the same id after the restart is still a duplicate
      expect((await api(b, 'POST', '/v1/executions', r1)).body).toMatchObject({ duplicate: true, seq: 1 });
      // and with other content a 409, read back from Redis (test/hostile/service-api-intake.test.ts)
      expect(await api(b, 'POST', '/v1/executions', { ...r1, t: r1.t + 1 })).toMatchObject({ status: 409, body: { error: 'CONFLICT', field: 't' } });
      c.close();
    } finally {
      await b.close();
    }
  });
});
