import { createRequire } from 'node:module';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { FakeWsServer } from '../../sdk/testing/fake-ws-server.js';
import { CoinbaseFeed, CoinbaseOptionsSchema } from '../coinbase-feed.js';
import { startCoinbaseFake } from '../fake-server.js';
import type { CoinbaseFakeServer } from '../fake-server.js';

/**
 * Coinbase Advanced Trade, "WebSocket Rate Limits": "Advanced Trade API WebSocket connections are
 * rate-limited at 8 per second per IP address" (an older revision of the page said 750; the
 * adapter keeps to the stricter). Before, attempts were as close as the feeds file's `backoff`
 * made them: with `initialMs: 20` a server that closes every connection at once was reconnected
 * every 10-50 ms (20-100 a second; it failed so before the limit: a gap of 37 ms). Attempts must start at least 150 ms apart (at most 8 in any
 * 1.2 s).
 */
describe('coinbase connection rate', () => {
  let h: AdapterHarness<FakeWsServer<Record<string, never>>> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('starts connection attempts at least 150 ms apart when every connection is closed right after it opened', async () => {
    const opened: number[] = [];
    // when the adapter starts each attempt: the runner asks for the URL first thing
    const attemptAt: number[] = [];
    class TimedCoinbase extends CoinbaseFeed {
      override url(): string {
        attemptAt.push(Date.now());
        return super.url();
      }
    }
    h = await startHarness(
      () => FakeWsServer.closingEach(opened),
      (p) => new TimedCoinbase('coinbase', CoinbaseOptionsSchema.parse({ url: p.url, symbols: ['BTC-USD'], backoff: { initialMs: 20, maxMs: 50 } })),
    );
    await h.waitFor('6 connections', () => opened.length >= 6, 20_000);
    const gaps = attemptAt.slice(1, 6).map((t, i) => t - attemptAt[i]!);
    expect(gaps.length).toBe(5);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(150);
  });
});

/**
 * Advanced Trade "WebSocket Rate Limits": "Advanced Trade API WebSocket unauthenticated messages
 * are rate-limited at 8 per second per IP address". The limit is per IP, and a provider's
 * symbols may be split over several feeds (the registry's own advice past a connection's
 * limits): every Coinbase feed of the process shares one count. Before, each feed counted only
 * its own messages, so two feeds opening together sent 10 subscribes within a few milliseconds.
 */
describe('coinbase subscribe message rate across feeds', () => {
  const harnesses: AdapterHarness<CoinbaseFakeServer>[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const x of harnesses.splice(0)) await x.close();
  });

  it('two Coinbase feeds in one process send at most 8 subscribe/unsubscribe messages in any second together', async () => {
    // when each subscription message leaves this process, whichever feed sent it
    const ws = createRequire(import.meta.url)('ws') as typeof import('ws');
    const send = ws.WebSocket.prototype.send;
    const sentAt: number[] = [];
    vi.spyOn(ws.WebSocket.prototype, 'send').mockImplementation(function (this: InstanceType<typeof ws.WebSocket>, ...args: Parameters<typeof send>) {
      if (/"type":"(un)?subscribe"/.test(String(args[0]))) sentAt.push(Date.now());
      return send.apply(this, args);
    });
    // each feed opens with 5 subscribes (market_trades, ticker, heartbeats, level2, status): 10 together
    const feed = (id: string, symbols: string[]) => (p: CoinbaseFakeServer) =>
      new CoinbaseFeed(id, CoinbaseOptionsSchema.parse({ url: p.url, symbols, book: true, backoff: { initialMs: 20, maxMs: 200 } }));
    const [a, b] = await Promise.all([
      startHarness(() => startCoinbaseFake({ replayFixtures: false }), feed('coinbase-a', ['BTC-USD'])),
      startHarness(() => startCoinbaseFake({ replayFixtures: false }), feed('coinbase-b', ['ETH-USD'])),
    ]);
    harnesses.push(a, b);
    await a.waitFor('both feeds sent all 10 subscribes', () => a.provider.requestTimes().length + b.provider.requestTimes().length >= 10);
    await Promise.all([a.waitFor('a connected', () => a.state === 'connected'), b.waitFor('b connected', () => b.state === 'connected')]);
    expect(sentAt).toHaveLength(10);
    const busiest = Math.max(...sentAt.map((t) => sentAt.filter((u) => u >= t && u < t + 1000).length));
    expect(busiest).toBeLessThanOrEqual(8);
  });
});

/**
 * Advanced Trade WebSocket Overview, Subscribing: "This message is mandatory and you are
 * disconnected if no subscribe has been received within 5 seconds." With one window for all the
 * Coinbase feeds of the process, a connection opening while another feed has a burst waiting
 * (a gap's resubscription, products added) would wait behind all of it: 8 messages per 1.1 s, so
 * past 5 s with a few dozen waiting. Its first subscribe goes ahead of messages already waiting.
 */
describe('coinbase: a new connection subscribes within 5 s whatever the other feeds have waiting', () => {
  const harnesses: AdapterHarness<CoinbaseFakeServer>[] = [];
  afterEach(async () => {
    vi.restoreAllMocks();
    for (const x of harnesses.splice(0)) await x.close();
  });

  it("a feed's first subscribe is sent before another feed's waiting burst", async () => {
    const feed = (id: string, symbols: string[]) => (p: CoinbaseFakeServer) =>
      new CoinbaseFeed(id, CoinbaseOptionsSchema.parse({ url: p.url, symbols, book: true, backoff: { initialMs: 20, maxMs: 200 } }));
    const a = await startHarness(() => startCoinbaseFake({ replayFixtures: false }), feed('coinbase-a', ['BTC-USD', 'SOL-USD', 'ADA-USD']));
    harnesses.push(a);
    await a.waitFor('a connected, its 5 opening subscribes sent', () => a.state === 'connected' && a.provider.requestTimes().length >= 5);
    // each subscription message as it leaves this process: which feed's (B is the only one with ETH-USD)
    const ws = createRequire(import.meta.url)('ws') as typeof import('ws');
    const send = ws.WebSocket.prototype.send;
    const sent: ('a' | 'b')[] = [];
    vi.spyOn(ws.WebSocket.prototype, 'send').mockImplementation(function (this: InstanceType<typeof ws.WebSocket>, ...args: Parameters<typeof send>) {
      const text = String(args[0]);
      if (/"type":"(un)?subscribe"/.test(text)) sent.push(text.includes('ETH-USD') ? 'b' : 'a');
      return send.apply(this, args);
    });
    // A: a sequence gap (4 unsubscribes + 4 subscribes) and products added three times (5
    // subscribes each): 23 messages, about three windows (3.3 s), so B opens while most still wait
    // even on a loaded machine
    a.provider.skip(4);
    for (const added of [
      ['XRP-USD', 'DOT-USD'],
      ['LTC-USD', 'AVAX-USD'],
      ['LINK-USD', 'UNI-USD'],
    ])
      await (a.adapter as CoinbaseFeed).subscribe(added);
    // A's first window is full (8 sent in it): the other 15 wait
    await a.waitFor("A's first 8", () => sent.length >= 8);
    const b = await startHarness(() => startCoinbaseFake({ replayFixtures: false }), feed('coinbase-b', ['ETH-USD']));
    harnesses.push(b);
    await b.waitFor('b connected and every message sent', () => b.state === 'connected' && sent.length >= 28, 20_000);
    expect(sent.filter((s) => s === 'a')).toHaveLength(23);
    // B's first subscribe went ahead of what A still had waiting
    expect(sent.indexOf('b')).toBeLessThan(sent.lastIndexOf('a'));
  });
});
