import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertRequestCode, AlertRequestError, ALERT_STATUS } from '../../src/alerts/alert-api.js';
import { AlertErrorCode, AlertRuleError } from '../../src/alerts/rule.js';
import type { Engine } from '../../src/app/engine.js';
import { TickwireError } from '../../src/core/errors.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { quietFor, waitFor } from '../helpers/wait.js';
import { api, publishTick, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';

const isNote = (f: Frame) => f.op === 'data' && f.ch === 'notifications' && f.d.kind === 'notification';

async function connectAs(engine: Engine, sub: string): Promise<TestClient> {
  return TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub })}` }, encoding: 'json' });
}

function trade(engine: Engine, sym: string, p: number, assetClass: 'stock' | 'crypto' = 'stock'): void {
  publishTick(engine, assetClass, { k: 'trade', sym, id: `t${Math.random()}`, p, s: 1 } as never);
}

describe('AlertRequestError', () => {
  it('carries a typed upper-case code and the status the service API answers with it', () => {
    const rule = AlertRequestError.from(new AlertRuleError(AlertErrorCode.LIMIT, 'too many', []));
    expect(rule).toMatchObject({ status: 429, code: 'ALERT_LIMIT', message: 'too many' });
    const store = AlertRequestError.from(new TickwireError('ALERT_STORE', 'redis down'));
    expect(store).toMatchObject({ status: 503, code: AlertRequestCode.STORE });
    expect(() => AlertRequestError.from(new Error('other'))).toThrow('other');
    for (const code of Object.values(AlertErrorCode)) expect(ALERT_STATUS[code]).toBeGreaterThanOrEqual(400);
    // @ts-expect-error a code outside AlertRequestCode (here a message in its place) does not type-check
    expect(new AlertRequestError(400, 'the rule is bad', 'm').code).toBe('the rule is bad');
  });
});

describe('alerts over the service API (embedded engine)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN, delayMs: 400 },
      alerts: { maxRulesPerUser: 3, flushMs: 0 },
    });
  });
  afterAll(() => engine.close());

  it("creates a rule that fires exactly once into the user's notifications", async () => {
    const alice = await connectAs(engine, 'alice');
    expect((await alice.request({ op: 'subscribe', id: 1, channels: ['notifications'] })).subscribed).toEqual(['notifications']);
    const r = await api(engine, 'POST', '/v1/users/alice/alerts', { id: 'aapl-230', symbol: 'AAPL', kind: 'price', direction: 'above', level: 230 });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: 'aapl-230', user: 'alice', symbol: 'AAPL', level: 230, mode: 'once', delayed: false, state: { phase: 'fresh' } });
    trade(engine, 'AAPL', 229);
    await waitFor(async () => (await api(engine, 'GET', '/v1/users/alice/alerts/aapl-230')).body.state?.phase === 'armed', { timeout: 5000, what: 'armed' });
    trade(engine, 'AAPL', 231);
    trade(engine, 'AAPL', 229);
    trade(engine, 'AAPL', 232);
    const got = await alice.waitFor(isNote);
    expect(got.d).toMatchObject({
      type: 'alert',
      title: 'AAPL above 230',
      priority: 'high',
      data: { rule: 'aapl-230', firing: 1, symbol: 'AAPL', value: 231, previous: 229, level: 230 },
    });
    expect(got.d.id).toMatch(/^#alert:/);
    await quietFor(200, 'a second firing of the once-rule (the trade at 232)');
    expect(alice.frames.filter(isNote)).toHaveLength(1);
    const listed = await api(engine, 'GET', '/v1/users/alice/alerts');
    expect(listed.body.alerts).toEqual([expect.objectContaining({ id: 'aapl-230', state: expect.objectContaining({ phase: 'done', fired: 1 }) })]);
    const notes = await api(engine, 'GET', '/v1/users/alice/notifications?unread=1');
    expect(notes.body).toMatchObject({ unread: 1, items: [expect.objectContaining({ type: 'alert', read: false })] });
    alice.close();
  });

  it('refuses bad rules with a code and the field', async () => {
    const post = (body: unknown) => api(engine, 'POST', '/v1/users/carol/alerts', body);
    expect(await post({ id: 'x1', symbol: 'ZZZZ', kind: 'price', direction: 'above', level: 1 })).toMatchObject({
      status: 400,
      body: { error: 'ALERT_UNKNOWN_SYMBOL', field: 'symbol' },
    });
    // JSON has no NaN: 1e999 parses to Infinity, a string is not a number
    expect(await post('{"id":"x2","symbol":"AAPL","kind":"price","direction":"above","level":1e999}')).toMatchObject({
      status: 400,
      body: { error: 'ALERT_INVALID', field: 'level' },
    });
    expect(await post({ id: 'x3', symbol: 'AAPL', kind: 'price', direction: 'above', level: 'NaN' })).toMatchObject({
      status: 400,
      body: { error: 'ALERT_INVALID', field: 'level' },
    });
    expect(await post({ id: 'x4', symbol: 'AAPL', kind: 'change', direction: 'up', percent: 3, windowMs: 0 })).toMatchObject({
      status: 400,
      body: { error: 'ALERT_INVALID', field: 'windowMs' },
    });
    expect(await post({ id: '-bad', symbol: 'AAPL', kind: 'spread', threshold: 1 })).toMatchObject({
      status: 400,
      body: { error: 'ALERT_INVALID', field: 'id' },
    });
    expect(await post({ id: 'x5', user: 'mallory', symbol: 'AAPL', kind: 'spread', threshold: 1 })).toMatchObject({ status: 400, body: { field: 'user' } });
    expect(await post('not json')).toMatchObject({ status: 400 });
    expect(await api(engine, 'POST', '/v1/users/carol/alerts', { id: 'x6', symbol: 'AAPL', kind: 'spread', threshold: 1 }, null)).toMatchObject({
      status: 401,
    });
    // the per-user limit (alerts.maxRulesPerUser = 3 here), then a duplicate, then unknown ids
    for (const id of ['l1', 'l2', 'l3']) expect((await post({ id, symbol: 'AAPL', kind: 'spread', threshold: 1 })).status).toBe(201);
    expect(await post({ id: 'l1', symbol: 'AAPL', kind: 'spread', threshold: 2 })).toMatchObject({ status: 409, body: { error: 'ALERT_DUPLICATE' } });
    expect(await post({ id: 'l4', symbol: 'AAPL', kind: 'spread', threshold: 1 })).toMatchObject({ status: 429, body: { error: 'ALERT_LIMIT' } });
    expect(await api(engine, 'DELETE', '/v1/users/carol/alerts/nope')).toMatchObject({ status: 404, body: { error: 'ALERT_NOT_FOUND' } });
    expect(await api(engine, 'PUT', '/v1/users/carol/alerts/nope', { symbol: 'AAPL', kind: 'spread', threshold: 1 })).toMatchObject({ status: 404 });
    // a bad replacement leaves the rule as it was
    expect(await api(engine, 'PUT', '/v1/users/carol/alerts/l1', { symbol: 'AAPL', kind: 'spread', threshold: -1 })).toMatchObject({
      status: 400,
      body: { field: 'threshold' },
    });
    expect((await api(engine, 'GET', '/v1/users/carol/alerts/l1')).body).toMatchObject({ threshold: 1 });
    const upd = await api(engine, 'PUT', '/v1/users/carol/alerts/l1', { symbol: 'AAPL', kind: 'spread', threshold: 5 });
    expect(upd).toMatchObject({ status: 200, body: { id: 'l1', threshold: 5, state: { phase: 'fresh' } } });
    expect(await api(engine, 'DELETE', '/v1/users/carol/alerts/l2')).toMatchObject({ status: 200, body: { deleted: true } });
    expect((await api(engine, 'GET', '/v1/users/carol/alerts')).body.alerts.map((a: { id: string }) => a.id).sort()).toEqual(['l1', 'l3']);
  });

  it("keeps users apart: same rule id, own lists, no access to another user's rule", async () => {
    const rule = { id: 'same', symbol: 'MSFT', kind: 'price', direction: 'below', level: 100 };
    expect((await api(engine, 'POST', '/v1/users/dave/alerts', rule)).status).toBe(201);
    expect((await api(engine, 'POST', '/v1/users/erin/alerts', { ...rule, level: 50 })).status).toBe(201);
    expect((await api(engine, 'GET', '/v1/users/dave/alerts')).body.alerts).toEqual([expect.objectContaining({ id: 'same', level: 100, user: 'dave' })]);
    expect((await api(engine, 'GET', '/v1/users/erin/alerts')).body.alerts).toEqual([expect.objectContaining({ id: 'same', level: 50, user: 'erin' })]);
    expect((await api(engine, 'DELETE', '/v1/users/frank/alerts/same')).status).toBe(404);
    expect((await api(engine, 'DELETE', '/v1/users/dave/alerts/same')).status).toBe(200);
    expect((await api(engine, 'GET', '/v1/users/erin/alerts')).body.alerts).toHaveLength(1);
  });

  it('applies entitlements: no rule without access, delayed users are alerted on delayed data', async () => {
    const forbidden = await api(engine, 'POST', '/v1/users/gina/alerts', {
      id: 'n1',
      symbol: 'AAPL',
      kind: 'price',
      direction: 'above',
      level: 1,
      entitlements: { classes: ['crypto'] },
    });
    expect(forbidden).toMatchObject({ status: 403, body: { error: 'ALERT_FORBIDDEN', field: 'symbol' } });
    const r = await api(engine, 'POST', '/v1/users/gina/alerts', {
      id: 'd1',
      symbol: 'NVDA',
      kind: 'price',
      direction: 'above',
      level: 500,
      entitlements: { delayed: ['stock'] },
    });
    expect(r).toMatchObject({ status: 201, body: { delayed: true } });
    const gina = await connectAs(engine, 'gina');
    await gina.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    trade(engine, 'NVDA', 490);
    await waitFor(async () => (await api(engine, 'GET', '/v1/users/gina/alerts/d1')).body.state?.phase === 'armed', {
      timeout: 5000,
      what: 'armed on delayed data',
    });
    const sent = Date.now();
    trade(engine, 'NVDA', 505);
    const got = await gina.waitFor(isNote);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(380);
    expect(got.d.data).toMatchObject({ rule: 'd1', delayed: true, delayMs: 400, value: 505 });
    gina.close();
  });

  it("serves in-band ops for the connection's own user, with its token's entitlements", async () => {
    const hank = await TestClient.connect(wsUrl(engine), {
      headers: { authorization: `Bearer ${await token({ sub: 'hank', claims: { ent: { classes: ['crypto'] } } })}` },
      encoding: 'json',
    });
    const created = await hank.request({
      op: 'alert.create',
      id: 1,
      rule: { id: 'btc-70k', symbol: 'BTC-USD', kind: 'price', direction: 'above', level: 70000 },
    });
    expect(created).toMatchObject({ op: 'alert.create', id: 1, alert: { id: 'btc-70k', user: 'hank', delayed: false } });
    expect(await hank.request({ op: 'alert.create', id: 2, rule: { id: 'aapl', symbol: 'AAPL', kind: 'price', direction: 'above', level: 1 } })).toMatchObject({
      op: 'error',
      id: 2,
      code: 'ALERT_FORBIDDEN',
    });
    expect(
      await hank.request({ op: 'alert.create', id: 3, rule: { id: 'w0', symbol: 'ETH-USD', kind: 'change', direction: 'up', percent: 1, windowMs: 0 } }),
    ).toMatchObject({ op: 'error', id: 3, code: 'ALERT_INVALID' });
    expect(await hank.request({ op: 'alert.create', id: 4, rule: 'nope' })).toMatchObject({ op: 'error', id: 4, code: 'BAD_REQUEST' });
    // the rule's user is always the token's: naming another one is refused
    expect(await hank.request({ op: 'alert.create', id: 5, rule: { id: 'x', user: 'alice', symbol: 'BTC-USD', kind: 'spread', threshold: 1 } })).toMatchObject({
      op: 'error',
      id: 5,
      code: 'ALERT_INVALID',
    });
    const updated = await hank.request({
      op: 'alert.update',
      id: 6,
      rule: { id: 'btc-70k', symbol: 'BTC-USD', kind: 'price', direction: 'below', level: 60000 },
    });
    expect(updated).toMatchObject({ op: 'alert.update', alert: { id: 'btc-70k', direction: 'below', level: 60000 } });
    expect((await hank.request({ op: 'alert.list', id: 7 })).alerts).toEqual([expect.objectContaining({ id: 'btc-70k' })]);
    expect(await hank.request({ op: 'alert.delete', id: 8, rule: 'btc-70k' })).toMatchObject({ op: 'alert.delete', id: 8, deleted: 'btc-70k' });
    expect(await hank.request({ op: 'alert.delete', id: 9, rule: 'btc-70k' })).toMatchObject({ op: 'error', id: 9, code: 'ALERT_NOT_FOUND' });
    expect((await api(engine, 'GET', '/v1/users/hank/alerts')).body.alerts).toEqual([]);
    hank.close();
  });
});
