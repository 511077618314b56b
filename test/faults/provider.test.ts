import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startBinanceFake } from '../../feeds/binance/fake-server.js';
import type { BinanceFakeServer } from '../../feeds/binance/fake-server.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { metricValue } from '../hostile/kit.js';
import { waitFor } from '../helpers/wait.js';
import { TcpProxy } from './tcp-proxy.js';

/**
 * A feed's provider misbehaving, seen end to end: the Binance adapter talks to its fake server
 * through a TCP proxy that can cut connections, black-hole them (stall) or refuse new ones. The
 * feed must detect each fault (stale detection, reconnect with backoff), say so in its health
 * (/v1/feeds, /metrics), and resume by itself; clients keep their subscriptions throughout.
 * Failover to a backup provider is tested in test/feeds/failover.e2e.test.ts.
 */
let binance: BinanceFakeServer;
let proxy: TcpProxy;
let engine: Engine;
let client: TestClient;

interface FeedHealth {
  id: string;
  state: string;
  reconnects: number;
  errors: number;
  lastMessageAgeMs?: number;
  detail?: string;
}

beforeAll(async () => {
  binance = await startBinanceFake({ replayFixtures: false, pumpMs: 20 });
  proxy = await TcpProxy.start(Number(new URL(binance.url).port));
  const url = binance.url.replace(`:${new URL(binance.url).port}`, `:${proxy.port}`);
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' } },
    {
      env: {},
      feedsFile: {
        feeds: {
          binance: {
            url,
            symbols: ['BTC-USD'],
            symbolMap: { 'BTC-USD': 'BTCUSDT' },
            staleAfterMs: 800,
            backoff: { initialMs: 50, maxMs: 400 },
          },
        },
        run: ['binance'],
      },
    },
  );
  client = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
  await client.request({ op: 'subscribe', id: 1, channels: ['trade:BTC-USD', 'quote:BTC-USD'], snapshot: false });
  await client.waitForCount(isTrade, 5, 15_000);
}, 60_000);

afterAll(async () => {
  client?.close();
  await engine?.close();
  await proxy?.close();
  await binance?.close();
});

function isTrade(f: Frame): boolean {
  return f.op === 'data' && f.ch === 'trade:BTC-USD';
}

async function health(): Promise<FeedHealth> {
  const body = (await (await fetch(`http://127.0.0.1:${engine.port}/v1/feeds`)).json()) as { feeds: FeedHealth[] };
  return body.feeds.find((f) => f.id === 'binance')!;
}

async function feedUp(): Promise<number> {
  return metricValue(await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text(), 'tickwire_feed_up', { feed: 'binance' });
}

/** wait until the feed is connected and trades reach the client again */
async function resumed(): Promise<void> {
  await waitFor(async () => (await health()).state === 'connected', { what: 'the feed connected again', timeout: 20_000 });
  const n = client.frames.filter(isTrade).length;
  await client.waitForCount(isTrade, n + 5, 15_000);
  expect(await feedUp()).toBe(1);
}

/** the client's view stayed whole: open, no error, trade seq contiguous at the gateway */
function expectClientUndisturbed(): void {
  expect(client.closeCode).toBeUndefined();
  expect(client.frames.filter((f) => f.op === 'error')).toEqual([]);
  const seqs = client.frames.filter(isTrade).map((f) => f.seq as number);
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1]! + 1);
}

describe('provider faults', () => {
  it('the provider cuts the connection: the feed reconnects by itself (counted), data resumes in the same epoch', async () => {
    const before = await health();
    const epoch = client.frames.filter(isTrade).at(-1)!.d.ep as number;
    proxy.drop();
    await waitFor(async () => (await health()).reconnects > before.reconnects, { what: 'a reconnect counted', timeout: 20_000 });
    await resumed();
    // a reconnect of the same adapter keeps the epoch (it changes on an adapter restart or a failover)
    expect(client.frames.filter(isTrade).at(-1)!.d.ep).toBe(epoch);
    expectClientUndisturbed();
  });

  it('the provider goes silent (stalled path): the feed detects it as stale (the reason it reconnects), the data age grows, feed_up drops to 0, and it recovers when the path heals', async () => {
    const before = await health();
    proxy.mode = 'stall';
    // the runner reports `stale` and drops the connection in the same turn, so /v1/feeds shows
    // `reconnecting` with the reason in `detail`
    await waitFor(
      async () => {
        const h = await health();
        return h.state === 'stale' || /stale/.test(h.detail ?? '');
      },
      { what: 'stale detected', timeout: 20_000 },
    );
    expect((await health()).lastMessageAgeMs).toBeGreaterThanOrEqual(800);
    expect(await feedUp()).toBe(0);
    const n = client.frames.filter(isTrade).length;
    await waitFor(async () => (await health()).reconnects > before.reconnects, { what: 'a reconnect attempt', timeout: 20_000 });
    expect(client.frames.filter(isTrade).length).toBeLessThanOrEqual(n + 1); // nothing new flows meanwhile
    proxy.mode = 'pass';
    proxy.drop(); // the stalled sockets are dead; new ones go through
    await resumed();
    expectClientUndisturbed();
  });

  it('the provider is down (connections refused): the feed keeps retrying with backoff, says reconnecting, and comes back when it is up', async () => {
    const before = await health();
    proxy.mode = 'refuse';
    proxy.drop();
    await waitFor(async () => (await health()).reconnects >= before.reconnects + 3, { what: 'several failed attempts', timeout: 20_000 });
    const h = await health();
    expect(['reconnecting', 'connecting']).toContain(h.state);
    expect(await feedUp()).toBe(0);
    expect((await fetch(`http://127.0.0.1:${engine.port}/health`)).status).toBe(200);
    proxy.mode = 'pass';
    await resumed();
    expectClientUndisturbed();
  });
});
