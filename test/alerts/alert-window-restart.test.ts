import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bus } from '../../src/bus/bus.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { AlertFiring } from '../../src/alerts/alert-engine.js';
import { AlertService } from '../../src/alerts/alert-service.js';
import type { AlertStore } from '../../src/alerts/alert-store.js';
import { MemoryAlertStore, RedisAlertStore } from '../../src/alerts/alert-store.js';
import { RollingMinMax, WINDOW_STATE_MAX_ENTRIES } from '../../src/alerts/rolling-window.js';
import { startRedis } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { quote, trade } from './ticks.js';

/**
 * Percent-change windows survive an alert-service restart (docs/alerts.md, State and restarts): a
 * `change` rule compares with the prices its window held before the restart, so the restart does
 * not change whether (or when) it fires. Before, the window started empty after a restart and the
 * rule fired late or never.
 */

const registry = defaultRegistry();
const config = loadConfig({ env: {} }).alerts;
const T = 1_900_000_000_000;
const pubTrade = (bus: Bus, p: number, ms: number) => bus.publish(marketSubject('stock', 'trade', 'AAPL'), encodeTick(trade('AAPL', p, ms)));
const pubQuote = (bus: Bus, bp: number, ap: number, ms: number) => bus.publish(marketSubject('stock', 'quote', 'AAPL'), encodeTick(quote('AAPL', bp, ap, ms)));
const until = (cond: () => boolean, what: string): Promise<unknown> => waitFor(cond, { what, timeout: 5000, interval: 5 });

let redis: Awaited<ReturnType<typeof startRedis>>;
let n = 0;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.destroy();
});

/** a store, and how to open it again (as a restarted service does) */
const stores = [
  [
    'memory',
    (): (() => AlertStore) => {
      const s = new MemoryAlertStore();
      return () => s;
    },
  ],
  [
    'redis',
    (): (() => AlertStore) => {
      const prefix = `test:alert-window:${process.pid}:${++n}:`;
      return () => new RedisAlertStore(redis.url, prefix);
    },
  ],
] as const;

describe.each(stores)('percent-change windows across an alert-service restart (%s store)', (_name, storeOf) => {
  it('a rise and a fall measured from prices seen before the restart fire on the first tick after it', async () => {
    const open = storeOf();
    const first = open();
    const fired: AlertFiring[] = [];
    const bus1 = new MemoryBus();
    const s1 = new AlertService({ bus: bus1, registry, store: first, config, onFire: (f) => void fired.push(f), now: () => T });
    await s1.start();
    await s1.add({ id: 'up', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'up', percent: 5, windowMs: 60_000 });
    await s1.add({ id: 'dn', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'down', percent: 3, windowMs: 60_000, source: 'mid' });
    pubTrade(bus1, 100, T + 1_000);
    pubTrade(bus1, 102, T + 2_000);
    pubQuote(bus1, 99.9, 100.1, T + 1_000); // mid 100
    pubQuote(bus1, 100.9, 101.1, T + 2_000); // mid 101
    await until(() => s1.stats.ticks === 4, 'the ticks evaluated');
    await s1.close();
    await first.close();

    const store2 = open();
    const bus2 = new MemoryBus();
    const s2 = new AlertService({ bus: bus2, registry, store: store2, config, onFire: (f) => void fired.push(f), now: () => T });
    await s2.start();
    try {
      pubTrade(bus2, 105.5, T + 3_000); // 5.5 % above the window's low, 100 (seen before the restart)
      pubQuote(bus2, 97.9, 98.1, T + 3_000); // mid 98: 2.97 % below 101
      pubQuote(bus2, 97.8, 97.9, T + 4_000); // mid 97.85: 3.12 % below 101
      await until(() => fired.length === 2, 'both firings after the restart');
      expect(fired.map((f) => [f.id, f.value.toFixed(2)])).toEqual([
        ['up:1', '5.50'],
        ['dn:1', '3.12'],
      ]);
    } finally {
      await s2.close();
      await store2.close();
    }
  });

  it('a window whose prices aged out meanwhile counts only what is still in it', async () => {
    const open = storeOf();
    const store = open();
    const fired: AlertFiring[] = [];
    const bus1 = new MemoryBus();
    const s1b = new AlertService({ bus: bus1, registry, store, config, onFire: (f) => void fired.push(f), now: () => T });
    await s1b.start();
    await s1b.add({ id: 'up', user: 'u', symbol: 'AAPL', kind: 'change', direction: 'up', percent: 5, windowMs: 10_000 });
    pubTrade(bus1, 100, T + 1_000);
    pubTrade(bus1, 104, T + 5_000);
    await until(() => s1b.stats.ticks === 2, 'the ticks evaluated');
    await s1b.close();
    await store.close();
    const store2 = open();
    const bus2 = new MemoryBus();
    const s2 = new AlertService({ bus: bus2, registry, store: store2, config, onFire: (f) => void fired.push(f), now: () => T });
    await s2.start();
    try {
      pubTrade(bus2, 105.5, T + 12_000); // 100 left the window at T + 11 000: 1.4 % above 104
      pubTrade(bus2, 109.3, T + 13_000); // 5.1 % above 104
      await until(() => fired.length === 1, 'the firing');
      expect(fired[0]).toMatchObject({ id: 'up:1' });
      expect(fired[0]!.value).toBeCloseTo(5.096, 2);
    } finally {
      await s2.close();
      await store2.close();
    }
  });
});

describe('a stored window', () => {
  it('is exact up to WINDOW_STATE_MAX_ENTRIES entries; a longer monotone run keeps extremes at most one group longer, never shorter', () => {
    const windowMs = 100_000;
    for (const count of [500, 5000]) {
      const live = new RollingMinMax(windowMs);
      for (let i = 0; i < count; i++) live.push(i * 10, 100 + i); // a steady rise: every tick stays in the min deque
      const restored = RollingMinMax.fromState(windowMs, JSON.parse(JSON.stringify(live.state())));
      expect(restored.state().min.length / 2).toBeLessThanOrEqual(WINDOW_STATE_MAX_ENTRIES);
      const group = Math.ceil(count / WINDOW_STATE_MAX_ENTRIES) * 10; // ms spanned by a merged group
      for (let t = count * 10; t < count * 10 + windowMs + 20; t += 7) {
        live.push(t, 1e6);
        restored.push(t, 1e6);
        if (count <= WINDOW_STATE_MAX_ENTRIES) expect(restored.min).toBe(live.min);
        else {
          expect(restored.min!).toBeLessThanOrEqual(live.min!); // never shorter
          // the restored low is one the live window held at most `group` ms earlier
          const earlier = Math.max(0, Math.ceil((t - windowMs - group) / 10));
          expect(restored.min!).toBeGreaterThanOrEqual(Math.min(100 + earlier, live.min!));
        }
      }
    }
  });

  it('past WINDOW_STATE_MAX_ENTRIES, a restored window can measure a rise an uninterrupted run does not (the bound in docs/alerts.md)', () => {
    const windowMs = 10_000;
    const live = new RollingMinMax(windowMs);
    for (let i = 0; i < 2048; i++) live.push(i, 100 + i * 0.001); // a steady rise, 1 ms apart: groups of 2
    const restored = RollingMinMax.fromState(windowMs, JSON.parse(JSON.stringify(live.state())));
    // the first tick (100 at 0) has left the live window; the restored one holds it until 1 ms
    for (const w of [live, restored]) w.push(windowMs, 105);
    const rise = (w: RollingMinMax) => ((105 - w.min!) / w.min!) * 100;
    expect(rise(restored)).toBeGreaterThanOrEqual(5); // an `up 5 %` rule fires here after the restart
    expect(rise(live)).toBeLessThan(5); // and not without it
  });
});
