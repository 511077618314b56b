import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsBus } from '../../src/bus/nats-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { AlertFiring } from '../../src/alerts/alert-engine.js';
import { AlertService } from '../../src/alerts/alert-service.js';
import { RedisAlertStore } from '../../src/alerts/alert-store.js';
import { startNats, startRedis } from '../helpers/servers.js';
import { quote, trade } from './ticks.js';
import { waitFor } from '../helpers/wait.js';

let nats: Awaited<ReturnType<typeof startNats>>;
let redis: Awaited<ReturnType<typeof startRedis>>;
beforeAll(async () => {
  [nats, redis] = await Promise.all([startNats({ jetstream: false }), startRedis()]);
});
afterAll(async () => {
  await Promise.all([nats?.destroy(), redis?.destroy()]);
});

/** The alert role as it will run in scale-out: ticks from a feed process over NATS, state in Redis. */
describe('AlertService over NATS with a Redis store', () => {
  it('fires on ticks published by another connection and resumes after a restart', async () => {
    const feed = await NatsBus.connect({ servers: nats.url });
    const prefix = `test:alerts-nats:${process.pid}:`;
    const config = loadConfig({ env: {} }).alerts;
    const fired: AlertFiring[] = [];
    const start = async () => {
      const bus = await NatsBus.connect({ servers: nats.url });
      const store = new RedisAlertStore(redis.url, prefix);
      const svc = new AlertService({ bus, registry: defaultRegistry(), store, config, onFire: (f) => void fired.push(f) });
      await svc.start();
      await bus.flush(); // subscriptions have reached the server
      return {
        svc,
        bus,
        store,
        stop: async () => {
          await svc.close();
          await bus.close();
          await store.close();
        },
      };
    };
    const until = (cond: () => boolean, what: string): Promise<unknown> => waitFor(cond, { what, interval: 10 });
    const now = Date.now();
    const a = await start();
    await a.svc.add({ id: 'btc', user: 'u', symbol: 'BTC-USD', kind: 'price', direction: 'below', level: 60_000, source: 'mid', mode: 'rearm', rearmBy: 500 });
    await a.svc.add({ id: 'wide', user: 'u', symbol: 'BTC-USD', kind: 'spread', threshold: 50 });
    await a.bus.flush();
    const pubQuote = (bp: number, ap: number, ms: number) =>
      feed.publish(marketSubject('crypto', 'quote', 'BTC-USD'), encodeTick(quote('BTC-USD', bp, ap, ms)));
    pubQuote(60_100, 60_110, now + 1);
    pubQuote(59_990, 60_000, now + 2); // mid 59,995: below 60,000
    await feed.flush();
    await until(() => fired.length === 1, 'the first firing');
    await a.stop();

    const b = await start();
    pubQuote(59_000, 59_100, now + 3); // wide spread (100): `wide` crossed 50 from 10
    pubQuote(60_600, 60_610, now + 4); // re-arms `btc`
    pubQuote(59_800, 59_810, now + 5); // fires `btc` again
    feed.publish(marketSubject('crypto', 'trade', 'BTC-USD'), encodeTick(trade('BTC-USD', 1, now + 6)));
    await feed.flush();
    await until(() => fired.length === 3, 'the firings after the restart');
    expect(fired.map((f) => f.id)).toEqual(['btc:1', 'wide:1', 'btc:2']);
    expect(fired[1]).toMatchObject({ previous: 10, value: 100 });
    await b.stop();
    await feed.close();
  });
});
