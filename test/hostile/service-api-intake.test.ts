import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, SERVICE_TOKEN, api, testEngine } from '../auth/helpers.js';

/**
 * `POST /v1/executions` from an order system that retries, or reuses an id by mistake: an id
 * names one execution of one user. A repeat with the same content is the idempotent retry (200,
 * `duplicate: true`, the original `seq`). A repeat with other content used to be answered the
 * same way: the log kept the first, and the order system was told its second execution (another
 * quantity, price, side...) was recorded. Now 409 CONFLICT naming the field.
 */
describe('POST /v1/executions: retries, colliding ids, numeric and time edges', () => {
  let engine: Engine;
  const base = { user: 'alice', id: 'ex-1', order: 'o-1', sym: 'AAPL', side: 'buy', qty: 10, p: 100, fee: 0.5, t: 1718000000123 };
  const post = (body: unknown) => api(engine, 'POST', '/v1/executions', body);

  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  });
  afterAll(() => engine?.close());

  it('a repeated id with other content is 409 CONFLICT naming the field; the same content is a duplicate', async () => {
    expect(await post(base)).toMatchObject({ status: 201, body: { seq: 1, duplicate: false } });
    const changes: Record<string, unknown> = { order: 'o-2', sym: 'MSFT', side: 'sell', qty: 11, p: 100.01, fee: 0.6, t: 1718000000124 };
    for (const [field, value] of Object.entries(changes)) {
      const r = await post({ ...base, [field]: value });
      expect(r.status, field).toBe(409);
      expect(r.body, field).toMatchObject({ error: 'CONFLICT', field, message: expect.stringContaining('ex-1') });
    }
    // a fee left out where the original had one is another execution too
    const { fee: _fee, ...noFee } = base;
    expect(await post(noFee)).toMatchObject({ status: 409, body: { field: 'fee' } });
    // the retry as it was: the original seq, nothing stored
    expect(await post(base)).toMatchObject({ status: 200, body: { seq: 1, duplicate: true } });
    // key order and -0 vs 0 are not differences (JSON stores -0 as 0)
    expect(await post({ ...base, id: 'ex-0', p: 0 })).toMatchObject({ status: 201, body: { seq: 2 } });
    const reordered = '{"t":1718000000123,"p":-0,"qty":10,"side":"buy","sym":"AAPL","order":"o-1","id":"ex-0","user":"alice","fee":0.5}';
    expect(await post(reordered)).toMatchObject({ status: 200, body: { seq: 2, duplicate: true } });
    expect(await post({ ...base, id: 'ex-next' })).toMatchObject({ status: 201, body: { seq: 3 } });
  });

  it('ids are per user: the same id for another user is that user’s own execution', async () => {
    expect(await post({ ...base, user: 'bob', qty: 99 })).toMatchObject({ status: 201, body: { user: 'bob', seq: 1, duplicate: false } });
    expect(await post({ ...base, user: 'Alice' })).toMatchObject({ status: 201, body: { user: 'Alice', seq: 1, duplicate: false } });
  });

  it('numbers: not a number, not finite, out of range or a string is a 400 naming the field; full float64 precision is kept', async () => {
    const bad: [string, string][] = [
      ['qty', '"10"'],
      ['qty', '1e309'],
      ['qty', '-1e309'],
      ['qty', '1e308'],
      ['qty', '0'],
      ['qty', '-0'],
      ['qty', 'null'],
      ['p', '-1'],
      ['p', '1e16'],
      ['fee', '-0.01'],
      ['t', '0'],
      ['t', '-1'],
      ['t', '1e300'],
      ['t', '8640000000000001'],
      ['t', '"1718000000123"'],
    ];
    for (const [field, raw] of bad) {
      const fields = { ...base, id: `num-${field}-${raw}`.slice(0, 128) } as Record<string, unknown>;
      const json = JSON.stringify({ ...fields, [field]: '@@' }).replace('"@@"', raw);
      const r = await post(json);
      expect(r.status, `${field}=${raw}`).toBe(400);
      expect(r.body, `${field}=${raw}`).toMatchObject({ error: 'BAD_REQUEST', field });
    }
    // 17 significant digits: stored as the float64 JSON.parse reads, a retry of the same text matches
    const precise = JSON.stringify({ ...base, id: 'num-precise' }).replace('"qty":10', '"qty":0.12345678901234567');
    expect(await post(precise)).toMatchObject({ status: 201 });
    expect(await post(precise)).toMatchObject({ status: 200, body: { duplicate: true } });
    // the last time a Date holds is accepted
    expect(await post({ ...base, id: 'num-latest', t: 8.64e15 })).toMatchObject({ status: 201 });
  });

  it('one execution per request: an array (a batch) is a 400, nothing of it stored', async () => {
    const r = await post([
      { ...base, id: 'batch-1' },
      { ...base, id: 'batch-2', qty: 'x' },
    ]);
    expect(r).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST' } });
    expect(await post({ ...base, id: 'batch-1' })).toMatchObject({ status: 201, body: { duplicate: false } });
  });
});

/**
 * `POST /v1/users/{user}/notifications` has the same contract: an id names one notification of
 * the user. A repeat with another title, body, type, priority or data used to be answered
 * `duplicate: true`, and the backend believed its second notification was in the user's inbox.
 */
describe('POST /v1/users/{user}/notifications: a repeated id with other content', () => {
  let engine: Engine;
  const n = {
    id: 'dep-9',
    type: 'deposit.credited',
    title: 'Deposit credited',
    body: '1,000.00 USD',
    priority: 'high',
    data: { amount: 1000, ccy: 'USD', legs: [1, { a: 2 }] },
  };
  const post = (user: string, body: unknown) => api(engine, 'POST', `/v1/users/${user}/notifications`, body);

  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  });
  afterAll(() => engine?.close());

  it('is 409 CONFLICT naming the field; the same content (keys in another order, time aside) a duplicate', async () => {
    expect(await post('alice', n)).toMatchObject({ status: 201, body: { seq: 1, duplicate: false } });
    const changes: Record<string, unknown> = {
      type: 'deposit.failed',
      title: 'Deposit failed',
      body: '0.00 USD',
      priority: 'urgent',
      data: { amount: 1, ccy: 'USD', legs: [1, { a: 2 }] },
    };
    for (const [field, value] of Object.entries(changes)) {
      const r = await post('alice', { ...n, [field]: value });
      expect(r.status, field).toBe(409);
      expect(r.body, field).toMatchObject({ error: 'CONFLICT', field, message: expect.stringContaining('dep-9') });
    }
    const { data: _data, ...noData } = n;
    expect(await post('alice', noData)).toMatchObject({ status: 409, body: { field: 'data' } });
    const { priority: _p, ...defaultPriority } = n;
    expect(await post('alice', defaultPriority)).toMatchObject({ status: 409, body: { field: 'priority' } });
    // the retry as it was, data keys reordered: a duplicate, nothing stored
    const reordered = { data: { legs: [1, { a: 2 }], ccy: 'USD', amount: 1000 }, priority: 'high', body: n.body, title: n.title, type: n.type, id: n.id };
    expect(await post('alice', reordered)).toMatchObject({ status: 200, body: { seq: 1, duplicate: true } });
    const list = await api(engine, 'GET', '/v1/users/alice/notifications');
    expect(list.body.items).toHaveLength(1);
    expect(list.body.items[0]).toMatchObject({ id: 'dep-9', title: 'Deposit credited', data: n.data });
    // another user's id space is their own
    expect(await post('bob', { ...n, title: 'Other' })).toMatchObject({ status: 201, body: { user: 'bob', seq: 1 } });
  });
});
