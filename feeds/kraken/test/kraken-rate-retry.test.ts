import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { startKrakenFake } from '../fake-server.js';
import type { KrakenFakeOptions, KrakenFakeServer } from '../fake-server.js';
import { KrakenFeed, KrakenOptionsSchema } from '../kraken-feed.js';
import { quietFor } from '../../../test/helpers/wait.js';

/**
 * A subscribe Kraken refuses for its message rate (`Exceeded msg rate`) is transient: the adapter
 * asks again after a jittered, growing delay, all waiting pairs of a channel in one request, until
 * Kraken accepts. A permanent refusal (an unknown pair) is not asked again. Before, both were only
 * counted, and a rate-refused pair stayed unsubscribed for the rest of the connection.
 */
describe('kraken: subscriptions refused for the message rate', () => {
  let h: AdapterHarness<KrakenFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async (symbols: string[], fake: KrakenFakeOptions, extra: Record<string, unknown> = {}) => {
    h = await startHarness(
      () => startKrakenFake({ replayFixtures: false, ...fake }),
      (p) => new KrakenFeed('kraken', KrakenOptionsSchema.parse({ url: p.url, symbols, backoff: { initialMs: 20, maxMs: 200 }, ...extra })),
    );
    return h;
  };

  it('retries a rate-refused opening subscription until Kraken accepts it, spaced out, on the same connection', async () => {
    // one request a second: the opening trade subscribe is accepted, ticker and instrument are refused
    const h = await start(['BTC-USD', 'ETH-USD'], { msgRate: { max: 1, windowMs: 1000 } });
    await h.waitFor('connected', () => h.state === 'connected');
    await h.waitFor('quotes of both pairs', () => ['BTC-USD', 'ETH-USD'].every((s) => h.ticks.some((t) => t.k === 'quote' && t.sym === s)), 10_000);
    const log = h.provider.requestLog;
    expect(log.slice(0, 3).map((r) => `${r.channel} ${r.rateRefused}`)).toEqual(['trade false', 'ticker true', 'instrument true']);
    // retried until accepted: the ticker of both pairs and the instrument channel
    expect(log.some((r) => r.channel === 'ticker' && !r.rateRefused && r.symbols.includes('BTC/USD') && r.symbols.includes('ETH/USD'))).toBe(true);
    await h.waitFor('instrument accepted', () => h.provider.requestLog.some((r) => r.channel === 'instrument' && !r.rateRefused), 10_000);
    expect(h.provider.totalConnections).toBe(1);
    // never a tight loop: what waits goes out in one burst, at least half the first delay (1 s,
    // jitter 0.5) after the last refusal before it
    let lastRefusal = -Infinity;
    let burstStart = -Infinity;
    for (const r of log) {
      if (r.at - burstStart > 200) {
        burstStart = r.at;
        if (lastRefusal > -Infinity) expect(r.at - lastRefusal).toBeGreaterThanOrEqual(450);
      }
      if (r.rateRefused) lastRefusal = r.at;
    }
    // visible while it lasts, and counted
    expect(h.counters.errors.some((e) => /Exceeded msg rate/.test(e))).toBe(true);
    expect(h.logs.some((l) => l.level === 'warn' && /message rate.*retrying ticker/.test(l.msg))).toBe(true);
    // once everything is accepted the state no longer names a retry
    await h.waitFor('detail without retry', () => h.state === 'connected' && !/retrying/.test(h.states.at(-1)!.detail ?? ''), 10_000);
  });

  it('retries pairs added at run time that Kraken refuses for its message rate, all waiting pairs of a channel in one request', async () => {
    const h = await start(['BTC-USD'], { msgRate: { max: 3, windowMs: 1500 } });
    await h.waitFor('connected', () => h.state === 'connected');
    await h.adapter.subscribe(['ETH-USD']);
    await h.adapter.subscribe(['SOL-USD']);
    await h.waitFor(
      'ETH-USD and SOL-USD trades and quotes',
      () => ['ETH-USD', 'SOL-USD'].every((s) => h.ticks.some((t) => t.k === 'trade' && t.sym === s) && h.ticks.some((t) => t.k === 'quote' && t.sym === s)),
      12_000,
    );
    expect(h.provider.totalConnections).toBe(1);
    const log = h.provider.requestLog;
    expect(log.filter((r) => r.rateRefused).length).toBeGreaterThan(0);
    // once the first refusal came, what waits goes together: one request per channel, never one per pair
    const firstRefusal = log.findIndex((r) => r.rateRefused);
    const later = log.slice(firstRefusal + 1).filter((r) => r.method === 'subscribe' && (r.channel === 'trade' || r.channel === 'ticker'));
    const accepted = later.filter((r) => !r.rateRefused);
    expect(accepted.some((r) => r.symbols.includes('ETH/USD') && r.symbols.includes('SOL/USD'))).toBe(true);
    expect(h.adapter instanceof KrakenFeed && h.adapter.openRequests).toBe(0);
  });

  it('a pair unsubscribed while its subscribe waits to be asked again is neither retried nor unsubscribed', async () => {
    const h = await start(['BTC-USD'], { msgRate: { max: 3, windowMs: 1500 } });
    await h.waitFor('connected', () => h.state === 'connected');
    await h.adapter.subscribe(['ETH-USD']);
    await h.waitFor('ETH refused for the rate', () => h.provider.requestLog.some((r) => r.rateRefused && r.symbols.includes('ETH/USD')));
    expect((h.adapter as KrakenFeed).retrying.length).toBeGreaterThan(0);
    await h.adapter.unsubscribe(['ETH-USD']);
    expect((h.adapter as KrakenFeed).retrying).toEqual([]);
    const n = h.provider.requestLog.length;
    await quietFor(2500, 'a retry would come within 1 s');
    expect(h.provider.requestLog.slice(n).filter((r) => r.symbols.includes('ETH/USD'))).toEqual([]);
    expect(h.ticks.some((t) => t.sym === 'ETH-USD')).toBe(false);
  });

  it('does not ask again for a pair Kraken does not support (a permanent refusal)', async () => {
    const h = await start(['BTC-USD', 'FOO-USD'], { unsupported: ['FOO/USD'] });
    await h.waitFor('connected', () => h.state === 'connected');
    expect(h.states.at(-1)!.detail).toMatch(/refused: trade FOO\/USD \(Currency pair not supported FOO\/USD\)/);
    await quietFor(2500, 'a permanent refusal would be retried within 1 s');
    expect(h.provider.requestLog.filter((r) => r.symbols.includes('FOO/USD')).map((r) => r.channel)).toEqual(['trade', 'ticker']);
  });

  it('gives up after a bounded number of attempts and keeps the pair visible as refused', async () => {
    // Kraken keeps refusing everything after the first request (a window longer than the test)
    const g = (h = await startHarness(
      () => startKrakenFake({ replayFixtures: false, msgRate: { max: 1, windowMs: 600_000 } }),
      (p) =>
        new KrakenFeed('kraken', KrakenOptionsSchema.parse({ url: p.url, symbols: ['BTC-USD'], pairStatus: false }), {
          rateRetry: { initialMs: 20, maxMs: 80, attempts: 4 },
        }),
    ));
    await g.waitFor('connected on the trade channel', () => g.state === 'connected');
    await g.waitFor('given up', () => g.logs.some((l) => l.level === 'error' && /gave up subscribing ticker BTC\/USD after 4 attempts/.test(l.msg)), 5000);
    const tickerRequests = g.provider.requestLog.filter((r) => r.channel === 'ticker');
    expect(tickerRequests).toHaveLength(5); // the first request and 4 retries
    await quietFor(300, 'no retry after giving up');
    expect(g.provider.requestLog.filter((r) => r.channel === 'ticker')).toHaveLength(5);
    await g.waitFor('named in the state', () => /refused: ticker BTC\/USD \(Exceeded msg rate/.test(g.states.at(-1)!.detail ?? ''));
  });
});
