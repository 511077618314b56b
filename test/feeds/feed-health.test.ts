import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startBinanceFake } from '../../feeds/binance/fake-server.js';
import type { BinanceFakeServer } from '../../feeds/binance/fake-server.js';
import { startNats } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

interface FeedsResponse {
  feeds: {
    id: string;
    adapter?: string;
    state: string;
    reporting: boolean;
    messages: number;
    ticks: number;
    reconnects: number;
    gaps: number;
    errors: number;
    lastMessageAgeMs?: number;
    messagesPerSec: number;
  }[];
}

async function getFeeds(port: number): Promise<FeedsResponse> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/feeds`);
  expect(res.status).toBe(200);
  return (await res.json()) as FeedsResponse;
}

describe('feed health at GET /v1/feeds', () => {
  let fake: BinanceFakeServer | undefined;
  const engines: Engine[] = [];
  afterEach(async () => {
    for (const e of engines.splice(0).reverse()) await e.close();
    await fake?.close();
    fake = undefined;
  });

  const feedsFile = (url: string) => ({
    feeds: { 'binance-a': { adapter: 'binance', url, symbols: ['BTC-USD'], symbolMap: { 'BTC-USD': 'BTCUSDT' }, backoff: { initialMs: 20, maxMs: 100 } } },
    run: ['binance-a'],
  });

  it('embedded: state, message age, rates and reconnects of each feed', async () => {
    fake = await startBinanceFake({ replayFixtures: false });
    const engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' } }, { env: {}, feedsFile: feedsFile(fake.url) });
    engines.push(engine);
    const f = await waitFor(async () => (await getFeeds(engine.port)).feeds.find((x) => x.id === 'binance-a' && x.state === 'connected' && x.messages > 10), {
      what: 'a connected report',
      timeout: 15_000,
    });
    expect(f).toMatchObject({ adapter: 'binance', reporting: true, reconnects: 0, gaps: 0, errors: 0 });
    expect(f.lastMessageAgeMs).toBeLessThan(5000);
    fake.dropAll();
    await waitFor(async () => (await getFeeds(engine.port)).feeds.find((x) => x.reconnects >= 1 && x.state === 'connected'), {
      what: 'a reconnect counted',
      timeout: 15_000,
    });
    const one = await fetch(`http://127.0.0.1:${engine.port}/v1/feeds/binance-a`);
    expect(((await one.json()) as { id: string }).id).toBe('binance-a');
    expect((await fetch(`http://127.0.0.1:${engine.port}/v1/feeds/nope`)).status).toBe(404);
  }, 60_000);

  describe('NATS mode: the gateway learns health from feeds in another process', () => {
    let nats: Awaited<ReturnType<typeof startNats>> | undefined;
    beforeAll(async () => {
      nats = await startNats({ jetstream: false });
    }, 60_000);
    afterAll(async () => {
      await nats?.destroy();
    });

    it('shows a feed that runs in a separate engine', async () => {
      fake = await startBinanceFake({ replayFixtures: false });
      const gateway = await startEngine(
        { host: '127.0.0.1', port: 0, log: { level: 'silent' }, natsUrl: nats!.url },
        { env: {}, roles: { gateway: true, feeds: [] } },
      );
      engines.push(gateway);
      const feeder = await startEngine(
        { log: { level: 'silent' }, natsUrl: nats!.url },
        { env: {}, roles: { gateway: false }, feedsFile: feedsFile(fake.url) },
      );
      engines.push(feeder);
      expect(gateway.feeds).toBeUndefined();
      const f = await waitFor(async () => (await getFeeds(gateway.port)).feeds.find((x) => x.id === 'binance-a' && x.state === 'connected' && x.ticks > 0), {
        what: 'the remote feed reported',
        timeout: 15_000,
      });
      expect(f.reporting).toBe(true);
      await feeder.close();
      engines.pop();
      await waitFor(async () => (await getFeeds(gateway.port)).feeds.find((x) => x.id === 'binance-a' && x.state === 'stopped'), {
        what: 'the stopped state reported',
        timeout: 15_000,
      });
    }, 60_000);
  });
});
