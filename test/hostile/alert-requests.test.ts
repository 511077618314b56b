import { afterEach, describe, expect, it } from 'vitest';
import { AlertRequestError, LocalAlerts, MAX_QUEUED_ALERT_REQUESTS } from '../../src/alerts/alert-api.js';
import type { AlertChanges } from '../../src/alerts/alert-engine.js';
import { AlertService } from '../../src/alerts/alert-service.js';
import { MemoryAlertStore } from '../../src/alerts/alert-store.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';

/**
 * One user's flood of alert requests against everyone else's. The alert API (LocalAlerts: the
 * embedded engine's, and the `tickwire alerts` service's behind every gateway in NATS mode) ran
 * every request of every user one after another, each waiting for its store commits (an update
 * is two: the old rule out, the new one in). A user's 20 connections may send 1000 frames a
 * second, so one user's burst of `alert.update`s made every other user's request wait behind it:
 * measured against a `tickwire start` process with Redis on loopback, 20 connections of one user
 * sending their burst of updates and then 50 a second each held another user's `alert.create`
 * up to 1.7 s (2 ms before the flood), and longer with a store farther than loopback.
 *
 * The checks a request makes and the writes they guard are one user's (the rule count, the id),
 * so a user's requests still run one after another, but users no longer wait for each other:
 * their rules share the next store commit. And a user's queue is bounded: beyond
 * MAX_QUEUED_ALERT_REQUESTS (32) waiting, a request is refused RATE_LIMIT (429) at once.
 */
const registry = defaultRegistry();
const T = 1_900_000_000_000;

/** A store whose commits take a few milliseconds, as a store over the network does. */
class SlowStore extends MemoryAlertStore {
  commits = 0;
  override async commit(changes: AlertChanges): Promise<void> {
    this.commits++;
    await new Promise((r) => setTimeout(r, 5));
    return super.commit(changes);
  }
}

const open: AlertService[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

describe('hostile: one user flooding the alert API', () => {
  it("another user's create does not wait for the flood: it shares the next commits", async () => {
    const config = { ...loadConfig({ env: {} }).alerts, flushMs: 0 };
    const bus = new MemoryBus();
    const store = new SlowStore();
    const mk = () => new AlertService({ bus, registry, store, config, onFire: () => undefined, now: () => T });
    const realtime = mk();
    const delayed = mk();
    await realtime.start();
    await delayed.start();
    open.push(realtime, delayed);
    const api = new LocalAlerts({ registry, realtime, delayed, maxRulesPerUser: config.maxRulesPerUser, delayMs: 900_000, now: () => T });
    const rule = (id: string, level: number) => ({ id, symbol: 'AAPL', kind: 'price', direction: 'above', level });
    await api.create('mallory', rule('m', 100), 'realtime');

    const done: string[] = [];
    const flood = Array.from({ length: 30 }, (_, i) => api.update('mallory', 'm', rule('m', 101 + i), 'realtime').then(() => void done.push(`mallory-${i}`)));
    const bob = api.create('bob', rule('b', 300), 'realtime').then(() => void done.push('bob'));
    await Promise.all([...flood, bob]);

    // bob's rule is committed with the first commits, not after mallory's 60
    expect(done.indexOf('bob')).toBeLessThan(3);
    // mallory's updates still ran one after another, in order, each on the rule the last one left
    expect(done.filter((d) => d !== 'bob')).toEqual(Array.from({ length: 30 }, (_, i) => `mallory-${i}`));
    expect((await api.get('mallory', 'm')) as unknown).toMatchObject({ level: 130 });
    expect((await api.list('mallory')).length).toBe(1);
    expect((await api.get('bob', 'b')) as unknown).toMatchObject({ level: 300 });
    // nothing of either user is left queued
    expect(api.pendingUsers).toBe(0);
  });

  it("one user's requests still see each other: concurrent creates of one id, one wins; the rule count holds", async () => {
    const config = { ...loadConfig({ env: {} }).alerts, flushMs: 0 };
    const bus = new MemoryBus();
    const store = new SlowStore();
    const mk = () => new AlertService({ bus, registry, store, config, onFire: () => undefined, now: () => T });
    const realtime = mk();
    const delayed = mk();
    await realtime.start();
    await delayed.start();
    open.push(realtime, delayed);
    const api = new LocalAlerts({ registry, realtime, delayed, maxRulesPerUser: 5, delayMs: 900_000, now: () => T });
    const rule = (id: string, level: number) => ({ id, symbol: 'AAPL', kind: 'price', direction: 'above', level });
    const same = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => api.create('eve', rule('x', 100 + i), i === 3 ? 'delayed' : 'realtime')));
    expect(same.filter((r) => r.status === 'fulfilled').length).toBe(1);
    const many = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => api.create('eve', rule(`y${i}`, 100 + i), i % 2 ? 'delayed' : 'realtime')));
    expect(many.filter((r) => r.status === 'fulfilled').length).toBe(4);
    expect((await api.list('eve')).length).toBe(5);
  });

  it('a user with 32 requests waiting gets RATE_LIMIT for the next, at once; others and entitlement reports are not refused', async () => {
    const config = { ...loadConfig({ env: {} }).alerts, flushMs: 0 };
    const bus = new MemoryBus();
    const store = new SlowStore();
    const mk = () => new AlertService({ bus, registry, store, config, onFire: () => undefined, now: () => T });
    const realtime = mk();
    const delayed = mk();
    await realtime.start();
    await delayed.start();
    open.push(realtime, delayed);
    const api = new LocalAlerts({ registry, realtime, delayed, maxRulesPerUser: config.maxRulesPerUser, delayMs: 900_000, now: () => T });
    const rule = (id: string, level: number) => ({ id, symbol: 'AAPL', kind: 'price', direction: 'above', level });
    await api.create('mallory', rule('m', 100), 'realtime');
    const settled = Promise.allSettled(Array.from({ length: 50 }, (_, i) => api.update('mallory', 'm', rule('m', 101 + i), 'realtime')));
    const report = api.entitle('mallory', 'realtime');
    const bob = api.create('bob', rule('b', 300), 'realtime');
    const results = await settled;
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as AlertRequestError);
    expect(results.filter((r) => r.status === 'fulfilled').length).toBe(MAX_QUEUED_ALERT_REQUESTS);
    expect(refused.length).toBe(50 - MAX_QUEUED_ALERT_REQUESTS);
    for (const e of refused) {
      expect(e).toBeInstanceOf(AlertRequestError);
      expect(e.status).toBe(429);
      expect(e.code).toBe('RATE_LIMIT');
    }
    await expect(report).resolves.toMatchObject({ held: 0 });
    await expect(bob).resolves.toMatchObject({ id: 'b' });
    // the refused updates did nothing: the rule is the last accepted one's
    expect((await api.get('mallory', 'm')) as unknown).toMatchObject({ level: 100 + MAX_QUEUED_ALERT_REQUESTS });
  });
});
