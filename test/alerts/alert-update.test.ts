import { afterEach, describe, expect, it } from 'vitest';
import { LocalAlerts } from '../../src/alerts/alert-api.js';
import type { AlertChanges } from '../../src/alerts/alert-engine.js';
import { AlertService } from '../../src/alerts/alert-service.js';
import { MemoryAlertStore } from '../../src/alerts/alert-store.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { waitFor } from '../helpers/wait.js';
import { trade } from './ticks.js';

/**
 * PUT /v1/users/{user}/alerts/{id} (LocalAlerts.update): "A PUT whose new rule is invalid leaves
 * the old one as it was" (docs/alerts.md, Service API) — its state and firing count included, so
 * its next firing does not repeat an earlier firing id (the notifications log would drop it).
 */
const registry = defaultRegistry();
const T = 1_900_000_000_000;

/** A memory store whose commits can be made to fail. */
class FlakyStore extends MemoryAlertStore {
  failing = false;
  override commit(changes: AlertChanges): Promise<void> {
    if (this.failing) return Promise.reject(new Error('store down'));
    return super.commit(changes);
  }
}

const open: AlertService[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

async function setup(alerts: { maxWindowMs?: number } = {}) {
  const config = { ...loadConfig({ env: {} }).alerts, flushMs: 0, ...alerts };
  const bus = new MemoryBus();
  const store = new FlakyStore();
  const fired: string[] = [];
  const mk = () => new AlertService({ bus, registry, store, config, onFire: (f) => void fired.push(f.id), now: () => T });
  const realtime = mk();
  const delayed = mk();
  await realtime.start();
  await delayed.start();
  open.push(realtime, delayed);
  const api = new LocalAlerts({ registry, realtime, delayed, maxRulesPerUser: config.maxRulesPerUser, delayMs: 900_000, now: () => T });
  const pub = (p: number, ms: number) => bus.publish(marketSubject('stock', 'trade', 'AAPL'), encodeTick(trade('AAPL', p, ms)));
  return { api, realtime, store, fired, pub };
}

const rule = { id: 'r1', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230, mode: 'rearm', rearmBy: 2 };

async function fireOnce(s: Awaited<ReturnType<typeof setup>>) {
  await s.api.create('alice', rule, 'realtime');
  s.pub(229, T + 1);
  s.pub(231, T + 2);
  await waitFor(() => s.fired.length === 1, { what: 'first firing', timeout: 5000, interval: 5 });
  await waitFor(async () => (await s.api.get('alice', 'r1')).state.phase === 'waiting', { what: 'committed', timeout: 5000, interval: 5 });
}

describe('PUT of an alert rule that cannot be applied keeps the old rule as it was', () => {
  it('refuses a window above alerts.maxWindowMs with ALERT_INVALID before touching the old rule', async () => {
    const s = await setup({ maxWindowMs: 60_000 });
    await fireOnce(s);
    const before = await s.api.get('alice', 'r1');
    const bad = { symbol: 'AAPL', kind: 'change', direction: 'up', percent: 5, windowMs: 120_000 };
    await expect(s.api.update('alice', 'r1', bad, 'realtime')).rejects.toMatchObject({ status: 400, code: 'ALERT_INVALID', field: 'windowMs' });
    expect(await s.api.get('alice', 'r1')).toEqual(before);
    // the old rule goes on: re-arms at 228 and fires its second firing (a new id)
    s.pub(227, T + 3);
    s.pub(232, T + 4);
    await waitFor(() => s.fired.length === 2, { what: 'second firing', timeout: 5000, interval: 5 });
    expect(new Set(s.fired).size).toBe(2);
  });

  it('keeps the old rule with its state when the store refuses the new one (503 ALERT_STORE)', async () => {
    const s = await setup();
    await fireOnce(s);
    const before = await s.api.get('alice', 'r1');
    // the old rule's deletion commits, the new rule's commit fails
    const commit = s.store.commit.bind(s.store);
    let commits = 0;
    s.store.commit = (c) => (++commits >= 2 ? Promise.reject(new Error('store down')) : commit(c));
    await expect(s.api.update('alice', 'r1', { ...rule, level: 240 }, 'realtime')).rejects.toMatchObject({ status: 503, code: 'ALERT_STORE' });
    s.store.commit = commit;
    expect(await s.api.get('alice', 'r1')).toEqual(before);
    s.pub(227, T + 3);
    s.pub(232, T + 4);
    await waitFor(() => s.fired.length === 2, { what: 'second firing', timeout: 5000, interval: 5 });
    expect(new Set(s.fired).size).toBe(2);
    // and the store holds the old rule with its state (a restart resumes it)
    await s.realtime.flush();
    const stored = (await s.store.load()).alerts.filter((a) => a.rule.user === 'alice');
    expect(stored).toHaveLength(1);
    expect(stored[0]!.state).toMatchObject({ fired: 2 });
  });
});
