import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { FakeWsServer } from '../../sdk/testing/fake-ws-server.js';
import { CoinbaseFeed, CoinbaseOptionsSchema } from '../coinbase-feed.js';

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
