import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TickwireClientError, type Bar } from '../../packages/client/src/index.js';
import { BarsRequestError, fetchBars, type BarsPage } from '../../packages/client/src/history.js';
import { freePort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { startTestEngine, streamUrl } from './helpers.js';

/**
 * `@tickwire/client/history` against a real engine: fetchBars pages `GET /v1/bars` back without a
 * gap or a duplicate until `next` is null, and every refusal of the route is a BarsRequestError
 * (a TickwireClientError of the main entry) with the body's `error`, `param`, `code` and the status.
 */
const SECRET = 'fetch-bars-secret-0123456789abcdefghijkl';
const sign = (exp: number): Promise<string> =>
  new SignJWT({ sub: 'u1' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(exp).sign(new TextEncoder().encode(SECRET));

let engine: Engine;
let base: string;
beforeAll(async () => {
  engine = await startTestEngine(undefined, { auth: { mode: 'optional', jwtSecret: SECRET }, synthetic: { seed: 5, rate: 2000 } });
  base = `http://127.0.0.1:${engine.port}`;
  await waitFor(async () => (await fetchBars(base, { symbol: 'BTC-USD', interval: '1s' })).bars.length >= 5, {
    timeout: 20_000,
    what: 'five closed 1s bars',
  });
}, 60_000);
afterAll(() => engine?.close());

describe('fetchBars', () => {
  it('pages back from the newest bar to the oldest kept: pages meet without a gap or a duplicate, then next is null', async () => {
    const first = await fetchBars(base, { symbol: 'BTC-USD', interval: '1s', limit: 2 });
    expect(first.symbol).toBe('BTC-USD');
    expect(first.bars).toHaveLength(2);
    const held: Bar[] = [...first.bars];
    let page: BarsPage = first;
    let pages = 1;
    while (page.next !== null) {
      // the stream URL works as the base too
      page = await fetchBars(streamUrl(engine.port), { symbol: 'BTC-USD', interval: '1s', to: held[0]!.t, limit: 2 });
      pages++;
      if (page.bars.length > 0) expect(page.bars.at(-1)!.t).toBeLessThan(held[0]!.t);
      held.unshift(...page.bars);
      expect(pages).toBeLessThan(1000);
    }
    expect(pages).toBeGreaterThan(2);
    const ts = held.map((b) => b.t);
    expect(new Set(ts).size).toBe(ts.length);
    expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    // the same range in one request: exactly the bars the pages held
    const all = await fetchBars(base, { symbol: 'BTC-USD', interval: '1s', to: ts.at(-1)! + 1, limit: 1000 });
    expect(all.bars.map((b) => b.t)).toEqual(ts);
    expect(all.next).toBeNull();
  });

  it('a time range with from: next says whether older bars exist', async () => {
    const { bars } = await fetchBars(base, { symbol: 'BTC-USD', interval: '1s', limit: 3 });
    const page = await fetchBars(base, { symbol: 'BTC-USD', interval: '1s', from: bars[1]!.t, to: bars[2]!.t + 1 });
    expect(page.bars.map((b) => b.t)).toEqual([bars[1]!.t, bars[2]!.t]);
    expect(page.next).toBe(bars[0]!.t);
  });

  it('a bad parameter: a BarsRequestError (a TickwireClientError) naming it, with the status', async () => {
    const err = await fetchBars(base, { symbol: 'BTC-USD', interval: '2m' as '1m' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BarsRequestError);
    expect(err).toBeInstanceOf(TickwireClientError);
    expect(err).toMatchObject({ code: 'BAD_REQUEST', param: 'interval', status: 400, message: expect.stringContaining('"interval" must be one of') });
    await expect(fetchBars(base, { symbol: 'BTC-USD', interval: '1s', to: 1718026380 })).rejects.toMatchObject({ code: 'BAD_REQUEST', param: 'to' });
    await expect(fetchBars(base, { symbol: 'NOPE-USD', interval: '1s' })).rejects.toMatchObject({ code: 'BAD_REQUEST', param: 'symbol', status: 400 });
  });

  it('sends the token in Authorization: a valid one (or a function returning one) is served, an expired one is 401 with its reason', async () => {
    const now = Math.floor(Date.now() / 1000);
    const valid = await sign(now + 600);
    expect((await fetchBars(base, { symbol: 'BTC-USD', interval: '1s', limit: 1 }, { token: valid })).bars).toHaveLength(1);
    expect((await fetchBars(base, { symbol: 'BTC-USD', interval: '1s', limit: 1 }, { token: async () => valid })).bars).toHaveLength(1);
    const expired = await sign(now - 600);
    await expect(fetchBars(base, { symbol: 'BTC-USD', interval: '1s' }, { token: expired })).rejects.toMatchObject({
      name: 'BarsRequestError',
      code: 'UNAUTHENTICATED',
      reason: 'expired',
      status: 401,
    });
  });

  it('a token function that throws or rejects is a BarsRequestError TOKEN (status 0) with the cause, as the client reports its own', async () => {
    const cause = new Error('session store down');
    for (const token of [
      () => {
        throw cause;
      },
      () => Promise.reject(cause),
    ]) {
      const err = await fetchBars(base, { symbol: 'BTC-USD', interval: '1s' }, { token }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BarsRequestError);
      expect(err).toBeInstanceOf(TickwireClientError);
      expect(err).toMatchObject({ code: 'TOKEN', status: 0, cause });
    }
  });

  it('no answer is TRANSPORT (status 0); an abort rejects with the AbortError', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    await expect(fetchBars(closed, { symbol: 'BTC-USD', interval: '1s' })).rejects.toMatchObject({ code: 'TRANSPORT', status: 0 });
    const ac = new AbortController();
    ac.abort();
    await expect(fetchBars(base, { symbol: 'BTC-USD', interval: '1s' }, { signal: ac.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('fetchBars over the per-IP budget', () => {
  let limited: Engine;
  beforeAll(async () => {
    limited = await startTestEngine(undefined, { limits: { httpRequestsPerIpPerSec: 0.01, httpBurstPerIp: 1, exemptIps: [] } });
  });
  afterAll(() => limited?.close());

  it('429 RATE_LIMIT carries Retry-After in seconds', async () => {
    const b = `http://127.0.0.1:${limited.port}`;
    await fetchBars(b, { symbol: 'BTC-USD', interval: '1s' }).catch(() => undefined); // the burst
    const err = (await fetchBars(b, { symbol: 'BTC-USD', interval: '1s' }).catch((e: unknown) => e)) as BarsRequestError;
    expect(err).toMatchObject({ code: 'RATE_LIMIT', status: 429 });
    expect(err.retryAfter).toBeGreaterThan(0);
  });
});
