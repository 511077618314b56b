import { afterEach, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { KRAKEN_FIXTURE_FRAMES, startKrakenFake } from '../../feeds/kraken/fake-server.js';
import type { KrakenFakeServer } from '../../feeds/kraken/fake-server.js';
import { startNats } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Kraken end to end: the real adapter against its fake server (speaking Kraken's v2 protocol),
 * the engine and its gateway, and a protocol-v1 client (JSON and MessagePack). The recorded
 * Kraken frames are sent after the client subscribed, so each field can be checked on the wire.
 */
describe('kraken through the gateway to a protocol-v1 client', () => {
  let engine: Engine | undefined;
  let kraken: KrakenFakeServer | undefined;
  const clients: TestClient[] = [];

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await engine?.close();
    await kraken?.close();
    engine = undefined;
    kraken = undefined;
  });

  const feedState = async (): Promise<string | undefined> => {
    const r = (await (await fetch(`http://127.0.0.1:${engine!.port}/v1/feeds`)).json()) as { feeds: { id: string; state: string }[] };
    return r.feeds.find((f) => f.id === 'kraken')?.state;
  };
  const waitConnected = async (): Promise<void> => {
    await waitFor(async () => (await feedState()) === 'connected', { what: 'the kraken feed connected', timeout: 15_000 });
  };
  const data = (c: TestClient, ch: string): Frame[] => c.frames.filter((f) => f.op === 'data' && f.ch === ch);

  it('delivers Kraken trades and best bid/offer with exact values, microsecond times, sides and contiguous seq; survives a reconnect', async () => {
    kraken = await startKrakenFake({ replayFixtures: false, pumpMs: 60_000 });
    engine = await startEngine(
      { host: '127.0.0.1', port: 0, log: { level: 'silent' } },
      {
        env: {},
        feedsFile: { feeds: { kraken: { url: kraken.url, symbols: ['BTC-USD', 'ETH-USD'], backoff: { initialMs: 20, maxMs: 200 } } }, run: ['kraken'] },
      },
    );
    await waitConnected();
    for (const encoding of ['json', 'msgpack'] as const) {
      const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding });
      clients.push(c);
      await c.waitFor((f) => f.op === 'welcome');
      const ack = await c.request({ op: 'subscribe', id: 1, channels: ['trade:BTC-USD', 'quote:BTC-USD'], throttle: 0, snapshot: false });
      expect(ack.subscribed).toEqual(['trade:BTC-USD', 'quote:BTC-USD']);
    }

    // the recorded update with three BTC/USD trades, then the ticker without timestamp
    kraken.broadcast(KRAKEN_FIXTURE_FRAMES[4]);
    kraken.broadcast(KRAKEN_FIXTURE_FRAMES[6]);
    for (const c of clients) {
      await c.waitForCount((f) => f.op === 'data' && f.ch === 'trade:BTC-USD', 3, 15_000);
      await c.waitFor((f) => f.op === 'data' && f.ch === 'quote:BTC-USD', 15_000);
      const trades = data(c, 'trade:BTC-USD');
      const ep = trades[0]!.d.ep as number;
      expect(trades.map((f) => f.d)).toEqual([
        { id: '70001000', p: 67251.4, s: 0.00000001, side: 'buy', t: 1718000001219.873, src: 'kraken', ep },
        { id: '70001001', p: 67251.3, s: 0.12345678, side: 'sell', t: 1718000001219.874, src: 'kraken', ep },
        { id: '70001002', p: 67251.12345678, s: 1.5, side: 'sell', t: 1718000001219.874, src: 'kraken', ep },
      ]);
      const seqs = trades.map((f) => f.seq as number);
      expect(seqs).toEqual([seqs[0], seqs[0]! + 1, seqs[0]! + 2]);
      const quote = data(c, 'quote:BTC-USD').at(-1)!;
      expect(quote.d).toMatchObject({ bp: 67251.3, bs: 0.5, ap: 67251.4, as: 2.25, src: 'kraken' });
      expect(quote.d.t).toBeGreaterThan(Date.now() - 60_000); // no timestamp from Kraken: receive time
    }

    // heartbeats, a refusal and a malformed frame: counted in feed health, nothing reaches the clients, the connection stays
    kraken.broadcast(KRAKEN_FIXTURE_FRAMES[3]); // {"channel":"heartbeat"}
    kraken.broadcast({
      error: 'Exceeded msg rate',
      method: 'subscribe',
      success: false,
      time_in: '2024-06-10T06:13:21.219873Z',
      time_out: '2024-06-10T06:13:21.219900Z',
    });
    kraken.broadcast('{"channel":"trade","type":"update","data":[');
    const health = async () =>
      (await (await fetch(`http://127.0.0.1:${engine!.port}/v1/feeds/kraken`)).json()) as { errors: number; lastError?: string; state: string };
    await waitFor(async () => (await health()).errors >= 2, { what: 'two feed errors counted', timeout: 15_000 }).catch(() => undefined); // asserted below
    const h = await health();
    expect(h.errors).toBeGreaterThanOrEqual(2);
    expect(h.state).toBe('connected');
    expect(kraken.totalConnections).toBe(1);

    // the provider drops us: the adapter reconnects, trades made meanwhile still reach the clients, seq goes on
    const before = data(clients[0]!, 'trade:BTC-USD').length;
    kraken.dropAll();
    const missed = kraken.trade('BTC/USD', 2);
    await waitConnected();
    const live = kraken.trade('BTC/USD', 1);
    for (const c of clients) {
      await c.waitForCount((f) => f.op === 'data' && f.ch === 'trade:BTC-USD', before + 3, 15_000);
      const trades = data(c, 'trade:BTC-USD');
      expect(trades.slice(before).map((f) => f.d.id)).toEqual([...missed, ...live].map((t) => String(t.trade_id)));
      const seqs = trades.map((f) => f.seq as number);
      seqs.forEach((s, i) => i > 0 && expect(s).toBe(seqs[i - 1]! + 1));
      expect(c.frames.some((f) => f.op === 'error')).toBe(false);
      expect(c.closeCode).toBeUndefined();
    }
  }, 60_000);

  it('in NATS mode (feed and gateway as separate engines over a real nats-server) the same Kraken trades and quotes reach clients exactly', async () => {
    const nats = await startNats();
    const engines: Engine[] = [];
    try {
      kraken = await startKrakenFake({ replayFixtures: false, pumpMs: 60_000 });
      const gw = await startEngine(
        { natsUrl: nats.url, host: '127.0.0.1', port: 0, log: { level: 'silent' } },
        { env: {}, roles: { gateway: true, feeds: [] } },
      );
      engines.push(gw);
      engine = gw; // feedState/waitConnected read the gateway's view of the feeds on the bus
      const feed = await startEngine(
        { natsUrl: nats.url, host: '127.0.0.1', port: 0, log: { level: 'silent' } },
        {
          env: {},
          feedsFile: { feeds: { kraken: { url: kraken.url, symbols: ['BTC-USD'], backoff: { initialMs: 20, maxMs: 200 } } }, run: ['kraken'] },
          roles: { gateway: false, feeds: ['kraken'] },
        },
      );
      engines.push(feed);
      await waitConnected();
      for (const encoding of ['json', 'msgpack'] as const) {
        const c = await TestClient.connect(`ws://127.0.0.1:${gw.port}/v1/stream`, { encoding });
        clients.push(c);
        await c.waitFor((f) => f.op === 'welcome');
        const ack = await c.request({ op: 'subscribe', id: 1, channels: ['trade:BTC-USD', 'quote:BTC-USD'], throttle: 0, snapshot: false });
        expect(ack.subscribed).toEqual(['trade:BTC-USD', 'quote:BTC-USD']);
      }
      // the gateway subscribes upstream on interest (trade before quote, on one NATS connection): once the
      // ticker sent as a sentinel reaches both clients, the trade subscription is in place too
      await waitFor(
        () => {
          if (clients.every((c) => data(c, 'quote:BTC-USD').length > 0)) return true;
          kraken!.broadcast(KRAKEN_FIXTURE_FRAMES[6]);
          return false;
        },
        { what: 'a quote on the clients over NATS', timeout: 15_000, interval: 50 },
      );
      kraken.broadcast(KRAKEN_FIXTURE_FRAMES[4]);
      const before = clients.map(() => 0);
      for (const [i, c] of clients.entries()) {
        await c.waitForCount((f) => f.op === 'data' && f.ch === 'trade:BTC-USD', before[i]! + 3, 15_000);
        await c.waitFor((f) => f.op === 'data' && f.ch === 'quote:BTC-USD' && f.d.bp === 67251.3, 15_000);
        const trades = data(c, 'trade:BTC-USD').slice(before[i]!);
        const ep = trades[0]!.d.ep as number;
        expect(trades.map((f) => f.d)).toEqual([
          { id: '70001000', p: 67251.4, s: 0.00000001, side: 'buy', t: 1718000001219.873, src: 'kraken', ep },
          { id: '70001001', p: 67251.3, s: 0.12345678, side: 'sell', t: 1718000001219.874, src: 'kraken', ep },
          { id: '70001002', p: 67251.12345678, s: 1.5, side: 'sell', t: 1718000001219.874, src: 'kraken', ep },
        ]);
        const seqs = data(c, 'trade:BTC-USD').map((f) => f.seq as number);
        seqs.forEach((s, j) => j > 0 && expect(s).toBe(seqs[j - 1]! + 1));
        expect(data(c, 'quote:BTC-USD').at(-1)!.d).toMatchObject({ bp: 67251.3, bs: 0.5, ap: 67251.4, as: 2.25, src: 'kraken' });
      }
    } finally {
      for (const c of clients.splice(0)) c.close();
      engine = undefined;
      await Promise.allSettled(engines.map((e) => e.close()));
      await nats.destroy();
    }
  }, 60_000);
});
