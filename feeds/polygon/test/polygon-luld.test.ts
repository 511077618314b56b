import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { PolygonFeed, PolygonOptionsSchema } from '../polygon-feed.js';
import { startPolygonFake } from '../fake-server.js';
import type { PolygonFakeServer } from '../fake-server.js';

/**
 * Polygon (Massive) LULD events (Stocks WebSocket, "Limit Up - Limit Down": `T` ticker, `h`/`l`
 * band, `i` indicators, `t` ms; indicators 17 and 18 are NASDAQ halts and resumptions) become the
 * symbol's status. Messages shaped after the documented response attributes.
 */
describe('polygon LULD as trading status', () => {
  let h: AdapterHarness<PolygonFakeServer> | undefined;
  /** A Polygon feed on `symbols` and `channels`, connected to a fake server. */
  async function connected(symbols: string[], channels: string[]): Promise<AdapterHarness<PolygonFakeServer>> {
    const options = PolygonOptionsSchema.parse({ url: 'ws://x', symbols, channels, backoff: { initialMs: 20, maxMs: 200 } });
    const harness = await startHarness(
      () => startPolygonFake({ apiKey: 'pk', pumpMs: 60_000, replayFixtures: false }),
      (p) => new PolygonFeed('polygon', { ...options, url: p.url }, { key: 'pk' }),
    );
    await harness.waitFor('connected', () => harness.state === 'connected');
    return harness;
  }
  /** a frame sent on every connection of the fake server */
  const push = (frame: unknown[]): void => {
    for (const c of h!.provider.conns) c.send(frame);
  };

  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('subscribes LULD.SYM and maps bands, halts and resumptions', async () => {
    h = await connected(['AAPL'], ['T', 'LULD']);
    push([{ ev: 'LULD', T: 'AAPL', h: 201.5, l: 182.3, i: [], z: 3, t: 1718026201000, q: 1 }]);
    push([{ ev: 'LULD', T: 'AAPL', h: 201.5, l: 182.3, i: [17], z: 3, t: 1718026202000, q: 2 }]);
    push([{ ev: 'LULD', T: 'ZZZZ', h: 1, l: 1, i: [17], z: 3, t: 1718026202000, q: 3 }]);
    push([{ ev: 'LULD', T: 'AAPL', h: 0, l: 0, i: [18], z: 3, t: 1718026203000, q: 4 }]);
    await h.waitFor('3 ticks', () => h!.ticks.length >= 3);
    expect(h.ticks).toEqual([
      { k: 'status', sym: 'AAPL', luld: { up: 201.5, down: 182.3 }, ts: 1718026201000000000n },
      { k: 'status', sym: 'AAPL', status: 'halted', code: 'LULD 17', reason: 'LULD halt', luld: { up: 201.5, down: 182.3 }, ts: 1718026202000000000n },
      { k: 'status', sym: 'AAPL', status: 'trading', code: 'LULD 18', reason: 'LULD resumption', ts: 1718026203000000000n },
    ]);
    expect(h.provider.receivedJson()).toContainEqual({ action: 'subscribe', params: 'T.AAPL,LULD.AAPL' });
  });

  it('marks a halt reported before a reconnect stale until the next halt or resumption (LULD sends no snapshot)', async () => {
    h = await connected(['AAPL', 'IBM'], ['LULD']);
    const subscribes = (): number => h!.provider.receivedJson().filter((r) => (r as { action?: string }).action === 'subscribe').length;
    // AAPL halted; IBM (NYSE-listed: no 17/18 from Polygon) has only a band, no status
    push([{ ev: 'LULD', T: 'AAPL', h: 201.5, l: 182.3, i: [17], z: 3, t: 1718026202000, q: 1 }]);
    push([{ ev: 'LULD', T: 'IBM', h: 170, l: 150, i: [], z: 1, t: 1718026202000, q: 2 }]);
    await h.waitFor('2 ticks', () => h!.ticks.length >= 2);
    const before = subscribes();
    for (const c of h.provider.conns) c.ws.terminate();
    await h.waitFor('subscribed again', () => subscribes() > before);
    await h.waitFor('stale', () => h!.ticks.length >= 3);
    expect(h.ticks.slice(2)).toEqual([{ k: 'status', sym: 'AAPL', stale: true, ts: expect.any(BigInt) }]);
    await h.waitFor('connected again', () => h!.state === 'connected');
    push([{ ev: 'LULD', T: 'AAPL', h: 0, l: 0, i: [18], z: 3, t: 1718026303000, q: 1 }]);
    await h.waitFor('resumption', () => h!.ticks.length >= 4);
    expect(h.ticks[3]).toMatchObject({ k: 'status', sym: 'AAPL', status: 'trading', code: 'LULD 18' });
  });
});
