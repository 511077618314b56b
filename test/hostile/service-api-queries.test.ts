import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, SERVICE_TOKEN, api, testEngine } from '../auth/helpers.js';

/**
 * The query of `GET /v1/users/{user}/notifications`: `?unread=1` lists only the unread ones.
 * Any other spelling (`unread=TRUE`, `unread=yes`, `unread[]=1`, `unread=1&unread=0`) answered
 * every notification, read ones included, as if the filter had been understood: a backend that
 * shows "unread" from it showed read ones, and nothing told it why.
 */
describe('GET /v1/users/{user}/notifications: a query it does not understand is a 400, not every notification', () => {
  let engine: Engine;
  const user = 'quinn';
  const list = (query: string) => api(engine, 'GET', `/v1/users/${user}/notifications?${query}`);

  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
    for (const id of ['n-1', 'n-2']) {
      const r = await api(engine, 'POST', `/v1/users/${user}/notifications`, { id, type: 'order.filled', title: `Order ${id}`, body: 'filled' });
      expect(r.status).toBe(201);
    }
    expect((await api(engine, 'POST', `/v1/users/${user}/notifications/read`, { ids: ['n-1'] })).status).toBe(200);
  });
  afterAll(() => engine?.close());

  it('unread=1 and unread=true list the unread one; unread=0, unread=false and no parameter list both', async () => {
    for (const q of ['unread=1', 'unread=true'])
      expect(
        (await list(q)).body.items.map((n: { id: string }) => n.id),
        q,
      ).toEqual(['n-2']);
    for (const q of ['unread=0', 'unread=false', ''])
      expect(
        (await list(q)).body.items.map((n: { id: string }) => n.id),
        q,
      ).toEqual(['n-1', 'n-2']);
  });

  it('any other value, a repeated or malformed parameter: 400 naming it', async () => {
    for (const q of ['unread=TRUE', 'unread=yes', 'unread=', 'unread', 'unread=1&unread=0', 'unread=%ZZ', 'unread=2']) {
      const r = await list(q);
      expect(r.status, q).toBe(400);
      expect(r.body, q).toMatchObject({ error: 'BAD_REQUEST', field: 'unread' });
    }
    const arr = await list('unread[]=1');
    expect(arr.status).toBe(400);
    expect(arr.body).toMatchObject({ error: 'BAD_REQUEST', field: 'unread[]', message: expect.stringContaining('unread') });
  });
});
