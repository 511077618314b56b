import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { FakeWsServer } from '../../sdk/testing/fake-ws-server.js';
import { BinanceFeed, BinanceOptionsSchema } from '../binance-feed.js';
import { gapsAfterStart } from '../../sdk/testing/attempt-gaps.js';

/**
 * Binance Spot "WebSocket Streams" > WebSocket Limits: "There is a limit of 300 connections per
 * attempt every 5 minutes per IP" (Binance Academy, "What Are Binance WebSocket Limits?": "300
 * connection attempts every five minutes per IP"). The adapter takes a combined-stream connection
 * as ready as soon as it opens (its URL carries the subscription), which resets the backoff: a
 * server that closes every connection right after opening it was reconnected every 125-250 ms with
 * the default backoff (1200-2400 attempts in 5 minutes), and every ~20 ms with the short backoff
 * below (it failed so before the limit: a gap of 18 ms). Attempts must start at least 1 s apart
 * (300 in 300 s).
 */
/**
 * A Binance feed on the provider at `url` that notes when it starts each attempt in `attemptAt`
 * (the runner asks for the URL first thing), with the feeds file's own backoff as short as it may
 * be: the limit holds whatever it says.
 */
function timedBinance(url: string, attemptAt: number[]): BinanceFeed {
  class TimedBinance extends BinanceFeed {
    override url(symbols: readonly string[]): string {
      attemptAt.push(Date.now());
      return super.url(symbols);
    }
  }
  return new TimedBinance(
    'binance',
    BinanceOptionsSchema.parse({
      url,
      restUrl: 'http://127.0.0.1:9',
      symbols: ['BTC-USD'],
      statusPollMs: 0,
      backoff: { initialMs: 20, maxMs: 50 },
    }),
  );
}

describe('binance connection rate', () => {
  let h: AdapterHarness<FakeWsServer<Record<string, never>>> | undefined;
  let h2: AdapterHarness<FakeWsServer<Record<string, never>>> | undefined;
  afterEach(async () => {
    await h?.close();
    await h2?.close();
    h = h2 = undefined;
  });

  it('opens at most one new connection a second when every connection is closed right after it opened', async () => {
    const opened: number[] = [];
    const attemptAt: number[] = [];
    h = await startHarness(
      () => FakeWsServer.closingEach(opened),
      (p) => timedBinance(p.url, attemptAt),
    );
    await h.waitFor('4 connections', () => opened.length >= 4, 20_000);
    const gaps = attemptAt.slice(1, 4).map((t, i) => t - attemptAt[i]!);
    expect(gaps.length).toBe(3);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(1000);
  });

  it('two Binance feeds of one process share the limit: their reconnects together start at least 1 s apart', async () => {
    // the limit is per IP, and registry.ts tells to split symbols over several feeds past
    // BINANCE_MAX_STREAMS: each feed spaced its own attempts, so two flapping feeds made two a second
    const attemptAt: number[] = [];
    const start = () =>
      startHarness(
        () => FakeWsServer.closingEach(),
        (p) => timedBinance(p.url, attemptAt),
      );
    [h, h2] = await Promise.all([start(), start()]);
    await h.waitFor('7 attempts of the two feeds', () => attemptAt.length >= 7, 20_000);
    const gaps = gapsAfterStart(attemptAt, 7);
    expect(Math.min(...gaps), `gaps ${gaps.join(', ')} ms`).toBeGreaterThanOrEqual(1000);
  });
});
