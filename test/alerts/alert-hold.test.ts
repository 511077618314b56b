import { describe, expect, it } from 'vitest';
import { AccessReports } from '../../src/alerts/access-reports.js';
import type { AlertsApi, EntitleResult } from '../../src/alerts/alert-api.js';
import type { EntitlementGrant } from '../../src/access/entitlements.js';
import { AlertEngine } from '../../src/alerts/alert-engine.js';
import type { AlertFiring } from '../../src/alerts/alert-engine.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { redactAlert } from '../../src/notifications/alert-redaction.js';
import { trade } from './ticks.js';

describe('AlertEngine.hold / release (rules held for their user’s entitlements)', () => {
  const make = () => {
    const fired: AlertFiring[] = [];
    const engine = new AlertEngine({ registry: defaultRegistry(), onFire: (f) => void fired.push(f) });
    return { engine, fired };
  };
  const rule = { id: 'r', user: 'u', symbol: 'AAPL', kind: 'price', direction: 'above', level: 100, mode: 'rearm', rearmBy: 1 } as const;

  it('a held rule is listed but never fires; released, it starts fresh (the crossing made while held does not fire) and its firing ids go on', () => {
    const { engine, fired } = make();
    engine.add(rule, 0);
    engine.onTick(trade('AAPL', 99, 1));
    engine.onTick(trade('AAPL', 101, 2));
    expect(fired.map((f) => f.id)).toEqual(['r:1']);
    expect(engine.hold('r', 'not-entitled')).toBe(true);
    expect(engine.hold('r', 'not-entitled')).toBe(false);
    expect(engine.stats.held).toBe(1);
    expect(engine.watches('AAPL')).toBe(false);
    engine.onTick(trade('AAPL', 98, 3));
    engine.onTick(trade('AAPL', 102, 4));
    expect(fired).toHaveLength(1);
    expect(engine.list('u')[0]!.state).toMatchObject({ held: 'not-entitled', fired: 1 });
    // another reason replaces the first, still held
    expect(engine.hold('r', 'delayed-only')).toBe(true);
    expect(engine.stats.held).toBe(1);
    expect(engine.release('r')).toBe(true);
    expect(engine.release('r')).toBe(false);
    expect(engine.stats.held).toBe(0);
    expect(engine.get('r')!.state).toMatchObject({ phase: 'fresh', fired: 1 });
    expect(engine.get('r')!.state.held).toBeUndefined();
    engine.onTick(trade('AAPL', 103, 5)); // arms only
    expect(fired).toHaveLength(1);
    engine.onTick(trade('AAPL', 98, 6));
    engine.onTick(trade('AAPL', 100, 7));
    expect(fired.map((f) => f.id)).toEqual(['r:1', 'r:2']);
  });

  it('a hold is stored with the rule: restored held, counted, and an expiry still removes it', () => {
    const { engine } = make();
    engine.add({ ...rule, expiresAt: 1000 }, 0);
    engine.hold('r', 'not-entitled');
    const stored = engine.takeChanges().upserts;
    expect(stored[0]!.state.held).toBe('not-entitled');
    const { engine: restarted, fired } = make();
    restarted.restore(stored, [], 1);
    expect(restarted.stats.held).toBe(1);
    restarted.onTick(trade('AAPL', 99, 2));
    restarted.onTick(trade('AAPL', 101, 3));
    expect(fired).toHaveLength(0);
    expect(restarted.sweep(1000)).toBe(1);
    expect(restarted.stats).toMatchObject({ held: 0, rules: 0 });
  });
});

describe('AccessReports: one message per user and grant, not one per connect', () => {
  const fakeApi = (calls: [string, EntitlementGrant][], fail = false): AlertsApi =>
    ({
      entitle: async (user: string, grant: EntitlementGrant): Promise<EntitleResult> => {
        calls.push([user, grant]);
        if (fail) throw new Error('no alert service');
        return { held: 0, released: 0 };
      },
    }) as unknown as AlertsApi;

  it('sends 10,000 reconnects with the same token once, a changed grant at once, the same grant again after the TTL', () => {
    const calls: [string, EntitlementGrant][] = [];
    let now = 0;
    const reports = new AccessReports({ api: fakeApi(calls), ttlMs: 60_000, now: () => now });
    for (let i = 0; i < 10_000; i++) reports.report('u', { classes: ['crypto'] });
    expect(calls).toHaveLength(1);
    reports.report('u', 'realtime');
    reports.report('v', 'realtime');
    expect(calls).toEqual([
      ['u', { classes: ['crypto'] }],
      ['u', 'realtime'],
      ['v', 'realtime'],
    ]);
    now = 60_000;
    reports.report('u', 'realtime');
    expect(calls).toHaveLength(4);
    expect(reports.stats).toMatchObject({ sent: 4, skipped: 9_999 });
  });

  it('forgets a report that failed, so the next connect sends it again, and bounds the users it remembers', async () => {
    const calls: [string, EntitlementGrant][] = [];
    const reports = new AccessReports({ api: fakeApi(calls, true), maxUsers: 2 });
    reports.report('u', 'none');
    await new Promise((r) => setImmediate(r));
    reports.report('u', 'none');
    expect(calls).toHaveLength(2);
    const ok: [string, EntitlementGrant][] = [];
    const bounded = new AccessReports({ api: fakeApi(ok), maxUsers: 2 });
    for (const u of ['a', 'b', 'c', 'a']) bounded.report(u, 'none');
    // 'a' was forgotten when 'c' came: sent again
    expect(ok.map(([u]) => u)).toEqual(['a', 'b', 'c', 'a']);
  });
});

describe('redactAlert', () => {
  const note = (data: Record<string, unknown>) =>
    ({ kind: 'notification', id: '#alert:x:1', type: 'alert', title: 'AAPL above 230', body: 'AAPL at 231 (was 229)', priority: 'high', data, t: 1 }) as const;
  const rt = { rule: 'a', firing: 1, symbol: 'AAPL', kind: 'price', value: 231, previous: 229, level: 230, at: 1 };

  it('keeps an alert the access covers at its level, withholds the prices otherwise, and leaves other items alone', () => {
    expect(redactAlert(note(rt), () => 'realtime', 900)).toEqual(note(rt));
    const r = redactAlert(note(rt), () => 'delayed', 900);
    expect(r).toMatchObject({ redacted: true, data: { rule: 'a', firing: 1, symbol: 'AAPL', level: 230, at: 1 } });
    expect(JSON.stringify(r)).not.toMatch(/231|229/);
    const delayed = { ...rt, delayed: true, delayMs: 900 };
    expect(redactAlert(note(delayed), () => 'delayed', 900)).toEqual(note(delayed));
    expect(redactAlert(note(delayed), () => 'delayed', 1000)).toMatchObject({ redacted: true });
    expect(redactAlert(note(delayed), () => 'none', 900)).toMatchObject({ redacted: true });
    const other = { ...note(rt), type: 'order.filled' };
    expect(redactAlert(other, () => 'none', 900)).toBe(other);
    const read = { kind: 'read', id: 'r1', upTo: 3, t: 1 } as const;
    expect(redactAlert(read, () => 'none', 900)).toBe(read);
  });
});
