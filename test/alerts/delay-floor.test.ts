import { describe, expect, it } from 'vitest';
import { LocalAlerts } from '../../src/alerts/alert-api.js';
import { AlertService } from '../../src/alerts/alert-service.js';
import { MemoryAlertStore } from '../../src/alerts/alert-store.js';
import { DelayFloor } from '../../src/alerts/delay-floor.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';

/** delay-floor.ts: the gateways' delay delayed rules were accepted under, and the hold it implies. */
describe('DelayFloor', () => {
  const floor = (ownMs: number, storedMs: number | undefined) => {
    const writes: number[] = [];
    const f = new DelayFloor({ ownMs, storedMs, write: async (ms) => void writes.push(ms) });
    return { f, writes };
  };

  it('records the longest gateway delay seen, and writes only when it changes', async () => {
    const { f, writes } = floor(900, undefined);
    expect(f.held).toBe(false);
    expect(await f.observe(300)).toBe(false);
    expect(await f.observe(900)).toBe(false);
    expect(await f.observe(300)).toBe(false); // a lower one does not lower it
    expect(await f.observe(1200)).toBe(false); // longer than the service's: refused before, not recorded
    expect(writes).toEqual([300, 900]);
    expect(f.storedMs).toBe(900);
  });

  it('holds when the stored floor is above the own delay; a gateway within the own delay lifts it and becomes the floor', async () => {
    const { f, writes } = floor(100, 400);
    expect(f.held).toBe(true);
    expect(await f.observe(400)).toBe(false);
    expect(f.held).toBe(true);
    expect(await f.observe(50)).toBe(true);
    expect(f.held).toBe(false);
    expect(writes).toEqual([50]);
    expect(floor(400, 400).f.held).toBe(false);
  });

  it('a failed write keeps the hold and the old floor, and throws', async () => {
    const f = new DelayFloor({ ownMs: 100, storedMs: 400, write: () => Promise.reject(new Error('store down')) });
    await expect(f.observe(100)).rejects.toThrow(/store down/);
    expect(f.held).toBe(true);
    expect(f.storedMs).toBe(400);
  });

  it('a rule whose delay cannot be recorded is refused with ALERT_STORE (503), and not kept', async () => {
    const registry = defaultRegistry();
    const config = { ...loadConfig({ env: {} }).alerts, flushMs: 0 };
    const bus = new MemoryBus();
    const mk = () => new AlertService({ bus, registry, store: new MemoryAlertStore(), config, onFire: () => undefined });
    const realtime = mk();
    const delayed = mk();
    await realtime.start();
    await delayed.start();
    try {
      const f = new DelayFloor({ ownMs: 100, storedMs: undefined, write: () => Promise.reject(new Error('store down')) });
      const api = new LocalAlerts({ registry, realtime, delayed, maxRulesPerUser: 10, delayMs: 100, floor: f });
      const rule = { id: 'r1', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 };
      await expect(api.create('u', rule, 'delayed', { minDelayMs: 100 })).rejects.toMatchObject({ status: 503, code: 'ALERT_STORE' });
      expect(await api.list('u')).toEqual([]);
    } finally {
      await realtime.close();
      await delayed.close();
    }
  });
});
