import { decode } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { msToNs } from '../../src/core/time.js';
import { SECRET, token } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * GET /v1/bars on a real gateway: closed bars from the bar store (fed by the publisher, here
 * with provider bars), entitlements and delayed access as on the WebSocket, JSON or MessagePack
 * by Accept, and 400 naming the parameter for bad input.
 */
const DAY = 86_400_000;
const MIN = 60_000;
const DELAY = 5 * MIN;
let engine: Engine;
let base = '';
const day0 = Math.floor(Date.UTC(2024, 0, 1) / DAY) * DAY;
const minute0 = Math.floor(Date.now() / MIN) * MIN - 20 * MIN;

function providerBar(sym: string, iv: '1d' | '1m', t: number, c: number): void {
  engine.publisher!.publish('test-provider', { k: 'bar', sym, iv, t, o: c, h: c + 1, l: c - 1, c, v: 10, n: 2, closed: true, ts: msToNs(t) } as never);
}

beforeAll(async () => {
  engine = await startEngine(
    {
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      synthetic: { rate: 20 },
      auth: { mode: 'optional', jwtSecret: SECRET, delayMs: DELAY, anonymousEntitlement: 'realtime' },
    },
    { roles: { feeds: ['synthetic'] }, env: {} },
  );
  base = `http://127.0.0.1:${engine.port}`;
  for (let i = 0; i < 30; i++) providerBar('AAPL', '1d', day0 + i * DAY, 100 + i);
  // each minute bar put at its close, as a live feed puts it: a delayed user sees a bar the delay
  // after it was put (docs/protocol.md#bar-history), and the store takes the time from Date.now
  const clock = vi.spyOn(Date, 'now');
  for (let i = 0; i < 20; i++) {
    clock.mockReturnValue(minute0 + (i + 1) * MIN + 100);
    providerBar('MSFT', '1m', minute0 + i * MIN, 200 + i);
  }
  clock.mockRestore();
});
afterAll(() => engine?.close());

async function get(query: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any; type: string | null }> {
  const res = await fetch(`${base}/v1/bars?${query}`, { headers });
  const type = res.headers.get('content-type');
  const buf = Buffer.from(await res.arrayBuffer());
  const body = type === 'application/msgpack' ? decode(buf) : buf.length ? JSON.parse(buf.toString()) : undefined;
  return { status: res.status, body, type };
}

describe('GET /v1/bars', () => {
  it('answers closed bars oldest first, the newest `limit` of [from, to)', async () => {
    const all = await get('symbol=AAPL&interval=1d');
    expect(all.status).toBe(200);
    expect(all.type).toBe('application/json');
    expect(all.body.symbol).toBe('AAPL');
    expect(all.body.interval).toBe('1d');
    expect(all.body.bars).toHaveLength(30);
    expect(all.body.bars[0]).toEqual({ t: day0, iv: DAY, o: 100, h: 101, l: 99, c: 100, v: 10, n: 2, closed: true });
    const page = await get(`symbol=AAPL&interval=1d&to=${day0 + 20 * DAY}&limit=5`);
    expect(page.body.bars.map((b: any) => b.c)).toEqual([115, 116, 117, 118, 119]);
    const window = await get(`symbol=AAPL&interval=1d&from=${day0 + 3 * DAY}&to=${day0 + 6 * DAY}`);
    expect(window.body.bars.map((b: any) => b.t)).toEqual([3, 4, 5].map((i) => day0 + i * DAY));
    expect((await get('symbol=AAPL&interval=1h')).body.bars).toEqual([]);
  });

  it('says where older bars are: `next`, the start of the newest bar before the answer, null when none (TradingView nextTime/noData)', async () => {
    const at = (i: number): number => day0 + i * DAY;
    // a page by count: the bar before its oldest one
    const page = await get(`symbol=AAPL&interval=1d&to=${at(5)}&limit=3`);
    expect(page.body.bars.map((b: any) => b.t)).toEqual([at(2), at(3), at(4)]);
    expect(page.body.next).toBe(at(1));
    // a time range: the bar before `from`
    const window = await get(`symbol=AAPL&interval=1d&from=${at(3)}&to=${at(6)}`);
    expect(window.body.next).toBe(at(2));
    // a range with more bars than `limit`: its newest, and `next` inside the range (>= from)
    const forward = await get(`symbol=AAPL&interval=1d&from=${at(3)}&limit=5`);
    expect(forward.body.bars.map((b: any) => b.t)).toEqual([25, 26, 27, 28, 29].map(at));
    expect(forward.body.next).toBe(at(24));
    // a range with no bars while older ones exist: not the end of the data
    const gap = await get(`symbol=AAPL&interval=1d&from=${at(40)}&to=${at(50)}`);
    expect(gap.body).toMatchObject({ bars: [], next: at(29) });
    // the oldest bar reached: nothing older
    expect((await get(`symbol=AAPL&interval=1d&to=${at(1)}`)).body).toMatchObject({ bars: [{ t: at(0) }], next: null });
    expect((await get(`symbol=AAPL&interval=1d&to=${at(0)}`)).body).toMatchObject({ bars: [], next: null });
    expect((await get('symbol=AAPL&interval=1d&limit=30')).body.next).toBe(null);
    expect((await get('symbol=AAPL&interval=1d&limit=29')).body.next).toBe(at(0));
    expect((await get('symbol=AAPL&interval=1h')).body).toEqual({ symbol: 'AAPL', interval: '1h', bars: [], next: null });
  });

  it('pages back by count with `to` = the oldest bar held: every bar once, no gap, no duplicate, until `next` is null', async () => {
    const seen: number[] = [];
    let to: number | undefined;
    for (let pages = 0; pages < 20; pages++) {
      const r = await get(`symbol=AAPL&interval=1d&limit=7${to === undefined ? '' : `&to=${to}`}`);
      expect(r.status).toBe(200);
      seen.unshift(...r.body.bars.map((b: any) => b.t));
      if (r.body.next === null) break;
      expect(r.body.next).toBeLessThan(r.body.bars[0].t);
      to = r.body.bars[0].t;
    }
    expect(seen).toEqual(Array.from({ length: 30 }, (_, i) => day0 + i * DAY));
  });

  it('answers MessagePack when Accept asks for it, the same object as the JSON', async () => {
    const json = await get('symbol=AAPL&interval=1d&limit=3');
    const mp = await get('symbol=AAPL&interval=1d&limit=3', { accept: 'application/msgpack' });
    expect(mp.status).toBe(200);
    expect(mp.type).toBe('application/msgpack');
    expect(mp.body).toEqual(json.body);
  });

  it('refuses bad parameters with 400 naming the parameter', async () => {
    const cases: [string, string][] = [
      ['interval=1d', 'symbol'],
      ['symbol=ZZZZ&interval=1d', 'symbol'],
      ['symbol=aapl&interval=1d', 'symbol'],
      ['symbol=AAPL', 'interval'],
      ['symbol=AAPL&interval=2m', 'interval'],
      ['symbol=AAPL&interval=1d&from=yesterday', 'from'],
      ['symbol=AAPL&interval=1d&to=-5', 'to'],
      ['symbol=AAPL&interval=1d&from=100&to=100', 'to'],
      ['symbol=AAPL&interval=1d&limit=0', 'limit'],
      ['symbol=AAPL&interval=1d&limit=1001', 'limit'],
      ['symbol=AAPL&interval=1d&limit=2.5', 'limit'],
    ];
    for (const [q, param] of cases) {
      const r = await get(q);
      expect(r.status, q).toBe(400);
      expect(r.body, q).toMatchObject({ error: 'BAD_REQUEST', param });
      expect(r.body.message, q).toContain(param);
    }
  });

  it('is readable from any origin, as documented: every answer carries CORS headers and the preflight for Authorization is answered', async () => {
    const origin = { origin: 'http://charts.example.com' };
    const onlyCrypto = await token({ sub: 'carol', claims: { ent: { classes: ['crypto'] } } });
    for (const [q, headers, status] of [
      ['symbol=AAPL&interval=1d&limit=2', {}, 200],
      ['symbol=AAPL&interval=2m', {}, 400],
      ['symbol=AAPL&interval=1d', { authorization: 'Bearer not-a-jwt' }, 401],
      ['symbol=AAPL&interval=1d', { authorization: `Bearer ${onlyCrypto}` }, 403],
    ] as const) {
      const res = await fetch(`${base}/v1/bars?${q}`, { headers: { ...origin, ...headers } });
      await res.arrayBuffer();
      expect(res.status, q).toBe(status);
      expect(res.headers.get('access-control-allow-origin'), `${status} ${q}`).toBe('*');
      expect(res.headers.get('access-control-expose-headers') ?? '', q).toMatch(/retry-after/i);
    }
    const pre = await fetch(`${base}/v1/bars?symbol=AAPL&interval=1d`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toMatch(/\bGET\b/);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/\bauthorization\b/i);
  });

  it('refuses a time in seconds (as TradingView and Lightweight Charts count) with 400 saying so, not an empty answer that reads as "no data"', async () => {
    const seconds = Math.floor(day0 / 1000) + 5 * 86_400;
    for (const [q, param] of [
      [`symbol=AAPL&interval=1d&to=${seconds}`, 'to'],
      [`symbol=AAPL&interval=1d&from=${seconds - 86_400}&to=${seconds * 1000}`, 'from'],
    ] as const) {
      const r = await get(q);
      expect(r, q).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', param } });
      expect(r.body.message, q).toMatch(/seconds/);
    }
    // small times are still times in ms (from the epoch on)
    expect((await get('symbol=AAPL&interval=1d&from=0&to=1000')).body).toMatchObject({ bars: [], next: null });
  });

  it('refuses a parameter given twice with 400 naming it (it used to take the first silently)', async () => {
    for (const [q, param] of [
      ['symbol=AAPL&symbol=MSFT&interval=1d', 'symbol'],
      ['symbol=AAPL&interval=1d&interval=1m', 'interval'],
      ['symbol=AAPL&interval=1d&limit=5&limit=6', 'limit'],
      ['symbol=AAPL&interval=1d&to=5&to=', 'to'],
    ] as const) {
      const r = await get(q);
      expect(r, q).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', param } });
      expect(r.body.message, q).toMatch(/more than once/);
    }
  });

  it('refuses a malformed percent-escape with 400 saying so (uWS alone decoded symbol=%ZZ as another symbol)', async () => {
    for (const [q, param] of [
      ['symbol=%ZZ&interval=1d', 'symbol'],
      ['symbol=AAPL&interval=1%', 'interval'],
      ['symbol=%C3%28&interval=1d', 'symbol'],
    ] as const) {
      const r = await get(q);
      expect(r, q).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', param } });
      expect(r.body.message, q).toMatch(/not a well-formed query parameter/);
    }
  });

  it('decodes escapes strictly but correctly: %2E and + are what they stand for', async () => {
    expect((await get('symbol=BRK%2EB&interval=1d')).status).not.toBe(400);
    const spaced = await get('symbol=A+B&interval=1d');
    expect(spaced).toMatchObject({ status: 400, body: { param: 'symbol' } });
    expect(spaced.body.message).toContain('"A B"');
  });

  it('applies entitlements like the WebSocket: 403 when not entitled, 401 for a bad token', async () => {
    const onlyCrypto = await token({ sub: 'carol', claims: { ent: { classes: ['crypto'] } } });
    const r = await get('symbol=AAPL&interval=1d', { authorization: `Bearer ${onlyCrypto}` });
    expect(r.status).toBe(403);
    expect(r.body.error).toBe('FORBIDDEN');
    expect((await get(`symbol=AAPL&interval=1d&token=${onlyCrypto}`)).status).toBe(403);
    const entitled = await token({ sub: 'dave', claims: { ent: { symbols: ['AAPL'] } } });
    expect((await get(`symbol=AAPL&interval=1d&token=${entitled}`)).body.bars).toHaveLength(30);
    const bad = await get('symbol=AAPL&interval=1d', { authorization: 'Bearer not-a-jwt' });
    expect(bad.status).toBe(401);
  });

  it('says why a token is refused: 401 with a JSON body and its reason code, as the HTTP stream does (it was an empty 401)', async () => {
    const r = await get('symbol=AAPL&interval=1d', { authorization: 'Bearer not-a-jwt' });
    expect(r.status).toBe(401);
    expect(r.type).toBe('application/json');
    expect(r.body).toMatchObject({ error: 'UNAUTHENTICATED', code: 'malformed' });
    expect(r.body.message).toMatch(/token refused/);
    const expired = await token({ sub: 'erin', expIn: -3600 });
    const e = await get(`symbol=AAPL&interval=1d&token=${expired}`);
    expect(e).toMatchObject({ status: 401, body: { error: 'UNAUTHENTICATED', code: 'expired' } });
  });

  it('serves delayed access only bars that ended the delay ago, flagged `delayed`', async () => {
    const delayed = await token({ sub: 'erin', claims: { ent: { delayed: ['stock'] } } });
    const rt = await get('symbol=MSFT&interval=1m&limit=100');
    const dl = await get('symbol=MSFT&interval=1m&limit=100', { authorization: `Bearer ${delayed}` });
    expect(dl.status).toBe(200);
    const cutoff = Date.now() - DELAY;
    expect(dl.body.bars.length).toBeGreaterThan(0);
    expect(dl.body.bars.length).toBeLessThan(rt.body.bars.length);
    for (const b of dl.body.bars) {
      expect(b.t + MIN).toBeLessThanOrEqual(cutoff + 1000);
      expect(b.delayed).toBe(DELAY);
    }
    expect(rt.body.bars.every((b: any) => b.delayed === undefined)).toBe(true);
  });

  it('points delayed access with `next` only at bars that ended the delay ago', async () => {
    const delayed = await token({ sub: 'erin', claims: { ent: { delayed: ['stock'] } } });
    const from = minute0 + 18 * MIN; // newer than the delay: nothing in range for a delayed user
    const rt = await get(`symbol=MSFT&interval=1m&from=${from}`);
    expect(rt.body.next).toBe(minute0 + 17 * MIN);
    const dl = await get(`symbol=MSFT&interval=1m&from=${from}`, { authorization: `Bearer ${delayed}` });
    expect(dl.body.bars).toEqual([]);
    expect(dl.body.next).toBeGreaterThanOrEqual(minute0);
    expect(dl.body.next + MIN).toBeLessThanOrEqual(Date.now() - DELAY + 1000);
  });

  it('serves bars the engine built from trades', async () => {
    await waitFor(async () => (await get('symbol=BTC-USD&interval=1s')).body.bars.length > 0, { timeout: 15_000, what: 'a closed 1s bar of BTC-USD' });
    const { body } = await get('symbol=BTC-USD&interval=1s');
    for (const b of body.bars) expect(b).toMatchObject({ iv: 1000, closed: true });
  });
});
