import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import { quietFor } from '../helpers/wait.js';
import { entitledPortfolio, seesAllRealtime } from '../../src/fanout/portfolio-view.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { FX_PAYLOAD, isPf, ticker } from './portfolio-seams.js';

/** The portfolio channel enforces the connection's entitlements: no live price of a symbol it may not see live. */
describe('portfolio channel: entitlements per connection', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, portfolio: { publishMs: 50 } });
    publishTick(engine, 'stock', ticker('AAPL', 200));
    publishTick(engine, 'crypto', ticker('BTC-USD', 66_000));
    const put = await api(engine, 'PUT', '/v1/users/vera/positions', {
      ccy: 'USD',
      positions: [
        { sym: 'AAPL', qty: 10, cost: 1500 },
        { sym: 'BTC-USD', qty: 1, cost: 60_000 },
      ],
    });
    expect(put.status).toBe(200);
    publishTick(engine, 'stock', ticker('AAPL', 200));
    publishTick(engine, 'crypto', ticker('BTC-USD', 66_000));
  });
  afterAll(() => engine.close());

  const connect = async (ent?: unknown): Promise<TestClient> => {
    const jwt = await token(ent === undefined ? { sub: 'vera' } : { sub: 'vera', claims: { ent } });
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${jwt}` }, encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['portfolio'], throttle: 0 });
    return c;
  };
  const priced = (c: TestClient) =>
    c.waitFor((f) => isPf(f) && f.d.positions.length === 2 && f.d.positions.some((p: { sym: string; p: number }) => p.sym === 'BTC-USD' && p.p === 66_000));

  it('a real-time user sees every position at its live price, as before', async () => {
    const c = await connect();
    const f = await c.waitFor((x) => isPf(x) && x.d.value === 68_000);
    expect(f.d).toMatchObject({ ccy: 'USD', value: 68_000, cost: 61_500, pnl: 6500 });
    expect(f.d.positions.find((p: { sym: string }) => p.sym === 'AAPL')).toEqual({
      sym: 'AAPL',
      qty: 10,
      p: 200,
      value: 2000,
      pnl: 500,
      ccy: 'USD',
      cost: 1500,
      day_pnl: 100,
    });
    c.close();
  });

  for (const [what, ent] of [
    ['delayed', { classes: ['crypto'], delayed: ['stock'] }],
    ['not entitled to', { classes: ['crypto'] }],
  ] as const) {
    it(`a user ${what} stocks never sees AAPL's live price; totals hold only what the connection sees`, async () => {
      const c = await connect(ent);
      const f = await priced(c);
      const aapl = () => c.frames.filter(isPf).map((x) => x.d.positions.find((p: { sym: string }) => p.sym === 'AAPL'));
      expect(aapl().every((p: { p: number; value: number }) => p.p === 150 && p.value === 1500)).toBe(true);
      expect(f.d.positions.find((p: { sym: string }) => p.sym === 'AAPL')).toEqual({
        sym: 'AAPL',
        qty: 10,
        p: 150,
        value: 1500,
        pnl: 0,
        ccy: 'USD',
        cost: 1500,
        day_pnl: 0,
        priced: false,
      });
      expect(f.d).toMatchObject({ ccy: 'USD', value: 66_000, cost: 60_000, pnl: 6000, day_pnl: 10 });
      // a new live price of AAPL: still not shown
      publishTick(engine, 'stock', ticker('AAPL', 321));
      publishTick(engine, 'crypto', ticker('BTC-USD', 66_001));
      await c.waitFor((x) => isPf(x) && x.d.value === 66_001);
      expect(aapl().every((p: { p: number; value: number; priced?: boolean }) => p.p === 150 && p.value === 1500 && p.priced === false)).toBe(true);
      publishTick(engine, 'crypto', ticker('BTC-USD', 66_000));
      c.close();
    });
  }

  it('two connections of one user with different tokens each see their own view', async () => {
    const rt = await connect();
    const dl = await connect({ classes: ['crypto'], delayed: ['stock'] });
    publishTick(engine, 'stock', ticker('AAPL', 222));
    await rt.waitFor((x) => isPf(x) && x.d.positions.some((p: { p: number }) => p.p === 222));
    publishTick(engine, 'crypto', ticker('BTC-USD', 66_002));
    const f = await dl.waitFor((x) => isPf(x) && x.d.positions.some((p: { p: number }) => p.p === 66_002));
    expect(f.d.value).toBe(66_002);
    expect(dl.frames.filter(isPf).every((x) => x.d.positions.every((p: { p: number }) => p.p !== 222))).toBe(true);
    await rt.waitFor((x) => isPf(x) && x.d.value === 66_002 + 2220);
    rt.close();
    dl.close();
  });
});

describe('portfolio channel: a token refresh that changes entitlements', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, portfolio: { publishMs: 50 } });
  });
  afterAll(() => engine.close());
  const jwt = (ent?: unknown) => token(ent === undefined ? { sub: 'walt' } : { sub: 'walt', claims: { ent } });
  const open = async (ent?: unknown): Promise<TestClient> => {
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await jwt(ent)}` }, encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['portfolio'] });
    await c.waitFor(isPf);
    return c;
  };

  it('closes 1008 when a real-time portfolio would now be restricted', async () => {
    const c = await open();
    await c.request({ op: 'auth', id: 2, token: await jwt({ classes: ['crypto'], delayed: ['stock'] }) });
    expect(await c.waitClose(10_000)).toBe(1008);
  });

  it('closes 1008 when a restricted portfolio would now be restricted otherwise, keeps it for the same entitlements', async () => {
    const same = await open({ classes: ['crypto'], delayed: ['stock'] });
    expect((await same.request({ op: 'auth', id: 2, token: await jwt({ classes: ['crypto'], delayed: ['stock'] }) })).op).toBe('ack');
    await quietFor(200, 'no close for a refresh with the same entitlements');
    expect(same.closeCode).toBeUndefined();
    same.close();
    const other = await open({ classes: ['crypto'], delayed: ['stock'] });
    await other.request({ op: 'auth', id: 2, token: await jwt({ classes: ['stock'] }) });
    expect(await other.waitClose(10_000)).toBe(1008);
  });
});

describe('entitledPortfolio: totals with FX', () => {
  it('sums the lines the connection sees at the service rates, and hides the others', () => {
    const payload = FX_PAYLOAD;
    const classOf = () => 'stock' as const;
    const sapOnly = entitledPortfolio(payload, (sym) => (sym === 'SAP' ? 'realtime' : 'delayed'), classOf);
    expect(sapOnly).toEqual({
      ccy: 'USD',
      value: 3000,
      cost: 3250,
      pnl: -250,
      day_pnl: -125,
      positions: [{ sym: 'AAPL', qty: 10, p: 150, value: 1500, pnl: 0, ccy: 'USD', cost: 1500, day_pnl: 0, priced: false }, payload.positions[1]],
      t: 1,
      realized: 7,
    });
    // a symbol the registry does not know is never shown priced
    expect(
      entitledPortfolio(
        payload,
        () => 'realtime',
        () => undefined,
      ).value,
    ).toBe(0);
    expect(seesAllRealtime(() => 'realtime')).toBe(true);
    expect(seesAllRealtime((_s, c) => (c === 'stock' ? 'delayed' : 'realtime'))).toBe(false);
  });
});

describe('entitledPortfolio: the FX rate is a price too', () => {
  const payload = FX_PAYLOAD;
  const classOf = (sym: string) => (sym.includes('-') ? ('forex' as const) : ('stock' as const));

  for (const fxAccess of ['delayed', 'none'] as const) {
    it(`stocks real time, forex ${fxAccess}: a line in another currency is not summed at the live rate (the totals would give it away)`, () => {
      const view = entitledPortfolio(payload, (_sym, cls) => (cls === 'stock' ? 'realtime' : fxAccess), classOf);
      // value / the line's value would be the live EUR-USD rate: only the USD line is summed
      expect(view).toMatchObject({ value: 2000, cost: 1500, pnl: 500, day_pnl: 100 });
      expect(view.positions[1]).toEqual({ sym: 'SAP', qty: 20, p: 130, value: 2600, pnl: 0, ccy: 'EUR', cost: 2600, day_pnl: 0, priced: false });
      expect(view).not.toHaveProperty('fx');
    });
  }

  it('a cross rate (EUR to JPY through USD) counts only when every pair it may use is real time', () => {
    const jpy = { ...payload, ccy: 'JPY', fx: { EUR: 160 } };
    const cross = (sym: string) => (sym === 'EUR-JPY' || sym === 'JPY-EUR' ? undefined : classOf(sym));
    const usdJpyDelayed = entitledPortfolio(jpy, (sym) => (sym === 'USD-JPY' ? 'delayed' : 'realtime'), cross);
    expect(usdJpyDelayed.positions[1]).toMatchObject({ sym: 'SAP', priced: false });
    const allLive = entitledPortfolio(jpy, (sym) => (sym === 'AAPL' ? 'delayed' : 'realtime'), cross);
    expect(allLive.positions[1]).toEqual(payload.positions[1]);
    expect(allLive.value).toBe(2400 * 160);
  });
});

describe('entitledPortfolio: the delayed part is only as fresh as this gateway allows', () => {
  // the service valued AAPL at the price of 1 s ago; a gateway whose auth.delayMs is 15 min must
  // not show that price to a connection entitled to AAPL delayed (the two processes' settings
  // differ: a misconfiguration, which must not turn into a fresher price than the contract)
  const payload = { ...FX_PAYLOAD, dv: { ms: 1000, lines: [[190, 1900, 400, 90], 0] as ([number, number, number, number] | 0)[], fx: { EUR: 1.25 } } };
  const classOf = () => 'stock' as const;
  const delayedAapl = (sym: string) => (sym === 'AAPL' ? ('delayed' as const) : ('realtime' as const));

  it('uses dv when it is at least the gateway delay', () => {
    const view = entitledPortfolio(payload, delayedAapl, classOf, 1000);
    expect(view.positions[0]).toEqual({ sym: 'AAPL', qty: 10, p: 190, value: 1900, pnl: 400, ccy: 'USD', cost: 1500, day_pnl: 90, delayed: 1000 });
    expect(entitledPortfolio(payload, delayedAapl, classOf, 500).positions[0]).toMatchObject({ p: 190, delayed: 1000 });
  });

  it('shows the line unpriced, and reports the shorter delay, when dv is fresher than the gateway delay', () => {
    const seen: number[] = [];
    const view = entitledPortfolio(payload, delayedAapl, classOf, 900_000, (ms) => seen.push(ms));
    expect(view.positions[0]).toEqual({ sym: 'AAPL', qty: 10, p: 150, value: 1500, pnl: 0, ccy: 'USD', cost: 1500, day_pnl: 0, priced: false });
    expect(view.value).toBe(3000);
    expect(seen).toEqual([1000]);
    // a dv without a numeric delay is not trusted either
    const noMs = { ...payload, dv: { ...payload.dv, ms: undefined as unknown as number } };
    expect(entitledPortfolio(noMs, delayedAapl, classOf, 0).positions[0]).toMatchObject({ priced: false });
  });
});
