import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { entitledPortfolio } from '../../src/fanout/portfolio-view.js';
import { TickDelay } from '../../src/portfolio/price-book.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { FX_PAYLOAD, isPf, ticker } from './portfolio-seams.js';
import { quietFor } from '../helpers/wait.js';

/**
 * A position in a symbol the connection gets delayed only is valued at the delayed price (the
 * price of `auth.delayMs` ago, as its market channels show it), marked `delayed: <ms>`, and counted
 * in the totals; the live price never reaches that connection (docs/private-streams.md, "The
 * `portfolio` payload"). Before, such a position was listed unpriced and left out of the totals.
 */

type Line = { sym: string; p: number; value: number; priced?: false; delayed?: number };
const line = (f: Frame, sym: string): Line | undefined => (f.d as { positions: Line[] }).positions.find((p) => p.sym === sym);

const DELAY_MS = 400;

describe('portfolio channel: delayed symbols valued at their delayed price, over the wire', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN, delayMs: DELAY_MS }, portfolio: { publishMs: 50 } });
    const put = await api(engine, 'PUT', '/v1/users/dora/positions', {
      ccy: 'USD',
      positions: [
        { sym: 'AAPL', qty: 10, cost: 1500 },
        { sym: 'BTC-USD', qty: 1, cost: 60_000 },
      ],
    });
    expect(put.status).toBe(200);
  });
  afterAll(() => engine.close());

  const connect = async (ent?: unknown): Promise<{ c: TestClient; raw: { at: number; text: string }[] }> => {
    const jwt = await token(ent === undefined ? { sub: 'dora' } : { sub: 'dora', claims: { ent } });
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${jwt}` }, encoding: 'json' });
    const raw: { at: number; text: string }[] = [];
    c.ws.on('message', (data: Buffer) => raw.push({ at: Date.now(), text: data.toString('utf8') }));
    await c.request({ op: 'subscribe', id: 1, channels: ['portfolio'], throttle: 0 });
    return { c, raw };
  };

  it('a user delayed on stocks sees AAPL at the delayed price, marked, and counted; never the live price', async () => {
    const { c: live, raw: liveRaw } = await connect();
    const { c, raw } = await connect({ classes: ['crypto'], delayed: ['stock'] });
    const t0 = Date.now();
    publishTick(engine, 'stock', ticker('AAPL', 200));
    publishTick(engine, 'crypto', ticker('BTC-USD', 66_000));
    // the delayed view: AAPL unpriced until its first price is DELAY_MS old, then at 200
    const first = await c.waitFor((f) => isPf(f) && line(f, 'AAPL')?.priced !== false && line(f, 'BTC-USD')?.p === 66_000, 10_000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(DELAY_MS); // the condition, not a speed: shown no earlier than its delay
    expect(line(first, 'AAPL')).toEqual({ sym: 'AAPL', qty: 10, p: 200, value: 2000, pnl: 500, ccy: 'USD', cost: 1500, day_pnl: 100, delayed: DELAY_MS });
    expect(first.d).toMatchObject({ value: 68_000, cost: 61_500, pnl: 6500 });

    // a new live price: the real-time view shows it at once, the delayed view DELAY_MS later
    const t1 = Date.now();
    publishTick(engine, 'stock', ticker('AAPL', 321));
    await live.waitFor((f) => isPf(f) && line(f, 'AAPL')?.p === 321);
    const later = await c.waitFor((f) => isPf(f) && line(f, 'AAPL')?.p === 321, 10_000);
    expect(line(later, 'AAPL')).toMatchObject({ p: 321, value: 3210, delayed: DELAY_MS });
    expect(later.d.value).toBe(3210 + 66_000);
    // over the wire: no frame of the delayed connection carried 321 before it was DELAY_MS old,
    // nor the service's delayed valuation or its rates
    for (const m of raw) {
      if (m.text.includes('321')) expect(m.at - t1).toBeGreaterThanOrEqual(DELAY_MS);
      expect(m.text).not.toContain('"dv"');
      expect(m.text).not.toContain('"fx"');
    }
    // the real-time connection gets the valuation without its delayed part (made for restricted views)
    expect(liveRaw.some((m) => m.text.includes('"portfolio"'))).toBe(true);
    for (const m of liveRaw) expect(m.text).not.toContain('"dv"');
    // and not again when only that part changed: the service published when AAPL's delayed price
    // reached 321 (for the delayed view), which the real-time view already showed; it used to get a
    // frame like the one before it (only `t` differed)
    await quietFor(300, 'a real-time portfolio frame repeating the one before it');
    const liveValuations = liveRaw
      .map((m) => JSON.parse(m.text) as Frame)
      .filter(isPf)
      .map((f) => {
        const { t: _t, ...rest } = f.d as Record<string, unknown>;
        return JSON.stringify(rest);
      });
    for (let i = 1; i < liveValuations.length; i++) expect(liveValuations[i], `frame ${i} repeats frame ${i - 1}`).not.toBe(liveValuations[i - 1]);
    live.close();
    c.close();
  });

  it('a user not entitled to stocks still sees AAPL unpriced, whatever its delayed price', async () => {
    publishTick(engine, 'crypto', ticker('BTC-USD', 66_001));
    const { c, raw } = await connect({ classes: ['crypto'] });
    const f = await c.waitFor((x) => isPf(x) && line(x, 'BTC-USD')?.p === 66_001, 10_000);
    expect(line(f, 'AAPL')).toEqual({ sym: 'AAPL', qty: 10, p: 150, value: 1500, pnl: 0, ccy: 'USD', cost: 1500, day_pnl: 0, priced: false });
    expect(f.d.value).toBe(66_001);
    expect(raw.some((m) => m.text.includes('"delayed"'))).toBe(false);
    c.close();
  });
});

/** A USD book with a EUR line, as the service publishes it, with its delayed valuation (`dv`). */
const PAYLOAD = {
  ...FX_PAYLOAD,
  dv: {
    ms: 900_000,
    lines: [
      [190, 1900, 400, 0],
      [110, 2200, -400, -300],
    ] as ([number, number, number, number] | 0)[],
    fx: { EUR: 1.2 },
  },
};
const AAPL_DELAYED = { sym: 'AAPL', qty: 10, p: 190, value: 1900, pnl: 400, ccy: 'USD', cost: 1500, day_pnl: 0, delayed: 900_000 };
const SAP_DELAYED = { sym: 'SAP', qty: 20, p: 110, value: 2200, pnl: -400, ccy: 'EUR', cost: 2600, day_pnl: -300, delayed: 900_000 };
const classOf = (sym: string) => (sym.includes('-') ? ('forex' as const) : ('stock' as const));

describe('entitledPortfolio: delayed lines', () => {
  it('stocks delayed: every stock line at its delayed price and rate, marked; totals of what is shown', () => {
    const view = entitledPortfolio(PAYLOAD, (_s, cls) => (cls === 'stock' ? 'delayed' : 'realtime'), classOf);
    expect(view.positions).toEqual([AAPL_DELAYED, SAP_DELAYED]);
    expect(view).toMatchObject({ value: 1900 + 2200 * 1.2, cost: 1500 + 2600 * 1.2, day_pnl: -300 * 1.2, realized: 7 });
    expect(view).not.toHaveProperty('dv');
    expect(view).not.toHaveProperty('fx');
    // no live number of AAPL or SAP (price, value, pnl), nor the live rate
    const numbers: number[] = [];
    JSON.stringify(view, (_k, v: unknown) => (typeof v === 'number' && numbers.push(v), v));
    for (const n of [200, 2000, 500, 120, 2400, -200, 1.25]) expect(numbers).not.toContain(n);
  });

  it('stocks real time, forex delayed: the EUR line at the delayed price and rate (the live rate would show in the total)', () => {
    const view = entitledPortfolio(PAYLOAD, (_s, cls) => (cls === 'stock' ? 'realtime' : 'delayed'), classOf);
    expect(view.positions).toEqual([PAYLOAD.positions[0], SAP_DELAYED]);
    expect(view.value).toBe(2000 + 2200 * 1.2);
  });

  it('forex not entitled, or no delayed line: unpriced as before', () => {
    const noFx = entitledPortfolio(PAYLOAD, (_s, cls) => (cls === 'stock' ? 'delayed' : 'none'), classOf);
    expect(noFx.positions[1]).toMatchObject({ sym: 'SAP', priced: false, p: 130 });
    expect(noFx.positions[0]).toMatchObject({ sym: 'AAPL', p: 190, delayed: 900_000 });
    const { dv: _dv, ...withoutDv } = PAYLOAD;
    const unpriced = entitledPortfolio(withoutDv, () => 'delayed', classOf);
    expect(unpriced.positions.every((p) => (p as { priced?: false }).priced === false)).toBe(true);
    expect(unpriced.value).toBe(0);
    const dvUnpriced = { ...PAYLOAD, dv: { ...PAYLOAD.dv, lines: [0 as const, PAYLOAD.dv.lines[1]!] } };
    expect(entitledPortfolio(dvUnpriced, () => 'delayed', classOf).positions).toEqual([
      { sym: 'AAPL', qty: 10, p: 150, value: 1500, pnl: 0, ccy: 'USD', cost: 1500, day_pnl: 0, priced: false },
      SAP_DELAYED,
    ]);
    // lines that do not align with the positions are not trusted
    const misaligned = { ...PAYLOAD, dv: { ...PAYLOAD.dv, lines: [PAYLOAD.dv.lines[0]!] } };
    expect(entitledPortfolio(misaligned, () => 'delayed', classOf).value).toBe(0);
  });
});

describe('TickDelay (the portfolio service delay line)', () => {
  const tk = (sym: string, p: number, k: 'ticker' | 'quote' = 'ticker') =>
    (k === 'ticker' ? { k, sym, p, src: 't', seq: 1, ep: 1, ts: 0n, rt: 0n } : { k, sym, bp: p, ap: p, src: 't', seq: 1, ep: 1, ts: 0n, rt: 0n }) as never;
  it('hands ticks over delayMs after they arrived, keeping per slot the latest ticker and quote: bounded by delayMs / slotMs', () => {
    const d = new TickDelay(1000, 100);
    for (let ms = 0; ms < 1000; ms++) d.push(tk('AAPL', ms), ms); // 1000 ticks in 10 slots
    d.push(tk('AAPL', 5, 'quote'), 999);
    expect(d.held).toBe(10);
    const out: string[] = [];
    const take = (now: number) =>
      d.drain(now, (t) => out.push(`${(t as { k: string }).k}:${(t as { p?: number; bp?: number }).p ?? (t as { bp: number }).bp}`));
    take(1098);
    expect(out).toEqual([]); // the first slot's latest tick arrived at 99: due at 1099
    take(1099);
    expect(out).toEqual(['ticker:99']);
    take(2000);
    expect(out).toEqual([
      'ticker:99',
      'ticker:199',
      'ticker:299',
      'ticker:399',
      'ticker:499',
      'ticker:599',
      'ticker:699',
      'ticker:799',
      'ticker:899',
      'ticker:999',
      'quote:5',
    ]);
    expect(d.held).toBe(0);
  });

  it('a stored value received earlier than a tick already held is handed over first (at once when already due)', () => {
    const d = new TickDelay(1000, 100);
    d.push(tk('AAPL', 2), 5000);
    d.push(tk('AAPL', 1), 100); // a last value read at start, received at 100
    const out: number[] = [];
    d.drain(1100, (t) => out.push((t as { p: number }).p));
    expect(out).toEqual([1]);
    d.drain(6000, (t) => out.push((t as { p: number }).p));
    expect(out).toEqual([1, 2]);
  });
});
