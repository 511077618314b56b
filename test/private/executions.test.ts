import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { api, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';

const isExec = (f: Frame) => f.op === 'data' && f.ch === 'executions';

let n = 0;
function exec(user: string, extra: Record<string, unknown> = {}) {
  n++;
  return { user, id: `e-${n}`, order: `o-${n}`, sym: 'AAPL', side: 'buy', qty: 1, p: 100 + n, t: Date.now(), ...extra };
}

async function connectAs(engine: Engine, sub: string, encoding: 'json' | 'msgpack' = 'json'): Promise<TestClient> {
  return TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub })}` }, encoding });
}

describe('executions (embedded, memory log)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  });
  afterAll(() => engine.close());

  it("delivers a user's executions to that user only, with the durable seq", async () => {
    const alice = await connectAs(engine, 'alice');
    const bob = await connectAs(engine, 'bob', 'msgpack');
    for (const c of [alice, bob])
      expect((await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false })).subscribed).toEqual(['executions']);
    const e1 = exec('alice', { fee: 0.5 });
    const r = await api(engine, 'POST', '/v1/executions', e1);
    expect(r).toMatchObject({ status: 201, body: { user: 'alice', id: e1.id, seq: 1, duplicate: false } });
    const got = await alice.waitFor(isExec);
    expect(got.seq).toBe(1);
    const { user: _u, ...payload } = e1;
    expect(got.d).toEqual(payload);
    expect(Object.keys(got.d)).toEqual(['id', 'order', 'sym', 'side', 'qty', 'p', 'fee', 't']);
    const b1 = await api(engine, 'POST', '/v1/executions', exec('bob'));
    expect(b1.body.seq).toBe(1);
    const gotB = await bob.waitFor(isExec);
    expect(gotB.d.id).toBe(b1.body.id);
    // a sentinel execution for each: once it is in, anything that leaked before it would be too
    const [sa, sb] = [exec('alice'), exec('bob')];
    await api(engine, 'POST', '/v1/executions', sa);
    await api(engine, 'POST', '/v1/executions', sb);
    await alice.waitFor((f) => isExec(f) && f.d.id === sa.id);
    await bob.waitFor((f) => isExec(f) && f.d.id === sb.id);
    expect(alice.frames.filter(isExec).map((f) => f.d.id)).toEqual([e1.id, sa.id]);
    expect(bob.frames.filter(isExec).map((f) => f.d.id)).toEqual([gotB.d.id, sb.id]);
    alice.close();
    bob.close();
  });

  it("refuses another user's stream", async () => {
    const alice = await connectAs(engine, 'alice');
    const ack = await alice.request({ op: 'subscribe', id: 1, channels: ['executions:bob', 'portfolio:bob', 'executions'] });
    expect(ack.subscribed).toEqual(['executions']);
    expect(ack.rejected).toEqual([
      expect.objectContaining({ channel: 'executions:bob', code: 'FORBIDDEN' }),
      expect.objectContaining({ channel: 'portfolio:bob', code: 'FORBIDDEN' }),
    ]);
    alice.close();
  });

  it('stores and delivers a duplicate execution id once', async () => {
    const c = await connectAs(engine, 'frank');
    await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false });
    const e = exec('frank');
    const first = await api(engine, 'POST', '/v1/executions', e);
    const again = await api(engine, 'POST', '/v1/executions', e);
    // the same id with other content is not a retry: refused, the first kept (test/hostile/service-api-intake.test.ts)
    const other = await api(engine, 'POST', '/v1/executions', { ...e, p: 999 });
    expect(first).toMatchObject({ status: 201, body: { seq: 1, duplicate: false } });
    expect(again).toMatchObject({ status: 200, body: { seq: 1, duplicate: true } });
    expect(other).toMatchObject({ status: 409, body: { error: 'CONFLICT', field: 'p' } });
    const next = await api(engine, 'POST', '/v1/executions', exec('frank'));
    expect(next.body.seq).toBe(2);
    const got = await c.waitForCount(isExec, 2);
    const sentinel = await api(engine, 'POST', '/v1/executions', exec('frank')); // a repeat would come before it
    await c.waitFor((f) => isExec(f) && f.seq === 3);
    expect(c.frames.filter(isExec).map((f) => [f.seq, f.d.id])).toEqual([
      [1, e.id],
      [2, next.body.id],
      [3, sentinel.body.id],
    ]);
    expect(got[0]!.d.p).toBe(e.p);
    c.close();
  });

  it('replays everything after `since`, in order, then continues live without gap or duplicate', async () => {
    const user = 'grace';
    for (let i = 0; i < 5; i++) await api(engine, 'POST', '/v1/executions', exec(user));
    const c = await connectAs(engine, user);
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 2, throttle: 100 });
    expect(ack.subscribed).toEqual(['executions']);
    await c.waitForCount(isExec, 3);
    for (let i = 0; i < 3; i++) await api(engine, 'POST', '/v1/executions', exec(user));
    const all = await c.waitForCount(isExec, 6);
    await api(engine, 'POST', '/v1/executions', exec(user)); // a sentinel: a repeat would come before it
    await c.waitFor((f) => isExec(f) && f.seq === 9);
    expect(c.frames.filter(isExec).map((f) => f.seq)).toEqual([3, 4, 5, 6, 7, 8, 9]);
    expect(all.every((f) => f.d.sym === 'AAPL')).toBe(true);
    c.close();
  });

  it('has an exact seam while executions keep arriving during the replay', async () => {
    const user = 'heidi';
    for (let i = 0; i < 30; i++) await api(engine, 'POST', '/v1/executions', exec(user));
    // a second connection of the same user keeps the live feed busy at another tier
    const other = await connectAs(engine, user);
    await other.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false, throttle: 250 });
    let posting = true;
    const writer = (async () => {
      while (posting) {
        await api(engine, 'POST', '/v1/executions', exec(user));
        await new Promise((r) => setTimeout(r, 5)); // pacing the writer, not a wait
      }
    })();
    await waitFor(async () => (await engine.private!.events.head(user)) >= 35, 'the writer under way');
    const clients = await Promise.all(
      [0, 50, 0, 1000].map(async (throttle, i) => {
        const c = await connectAs(engine, user, i % 2 ? 'msgpack' : 'json');
        await c.request({ op: 'subscribe', id: 1, channels: ['executions'], since: 10 + i, throttle });
        return { c, since: 10 + i };
      }),
    );
    // every replay has started and the writer kept going meanwhile
    const during = await engine.private!.events.head(user);
    await waitFor(
      async () => clients.every(({ c }) => c.frames.some(isExec)) && (await engine.private!.events.head(user)) >= during + 20,
      'executions on every replaying client while the writer goes on',
    );
    posting = false;
    await writer;
    await api(engine, 'POST', '/v1/executions', exec(user)); // a sentinel: a repeat would come before it
    const head = await engine.private!.events.head(user);
    for (const { c, since } of clients) {
      const seqs = (await c.waitForCount(isExec, head - since, 15_000)).map((f) => f.seq);
      await c.waitFor((f) => isExec(f) && f.seq === head, 15_000);
      const final = c.frames.filter(isExec).map((f) => f.seq);
      expect(final).toEqual(Array.from({ length: head - since }, (_, i) => since + 1 + i));
      expect(seqs.length).toBeGreaterThan(0);
      c.close();
    }
    other.close();
  });

  it('sends the newest executions on subscribe without since', async () => {
    const user = 'ivan';
    for (let i = 0; i < 25; i++) await api(engine, 'POST', '/v1/executions', exec(user));
    const c = await connectAs(engine, user);
    await c.request({ op: 'subscribe', id: 1, channels: ['executions'] });
    const got = await c.waitForCount(isExec, 20);
    expect(got.map((f) => f.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 6 + i));
    c.close();
  });

  it('sends live executions only with snapshot:false and no since', async () => {
    const user = 'judy';
    for (let i = 0; i < 3; i++) await api(engine, 'POST', '/v1/executions', exec(user));
    const c = await connectAs(engine, user);
    await c.request({ op: 'subscribe', id: 1, channels: ['executions'], snapshot: false });
    await api(engine, 'POST', '/v1/executions', exec(user));
    // frames arrive in order: a replayed execution would come before the live one
    const [live] = await c.waitForCount(isExec, 1);
    expect(live!.seq).toBe(4);
    expect(c.frames.filter(isExec)).toHaveLength(1);
    c.close();
  });
});

describe('service API', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'optional', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  });
  afterAll(() => engine.close());

  it('needs the service token (401), compared in constant time', async () => {
    expect((await api(engine, 'POST', '/v1/executions', exec('a'), null)).status).toBe(401);
    expect((await api(engine, 'POST', '/v1/executions', exec('a'), 'wrong-token')).status).toBe(401);
    expect((await api(engine, 'POST', '/v1/executions', exec('a'), SERVICE_TOKEN + 'x')).status).toBe(401);
    expect((await api(engine, 'GET', '/v1/users/a/positions', undefined, null)).status).toBe(401);
    expect((await api(engine, 'POST', '/v1/announcements', { level: 'info', title: 't', message: 'm' }, null)).status).toBe(401);
    const r = await api(engine, 'POST', '/v1/executions', exec('a'), 'wrong-token');
    expect(r.body).toMatchObject({ error: 'UNAUTHENTICATED' });
  });

  it('answers 400 naming the field for invalid bodies', async () => {
    const cases: [unknown, string][] = [
      [{ ...exec('a'), qty: 'ten' }, 'qty'],
      [{ ...exec('a'), qty: -1 }, 'qty'],
      [{ ...exec('a'), side: 'long' }, 'side'],
      [{ ...exec('a'), sym: 'aapl' }, 'sym'],
      [{ ...exec('a'), sym: 'ZZZZ' }, 'sym'],
      [{ ...exec('a'), user: '' }, 'user'],
      [{ ...exec('a'), extra: 1 }, 'extra'],
      [(({ t: _t, ...rest }) => rest)(exec('a')), 't'],
    ];
    for (const [body, field] of cases) {
      const r = await api(engine, 'POST', '/v1/executions', body);
      expect(r.status, field).toBe(400);
      expect(r.body.field, JSON.stringify(r.body)).toBe(field);
      expect(r.body.message).toContain(field);
    }
    const notJson = await api(engine, 'POST', '/v1/executions', '{oops');
    expect(notJson).toMatchObject({ status: 400, body: { error: 'BAD_JSON' } });
    const pos = await api(engine, 'PUT', '/v1/users/a/positions', { ccy: 'usd', positions: [] });
    expect(pos).toMatchObject({ status: 400, body: { field: 'ccy' } });
    const pos2 = await api(engine, 'PUT', '/v1/users/a/positions', { ccy: 'USD', positions: [{ sym: 'AAPL', qty: 1 }] });
    expect(pos2).toMatchObject({ status: 400, body: { field: 'positions.0.cost' } });
    const ann = await api(engine, 'POST', '/v1/announcements', { level: 'loud', title: 't', message: 'm' });
    expect(ann).toMatchObject({ status: 400, body: { field: 'level' } });
  });

  it('refuses everything when no service token is configured', async () => {
    const off = await testEngine({});
    try {
      const r = await api(off, 'POST', '/v1/executions', exec('a'));
      expect(r.status).toBe(401);
      expect(r.body.message).toMatch(/TICKWIRE_SERVICE_TOKEN/);
    } finally {
      await off.close();
    }
  });

  it('publishes announcements to every system subscriber, in order, none dropped', async () => {
    const anon = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    const user = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub: 'judy' })}` } });
    for (const c of [anon, user]) expect((await c.request({ op: 'subscribe', id: 1, channels: ['system'], throttle: 1000 })).subscribed).toEqual(['system']);
    for (let i = 0; i < 10; i++) {
      const r = await api(engine, 'POST', '/v1/announcements', { level: i === 9 ? 'critical' : 'info', title: `t${i}`, message: `message ${i}` });
      expect(r.status).toBe(202);
    }
    for (const c of [anon, user]) {
      const got = await c.waitForCount((f) => f.op === 'data' && f.ch === 'system', 10, 10_000);
      expect(got.map((f) => f.d.title)).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`));
      expect(got[9]!.d).toMatchObject({ level: 'critical', message: 'message 9' });
      expect(typeof got[0]!.d.t).toBe('number');
      c.close();
    }
  });
});
