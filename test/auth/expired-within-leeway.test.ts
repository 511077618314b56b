import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { SECRET, token } from './helpers.js';

/**
 * `exp` is the end of everything a connection does (docs/auth.md). `auth.clockToleranceSec` lets
 * a token whose `exp` passed a moment ago verify, but such a token cannot start a session: the
 * upgrade used to answer 101 and `welcome`, and the session policy closed the connection 1008
 * "token expired" right after. A client handing out the same token again (a cached token, a
 * token prop) then reconnected in a loop: 31-40 connections in 3-5 s, each verified and closed.
 * It is refused like the in-band `auth` refuses it, at the upgrade, the HTTP stream and the auth
 * check (which tells a browser why its upgrade failed) alike.
 */
describe('a token whose exp has passed, within the clock tolerance', () => {
  let engine: Engine;
  let http: string;
  beforeAll(async () => {
    // clockToleranceSec 30: jose accepts a token that expired 2 s ago
    engine = await startEngine(
      { host: '127.0.0.1', port: 0, auth: { mode: 'required', jwtSecret: SECRET, clockToleranceSec: 30 } },
      { roles: { feeds: [] }, env: {} },
    );
    http = `http://127.0.0.1:${engine.port}`;
  });
  afterAll(() => engine.close());

  it('is refused 401 expired at the WebSocket upgrade; a live token is upgraded', async () => {
    const lapsed = await token({ sub: 'alice', expIn: -2 });
    expect((await rawUpgrade(engine.port, { authorization: `Bearer ${lapsed}` })).status).toBe(401);
    expect((await rawUpgrade(engine.port, { authorization: `Bearer ${await token({ sub: 'alice' })}` })).status).toBe(101);
  });

  it('is refused 401 expired on the HTTP stream and at the auth check', async () => {
    const lapsed = await token({ sub: 'alice', expIn: -2 });
    const sse = await fetch(`${http}/v1/stream/sse`, { headers: { authorization: `Bearer ${lapsed}` } });
    expect(sse.status).toBe(401);
    expect(await sse.json()).toMatchObject({ error: 'UNAUTHENTICATED', code: 'expired' });
    const check = await fetch(`${http}/v1/auth/check`, { headers: { authorization: `Bearer ${lapsed}` } });
    expect(check.status).toBe(401);
    expect(await check.json()).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('still verifies for a one-shot request (/v1/bars): the tolerance is for clock skew there', async () => {
    const lapsed = await token({ sub: 'alice', expIn: -2 });
    const res = await fetch(`${http}/v1/bars?symbol=BTC-USD&interval=1m`, { headers: { authorization: `Bearer ${lapsed}` } });
    expect(res.status).not.toBe(401);
    await res.body?.cancel();
  });
});
