import { afterEach, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startBinanceFake } from '../../feeds/binance/fake-server.js';
import type { BinanceFakeServer } from '../../feeds/binance/fake-server.js';
import { startCoinbaseFake } from '../../feeds/coinbase/fake-server.js';
import type { CoinbaseFakeServer } from '../../feeds/coinbase/fake-server.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';

/**
 * Failover end to end: two real adapters (Binance primary, Coinbase backup) against their fake
 * servers, the engine with its gateway, and a real WebSocket client subscribed to BTC-USD.
 */
describe('per-symbol failover through the gateway', () => {
  let engine: Engine | undefined;
  let client: TestClient | undefined;
  let binance: BinanceFakeServer | undefined;
  let coinbase: CoinbaseFakeServer | undefined;

  afterEach(async () => {
    client?.close();
    await engine?.close();
    await binance?.close();
    await coinbase?.close();
    engine = undefined;
    client = undefined;
    binance = undefined;
    coinbase = undefined;
  });

  const trades = (c: TestClient): Frame[] => c.frames.filter((f) => f.op === 'data' && f.ch === 'trade:BTC-USD' && !f.snapshot);

  it('switches to the backup with a new epoch when the primary goes silent, and back when it recovers', async () => {
    binance = await startBinanceFake({ replayFixtures: false });
    coinbase = await startCoinbaseFake({ replayFixtures: false });
    engine = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' } },
      {
        env: {},
        feedsFile: {
          feeds: {
            binance: { url: binance.url, symbols: ['BTC-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT' }, backoff: { initialMs: 20, maxMs: 200 } },
            coinbase: { url: coinbase.url, symbols: ['BTC-USD'], backoff: { initialMs: 20, maxMs: 200 } },
          },
          failover: [{ symbol: 'BTC-USD', primary: 'binance', backup: 'coinbase', staleAfterMs: 1000, recoverAfterMs: 1000 }],
          run: ['binance', 'coinbase'],
        },
      },
    );
    expect(engine.failover).toBeDefined();
    client = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    await client.waitFor((f) => f.op === 'welcome');
    const ack = await client.request({ op: 'subscribe', id: 1, channels: ['trade:BTC-USD', 'quote:BTC-USD'], throttle: 0, snapshot: false });
    expect(ack.subscribed).toEqual(['trade:BTC-USD', 'quote:BTC-USD']);

    // 1. the primary serves the symbol
    await client.waitForCount((f) => f.op === 'data' && f.ch === 'trade:BTC-USD' && f.d.src === 'binance', 5, 15_000);
    expect(trades(client).every((f) => f.d.src === 'binance')).toBe(true);
    const ep1 = trades(client)[0]!.d.ep as number;
    expect(trades(client).every((f) => f.d.ep === ep1)).toBe(true);

    // 2. the primary goes silent: the backup takes over with a new epoch
    binance.pause();
    const firstBackup = await client.waitFor((f) => f.op === 'data' && f.ch === 'trade:BTC-USD' && f.d.src === 'coinbase', 15_000);
    const ep2 = firstBackup.d.ep as number;
    expect(ep2).not.toBe(ep1);
    expect(ep2).toBeGreaterThan(ep1);
    await client.waitFor((f) => f.op === 'data' && f.ch === 'quote:BTC-USD' && f.d.src === 'coinbase' && f.d.ep === ep2, 15_000);
    // no tick of the backup ever carried the old epoch, and none of the primary the new one
    expect(trades(client).some((f) => f.d.src === 'coinbase' && f.d.ep === ep1)).toBe(false);

    // feed health tells who serves the symbol
    const health = (await (await fetch(`http://127.0.0.1:${engine.port}/v1/feeds`)).json()) as {
      feeds: { id: string; state: string; failover?: { symbol: string; role: string; active: boolean }[] }[];
      failover: { symbol: string; primary: string; backup: string; active: string }[];
    };
    expect(health.failover).toEqual([{ symbol: 'BTC-USD', primary: 'binance', backup: 'coinbase', active: 'coinbase' }]);
    expect(health.feeds.map((f) => f.id).sort()).toEqual(['binance', 'coinbase']);
    expect(health.feeds.find((f) => f.id === 'coinbase')!.failover).toEqual([{ symbol: 'BTC-USD', role: 'backup', active: true }]);
    expect(engine.failover!.status()[0]).toMatchObject({ symbol: 'BTC-USD', active: 'coinbase', switches: 1 });

    // 3. the primary recovers: it takes the symbol back, with yet another epoch
    binance.resume();
    const back = await client.waitFor((f) => f.op === 'data' && f.ch === 'trade:BTC-USD' && f.d.src === 'binance' && f.d.ep !== ep1, 15_000);
    const ep3 = back.d.ep as number;
    expect(ep3).toBeGreaterThan(ep2);
    expect(engine.failover!.status()[0]).toMatchObject({ active: 'binance', switches: 2 });

    // the client kept its subscription throughout: channel seq rose by one per update, no error, no close
    const seqs = trades(client).map((f) => f.seq as number);
    seqs.forEach((s, i) => {
      if (i > 0) expect(s).toBe(seqs[i - 1]! + 1);
    });
    expect(client.frames.some((f) => f.op === 'error')).toBe(false);
    expect(client.closeCode).toBeUndefined();
    // epochs only ever change at a switch: ep1 (binance), ep2 (coinbase), ep3 (binance)
    const epochs = [...new Set(trades(client).map((f) => f.d.ep as number))];
    expect(epochs).toEqual([ep1, ep2, ep3]);
  }, 60_000);

  it('fails over at once when the primary connection is down', async () => {
    binance = await startBinanceFake({ replayFixtures: false });
    coinbase = await startCoinbaseFake({ replayFixtures: false });
    engine = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' } },
      {
        env: {},
        feedsFile: {
          feeds: {
            binance: { url: binance.url, symbols: ['BTC-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT' }, backoff: { initialMs: 5000, maxMs: 5000 } },
            coinbase: { url: coinbase.url, symbols: ['BTC-USD'] },
          },
          failover: [{ symbol: 'BTC-USD', primary: 'binance', backup: 'coinbase', staleAfterMs: 30_000, recoverAfterMs: 100 }],
          run: ['binance', 'coinbase'],
        },
      },
    );
    client = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'msgpack' });
    await client.request({ op: 'subscribe', id: 1, channels: ['trade:BTC-USD'], throttle: 0, snapshot: false });
    await client.waitFor((f) => f.op === 'data' && f.d.src === 'binance', 15_000);
    binance.dropAll(); // the adapter reports reconnecting: no need to wait 30 s of silence
    await client.waitFor((f) => f.op === 'data' && f.d.src === 'coinbase', 15_000);
    expect(engine.failover!.status()[0]!.reason).toMatch(/binance is reconnecting/);
  }, 60_000);
});
