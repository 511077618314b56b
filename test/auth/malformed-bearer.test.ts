import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { SECRET, token } from './helpers.js';

/**
 * An `Authorization` header of the Bearer scheme that is not one token is a malformed token:
 * refused 401 like any bad token, never a request without one (in `optional` mode that would go
 * on anonymously, and a client sending a broken header would not learn of it). Other schemes are
 * not the gateway's (a proxy's Basic auth) and leave `?token=` in charge (docs/auth.md).
 */
describe('a malformed Bearer header', () => {
  let engine: Engine;
  let http: string;
  beforeAll(async () => {
    engine = await startEngine({ host: '127.0.0.1', port: 0, auth: { mode: 'optional', jwtSecret: SECRET } }, { roles: { feeds: [] }, env: {} });
    http = `http://127.0.0.1:${engine.port}`;
  });
  afterAll(() => engine.close());

  const check = async (authorization: string, query = '') => {
    const res = await fetch(`${http}/v1/auth/check${query}`, { headers: { authorization } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('is refused 401 malformed at the auth check, whatever else the request carries', async () => {
    const good = await token({ sub: 'alice' });
    for (const h of [`Bearer ${good} extra`, 'Bearer', 'Bearer   ', `bearer ${good} ${good}`]) {
      expect(await check(h), h).toMatchObject({ status: 401, body: { ok: false, reason: 'malformed' } });
    }
    expect(await check(`Bearer ${good} x`, `?token=${good}`)).toMatchObject({ status: 401, body: { reason: 'malformed' } });
    // the well-formed header, and another scheme with the token in the query
    expect(await check(`Bearer ${good}`)).toMatchObject({ status: 200, body: { ok: true, sub: 'alice' } });
    expect(await check('Basic dXNlcjpwYXNz', `?token=${good}`)).toMatchObject({ status: 200, body: { ok: true, sub: 'alice' } });
    expect(await check('Basic dXNlcjpwYXNz')).toMatchObject({ status: 200, body: { ok: true } });
  });

  it('is refused 401 at the WebSocket upgrade (optional mode does not make it anonymous)', async () => {
    const good = await token({ sub: 'alice' });
    const res = await rawUpgrade(engine.port, { authorization: `Bearer ${good} extra` });
    expect(res.status).toBe(401);
    expect((await rawUpgrade(engine.port, { authorization: `Bearer ${good}` })).status).toBe(101);
  });
});
