import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus, BusHandler, Unsubscribe } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { AlertFiring } from '../../src/alerts/alert-engine.js';
import { AlertService } from '../../src/alerts/alert-service.js';
import type { AlertStore } from '../../src/alerts/alert-store.js';
import { MemoryAlertStore, RedisAlertStore } from '../../src/alerts/alert-store.js';
import { AlertRuleError } from '../../src/alerts/rule.js';
import { startRedis } from '../helpers/servers.js';
import { quote, trade } from './ticks.js';
import { waitFor } from '../helpers/wait.js';

const registry = defaultRegistry();
const config = loadConfig({ env: {} }).alerts;

/** A MemoryBus that counts live subscriptions per pattern. */
class CountingBus implements Bus {
  readonly inner = new MemoryBus();
  readonly live = new Map<string, number>();
  publish(subject: string, payload: Uint8Array): void {
    this.inner.publish(subject, payload);
  }
  subscribe(pattern: string, h: BusHandler): Unsubscribe {
    this.live.set(pattern, (this.live.get(pattern) ?? 0) + 1);
    const u = this.inner.subscribe(pattern, h);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const n = this.live.get(pattern)! - 1;
      if (n === 0) this.live.delete(pattern);
      else this.live.set(pattern, n);
      u();
    };
  }
  flush(): Promise<void> {
    return this.inner.flush();
  }
  get connected(): boolean {
    return this.inner.connected;
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const T = 1_900_000_000_000;
const pubTrade = (bus: Bus, sym: string, p: number, ms: number) => bus.publish(marketSubject('stock', 'trade', sym), encodeTick(trade(sym, p, ms)));

function makeService(
  bus: Bus,
  store: AlertStore,
  onFire: (f: AlertFiring) => void | Promise<void> = () => undefined,
  extra: { sweepMs?: number; now?: () => number; redeliverMs?: number } = {},
) {
  return new AlertService({
    bus,
    registry,
    store,
    config,
    onFire,
    now: extra.now ?? (() => T),
    ...(extra.sweepMs ? { sweepMs: extra.sweepMs } : {}),
    ...(extra.redeliverMs ? { redeliverMs: extra.redeliverMs } : {}),
  });
}

const until = (cond: () => boolean, what: string): Promise<unknown> => waitFor(cond, { what, timeout: 5000, interval: 5 });

describe('AlertService over the memory bus', () => {
  it('evaluates trade and quote ticks from the bus and delivers firings after their commit', async () => {
    const bus = new CountingBus();
    const store = new MemoryAlertStore();
    const fired: AlertFiring[] = [];
    const committedAtDelivery: boolean[] = [];
    const svc = makeService(bus, store, async (f) => {
      fired.push(f);
      committedAtDelivery.push((await store.load()).outbox.some((o) => o.id === f.id));
    });
    await svc.start();
    await svc.add({ id: 'a', user: 'alice', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 });
    await svc.add({ id: 'm', user: 'alice', symbol: 'AAPL', kind: 'price', direction: 'below', level: 228, source: 'mid' });
    expect(svc.watching).toEqual(['AAPL']);
    expect([...bus.live.keys()].sort()).toEqual(['md.stock.quote.AAPL', 'md.stock.trade.AAPL']);
    pubTrade(bus, 'AAPL', 229, T + 1);
    pubTrade(bus, 'AAPL', 230.5, T + 2);
    bus.publish(marketSubject('stock', 'quote', 'AAPL'), encodeTick(quote('AAPL', 229, 229.2, T + 3)));
    bus.publish(marketSubject('stock', 'quote', 'AAPL'), encodeTick(quote('AAPL', 227.8, 228, T + 4)));
    await until(() => fired.length === 2, 'two firings');
    expect(fired.map((f) => [f.id, f.user, f.value, f.previous])).toEqual([
      ['a:1', 'alice', 230.5, 229],
      ['m:1', 'alice', 227.9, 229.1],
    ]);
    expect(committedAtDelivery).toEqual([true, true]); // committed before delivery
    await svc.flush();
    expect((await store.load()).outbox).toEqual([]); // acknowledged after delivery
    // both once-rules are done: nothing left to evaluate, the subjects are released
    expect(svc.watching).toEqual([]);
    expect(bus.live.size).toBe(0);
    expect(svc.list('alice').map((a) => a.state.phase)).toEqual(['done', 'done']);
    await svc.close();
  });

  it('refuses bad rules with a clear error and survives garbage on the bus', async () => {
    const bus = new CountingBus();
    const svc = makeService(bus, new MemoryAlertStore());
    await svc.start();
    await expect(svc.add({ id: 'x', user: 'u', symbol: 'NOPE', kind: 'price', direction: 'above', level: 1 })).rejects.toMatchObject({
      code: 'ALERT_UNKNOWN_SYMBOL',
    });
    await expect(svc.add({ id: 'x', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: NaN })).rejects.toBeInstanceOf(AlertRuleError);
    await svc.add({ id: 'x', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 1 });
    bus.publish('md.stock.trade.AAPL', new Uint8Array([0xc1, 0xff, 0x00]));
    bus.publish('md.stock.trade.AAPL', encodeTick({ nonsense: true } as never));
    expect(svc.stats.badPayloads).toBe(2);
    expect(await svc.remove('x', 'someone-else')).toBe(false);
    expect(await svc.remove('x', 'u')).toBe(true);
    expect(bus.live.size).toBe(0);
    await svc.close();
    await expect(svc.add({ id: 'y', user: 'u', symbol: 'AAPL', kind: 'spread', threshold: 1 })).rejects.toThrow(/not running/);
  });

  it('keeps a batch whose commit failed and commits it, then delivers, when the store is back', async () => {
    const inner = new MemoryAlertStore();
    let failures = 0;
    let down = false;
    const store: AlertStore = {
      kind: 'memory',
      load: () => inner.load(),
      commit: async (c) => {
        if (down) {
          failures++;
          throw new Error('store down');
        }
        await inner.commit(c);
      },
      ack: (ids) => inner.ack(ids),
      readDelay: () => inner.readDelay(),
      writeDelay: (ms) => inner.writeDelay(ms),
      readAccess: (user) => inner.readAccess(user),
      writeAccess: (user, grant) => inner.writeAccess(user, grant),
      close: () => inner.close(),
    };
    const bus = new MemoryBus();
    const fired: AlertFiring[] = [];
    const svc = makeService(bus, store, (f) => void fired.push(f));
    await svc.start();
    await svc.add({ id: 'k', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 10 });
    down = true;
    pubTrade(bus, 'AAPL', 9, T + 1);
    pubTrade(bus, 'AAPL', 11, T + 2);
    await until(() => failures >= 1, 'a failed commit');
    expect(svc.pendingRetry).toBe(true);
    expect(fired).toEqual([]); // never delivered before it is committed
    // a rule cannot be added while the store is down: it is refused, not kept in memory only
    await expect(svc.add({ id: 'k2', user: 'u', symbol: 'MSFT', kind: 'spread', threshold: 1 })).rejects.toMatchObject({ code: 'ALERT_STORE' });
    expect(svc.list('u').map((a) => a.rule.id)).toEqual(['k']);
    expect(svc.watching).toEqual([]); // k is done (once), and MSFT was let go again
    down = false;
    await until(() => fired.length === 1, 'the retried commit and the delivery');
    const snap = await inner.load();
    expect(snap.alerts.map((a) => a.rule.id)).toEqual(['k']);
    expect(snap.alerts[0]!.state).toMatchObject({ phase: 'done', fired: 1 });
    expect(snap.marks).toEqual([{ stream: 'AAPL|trade', value: 11 }]);
    await svc.close();
  });

  it('sweeps expired rules without ticks and releases their symbols', async () => {
    const bus = new CountingBus();
    const store = new MemoryAlertStore();
    let now = T;
    const svc = makeService(bus, store, undefined, { sweepMs: 5, now: () => now });
    await svc.start();
    await svc.add({ id: 'e', user: 'u', symbol: 'MSFT', kind: 'spread', threshold: 1, expiresAt: T + 1000 });
    expect(bus.live.size).toBe(2);
    now = T + 1000;
    await until(() => bus.live.size === 0, 'the expired rule to be swept');
    await svc.flush();
    expect((await store.load()).alerts).toEqual([]);
    await svc.close();
  });

  it('keeps a firing budget spent on delayed ticks across its sweeps (the budget runs on tick time, not the wall clock)', async () => {
    // the delayed service evaluates ticks auth.delayMs (15 min) after they were received: their
    // time, the budget's clock, is 15 min behind the wall clock its sweep runs on
    const bus = new CountingBus();
    const fired: AlertFiring[] = [];
    const svc = new AlertService({
      bus,
      registry,
      store: new MemoryAlertStore(),
      config: { ...config, firingsPerUserPerMin: 2 },
      onFire: (f) => void fired.push(f),
      now: () => T + 15 * 60_000,
      sweepMs: 5,
    });
    await svc.start();
    await svc.add({ id: 'r', user: 'mallory', symbol: 'AAPL', kind: 'price', direction: 'above', level: 100, mode: 'rearm', rearmBy: 0.5, cooldownMs: 0 });
    let ms = T;
    const crossing = async (): Promise<void> => {
      pubTrade(bus, 'AAPL', 99, ++ms); // back under: re-arms
      pubTrade(bus, 'AAPL', 101, ++ms); // over: fires, if the budget allows
      await until(() => svc.engine.stats.ticks >= ms - T, 'the trades evaluated');
      // a few sweeps of the service in between
      await new Promise((r) => setTimeout(r, 40));
    };
    for (let i = 0; i < 6; i++) await crossing();
    // six crossings within 12 ms of tick time: a budget of 2 a minute; the third crossing is
    // swallowed and parks the rule, which the spent budget keeps from the last three
    expect(fired).toHaveLength(2);
    expect(svc.list('mallory')[0]!.state).toMatchObject({ fired: 2, suppressed: 1 });
    await svc.close();
  });
});

let redis: Awaited<ReturnType<typeof startRedis>>;
let n = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.destroy();
});

describe.each([
  [
    'memory',
    () => {
      const s = new MemoryAlertStore();
      return () => s;
    },
  ],
  [
    'redis',
    () => {
      const prefix = `test:alert-svc:${process.pid}:${++n}:`;
      return () => new RedisAlertStore(redis.url, prefix);
    },
  ],
] as const)('AlertService restart (%s store)', (_name, storeFactory) => {
  it('neither repeats a firing nor loses a crossing that happens across the restart', async () => {
    const openStore = storeFactory();
    const fired: AlertFiring[] = [];
    const bus1 = new MemoryBus();
    const store1 = openStore();
    const s1 = makeService(bus1, store1, (f) => void fired.push(f));
    await s1.start();
    await s1.add({ id: 'r', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230, mode: 'rearm', rearmBy: 2 });
    await s1.add({ id: 'gap', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 240 });
    pubTrade(bus1, 'AAPL', 229, T + 1);
    pubTrade(bus1, 'AAPL', 231, T + 2);
    await until(() => fired.length === 1, 'the first firing');
    await s1.close();
    await store1.close();

    const bus2 = new MemoryBus();
    const store2 = openStore();
    const s2 = makeService(bus2, store2, (f) => void fired.push(f));
    await s2.start();
    expect(s2.list('u').find((a) => a.rule.id === 'r')!.state).toMatchObject({ phase: 'waiting', fired: 1 });
    pubTrade(bus2, 'AAPL', 241, T + 3); // 231 -> 241: `gap` crossed 240 across the restart; `r` is waiting
    await until(() => fired.length === 2, 'the crossing across the restart');
    pubTrade(bus2, 'AAPL', 227, T + 4); // re-arms r
    pubTrade(bus2, 'AAPL', 232, T + 5); // fires r again
    await until(() => fired.length === 3, 'the re-armed firing');
    expect(fired.map((f) => [f.id, f.previous, f.value])).toEqual([
      ['r:1', 229, 231],
      ['gap:1', 231, 241],
      ['r:2', 227, 232],
    ]);
    await s2.close();
    await store2.close();
  });

  it('tries a failed delivery again while running, with the same id, until it goes through', async () => {
    const store = storeFactory()();
    const bus = new MemoryBus();
    let attempts = 0;
    const got: string[] = [];
    const s = makeService(
      bus,
      store,
      (f) => {
        if (++attempts <= 2) throw new Error('notifier down');
        got.push(f.id);
      },
      { redeliverMs: 20 },
    );
    await s.start();
    await s.add({ id: 'o', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'below', level: 100 });
    pubTrade(bus, 'AAPL', 101, T + 1);
    pubTrade(bus, 'AAPL', 99, T + 2);
    await until(() => got.length === 1, 'the delivery after two failures');
    expect(got).toEqual(['o:1']);
    expect(s.stats).toMatchObject({ deliveryErrors: 2, delivered: 1 });
    await waitFor(async () => (await store.load()).outbox.length === 0, { what: 'the delivered firing to leave the outbox', timeout: 5000, interval: 5 });
    await s.close();
    await store.close();
  });

  it('delivers again, with the same id, a firing whose delivery failed before the restart', async () => {
    const openStore = storeFactory();
    const store1 = openStore();
    const bus1 = new MemoryBus();
    let attempts = 0;
    const s1 = makeService(bus1, store1, () => {
      attempts++;
      throw new Error('notifier down');
    });
    await s1.start();
    await s1.add({ id: 'o', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'below', level: 100 });
    pubTrade(bus1, 'AAPL', 101, T + 1);
    pubTrade(bus1, 'AAPL', 99, T + 2);
    await until(() => attempts === 1, 'the failed delivery');
    await s1.close();
    expect(s1.stats.deliveryErrors).toBe(1);
    await store1.close();

    const store2 = openStore();
    const got: AlertFiring[] = [];
    const s2 = makeService(new MemoryBus(), store2, (f) => void got.push(f));
    await s2.start();
    expect(got.map((f) => [f.id, f.value])).toEqual([['o:1', 99]]);
    expect((await store2.load()).outbox).toEqual([]);
    await s2.close();
    await store2.close();
  });
});
