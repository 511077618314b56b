import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { quietFor } from '../helpers/wait.js';
import { api, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';

const isItem = (f: Frame) => f.op === 'data' && f.ch === 'notifications';
const isNote = (f: Frame) => isItem(f) && f.d.kind === 'notification';
const isRead = (f: Frame) => isItem(f) && f.d.kind === 'read';

async function connectAs(engine: Engine, sub: string, encoding: 'json' | 'msgpack' = 'json'): Promise<TestClient> {
  return TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub })}` }, encoding });
}

const note = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: 'order.filled',
  title: `Order ${id} filled`,
  body: '10 AAPL at 228.41',
  ...extra,
});
const post = (engine: Engine, user: string, body: unknown) => api(engine, 'POST', `/v1/users/${encodeURIComponent(user)}/notifications`, body);

describe('notifications channel (embedded, memory log)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN }, notifications: { maxPerUser: 50 } });
  });
  afterAll(() => engine.close());

  it('stores a posted notification once (idempotent by id) and delivers it live to its user only', async () => {
    const alice = await connectAs(engine, 'alice');
    const bob = await connectAs(engine, 'bob', 'msgpack');
    for (const c of [alice, bob]) expect((await c.request({ op: 'subscribe', id: 1, channels: ['notifications'] })).subscribed).toEqual(['notifications']);
    const first = await post(engine, 'alice', note('n-1', { priority: 'high', data: { order: 'o-77' } }));
    expect(first).toMatchObject({ status: 201, body: { user: 'alice', id: 'n-1', seq: 1, duplicate: false } });
    const again = await post(engine, 'alice', note('n-1', { priority: 'high', data: { order: 'o-77' } }));
    expect(again).toMatchObject({ status: 200, body: { seq: 1, duplicate: true } });
    // the id with other content is not a retry: refused, the first kept (test/hostile/service-api-intake.test.ts)
    const other = await post(engine, 'alice', note('n-1', { priority: 'high', data: { order: 'o-77' }, title: 'changed' }));
    expect(other).toMatchObject({ status: 409, body: { error: 'CONFLICT', field: 'title' } });
    const got = await alice.waitFor(isNote);
    expect(got.seq).toBe(1);
    expect(got.d).toEqual({
      kind: 'notification',
      id: 'n-1',
      type: 'order.filled',
      title: 'Order n-1 filled',
      body: '10 AAPL at 228.41',
      priority: 'high',
      data: { order: 'o-77' },
      t: expect.any(Number),
    });
    // nothing more for alice (the duplicate), nothing of hers for bob: a later notification to
    // each is delivered after anything the posts above published
    await post(engine, 'alice', note('n-2'));
    await post(engine, 'bob', note('b-1'));
    await alice.waitFor((f) => isNote(f) && f.d.id === 'n-2');
    await bob.waitFor((f) => isNote(f) && f.d.id === 'b-1');
    expect(alice.frames.filter(isNote).map((f) => f.d.id)).toEqual(['n-1', 'n-2']);
    expect(bob.frames.filter(isItem).map((f) => f.d.id)).toEqual(['b-1']);
    const ack = await bob.request({ op: 'subscribe', id: 2, channels: ['notifications:alice'] });
    expect(ack.rejected).toEqual([expect.objectContaining({ channel: 'notifications:alice', code: 'FORBIDDEN' })]);
    alice.close();
    bob.close();
  });

  it('refuses bad notifications with the field', async () => {
    expect(await post(engine, 'carol', { id: 'x', type: 'a', title: '' })).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', field: 'title' } });
    expect(await post(engine, 'carol', { id: '#alert:x', type: 'a', title: 't' })).toMatchObject({ status: 400, body: { field: 'id' } });
    expect(await post(engine, 'carol', { ...note('x'), priority: 'panic' })).toMatchObject({ status: 400, body: { field: 'priority' } });
    expect(await post(engine, 'carol', { ...note('x'), extra: 1 })).toMatchObject({ status: 400, body: { field: 'extra' } });
    expect(await post(engine, 'carol', { ...note('x'), data: { blob: 'x'.repeat(5000) } })).toMatchObject({ status: 400, body: { field: 'data' } });
    expect(await api(engine, 'POST', '/v1/users/carol/notifications/read', {})).toMatchObject({ status: 400 });
    expect(await api(engine, 'POST', '/v1/users/carol/notifications/read', { upToId: 'nope' })).toMatchObject({ status: 404, body: { field: 'upToId' } });
    expect(await api(engine, 'POST', '/v1/users/carol/notifications/read', { upTo: 99 })).toMatchObject({ status: 400, body: { field: 'upTo' } });
    expect(await post(engine, 'carol', note('x'))).toMatchObject({ status: 201 });
  });

  it('gives unread ones on subscribe, tracks read state across two connections, resumes with since', async () => {
    const user = 'dora';
    for (let i = 1; i <= 4; i++) await post(engine, user, note(`d-${i}`));
    const a = await connectAs(engine, user);
    const b = await connectAs(engine, user);
    await a.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    await a.waitForCount(isNote, 4);
    await b.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    await b.waitForCount(isNote, 4);
    // read up to the second, and the fourth by id
    expect(await api(engine, 'POST', `/v1/users/${user}/notifications/read`, { upTo: 2 })).toMatchObject({ status: 200, body: { seq: 5, unread: 2 } });
    expect(await api(engine, 'POST', `/v1/users/${user}/notifications/read`, { ids: ['d-4'] })).toMatchObject({ status: 200, body: { seq: 6, unread: 1 } });
    // nothing new read: no marker
    expect(await api(engine, 'POST', `/v1/users/${user}/notifications/read`, { ids: ['d-1'] })).toMatchObject({ status: 200, body: { seq: 0, unread: 1 } });
    for (const c of [a, b]) {
      const marks = await c.waitForCount(isRead, 2);
      expect(marks.map((f) => [f.seq, f.d.upTo, f.d.ids])).toEqual([
        [5, 2, undefined],
        [6, undefined, ['d-4']],
      ]);
    }
    // a new connection gets what is unread (from d-3 on; d-4 flagged read), not what was read before it
    const c = await connectAs(engine, user);
    await c.request({ op: 'subscribe', id: 1, channels: ['notifications'] });
    await c.waitForCount(isItem, 4);
    await quietFor(150, 'an item read before the connection (d-1, d-2) or a fifth one');
    expect(c.frames.filter(isItem).map((f) => [f.seq, f.d.kind, f.d.id.startsWith('#') ? '#' : f.d.id, f.d.read ?? false])).toEqual([
      [3, 'notification', 'd-3', false],
      [4, 'notification', 'd-4', true],
      [5, 'read', '#', false],
      [6, 'read', '#', false],
    ]);
    expect((await api(engine, 'GET', `/v1/users/${user}/notifications?unread=1`)).body).toMatchObject({
      unread: 1,
      head: 6,
      items: [expect.objectContaining({ id: 'd-3', seq: 3 })],
    });
    // resume after seq 4: the markers, then live
    const d = await connectAs(engine, user);
    await d.request({ op: 'subscribe', id: 1, channels: ['notifications'], since: 4 });
    await d.waitForCount(isItem, 2);
    await post(engine, user, note('d-5'));
    await d.waitForCount(isItem, 3);
    await quietFor(150, 'an item at or before seq 4, or a second copy of one');
    expect(d.frames.filter(isItem).map((f) => f.seq)).toEqual([5, 6, 7]);
    // read by id via the in-band op; every connection of the user sees the marker
    const r = await a.request({ op: 'notifications.read', id: 9, ids: ['d-3', 'd-5'] });
    expect(r).toMatchObject({ op: 'notifications.read', id: 9, seq: 8, unread: 0 });
    for (const conn of [b, c, d]) await conn.waitFor((f) => isRead(f) && f.seq === 8);
    for (const conn of [a, b, c, d]) conn.close();
  });

  it("bounds each user's log (notifications.maxPerUser)", async () => {
    for (let i = 1; i <= 55; i++) await post(engine, 'erin', note(`e-${i}`));
    const list = await api(engine, 'GET', '/v1/users/erin/notifications');
    expect(list.body.items).toHaveLength(50);
    expect(list.body.items[0]).toMatchObject({ id: 'e-6', seq: 6 });
    expect(list.body.unread).toBe(50);
  });
});
