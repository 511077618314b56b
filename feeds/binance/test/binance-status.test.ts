import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import type { TickInput } from '../../sdk/adapter.js';
import { BinanceFeed, BinanceOptionsSchema } from '../binance-feed.js';
import { startBinanceFake } from '../fake-server.js';
import type { BinanceFakeOptions, BinanceFakeServer } from '../fake-server.js';
import { quietFor } from '../../../test/helpers/wait.js';

/**
 * Per-symbol trading status read from REST "Exchange information" (GET /api/v3/exchangeInfo,
 * weight 20), for the feed's symbols only: `symbols[].status` TRADING is trading, every other
 * value of ENUM definitions "Symbol status" (END_OF_DAY, HALT, BREAK, CANCEL_ONLY) is halted.
 * Fixture: the page's published response example.
 */
const DOC_INFO = (JSON.parse(readFileSync(new URL('../fixtures/exchange-info.json', import.meta.url), 'utf8')) as { body: Record<string, any> }).body;

type Status = Extract<TickInput, { k: 'status' }>;

describe('binance per-symbol trading status', () => {
  let h: AdapterHarness<BinanceFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  /**
   * `onFinished` (the test context's): the harness is closed when that test ends, not by the
   * afterEach of whichever test ends next (the concurrent tests below run at the same time).
   */
  const start = async (fake: BinanceFakeOptions = {}, extra: Record<string, unknown> = {}, onFinished?: (fn: () => Promise<void>) => void) => {
    const started = await startHarness(
      () => startBinanceFake({ replayFixtures: false, pumpMs: 1000, ...fake }),
      (p) =>
        new BinanceFeed(
          'binance',
          BinanceOptionsSchema.parse({
            url: p.url,
            restUrl: p.restUrl,
            symbols: ['BTC-USD', 'ETH-USD'],
            symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT', 'ETH-BTC': 'ETHBTC', 'FOO-USD': 'FOOUSDT' },
            backoff: { initialMs: 20, maxMs: 200 },
            ...extra,
          }),
        ),
    );
    if (onFinished) onFinished(() => started.close());
    else h = started;
    return started;
  };
  const statuses = (x: AdapterHarness<BinanceFakeServer>): Status[] => x.ticks.filter((t): t is Status => t.k === 'status');
  const feed = (x: AdapterHarness<BinanceFakeServer>) => x.adapter as BinanceFeed;

  it("reads exchangeInfo once at start, for the feed's symbols only; TRADING symbols give no status tick", async () => {
    const h = await start();
    await h.waitFor('the first exchangeInfo request', () => h.provider.exchangeInfoRequests().length >= 1);
    await quietFor(200, 'no status for trading symbols');
    expect(h.provider.exchangeInfoRequests().map((r) => r.symbols)).toEqual([['BTCUSDT', 'ETHUSDT']]);
    expect(statuses(h)).toEqual([]);
    expect(h.counters.errors).toEqual([]);
  });

  it('the documented response example: ETHBTC TRADING gives no status tick; the same answer with HALT is stamped with its serverTime', async () => {
    const h = await start({ exchangeInfoBody: DOC_INFO }, { symbols: ['ETH-BTC'] });
    await h.waitFor('exchangeInfo read', () => h.provider.exchangeInfoRequests().length >= 1);
    await quietFor(200, 'ETHBTC is trading');
    expect(statuses(h)).toEqual([]);
    expect(h.counters.errors).toEqual([]);
    await h.close();
    const halted = { ...DOC_INFO, symbols: [{ ...DOC_INFO.symbols[0], status: 'HALT' }] };
    const x = await start({ exchangeInfoBody: halted }, { symbols: ['ETH-BTC'] });
    await x.waitFor('ETH-BTC halted', () => statuses(x).length >= 1);
    expect(statuses(x)).toEqual([
      { k: 'status', sym: 'ETH-BTC', status: 'halted', code: 'HALT', reason: 'Binance symbol status HALT', ts: 1565246363776000000n },
    ]);
  });

  it('a halted symbol is published as halted, trading again once TRADING; only changes are published', async () => {
    const h = await start({ symbolStatus: { ETHUSDT: 'HALT' } });
    await h.waitFor('ETH-USD halted', () => statuses(h).length >= 1);
    expect(statuses(h)).toEqual([
      { k: 'status', sym: 'ETH-USD', status: 'halted', code: 'HALT', reason: 'Binance symbol status HALT', ts: expect.any(BigInt) },
    ]);
    // stamped with the answer's serverTime (ms)
    expect(Number(statuses(h)[0]!.ts / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
    await feed(h).pollStatusNow();
    expect(statuses(h)).toHaveLength(1);
    h.provider.setSymbolStatus('ETHUSDT', 'TRADING');
    await feed(h).pollStatusNow();
    expect(statuses(h)[1]).toEqual({ k: 'status', sym: 'ETH-USD', status: 'trading', code: 'TRADING', ts: expect.any(BigInt) });
  });

  it('every documented status but TRADING is halted, and so is one the enum does not list', async () => {
    const h = await start();
    await h.waitFor('first poll', () => h.provider.exchangeInfoRequests().length >= 1);
    for (const code of ['END_OF_DAY', 'BREAK', 'CANCEL_ONLY', 'HALT', 'PRE_TRADING']) {
      h.provider.setSymbolStatus('BTCUSDT', code);
      await feed(h).pollStatusNow();
      expect(statuses(h).at(-1)).toMatchObject({ sym: 'BTC-USD', status: 'halted', code });
    }
    expect(statuses(h)).toHaveLength(5);
  });

  it('a symbol exchangeInfo does not know is reported by name and left out; the others still get their status', async () => {
    const h = await start({ invalidSymbols: ['FOOUSDT'], symbolStatus: { BTCUSDT: 'BREAK' } }, { symbols: ['BTC-USD', 'FOO-USD'] });
    await h.waitFor('BTC-USD halted', () => statuses(h).length >= 1);
    expect(statuses(h).map((t) => `${t.sym} ${t.status} ${t.code}`)).toEqual(['BTC-USD halted BREAK']);
    expect(h.counters.errors).toEqual(['binance exchangeInfo does not know FOOUSDT: no trading status for it; check feeds.binance.symbols and symbolMap']);
    // the refused request, the one without symbols that found which, then later polls without it
    await feed(h).pollStatusNow();
    expect(h.provider.exchangeInfoRequests().map((r) => r.symbols)).toEqual([['BTCUSDT', 'FOOUSDT'], undefined, ['BTCUSDT']]);
  });

  it('backs off on 429 as long as Retry-After says, and reports it', async () => {
    const h = await start({}, { statusPollMs: 5000 });
    await h.waitFor('first poll', () => h.provider.exchangeInfoRequests().length >= 1);
    h.provider.failExchangeInfo(1, 429, 120);
    await feed(h).pollStatusNow();
    expect(h.counters.errors).toEqual(['binance exchangeInfo: HTTP 429 (Too many requests.)']);
    expect(h.logs.some((l) => l.level === 'warn' && /read again in 120 s/.test(l.msg))).toBe(true);
  });

  it('reads nothing with statusPollMs: 0, nor for a custom url without restUrl; refuses a too short interval naming the key', async () => {
    const h = await start({ symbolStatus: { BTCUSDT: 'HALT' } }, { statusPollMs: 0 });
    await h.waitFor('connected', () => h.state === 'connected');
    await quietFor(200, 'no poll');
    expect(h.provider.exchangeInfoRequests()).toEqual([]);
    await h.close();
    const custom = await start({ symbolStatus: { BTCUSDT: 'HALT' } }, { restUrl: undefined });
    await custom.waitFor('connected', () => custom.state === 'connected');
    await quietFor(200, 'no poll');
    expect(custom.provider.exchangeInfoRequests()).toEqual([]);
    expect(custom.logs.some((l) => /trading status is not read/.test(l.msg))).toBe(true);
    expect(() => BinanceOptionsSchema.parse({ symbols: ['BTC-USD'], statusPollMs: 1000 })).toThrow(/statusPollMs[\s\S]*at least 5000 ms/);
  });

  // Each waits up to MIN_STATUS_POLL_MS (5 s, the feed's floor between two polls) for the sooner
  // poll of a new symbol, on a fake and a harness of its own: the three wait at the same time.
  describe('a new symbol read soon, not at the next regular poll', { concurrent: true }, () => {
    it('a symbol subscribed later is read soon; an unsubscribed one gets no status', async ({ onTestFinished }) => {
      const h = await start(
        { symbolStatus: { SOLUSDT: 'HALT' } },
        { symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT', 'SOL-USD': 'SOLUSDT' } },
        onTestFinished,
      );
      await h.waitFor('connected and first poll', () => h.state === 'connected' && h.provider.exchangeInfoRequests().length >= 1);
      await h.adapter.subscribe(['SOL-USD']);
      // at most MIN_STATUS_POLL_MS (5 s) after the last poll
      await h.waitFor('SOL-USD halted', () => statuses(h).length >= 1, 10_000);
      expect(statuses(h).map((t) => `${t.sym} ${t.status}`)).toEqual(['SOL-USD halted']);
      expect(h.provider.exchangeInfoRequests().at(-1)!.symbols).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
      await h.adapter.unsubscribe(['SOL-USD']);
      h.provider.setSymbolStatus('SOLUSDT', 'TRADING');
      await feed(h).pollStatusNow();
      expect(statuses(h)).toHaveLength(1);
      expect(h.provider.exchangeInfoRequests().at(-1)!.symbols).toEqual(['BTCUSDT', 'ETHUSDT']);
      // the engine still shows SOL-USD halted (its last status): subscribed again, now TRADING, it is
      // published trading. Before, the adapter forgot what it had published and took TRADING for no change
      await h.adapter.subscribe(['SOL-USD']);
      await feed(h).pollStatusNow();
      expect(statuses(h).map((t) => `${t.sym} ${t.status} ${t.code}`)).toEqual(['SOL-USD halted HALT', 'SOL-USD trading TRADING']);
    });

    it('a symbol subscribed while a poll is in flight is read soon too, not at the next regular poll', async ({ onTestFinished }) => {
      // the poll under way asked for the symbols it had; the subscribe's request for an earlier poll
      // was dropped while it ran, so the new symbol waited a whole statusPollMs
      const h = await start(
        { symbolStatus: { SOLUSDT: 'HALT' }, exchangeInfoDelayMs: 500 },
        { symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT', 'SOL-USD': 'SOLUSDT' } },
        onTestFinished,
      );
      await h.waitFor('a poll in flight', () => h.provider.exchangeInfoRequests().length >= 1);
      await h.adapter.subscribe(['SOL-USD']);
      expect(h.provider.exchangeInfoRequests()).toHaveLength(1); // still the one in flight
      // at most MIN_STATUS_POLL_MS (5 s) after that poll
      await h.waitFor('SOL-USD halted', () => statuses(h).length >= 1, 10_000);
      expect(statuses(h).map((t) => `${t.sym} ${t.status}`)).toEqual(['SOL-USD halted']);
      expect(h.provider.exchangeInfoRequests().at(-1)!.symbols).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    });

    it("a symbol added while disconnected (the next connection's URL carries it) is read soon too, not at the next regular poll", async ({
      onTestFinished,
    }) => {
      // no SUBSCRIBE is sent for it (onSubscribe is not called while there is no connection): the
      // sooner poll used to come only from onSubscribe, and under load the symbol waited a whole
      // statusPollMs (seen in the shared test process with the test above)
      const h = await start(
        { symbolStatus: { SOLUSDT: 'HALT' } },
        { symbolMap: { 'BTC-USD': 'BTCUSDT', 'ETH-USD': 'ETHUSDT', 'SOL-USD': 'SOLUSDT' }, backoff: { initialMs: 1500, maxMs: 1500 } },
        onTestFinished,
      );
      await h.waitFor('connected, first poll done', () => h.state === 'connected' && h.provider.exchangeInfoRequests().length >= 1);
      h.provider.dropAll();
      await h.waitFor('disconnected', () => h.state !== 'connected');
      await h.adapter.subscribe(['SOL-USD']);
      await h.waitFor('SOL-USD halted', () => statuses(h).length >= 1, 10_000);
      expect(statuses(h).map((t) => `${t.sym} ${t.status}`)).toEqual(['SOL-USD halted']);
      expect(h.provider.exchangeInfoRequests().at(-1)!.symbols).toEqual(['BTCUSDT', 'ETHUSDT', 'SOLUSDT']);
    });
  });
});
