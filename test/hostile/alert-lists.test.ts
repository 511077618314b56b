import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { waitFor } from '../helpers/wait.js';
import { api, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';

/**
 * `alert.list` frames of a user holding many rules. Each answer lists every rule of the user (up
 * to `alerts.maxRulesPerUser`, 1000 by default: about 230 KB of JSON), and the gateway builds,
 * redacts and encodes it (in NATS mode the alert service, one process for every user, encodes
 * it too), about 5 ms for 1000 rules, measured; yet the frame counted as one frame of
 * `limits.messagesPerSec`, like a ping. One user's 5 connections sending their burst and then
 * 50 lists a second cost the gateway about half a core, sent 24 MB a second, and a bystander's
 * ping took up to 0.9 s (its median went from 2 ms to 72 ms). With the user's 20 connections:
 * 1000 lists, about 5 s of CPU, a second.
 *
 * Now the answers of one connection's `alert.list` frames are built one after another, and each
 * counts as one frame per started 50 rules it lists (ALERT_RULES_PER_FRAME), taken from the
 * connection's frame budget when it is answered, below zero if need be: the connection's next
 * frames are then dropped by the frame rate until it has refilled, and a list that finds the
 * budget spent is answered `RATE_LIMIT` with its `id`, before the rules are read.
 */
describe('hostile: alert.list of a user with many rules', () => {
  let engine: Engine;
  const RULES = 500;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      // a slow refill keeps the count of answered lists independent of the machine's speed
      limits: { messagesPerSec: 1, messageBurst: 200, rateLimitCloseMs: 60_000 },
    });
    for (let i = 0; i < RULES; i += 50) {
      const batch = Array.from({ length: Math.min(50, RULES - i) }, (_, k) =>
        api(engine, 'POST', '/v1/users/mallory/alerts', { id: `r${i + k}`, symbol: 'AAPL', kind: 'price', direction: 'above', level: 100 + i + k }),
      );
      for (const r of await Promise.all(batch)) expect(r.status).toBe(201);
    }
    for (let k = 0; k < 3; k++) {
      expect(
        (await api(engine, 'POST', '/v1/users/bob/alerts', { id: `b${k}`, symbol: 'AAPL', kind: 'price', direction: 'above', level: 300 + k })).status,
      ).toBe(201);
    }
  }, 60_000);
  afterAll(() => engine?.close());

  const connect = async (sub: string): Promise<TestClient> =>
    TestClient.connect(wsUrl(engine), { encoding: 'json', headers: { authorization: `Bearer ${await token({ sub })}` } });
  const answerTo = (c: TestClient, id: number): Frame | undefined => c.frames.find((f) => f.id === id && (f.op === 'alert.list' || f.op === 'error'));

  it('a burst of 100 lists of 500 rules: each answer counts as 10 frames; the lists beyond the budget are refused or dropped, unread', async () => {
    const c = await connect('mallory');
    const refusedBefore = engine.access!.limits.stats.rateLimitedFrames;
    for (let i = 0; i < 100; i++) c.send({ op: 'alert.list', id: i });
    // every frame is answered (a list, or RATE_LIMIT with its id) or dropped by the frame rate
    // (counted; one RATE_LIMIT without id says so): nothing is left to come
    // (a list refused because 32 of the user's lists wait already is answered, not counted as a
    // rate-limited frame; one refused for the spent budget is both)
    const settled = () => {
      const answered = Array.from({ length: 100 }, (_, i) => answerTo(c, i)).filter(Boolean).length;
      return answered + (engine.access!.limits.stats.rateLimitedFrames - refusedBefore) - refusedForBudget().length >= 100 ? true : undefined;
    };
    const refusedWithId = () => c.frames.filter((f) => f.op === 'error' && typeof f.id === 'number');
    const refusedForBudget = () => refusedWithId().filter((f) => !String(f.message).includes('wait already'));
    await waitFor(settled, { timeout: 20_000, what: 'each of the 100 lists answered or dropped' });
    const listed = c.frames.filter((f) => f.op === 'alert.list');
    // the burst (200) covers 20 answers of 10 frames, whichever way the frames and the answers
    // interleave (the refill of 1 a second may add one or two on a slow machine); it was 100
    expect(listed.length).toBeGreaterThanOrEqual(10);
    expect(listed.length).toBeLessThanOrEqual(22);
    for (const f of listed) expect((f.alerts as unknown[]).length).toBe(RULES);
    // answered in the order sent
    const ids = listed.map((f) => f.id as number);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    for (const f of refusedWithId()) {
      expect(f.code).toBe('RATE_LIMIT');
      expect(String(f.message)).toContain('50 rules');
    }
    const refusedWaiting = refusedWithId().length - refusedForBudget().length;
    expect(listed.length + (engine.access!.limits.stats.rateLimitedFrames - refusedBefore) + refusedWaiting).toBe(100);
    expect(c.closeCode).toBeUndefined();
    c.close();
  }, 30_000);

  it('a user with a few rules gets every list, concurrent ones too, in order', async () => {
    const c = await connect('bob');
    for (let i = 0; i < 5; i++) c.send({ op: 'alert.list', id: i });
    await waitFor(() => (Array.from({ length: 5 }, (_, i) => answerTo(c, i)).every(Boolean) ? true : undefined), {
      timeout: 10_000,
      what: 'five answers',
    });
    const answers = c.frames.filter((f) => f.op === 'alert.list');
    expect(answers.map((f) => f.id)).toEqual([0, 1, 2, 3, 4]);
    for (const f of answers) expect((f.alerts as { id: string }[]).map((a) => a.id).sort()).toEqual(['b0', 'b1', 'b2']);
    c.close();
  });

  it("a user's lists are built one at a time across the user's connections, at most 32 waiting", async () => {
    // each list is read (about 5 ms for 1000 rules), then redacted and encoded: built at once on a
    // user's 20 connections, their reads resolved together and held the event loop for all of
    // them in one go (a bystander's ping p99 449 ms with 20 x 30 lists of 1000 rules)
    const listsApi = engine.userAlerts!.alerts!.api;
    const list = listsApi.list.bind(listsApi);
    let inFlight = 0;
    let most = 0;
    listsApi.list = async (user: string) => {
      most = Math.max(most, ++inFlight);
      try {
        await new Promise((r) => setTimeout(r, 30));
        return await list(user);
      } finally {
        inFlight--;
      }
    };
    const conns = await Promise.all(Array.from({ length: 8 }, () => connect('bob')));
    try {
      for (const c of conns) for (let i = 0; i < 5; i++) c.send({ op: 'alert.list', id: i });
      const settled = () => conns.every((c) => Array.from({ length: 5 }, (_, i) => answerTo(c, i)).every(Boolean)) || undefined;
      await waitFor(settled, { timeout: 20_000, what: 'an answer to each of the 40 lists' });
      expect(most).toBe(1);
      const answers = conns.flatMap((c) => c.frames.filter((f) => f.op === 'alert.list' || (f.op === 'error' && typeof f.id === 'number')));
      const listed = answers.filter((f) => f.op === 'alert.list');
      const refused = answers.filter((f) => f.op === 'error');
      // 40 sent at once: 32 may wait (the one being built among them), the rest are refused at once
      expect(listed.length).toBe(32);
      expect(refused.length).toBe(8);
      for (const f of refused) {
        expect(f.code).toBe('RATE_LIMIT');
        expect(String(f.message)).toContain('32');
      }
      // each connection's lists still answered in the order sent
      for (const c of conns) {
        const ids = c.frames.filter((f) => f.op === 'alert.list').map((f) => f.id as number);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
      }
    } finally {
      listsApi.list = list;
      for (const c of conns) c.close();
    }
  }, 30_000);
});
