import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { api, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';

/**
 * `notifications.read` frames of one user, faster than the replay budget lets them be served.
 * Each reads the user's retained log (up to `notifications.maxPerUser` events) from the replay
 * budget (`executions.replayPerUserPerSec`, 10 000 events a second: ten reads of a full log), one
 * after another per user, and every request waited its turn: nothing bounded the queue. Measured
 * against a `tickwire start` process, 20 connections of a user holding 1000 notifications, each
 * sending its burst and then 50 reads a second: 10 reads a second were answered, the rest queued,
 * and the process grew by 4 MiB a second (67 MiB in 20 s); when the connections had gone, the
 * queue (about 23 000 reads, half an hour of the user's budget) was still being read, and the
 * process kept growing.
 *
 * A user's queue holds at most MAX_QUEUED_READS requests on a gateway; a request beyond them is
 * answered `RATE_LIMIT` with its `id` (429 on the service API), before anything is read.
 */
describe('hostile: notifications.read faster than the budget serves it', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      // a read of the 200 notifications below takes a second of this budget
      executions: { replayPerUserPerSec: 200 },
      limits: { rateLimitCloseMs: 60_000 },
    });
    for (let i = 0; i < 200; i += 50) {
      const batch = Array.from({ length: 50 }, (_, k) =>
        api(engine, 'POST', '/v1/users/mallory/notifications', { id: `n${i + k}`, type: 'x', title: 'hello' }),
      );
      for (const r of await Promise.all(batch)) expect(r.status).toBe(201);
    }
  }, 60_000);
  afterAll(() => engine?.close());

  it('at most 16 of a user wait; the rest are answered RATE_LIMIT with their id at once, unread', async () => {
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'json', headers: { authorization: `Bearer ${await token({ sub: 'mallory' })}` } });
    for (let i = 0; i < 100; i++) c.send({ op: 'notifications.read', id: i, upTo: 1 });
    const refused = () => c.frames.filter((f: Frame) => f.op === 'error' && typeof f.id === 'number');
    // the reads beyond the queue are refused before any of the queued ones could be served
    await waitFor(() => (refused().length >= 100 - 17 ? true : undefined), { timeout: 5000, what: 'the reads beyond the queue refused' });
    const answered = c.frames.filter((f: Frame) => f.op === 'notifications.read');
    // the first one may have been served already (the budget starts full)
    expect(answered.length + refused().length).toBeLessThanOrEqual(100);
    expect(refused().length).toBeGreaterThanOrEqual(100 - 17);
    for (const f of refused()) {
      expect(f.code).toBe('RATE_LIMIT');
      expect(String(f.message)).toContain('notifications.read');
    }
    // the service API shares the user's queue: 429 while it is full
    const viaApi = await api(engine, 'POST', '/v1/users/mallory/notifications/read', { upTo: 2 });
    expect(viaApi.status).toBe(429);
    expect(viaApi.body).toMatchObject({ error: 'RATE_LIMIT' });
    // another user is not affected
    const bob = await api(engine, 'POST', '/v1/users/bob/notifications/read', { upTo: 1 });
    expect(bob.status).toBe(400); // bob has no notification 1: a verdict, not a refusal
    c.close();
  }, 30_000);
});
