import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { keyPair, SECRET, testEngine, token, unsignedToken, wsUrl } from './helpers.js';
import { quietFor } from '../helpers/wait.js';

/** Connect and expect the upgrade to be refused; returns the HTTP status. */
async function refused(url: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const c = await TestClient.connect(url, { headers });
    c.close();
    return 101;
  } catch (err) {
    return (err as { statusCode?: number }).statusCode ?? -1;
  }
}

describe('auth required at the upgrade', () => {
  let engine: Engine;
  let rsa: Awaited<ReturnType<typeof keyPair>>;
  beforeAll(async () => {
    rsa = await keyPair('RS256');
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, jwtPublicKey: rsa.publicPem, issuer: ['https://idp.test'], audience: ['tickwire'] },
    });
  });
  afterAll(() => engine.close());

  const good = (extra: Parameters<typeof token>[0] = {}) => token({ iss: 'https://idp.test', aud: 'tickwire', ...extra });

  it('accepts a valid token in the Authorization header and in ?token=', async () => {
    const a = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await good()}` } });
    expect((await a.waitFor((f) => f.op === 'welcome')).protocol).toBe(1);
    a.close();
    const b = await TestClient.connect(wsUrl(engine, `?token=${await good({ alg: 'RS256', key: rsa.privateKey })}`), { encoding: 'json' });
    await b.waitFor((f) => f.op === 'welcome');
    b.close();
  });

  it('refuses with 401 and nothing else for each failure mode', async () => {
    const other = await keyPair('RS256');
    const cases: [string, string | undefined][] = [
      ['missing', undefined],
      ['alg none', unsignedToken({ sub: 'alice', iss: 'https://idp.test', aud: 'tickwire' })],
      ['wrong HMAC key', await good({ secret: 'not-the-secret-but-long-enough-0123456789' })],
      ['wrong RSA key', await good({ alg: 'RS256', key: other.privateKey })],
      ['expired', await good({ expIn: -120 })],
      ['wrong aud', await good({ aud: 'someone-else' })],
      ['wrong iss', await good({ iss: 'https://evil.test' })],
      ['HS token keyed with the RSA public key', await good({ alg: 'HS256', key: new TextEncoder().encode(rsa.publicPem) })],
      ['garbage', 'abc.def.ghi'],
    ];
    for (const [name, t] of cases) {
      expect(await refused(wsUrl(engine), t === undefined ? {} : { authorization: `Bearer ${t}` }), name).toBe(401);
      if (t !== undefined) expect(await refused(wsUrl(engine, `?token=${encodeURIComponent(t)}`)), `${name} (query)`).toBe(401);
    }
    // the raw response: 401 and an empty body
    const raw = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({
        host: '127.0.0.1',
        port: engine.port,
        path: '/v1/stream',
        headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
      });
      req.on('response', (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('upgrade', () => reject(new Error('upgraded without a token')));
      req.on('error', reject);
      req.end();
    });
    expect(raw).toEqual({ status: 401, body: '' });
  });
});

describe('auth optional', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'optional', jwtSecret: SECRET } });
  });
  afterAll(() => engine.close());

  it('lets anonymous connections in for public channels only, refuses bad tokens', async () => {
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'system', 'executions', 'portfolio'] });
    expect(ack.subscribed).toEqual(['quote:AAPL', 'system']);
    expect(ack.rejected).toEqual([
      expect.objectContaining({ channel: 'executions', code: 'UNAUTHENTICATED' }),
      expect.objectContaining({ channel: 'portfolio', code: 'UNAUTHENTICATED' }),
    ]);
    c.close();
    expect(await refused(wsUrl(engine), { authorization: `Bearer ${await token({ expIn: -300 })}` })).toBe(401);
  });

  it('upgrades an anonymous connection in band with {"op":"auth"}', async () => {
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    const before = await c.request({ op: 'subscribe', id: 1, channels: ['executions'] });
    expect(before.rejected[0].code).toBe('UNAUTHENTICATED');
    const ack = await c.request({ op: 'auth', id: 2, token: await token({ sub: 'carol' }) });
    expect(ack.op).toBe('ack');
    const after = await c.request({ op: 'subscribe', id: 3, channels: ['executions'] });
    expect(after.subscribed).toEqual(['executions']);
    c.close();
  });
});

// each case its own connection (and token) on the shared engine, waiting for its own exp: at the same time
describe('token expiry on open connections', { concurrent: true }, () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, expiryWarningSec: 2, clockToleranceSec: 0 } });
  });
  afterAll(() => engine.close());

  const isWarning = (f: Frame) => f.op === 'error' && f.code === 'UNAUTHENTICATED' && typeof f.expires === 'number';

  it('warns before exp, then closes with 1008 at exp', async () => {
    const t = await token({ expIn: 4 });
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${t}` }, encoding: 'json' });
    await c.waitFor((f) => f.op === 'welcome');
    const warning = await c.waitFor(isWarning, 10_000);
    expect(warning.message).toMatch(/token expires in \d+s: send/);
    expect(c.closeCode).toBeUndefined();
    expect(await c.waitClose(10_000)).toBe(1008);
    expect(c.closeReason).toBe('token expired');
  });

  it('stays open past the first exp after an in-band refresh, and closes at the new exp', async () => {
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ expIn: 3 })}` }, encoding: 'json' });
    await c.waitFor(isWarning, 10_000);
    const fresh = await token({ expIn: 7 });
    const ack = await c.request({ op: 'auth', id: 'r1', token: fresh });
    expect(ack).toMatchObject({ op: 'ack', id: 'r1' });
    expect(ack.expires).toBeGreaterThan(Date.now() + 4000);
    const refreshedAt = Date.now();
    await quietFor(4500, 'no close at the first exp, after the refresh');
    expect(c.closeCode).toBeUndefined();
    expect(await c.waitClose(15_000)).toBe(1008);
    expect(Date.now()).toBeGreaterThan(refreshedAt + 4500);
  });

  it('refuses a refresh that is invalid or for another user, and the connection still expires', async () => {
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ expIn: 4, sub: 'alice' })}` }, encoding: 'json' });
    await c.waitFor((f) => f.op === 'welcome');
    const bad = await c.request({ op: 'auth', id: 1, token: await token({ expIn: -100 }) });
    expect(bad).toMatchObject({ op: 'error', code: 'UNAUTHENTICATED' });
    const other = await c.request({ op: 'auth', id: 2, token: await token({ sub: 'mallory' }) });
    expect(other).toMatchObject({ op: 'error', code: 'FORBIDDEN' });
    expect(await c.waitClose(15_000)).toBe(1008);
  });

  it('closes with 1008 when a refreshed token withdraws an entitlement in use', async () => {
    const t = await token({ claims: { ent: { classes: ['stock', 'crypto'] } } });
    const c = await TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${t}` }, encoding: 'json' });
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:BTC-USD'] });
    expect(ack.subscribed).toHaveLength(2);
    // same user, crypto only: AAPL is withdrawn
    await c.request({ op: 'auth', id: 2, token: await token({ claims: { ent: { classes: ['crypto'] } } }) });
    expect(await c.waitClose(10_000)).toBe(1008);
    expect(c.closeReason).toMatch(/entitlement withdrawn: quote:AAPL/);
  });

  it('closes with 1008 when real time becomes delayed, and keeps the connection when delayed becomes real time', async () => {
    const down = await TestClient.connect(wsUrl(engine), {
      headers: { authorization: `Bearer ${await token({ claims: { ent: { classes: ['stock'] } } })}` },
      encoding: 'json',
    });
    await down.request({ op: 'subscribe', id: 1, channels: ['quote:MSFT'] });
    await down.request({ op: 'auth', id: 2, token: await token({ claims: { ent: { delayed: ['stock'] } } }) });
    expect(await down.waitClose(10_000)).toBe(1008);

    const up = await TestClient.connect(wsUrl(engine), {
      headers: { authorization: `Bearer ${await token({ claims: { ent: { delayed: ['stock'] } } })}` },
      encoding: 'json',
    });
    await up.request({ op: 'subscribe', id: 1, channels: ['quote:MSFT'] });
    expect((await up.request({ op: 'auth', id: 2, token: await token({ claims: { ent: { classes: ['stock'] } } }) })).op).toBe('ack');
    expect((await up.request({ op: 'ping', id: 3 })).op).toBe('pong');
    expect(up.closeCode).toBeUndefined();
    up.close();
  });
});
