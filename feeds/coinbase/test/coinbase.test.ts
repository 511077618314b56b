import { afterEach, describe, expect, it } from 'vitest';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { CoinbaseFeed, CoinbaseOptionsSchema } from '../coinbase-feed.js';
import { startCoinbaseFake } from '../fake-server.js';
import type { CoinbaseFakeServer } from '../fake-server.js';

const options = (url: string, extra: Record<string, unknown> = {}) =>
  CoinbaseOptionsSchema.parse({ url, symbols: ['BTC-USD', 'ETH-USD'], backoff: { initialMs: 20, maxMs: 200 }, ...extra });

runAdapterConformance({
  name: 'coinbase',
  startProvider: () => startCoinbaseFake(),
  createAdapter: (p) => new CoinbaseFeed('coinbase', options(p.url)),
  symbols: ['BTC-USD', 'ETH-USD'],
  kinds: ['trade', 'quote'],
});

describe('coinbase adapter', () => {
  let h: AdapterHarness<CoinbaseFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('subscribes to market_trades, ticker and heartbeats and normalizes the recorded messages', async () => {
    h = await startHarness(() => startCoinbaseFake({ pumpMs: 60_000 }), (p) => new CoinbaseFeed('coinbase', options(p.url)));
    await h.waitFor('4 fixture ticks', () => h!.ticks.length >= 4);
    const subs = h.provider.receivedJson() as { type: string; channel: string; product_ids: string[] }[];
    expect(subs.map((s) => s.channel).sort()).toEqual(['heartbeats', 'market_trades', 'ticker']);
    expect(subs.every((s) => s.type === 'subscribe' && s.product_ids.join() === 'BTC-USD,ETH-USD')).toBe(true);
    expect(h.state).toBe('connected');
    // the snapshot trade (history) is skipped; updates come through in order
    expect(h.ticks[0]).toEqual({ k: 'trade', sym: 'BTC-USD', id: '650123', p: 67251.37, s: 0.00412, side: 'sell', ts: 1718000001219873000n });
    expect(h.ticks[1]).toMatchObject({ k: 'trade', id: '650124', side: 'buy', p: 67251.38, s: 0.1 });
    expect(h.ticks[2]).toEqual({ k: 'quote', sym: 'BTC-USD', bp: 67251.37, bs: 0.51, ap: 67251.4, as: 1.2, ts: 1718000001300000123n });
    expect(h.ticks[3]).toMatchObject({ k: 'quote', sym: 'ETH-USD', bp: 3550.4, ap: 3550.42 });
    expect(h.counters.gaps).toBe(0);
  });

  it('counts a sequence gap and resubscribes the data channels', async () => {
    h = await startHarness(() => startCoinbaseFake(), (p) => new CoinbaseFeed('coinbase', options(p.url)));
    await h.waitFor('connected with data', () => h!.state === 'connected' && h!.ticks.length > 5);
    const subscribesBefore = (h.provider.receivedJson() as { type: string }[]).filter((m) => m.type === 'subscribe').length;
    h.provider.skip(7);
    await h.waitFor('a gap counted', () => h!.counters.gaps >= 1);
    await h.waitFor('resubscribed', () => (h!.provider.receivedJson() as { type: string }[]).filter((m) => m.type === 'subscribe').length >= subscribesBefore + 2);
    const msgs = h.provider.receivedJson() as { type: string; channel: string }[];
    expect(msgs.filter((m) => m.type === 'unsubscribe').map((m) => m.channel).sort()).toEqual(['market_trades', 'ticker']);
    expect((h.adapter as CoinbaseFeed).resubscribes).toBe(1);
    const n = h.ticks.length;
    await h.waitFor('data continues', () => h!.ticks.length > n + 3);
  });

  it('treats heartbeats as liveness: a connection without them goes stale and reconnects', async () => {
    h = await startHarness(() => startCoinbaseFake(), (p) => new CoinbaseFeed('coinbase', options(p.url, { staleAfterMs: 1000 })));
    await h.waitFor('connected', () => h!.state === 'connected');
    const before = h.counters.messages;
    await h.waitFor('heartbeats arriving', () => h!.counters.messages > before + 5);
    expect(h.states.some((s) => s.state === 'stale')).toBe(false);
    h.provider.pause();
    await h.waitFor('stale', () => h!.states.some((s) => s.state === 'stale'));
    h.provider.resume();
    await h.waitFor('connected again', () => h!.provider.totalConnections >= 2 && h!.state === 'connected');
  });

  it('logs provider error messages and counts them', async () => {
    h = await startHarness(() => startCoinbaseFake(), (p) => new CoinbaseFeed('coinbase', options(p.url)));
    await h.waitFor('connected', () => h!.state === 'connected');
    [...h.provider.conns][0]!.send({ type: 'error', message: 'Failed to subscribe', reason: 'product FOO-USD is not available' });
    await h.waitFor('error counted', () => h!.counters.errors.some((e) => /FOO-USD/.test(e)));
    expect(h.logs.some((l) => l.level === 'error' && /Failed to subscribe/.test(l.msg))).toBe(true);
  });
});
