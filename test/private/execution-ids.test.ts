import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { api, SECRET, SERVICE_TOKEN, testEngine } from '../auth/helpers.js';
import { startRedis } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Execution ids are the deduplication key of the log. A string with a lone UTF-16 surrogate has no
 * UTF-8 form: Redis (and JetStream's message id, a hash of the UTF-8 bytes) store it as U+FFFD, so
 * `fill-\uD800` and `fill-\uDC00` were one id there: the second, a different execution, was
 * answered `duplicate: true` with the first's seq and never stored or delivered. Such an id (and
 * order id, which is stored the same way) is now refused with 400 naming the field, as a user id is.
 */
let redis: TestServer & { destroy(): Promise<void> };
let engine: Engine;

beforeAll(async () => {
  redis = await startRedis();
  engine = await testEngine({ redisUrl: redis.url, auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  await waitFor(() => engine.ready().ready, { what: 'the engine ready (its Redis log connected)', timeout: 20_000 });
}, 60_000);

afterAll(async () => {
  await engine?.close();
  await redis?.destroy();
});

// one fixed time: a retry repeats the execution as it was (another `t` is a 409 CONFLICT)
const T0 = Date.now();
const fill = (id: string, order = 'o-1') => ({ user: 'ivy', id, order, sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: T0 });

describe('execution ids that are not well-formed Unicode', () => {
  it('are refused with 400 naming the field, never taken for another execution', async () => {
    for (const id of ['fill-\uD800', 'fill-\uDC00', '\uDBFF']) {
      const r = await api(engine, 'POST', '/v1/executions', fill(id));
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: 'BAD_REQUEST', field: 'id' });
      expect(r.body.message).toMatch(/lone surrogate/);
    }
    const o = await api(engine, 'POST', '/v1/executions', fill('fill-ok', 'ord-\uD83D'));
    expect(o).toMatchObject({ status: 400, body: { field: 'order' } });
    // well-formed ids outside the BMP are distinct executions
    expect(await api(engine, 'POST', '/v1/executions', fill('fill-\u{1F600}'))).toMatchObject({ status: 201, body: { seq: 1, duplicate: false } });
    expect(await api(engine, 'POST', '/v1/executions', fill('fill-\u{1F601}'))).toMatchObject({ status: 201, body: { seq: 2, duplicate: false } });
    expect(await api(engine, 'POST', '/v1/executions', fill('fill-\u{1F600}'))).toMatchObject({ status: 200, body: { seq: 1, duplicate: true } });
  });
});
