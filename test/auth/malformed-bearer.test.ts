import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { keyPair, SECRET, testEngine, token } from './helpers.js';

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

  it('is refused 401 on the HTTP stream and /v1/bars too (one reading of the header everywhere)', async () => {
    const good = await token({ sub: 'alice' });
    const bad = { authorization: `Bearer ${good} extra` };
    const sse = await fetch(`${http}/v1/stream/sse`, { headers: bad });
    expect(sse.status).toBe(401);
    await sse.body?.cancel();
    expect((await fetch(`${http}/v1/bars?symbol=BTC-USD&interval=1m`, { headers: bad })).status).toBe(401);
    const ok = await fetch(`${http}/v1/bars?symbol=BTC-USD&interval=1m`, { headers: { authorization: `Bearer ${good}` } });
    expect(ok.status).not.toBe(401);
    await ok.body?.cancel();
  });

  it('is refused 401 at the WebSocket upgrade (optional mode does not make it anonymous)', async () => {
    const good = await token({ sub: 'alice' });
    const res = await rawUpgrade(engine.port, { authorization: `Bearer ${good} extra` });
    expect(res.status).toBe(401);
    expect((await rawUpgrade(engine.port, { authorization: `Bearer ${good}` })).status).toBe(101);
  });
});

describe('/v1/bars when the token cannot be checked', () => {
  it('answers 503 jwks_unavailable with Retry-After, as the upgrade and the HTTP stream do', async () => {
    // a JWKS endpoint nobody listens on: every RS256 token fails to be checked, not verified false
    const engine = await testEngine({ auth: { mode: 'required', jwksUrl: 'http://127.0.0.1:9/jwks.json' } });
    try {
      const { privateKey } = await keyPair('RS256');
      const jwt = await token({ alg: 'RS256', kid: 'k1', key: privateKey });
      const res = await fetch(`http://127.0.0.1:${engine.port}/v1/bars?symbol=BTC-USD&interval=1m`, { headers: { authorization: `Bearer ${jwt}` } });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      expect(await res.json()).toMatchObject({ error: 'UNAUTHENTICATED', code: 'jwks_unavailable' });
    } finally {
      await engine.close();
    }
  });
});
