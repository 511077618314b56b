import { describe, expect, it } from 'vitest';
import { MemoryBus } from '../../../src/bus/memory-bus.js';
import { decodeTick } from '../../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../../src/core/instruments.js';
import type { BarTick } from '../../../src/core/schema.js';
import { FeedHost } from '../../../src/ingest/feed-host.js';
import { TickPublisher } from '../../../src/ingest/tick-publisher.js';
import { PolygonFeed, PolygonOptionsSchema } from '../polygon-feed.js';
import { startPolygonFake } from '../fake-server.js';
import { waitFor } from '../../../test/helpers/wait.js';

/**
 * Polygon AM/A aggregates are the closed bars of their interval ("Aggregates (Per Minute)": built
 * from qualifying trades, none for a minute without them). The recorded fixture has a trade of
 * AAPL at 13:30:01.234 and the AM aggregate of the 13:29 minute.
 */
const options = (extra: Record<string, unknown> = {}) =>
  PolygonOptionsSchema.parse({ url: 'ws://127.0.0.1:1', symbols: ['AAPL', 'BRK.B'], backoff: { initialMs: 20, maxMs: 200 }, ...extra });

describe('polygon aggregates as provider bars', () => {
  it('declares AM as 1m and A as 1s', () => {
    expect(new PolygonFeed('p', options(), { key: 'k' }).providesBars).toEqual(['1m']);
    expect(new PolygonFeed('p', options({ channels: ['T', 'AM', 'A'] }), { key: 'k' }).providesBars).toEqual(['1m', '1s']);
    expect(new PolygonFeed('p', options({ channels: ['T', 'Q'] }), { key: 'k' }).providesBars).toEqual([]);
  });

  it('through the feed host: the AM aggregate is the one closed bar of its minute', async () => {
    const fake = await startPolygonFake({ apiKey: 'pk', pumpMs: 60_000 });
    const bus = new MemoryBus();
    const bars: BarTick[] = [];
    bus.subscribe('md.stock.bar-1m.>', (_s, p) => bars.push(decodeTick(p) as BarTick));
    const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    const silent = { info() {}, warn() {}, error() {}, debug() {} };
    const host = new FeedHost(publisher, silent);
    try {
      await host.start(
        new PolygonFeed('polygon', PolygonOptionsSchema.parse({ url: fake.url, symbols: ['AAPL', 'BRK.B'], backoff: { initialMs: 20, maxMs: 200 } }), {
          key: 'pk',
        }),
      );
      await waitFor(() => bars.some((b) => b.closed), { what: 'a closed bar', timeout: 10_000 }).catch(() => undefined); // asserted below
      // a trade in the next minute ends the engine's 13:30 bar: held for Polygon's AM of 13:30
      const at = (iso: string): bigint => BigInt(Date.parse(iso)) * 1_000_000n;
      publisher.publish('polygon', { k: 'trade', sym: 'AAPL', id: 'x', p: 192.4, s: 1, ts: at('2024-06-10T13:31:05Z') });
      publisher.sweepBars(Date.now() + 1_000);
      expect(bars.filter((b) => b.closed).map((b) => b.t)).toEqual([1718026140000]);
      // the AM of 13:30 arrives: it is that minute's closed bar, the engine's is dropped
      publisher.publish('polygon', {
        k: 'bar',
        sym: 'AAPL',
        iv: '1m',
        t: 1718026200000,
        o: 192.31,
        h: 192.4,
        l: 192.3,
        c: 192.35,
        v: 7000,
        n: 0,
        closed: true,
        ts: at('2024-06-10T13:31:00Z'),
      });
      // much later: the 13:31 minute got no AM within the wait, so the engine's bar closes it
      publisher.sweepBars(Date.now() + 10 * 60_000);
      const closed = bars.filter((b) => b.sym === 'AAPL' && b.closed);
      expect(closed.map((b) => [b.t, b.v, b.corrected ?? false])).toEqual([
        [1718026140000, 5400, false],
        [1718026200000, 7000, false],
        [1718026260000, 1, false],
      ]);
    } finally {
      await host.stopAll();
      publisher.close();
      await fake.close();
    }
  });
});
