import { afterEach, describe, expect, it } from 'vitest';
import { quietFor } from '../../../test/helpers/wait.js';
import { startHarness } from '../conformance.js';
import type { AdapterHarness } from '../conformance.js';
import type { FakeWsServer } from '../testing/fake-ws-server.js';
import { AlpacaFeed, AlpacaOptionsSchema } from '../../alpaca/alpaca-feed.js';
import { startAlpacaFake } from '../../alpaca/fake-server.js';
import { PolygonFeed, PolygonOptionsSchema } from '../../polygon/polygon-feed.js';
import { startPolygonFake } from '../../polygon/fake-server.js';

/**
 * Polygon and Alpaca send no heartbeat, and a quiet symbol sends nothing. Their adapters pinged
 * every 20 s but had `staleAfterMs: 0`, so nothing ever looked at the answers: a half-open
 * connection (the network path gone without a close, no data and no pong) stayed `connected`
 * for ever, a silent outage. Now a connection is stale after three unanswered pings and is
 * reconnected. The tests shorten only the ping interval (a feeds-file setting) and leave
 * `staleAfterMs` at the adapter's default.
 */
const PING_MS = 100;

describe('a half-open connection to a provider without heartbeats is detected', () => {
  let h: AdapterHarness<FakeWsServer<any>> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function goesStaleAndReconnects(harness: AdapterHarness<FakeWsServer<any>>): Promise<void> {
    await harness.waitFor('connected', () => harness.state === 'connected');
    // a quiet market: no data, but pongs come back, so the connection stays up
    harness.provider.pause();
    await quietFor(PING_MS * 6, 'six ping intervals without data: answered pings keep the connection up');
    expect(harness.state).toBe('connected');
    expect(harness.counters.reconnects).toBe(0);
    // the path dies: no pong either, and no close
    harness.provider.answersPings = false;
    await harness.waitFor('stale', () => harness.states.some((s) => s.state === 'stale'), 5_000);
    await harness.waitFor('reconnect attempt', () => harness.counters.reconnects >= 1, 5_000);
    harness.provider.answersPings = true;
    harness.provider.resume();
    await harness.waitFor('connected again', () => harness.state === 'connected', 5_000);
  }

  it('polygon: stale after three unanswered pings, then reconnected', async () => {
    h = await startHarness(
      () => startPolygonFake({ apiKey: 'k', pumpMs: 60_000, replayFixtures: false }),
      (p) =>
        new PolygonFeed(
          'polygon',
          PolygonOptionsSchema.parse({ url: p.url, symbols: ['AAPL'], pingIntervalMs: PING_MS, backoff: { initialMs: 20, maxMs: 100 } }),
          { key: 'k' },
        ),
    );
    await goesStaleAndReconnects(h);
  });

  it('alpaca: stale after three unanswered pings, then reconnected', async () => {
    h = await startHarness(
      () => startAlpacaFake({ key: 'k', secret: 's', pumpMs: 60_000, replayFixtures: false }),
      (p) =>
        new AlpacaFeed(
          'alpaca',
          AlpacaOptionsSchema.parse({ url: p.url, symbols: ['AAPL'], pingIntervalMs: PING_MS, backoff: { initialMs: 20, maxMs: 100 } }),
          {
            key: 'k',
            secret: 's',
          },
        ),
    );
    await goesStaleAndReconnects(h);
  });
});
