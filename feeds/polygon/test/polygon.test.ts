import { afterEach, describe, expect, it } from 'vitest';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { PolygonFeed, PolygonOptionsSchema } from '../polygon-feed.js';
import { startPolygonFake } from '../fake-server.js';
import type { PolygonFakeServer } from '../fake-server.js';

const API_KEY = 'poly-test-key';
const options = (url: string, extra: Record<string, unknown> = {}) =>
  PolygonOptionsSchema.parse({ url, symbols: ['AAPL', 'BRK.B'], backoff: { initialMs: 20, maxMs: 200 }, ...extra });
const creds = { key: API_KEY, keyEnv: 'POLYGON_API_KEY' };

runAdapterConformance({
  name: 'polygon',
  startProvider: () => startPolygonFake({ apiKey: API_KEY }),
  createAdapter: (p) => new PolygonFeed('polygon', options(p.url), creds),
  symbols: ['AAPL', 'BRK.B'],
  kinds: ['trade', 'quote', 'bar'],
});

describe('polygon adapter', () => {
  let h: AdapterHarness<PolygonFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('authenticates, subscribes T./Q./AM. and normalizes the recorded events', async () => {
    h = await startHarness(() => startPolygonFake({ apiKey: API_KEY, pumpMs: 60_000 }), (p) => new PolygonFeed('polygon', options(p.url), creds));
    await h.waitFor('4 fixture ticks', () => h!.ticks.length >= 4);
    expect(h.provider.receivedJson()).toEqual([
      { action: 'auth', params: API_KEY },
      { action: 'subscribe', params: 'T.AAPL,Q.AAPL,AM.AAPL,T.BRK.B,Q.BRK.B,AM.BRK.B' },
    ]);
    expect(h.state).toBe('connected');
    expect(h.ticks[0]).toEqual({ k: 'trade', sym: 'AAPL', id: '52983525029461', p: 192.31, s: 100, venue: '4', ts: 1718026201234000000n });
    expect(h.ticks[1]).toEqual({ k: 'quote', sym: 'AAPL', bp: 192.3, bs: 2, ap: 192.32, as: 3, ts: 1718026201240000000n });
    expect(h.ticks[2]).toMatchObject({ k: 'trade', sym: 'BRK.B', p: 412.05, s: 5 });
    expect(h.ticks[3]).toEqual({ k: 'bar', sym: 'AAPL', iv: '1m', t: 1718026140000, o: 192.3, h: 192.34, l: 192.28, c: 192.31, v: 5400, n: 0, closed: true, ts: 1718026200000000000n });
  });

  it('reports a wrong key as auth_failed naming the env var', async () => {
    h = await startHarness(() => startPolygonFake({ apiKey: API_KEY }), (p) => new PolygonFeed('polygon', options(p.url), { key: 'nope', keyEnv: 'POLYGON_API_KEY' }));
    await h.waitFor('auth_failed', () => h!.state === 'auth_failed');
    expect(h.states.at(-1)!.detail).toMatch(/authentication failed.*POLYGON_API_KEY/);
    expect(h.ticks).toHaveLength(0);
  });
});
