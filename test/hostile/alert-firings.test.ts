import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { waitFor } from '../helpers/wait.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine } from '../auth/helpers.js';

/**
 * Notification floods to oneself: one user's `rearm` rules with no cooldown, all at one level of a
 * symbol whose price goes back and forth over it. Every crossing fires every rule, and every firing
 * is a notification appended to the durable log (JetStream, Redis): 200 rules and 20 crossings
 * were 4000 appends, with nothing to bound them but the user's rule count and the market. A user
 * gets at most `alerts.firingsPerUserPerMin` firings a minute (a minute's worth at once); a
 * crossing beyond it is swallowed (counted in `suppressed`) and its rule parked until the budget
 * holds a firing again. Before parking, the swallowed rules were re-armed and crossed again on
 * every bounce of the price: work on every tick that no firing could come of (one user's 1,000
 * such rules cost 216 µs a tick, 100 users 31.6 ms).
 */
describe('hostile: alert firings of one user', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      alerts: { flushMs: 0, firingsPerUserPerMin: 100 },
    });
  });
  afterAll(() => engine.close());

  it('are bounded by alerts.firingsPerUserPerMin; another user still gets its firing', async () => {
    const rule = (id: string, extra: Record<string, unknown> = {}) => ({
      id,
      symbol: 'AAPL',
      kind: 'price',
      source: 'mid',
      direction: 'above',
      level: 100,
      mode: 'rearm',
      rearmBy: 0.05,
      cooldownMs: 0,
      ...extra,
    });
    for (let i = 0; i < 200; i++) expect((await api(engine, 'POST', '/v1/users/mallory/alerts', rule(`r${i}`))).status).toBe(201);
    expect((await api(engine, 'POST', '/v1/users/bob/alerts', rule('bob-1', { mode: 'once', rearmBy: undefined }))).status).toBe(201);
    const svc = engine.userAlerts!.alerts!.services!.realtime;
    const t0 = Date.now();
    let ticks = 0;
    const quote = (mid: number) => {
      publishTick(engine, 'stock', { k: 'quote', sym: 'AAPL', bp: mid - 0.01, ap: mid + 0.01, t: t0 + ticks * 10 } as never);
      ticks++;
    };
    quote(99.9); // arms every rule
    for (let k = 0; k < 20; k++) {
      quote(100.1); // crosses: fires
      quote(99.9); // back by rearmBy: re-arms
    }
    await waitFor(() => svc.engine.stats.ticks >= ticks, { timeout: 10_000, what: 'every quote evaluated' });
    await waitFor(() => svc.stats.delivered === svc.engine.stats.fired, { timeout: 10_000, what: 'firings delivered' });
    const list = (await api(engine, 'GET', '/v1/users/mallory/alerts')).body.alerts as { state: { fired: number; suppressed: number } }[];
    const fired = list.reduce((n, a) => n + a.state.fired, 0);
    const suppressed = list.reduce((n, a) => n + a.state.suppressed, 0);
    // 200 rules x 20 crossings: a minute's budget is delivered; each rule's first crossing past
    // it is swallowed and the rule parked: not re-armed or crossed again while the budget is spent
    expect(fired).toBe(100);
    expect(suppressed).toBe(200);
    // re-armed: the 100 that fired, once (before, 200 x 19 more: every bounce re-armed every rule)
    expect(svc.engine.stats.rearmed).toBe(100);
    // the swallowed crossings are the budget's (no rule has a cooldown): operators see them apart
    expect(svc.engine.stats.overBudget).toBe(suppressed);
    const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } })).text();
    expect(metrics).toMatch(new RegExp(`^tickwire_alert_over_budget_total\\{market="realtime"\\} ${suppressed}$`, 'm'));
    // bob's rule is another user's budget: it fired on the first crossing
    expect((await api(engine, 'GET', '/v1/users/bob/alerts/bob-1')).body.state).toMatchObject({ phase: 'done', fired: 1 });
    expect(svc.stats.delivered).toBe(101);

    // the budget refills with the market's time: a minute later a crossing fires again
    publishTick(engine, 'stock', { k: 'quote', sym: 'AAPL', bp: 100.09, ap: 100.11, t: t0 + 61_000 } as never);
    await waitFor(() => svc.engine.stats.ticks >= ticks + 1, { timeout: 10_000, what: 'the late quote evaluated' });
    const after = (await api(engine, 'GET', '/v1/users/mallory/alerts')).body.alerts as { state: { fired: number } }[];
    expect(after.reduce((n, a) => n + a.state.fired, 0)).toBe(200);

    // deleting every rule and creating one again does not refill the budget
    for (let i = 0; i < 200; i++) expect((await api(engine, 'DELETE', `/v1/users/mallory/alerts/r${i}`)).status).toBe(200);
    expect((await api(engine, 'POST', '/v1/users/mallory/alerts', rule('fresh'))).status).toBe(201);
    publishTick(engine, 'stock', { k: 'quote', sym: 'AAPL', bp: 99.89, ap: 99.91, t: t0 + 61_010 } as never);
    publishTick(engine, 'stock', { k: 'quote', sym: 'AAPL', bp: 100.09, ap: 100.11, t: t0 + 61_020 } as never);
    await waitFor(() => svc.engine.stats.ticks >= ticks + 3, { timeout: 10_000, what: 'the last quotes evaluated' });
    expect((await api(engine, 'GET', '/v1/users/mallory/alerts/fresh')).body.state).toMatchObject({ fired: 0, suppressed: 1 });
    // a budget is forgotten once it is full again (nothing to remember), not before
    svc.engine.forgetFullBudgets(t0 + 61_020);
    expect(svc.engine.budgetsHeld).toBe(1);
    svc.engine.forgetFullBudgets(t0 + 61_020 + 60_000);
    expect(svc.engine.budgetsHeld).toBe(0);
  });
});
