import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';

/**
 * One user's percent-change rules on one symbol, each with a window of its own length
 * (`windowMs` 60000, 60001, ...). Every distinct window is a rolling min/max the alert service
 * pushes each of the symbol's ticks into, and commits to its store; in a steady rise or fall it
 * holds every tick of its length. With `alerts.maxRulesPerUser` (1000) windows, one user made each
 * tick of the symbol cost about 180 times the CPU of one window (220 µs instead of 1.2 µs per
 * tick, measured on the engine alone) and 20 000 rising ticks held 342 MiB. A user may hold at
 * most `alerts.maxWindowsPerSymbol` distinct windows (source and length) per symbol.
 */
describe('hostile: percent-change windows of one user on one symbol', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      alerts: { flushMs: 0 },
      limits: { messagesPerSec: 1000, messageBurst: 1000 },
    });
  });
  afterAll(() => engine.close());

  const change = (id: string, windowMs: number, extra: Record<string, unknown> = {}) => ({
    id,
    symbol: 'AAPL',
    kind: 'change',
    direction: 'up',
    percent: 5,
    windowMs,
    ...extra,
  });

  it('refuses a window beyond alerts.maxWindowsPerSymbol (in band and over the service API), and the service keeps only those', async () => {
    const mallory = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'mallory' })}` }, encoding: 'json' });
    const answers = [];
    for (let i = 0; i < 12; i++) answers.push(await mallory.request({ op: 'alert.create', id: i, rule: change(`w${i}`, 60_000 + i) }));
    expect(answers.slice(0, 8).map((a) => a.op)).toEqual(Array(8).fill('alert.create'));
    for (const a of answers.slice(8)) {
      expect(a).toMatchObject({ op: 'error', code: 'ALERT_LIMIT' });
      expect(a.message).toContain('alerts.maxWindowsPerSymbol');
    }
    // a window the user has already: accepted (it costs nothing more), also for a `down` rule
    expect(await mallory.request({ op: 'alert.create', id: 20, rule: change('again', 60_000, { percent: 7 }) })).toMatchObject({ op: 'alert.create' });
    expect(await mallory.request({ op: 'alert.create', id: 21, rule: change('down', 60_001, { direction: 'down' }) })).toMatchObject({
      op: 'alert.create',
    });
    // another symbol has windows of its own
    expect(await mallory.request({ op: 'alert.create', id: 22, rule: change('msft', 60_011, { symbol: 'MSFT' }) })).toMatchObject({
      op: 'alert.create',
    });
    // the service API counts the same way
    const r = await api(engine, 'POST', '/v1/users/mallory/alerts', change('api', 60_020));
    expect(r.status).toBe(429);
    expect(r.body).toMatchObject({ error: 'ALERT_LIMIT', field: 'windowMs' });
    // an update of a rule that shares its window onto a new one is refused too, and leaves the rule as it was
    expect(await mallory.request({ op: 'alert.update', id: 23, rule: change('again', 60_030, { percent: 7 }) })).toMatchObject({
      op: 'error',
      code: 'ALERT_LIMIT',
    });
    expect((await api(engine, 'GET', '/v1/users/mallory/alerts/again')).body).toMatchObject({ windowMs: 60_000, percent: 7 });
    // a rule alone on its window moves to a new one: the old window goes, so it is accepted
    expect(await mallory.request({ op: 'alert.update', id: 24, rule: change('w7', 60_040) })).toMatchObject({ op: 'alert.update' });

    // what a tick of AAPL costs: one rise and one fall stream per window of the symbol, no more
    const svc = engine.userAlerts!.alerts!.services!.realtime;
    publishTick(engine, 'stock', { k: 'trade', sym: 'AAPL', id: 'x1', p: 100, s: 1 } as never);
    await waitFor(() => svc.engine.stats.ticks > 0, { timeout: 5000, what: 'the tick evaluated' });
    const windows = new Set(
      svc.engine
        .marks()
        .map((m) => /\|change:(\w+:\d+):/.exec(m.stream)?.[1])
        .filter((w) => w !== undefined),
    );
    expect(windows.size).toBe(8);
    mallory.close();
  });

  it('another user has a budget of its own', async () => {
    const trent = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'trent' })}` }, encoding: 'json' });
    for (let i = 0; i < 8; i++)
      expect(await trent.request({ op: 'alert.create', id: i, rule: change(`t${i}`, 120_000 + i) })).toMatchObject({ op: 'alert.create' });
    expect(await trent.request({ op: 'alert.create', id: 9, rule: change('t9', 120_009) })).toMatchObject({ op: 'error', code: 'ALERT_LIMIT' });
    trent.close();
  });
});

/**
 * The per-user bound does not bound many users: 125 users of 8 windows each on one symbol made a
 * tick of it cost 384 µs instead of 8.5 µs (measured on the engine alone), and one service token
 * posts for any user id. All users' rules may use at most `alerts.maxWindowsPerSymbolAllUsers`
 * (64) distinct windows per symbol; a rule on a window the symbol has is accepted.
 */
describe('hostile: percent-change windows of many users on one symbol', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, alerts: { flushMs: 0 } });
  });
  afterAll(() => engine.close());

  const rule = (id: string, windowMs: number, symbol = 'AAPL') => ({ id, symbol, kind: 'change', direction: 'up', percent: 5, windowMs });
  const create = (user: string, body: unknown) => api(engine, 'POST', `/v1/users/${user}/alerts`, body);

  it('refuses a new window beyond alerts.maxWindowsPerSymbolAllUsers, whoever asks; a window the symbol has is accepted', async () => {
    const statuses: number[] = [];
    for (let u = 0; u < 9; u++) for (let w = 0; w < 8; w++) statuses.push((await create(`u${u}`, rule(`w${w}`, 60_000 + u * 8 + w))).status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(64);
    expect(statuses.slice(64)).toEqual(Array(8).fill(429));
    const refused = await create('late', rule('mine', 59_000));
    expect(refused).toMatchObject({ status: 429, body: { error: 'ALERT_LIMIT', field: 'windowMs' } });
    expect(refused.body.message).toContain('alerts.maxWindowsPerSymbolAllUsers');
    // a window another user's rules watch costs nothing more: accepted
    expect(await create('late', rule('shared', 60_003))).toMatchObject({ status: 201 });
    // another symbol has windows of its own
    expect(await create('late', rule('msft', 59_000, 'MSFT'))).toMatchObject({ status: 201 });
    // a window whose rules are all deleted frees its place
    expect(await api(engine, 'DELETE', '/v1/users/u0/alerts/w0')).toMatchObject({ status: 200 });
    expect(await create('late', rule('mine', 59_000))).toMatchObject({ status: 201 });
    expect(await create('late', rule('one-more', 58_000))).toMatchObject({ status: 429, body: { error: 'ALERT_LIMIT' } });
  });
});
