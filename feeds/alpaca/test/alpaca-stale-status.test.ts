import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { AlpacaFeed, AlpacaOptionsSchema } from '../alpaca-feed.js';
import { startAlpacaFake } from '../fake-server.js';
import type { AlpacaFakeServer } from '../fake-server.js';

/**
 * Alpaca sends a trading status (`s`, channel `statuses`) only when it changes (Real-time Stock
 * Data, "Trading status"), never on subscribe, and its REST stock snapshot has no status: after a
 * reconnect, or a symbol removed and added back, a status reported before is marked stale
 * (docs/feeds.md). Status frames shaped after the documented example.
 */
const KEY = 'PKTEST1234';
const SECRET = 'sekret-5678';
const SYMBOLS = ['BIIB', 'AAPL'];
const halt = { T: 's', S: 'BIIB', sc: 'H', sm: 'Trading Halt', rc: 'T1', rm: 'Halt News Pending', t: '2021-03-05T15:00:00Z', z: 'C' };
const resume = { T: 's', S: 'BIIB', sc: 'T', sm: 'Trading Resumption', rc: 'LUDP', rm: 'Volatility Trading Pause', t: '2021-03-05T16:00:00Z', z: 'C' };

describe('alpaca statuses after a reconnect', () => {
  let h: AdapterHarness<AlpacaFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function connected(channels: string[]): Promise<AdapterHarness<AlpacaFakeServer>> {
    const options = AlpacaOptionsSchema.parse({ url: 'ws://x', symbols: SYMBOLS, channels, backoff: { initialMs: 20, maxMs: 200 } });
    const harness = await startHarness(
      () => startAlpacaFake({ key: KEY, secret: SECRET, pumpMs: 60_000, replayFixtures: false }),
      (p) => new AlpacaFeed('alpaca', { ...options, url: p.url }, { key: KEY, secret: SECRET }),
    );
    await harness.waitFor('connected', () => harness.state === 'connected');
    return harness;
  }

  async function reconnect(harness: AdapterHarness<AlpacaFakeServer>): Promise<void> {
    const before = harness.provider.requests().filter((r) => r.action === 'subscribe').length;
    for (const c of harness.provider.conns) c.ws.terminate();
    await harness.waitFor('subscribed again', () => harness.provider.requests().filter((r) => r.action === 'subscribe').length > before);
    await harness.waitFor('connected again', () => harness.state === 'connected');
  }

  it('marks a reported status stale when the symbol is subscribed again, until the next status', async () => {
    h = await connected(['trades', 'statuses']);
    h.provider.push([halt]);
    await h.waitFor('halt', () => h!.ticks.length >= 1);
    await reconnect(h);
    // only BIIB had a status: AAPL (never reported) is trading by the protocol's rule, unmarked
    expect(h.ticks.slice(1)).toEqual([{ k: 'status', sym: 'BIIB', stale: true, ts: expect.any(BigInt) }]);
    h.provider.push([resume]);
    await h.waitFor('resumption', () => h!.ticks.length >= 3);
    expect(h.ticks[2]).toMatchObject({ k: 'status', sym: 'BIIB', status: 'trading', code: 'T' });
    // removed and added back: Alpaca sends no status on that subscribe either
    await h.adapter.unsubscribe(['BIIB']);
    await h.adapter.subscribe(['BIIB']);
    await h.waitFor('stale again', () => h!.ticks.length >= 4);
    expect(h.ticks[3]).toEqual({ k: 'status', sym: 'BIIB', stale: true, ts: expect.any(BigInt) });
  });

  it('marks nothing without the statuses channel, or before any status', async () => {
    h = await connected(['trades', 'lulds']);
    h.provider.push([{ T: 'l', S: 'BIIB', u: 110, d: 90, i: 'B', t: '2021-03-05T15:00:00Z', z: 'C' }]);
    await h.waitFor('band', () => h!.ticks.length >= 1);
    await reconnect(h);
    await h.close();
    expect(h.ticks.filter((t) => t.k === 'status' && t.stale)).toEqual([]);
    h = undefined;
  });
});
