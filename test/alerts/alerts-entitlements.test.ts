import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { scrape, series } from '../ops/prom-text.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';

/**
 * Entitlements withdrawn after a rule was created (docs/alerts.md, Entitlements): the gateway
 * tells the alert service the token of each connect, the service holds the rules the token no
 * longer entitles, and the gateway redacts the alerts (live and replayed) and the listed prices
 * that the connection's own token does not entitle, before the service has heard of it too.
 */
const REALTIME = { classes: ['stock', 'crypto'] };
const NO_STOCK = { classes: ['crypto'] };
const DELAYED_STOCK = { classes: ['crypto'], delayed: ['stock'] };

const isNote = (f: Frame) => f.op === 'data' && f.ch === 'notifications' && f.d.kind === 'notification';

async function connect(engine: Engine, sub: string, ent: object): Promise<TestClient> {
  return TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub, claims: { ent } })}` }, encoding: 'json' });
}

function trade(engine: Engine, sym: string, p: number): void {
  publishTick(engine, 'stock', { k: 'trade', sym, id: `t${Math.random()}`, p, s: 1 } as never);
}

async function listed(c: TestClient, id: number): Promise<any[]> {
  return (await c.request({ op: 'alert.list', id })).alerts;
}

describe('alerts: a rule follows its user’s current entitlements (embedded)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN, delayMs: 400 },
      alerts: { flushMs: 0 },
    });
  });
  afterAll(() => engine.close());

  const state = async (user: string, id: string) => (await api(engine, 'GET', `/v1/users/${user}/alerts/${id}`)).body;

  it('holds the rule of a user whose new token lost the symbol (no firing), and evaluates it again once the token has it back', async () => {
    const rule = { id: 'aapl-230', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230, mode: 'rearm', rearmBy: 1 };
    const first = await connect(engine, 'alice', REALTIME);
    expect((await first.request({ op: 'alert.create', id: 1, rule })).alert).toMatchObject({ id: 'aapl-230', delayed: false });
    // a control rule of another user on the same symbol proves the ticks below were evaluated
    expect((await api(engine, 'POST', '/v1/users/bob/alerts', { ...rule, id: 'control' })).status).toBe(201);
    first.close();

    const lost = await connect(engine, 'alice', NO_STOCK);
    await waitFor(async () => (await listed(lost, 2))[0]?.held === true, { timeout: 5000, what: 'the rule held' });
    expect((await listed(lost, 3))[0]).toMatchObject({ id: 'aapl-230', held: true, heldReason: 'not-entitled' });
    const held = async () => series((await scrape(`http://127.0.0.1:${engine.port}/metrics`)).metrics, 'tickwire_alert_rules_held{market="realtime"}');
    expect(await held()).toBe(1);
    trade(engine, 'AAPL', 229);
    trade(engine, 'AAPL', 231);
    await waitFor(async () => (await state('bob', 'control')).state?.fired === 1, { timeout: 5000, what: 'the control rule fired' });
    expect((await state('alice', 'aapl-230')).state).toMatchObject({ fired: 0 });
    lost.close();

    // a downgrade to delayed holds a real-time rule too
    const delayed = await connect(engine, 'alice', DELAYED_STOCK);
    await waitFor(async () => (await listed(delayed, 4))[0]?.heldReason === 'delayed-only', { timeout: 5000, what: 'held as delayed-only' });
    delayed.close();

    const back = await connect(engine, 'alice', REALTIME);
    expect((await back.request({ op: 'subscribe', id: 5, channels: ['notifications'] })).subscribed).toEqual(['notifications']);
    await waitFor(async () => (await listed(back, 6))[0]?.held === undefined, { timeout: 5000, what: 'the hold lifted' });
    expect(await held()).toBe(0);
    // it starts fresh: the next value (above the level, as while it was held) only arms it
    expect((await state('alice', 'aapl-230')).state).toMatchObject({ phase: 'fresh', fired: 0 });
    trade(engine, 'AAPL', 232);
    await waitFor(async () => (await state('alice', 'aapl-230')).state?.phase === 'armed', { timeout: 5000, what: 'armed' });
    await quietFor(100, 'a firing for the crossing made while held');
    expect(back.frames.filter(isNote)).toHaveLength(0);
    trade(engine, 'AAPL', 228);
    trade(engine, 'AAPL', 233);
    const note = await back.waitFor(isNote);
    expect(note.d).toMatchObject({ type: 'alert', data: { rule: 'aapl-230', symbol: 'AAPL', value: 233, previous: 228 } });
    expect(note.d.redacted).toBeUndefined();
    back.close();
  }, 30_000);

  it('redacts the prices of a backlog alert, and of a live one, for a connection whose token lost the symbol', async () => {
    const rule = { id: 'msft-400', symbol: 'MSFT', kind: 'price', direction: 'above', level: 400, mode: 'rearm', rearmBy: 1 };
    const had = await connect(engine, 'carol', REALTIME);
    await had.request({ op: 'alert.create', id: 1, rule });
    trade(engine, 'MSFT', 399);
    await waitFor(async () => (await state('carol', 'msft-400')).state?.phase === 'armed', { timeout: 5000, what: 'armed' });
    trade(engine, 'MSFT', 401);
    await waitFor(async () => (await state('carol', 'msft-400')).state?.fired === 1, { timeout: 5000, what: 'fired' });
    had.close();

    // the firing is in carol's backlog; her new token has no stock
    const lost = await connect(engine, 'carol', NO_STOCK);
    expect((await lost.request({ op: 'subscribe', id: 2, channels: ['notifications'] })).subscribed).toEqual(['notifications']);
    const replayed = await lost.waitFor(isNote);
    expect(replayed.d).toMatchObject({ type: 'alert', redacted: true, data: { rule: 'msft-400', firing: 1, symbol: 'MSFT', level: 400 } });
    expect(replayed.d.data).not.toHaveProperty('value');
    expect(replayed.d.data).not.toHaveProperty('previous');
    expect(replayed.d.body).not.toMatch(/40[01]|399/);
    // resumed with `since`: the same
    const resumed = await connect(engine, 'carol', NO_STOCK);
    await resumed.request({ op: 'subscribe', id: 3, channels: ['notifications'], since: 0 });
    expect((await resumed.waitFor(isNote)).d).toMatchObject({ redacted: true });
    resumed.close();
    // alert.list shows no price either (state.seen)
    const [mine] = await listed(lost, 4);
    expect(mine).toMatchObject({ id: 'msft-400', redacted: true });
    expect(mine.state).not.toHaveProperty('seen');

    // live: a rule the service evaluates (created over the service API, which takes the body's
    // entitlements) fires while this connection's token does not entitle the symbol; a connection
    // of the same user, open at the same time with the symbol, sees it whole (its own channel key)
    const full = await connect(engine, 'carol', REALTIME);
    await full.request({ op: 'subscribe', id: 5, channels: ['notifications'], since: 0 });
    expect((await api(engine, 'POST', '/v1/users/carol/alerts', { ...rule, id: 'msft-410', level: 410, entitlements: REALTIME })).status).toBe(201);
    trade(engine, 'MSFT', 405);
    await waitFor(async () => (await state('carol', 'msft-410')).state?.phase === 'armed', { timeout: 5000, what: 'armed' });
    trade(engine, 'MSFT', 411);
    const live = await lost.waitFor((f) => isNote(f) && f.d.data?.rule === 'msft-410');
    expect(live.d).toMatchObject({ redacted: true, data: { symbol: 'MSFT', level: 410 } });
    expect(live.d.data).not.toHaveProperty('value');
    const whole = await full.waitFor((f) => isNote(f) && f.d.data?.rule === 'msft-410');
    expect(whole.d).toMatchObject({ data: { value: 411, previous: 405 } });
    expect(whole.d.redacted).toBeUndefined();
    expect(full.frames.filter(isNote).every((f) => f.d.redacted === undefined)).toBe(true);
    lost.close();
    full.close();
  }, 30_000);

  it('withdraws a notifications subscription (1008) when an in-band auth brings other restricted entitlements, and holds the rules', async () => {
    const c = await connect(engine, 'dora', REALTIME);
    expect(
      (await c.request({ op: 'alert.create', id: 1, rule: { id: 'tsla', symbol: 'TSLA', kind: 'price', direction: 'below', level: 10 } })).alert,
    ).toMatchObject({
      id: 'tsla',
    });
    c.close();
    const d = await connect(engine, 'dora', DELAYED_STOCK);
    await d.request({ op: 'subscribe', id: 2, channels: ['notifications'] });
    d.send({ op: 'auth', token: await token({ sub: 'dora', claims: { ent: NO_STOCK } }) });
    expect(await d.waitClose()).toBe(1008);
    await waitFor(async () => (await state('dora', 'tsla')).heldReason === 'not-entitled', { timeout: 5000, what: 'held after the in-band auth' });
  }, 30_000);
});
