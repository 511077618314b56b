import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JwksCache } from '../../src/access/jwks.js';
import { JwtAuthenticator } from '../../src/access/jwt-authenticator.js';
import { loadConfig } from '../../src/core/config.js';
import type { Config } from '../../src/core/config.js';
import { testEngine } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The identity provider's JWKS endpoint failing (5xx, 429, down) or an attacker sending tokens
 * with unknown `kid`s:
 * - a token that cannot be checked because no key set could be fetched is not a verdict on the
 *   token: the upgrade and the auth check answer 503 `jwks_unavailable` (the SDK retries), never 401;
 * - the gateway never fetches the JWKS per request: after a failed fetch, at most one more per
 *   retry interval, however many tokens arrive;
 * - a key set fetched earlier keeps verifying while a refresh fails (stale beats none).
 */
type Mode = 'ok' | 'error' | 'reset';
let server: Server;
let mode: Mode = 'ok';
let fetches = 0;
let url = '';
let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
let jwk: Record<string, unknown>;

beforeAll(async () => {
  rsa = await generateKeyPair('RS256', { extractable: true });
  jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  server = createServer((_req, res) => {
    fetches++;
    if (mode === 'reset') {
      res.socket?.destroy();
      return;
    }
    if (mode === 'error') {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('identity provider overloaded');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const sign = (kid: string, sub = 'alice'): Promise<string> =>
  new SignJWT({})
    .setProtectedHeader({ alg: 'RS256', kid })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
    .sign(rsa.privateKey);

function authConfig(over: Partial<Config['auth']> = {}): Config['auth'] {
  const cfg = loadConfig({ env: {}, overrides: { auth: { mode: 'required', jwksUrl: url } } }).auth;
  return { ...cfg, ...over };
}

describe('JWKS endpoint failing', () => {
  it('answers the upgrade, the HTTP stream, GET /v1/bars and the auth check 503 jwks_unavailable, not 401, while no key set could be fetched', async () => {
    mode = 'error';
    const engine = await testEngine({ auth: { mode: 'required', jwksUrl: url } });
    try {
      const t = await sign('k1');
      const check = await fetch(`http://127.0.0.1:${engine.port}/v1/auth/check`, { headers: { authorization: `Bearer ${t}` } });
      expect(check.status).toBe(503);
      expect(await check.json()).toMatchObject({ ok: false, reason: 'jwks_unavailable' });
      const sse = await fetch(`http://127.0.0.1:${engine.port}/v1/stream/sse`, { headers: { authorization: `Bearer ${t}` } });
      expect(sse.status).toBe(503);
      expect(await sse.json()).toMatchObject({ code: 'jwks_unavailable' });
      expect(sse.headers.get('retry-after')).toBe('5');
      const bars = await fetch(`http://127.0.0.1:${engine.port}/v1/bars?symbol=AAPL&interval=1m`, { headers: { authorization: `Bearer ${t}` } });
      expect(bars.status).toBe(503);
      expect(await bars.json()).toMatchObject({ code: 'jwks_unavailable' });
      await expect(TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { headers: { authorization: `Bearer ${t}` } })).rejects.toMatchObject({
        statusCode: 503,
      });
    } finally {
      await engine.close();
      mode = 'ok';
    }
  });

  it('a connection refused or reset by the JWKS host is jwks_unavailable too (the verifier throws), not "key does not fit"', async () => {
    mode = 'reset';
    try {
      const a = new JwtAuthenticator(authConfig());
      await expect(a.authenticate(await sign('k1'))).rejects.toThrow(/JWKS/);
    } finally {
      mode = 'ok';
    }
  });

  it('fetches the JWKS at most once per retry interval while it fails, however many tokens arrive', async () => {
    mode = 'error';
    try {
      const a = new JwtAuthenticator(authConfig());
      const before = fetches;
      for (let i = 0; i < 40; i++) {
        // each with another kid, as a flood of forged tokens would
        await a.authenticate(await sign(`forged-${i}`)).catch(() => undefined);
      }
      expect(fetches - before).toBe(1);
    } finally {
      mode = 'ok';
    }
  });

  it('logs failed fetches at most once per interval per JWKS URL, with the URL and the reason', async () => {
    const lines: { obj: Record<string, unknown>; msg: string | undefined }[] = [];
    const log = { warn: (obj: object, msg?: string) => lines.push({ obj: obj as Record<string, unknown>, msg }) };
    const opts = { url: new URL(url), cacheMs: 600_000, unknownKidMs: 30_000, retryMs: 0, timeoutMs: 5000, maxBytes: 1 << 20, log };
    const header = { alg: 'RS256', kid: 'k1' };
    const token = { payload: '', signature: '' };
    mode = 'error';
    try {
      // retryMs 0: every token fetches (and fails); one line for all of them
      const cache = new JwksCache(opts);
      for (let i = 0; i < 5; i++) await expect(cache.getKey(header, token)).rejects.toThrow(/HTTP 503/);
      expect(cache.stats.failures).toBe(5);
      expect(lines).toHaveLength(1);
      expect(lines[0]!.obj).toEqual({ url, reason: 'HTTP 503 from the JWKS URL', keys: 'none' });
      expect(lines[0]!.msg).toMatch(/JWKS fetch failed.*503 jwks_unavailable/);
      // the interval passed: the next failure is logged with how many were left out
      lines.length = 0;
      const every = new JwksCache({ ...opts, logIntervalMs: 0 });
      await expect(every.getKey(header, token)).rejects.toThrow(/HTTP 503/);
      mode = 'reset';
      await expect(every.getKey(header, token)).rejects.toThrow();
      expect(lines.map((l) => l.obj.reason)).toEqual(['HTTP 503 from the JWKS URL', expect.stringMatching(/fetch failed|socket|ECONNRESET/)]);
    } finally {
      mode = 'ok';
    }
  });

  it('unknown kids against a working endpoint refetch at most once per cooldown', async () => {
    const a = new JwtAuthenticator(authConfig());
    expect((await a.authenticate(await sign('k1'))).ok).toBe(true);
    const before = fetches;
    for (let i = 0; i < 40; i++) expect(await a.authenticate(await sign(`unknown-${i}`))).toMatchObject({ ok: false, code: 'unknown_key' });
    expect(fetches - before).toBeLessThanOrEqual(1);
  });

  it('keeps verifying with the key set it has while a refresh fails', async () => {
    // the key set is stale after 300 ms (jwksCacheSec is at least 10 in the configuration; the
    // authenticator takes the value as given)
    const a = new JwtAuthenticator(authConfig({ jwksCacheSec: 0.3 }));
    expect((await a.authenticate(await sign('k1'))).ok).toBe(true);
    mode = 'error';
    try {
      const before = fetches;
      const stale = Date.now() + 400;
      await waitFor(() => Date.now() > stale, { what: 'the key set to go stale', interval: 20 });
      for (let i = 0; i < 20; i++) expect(await a.authenticate(await sign('k1', `user-${i}`))).toMatchObject({ ok: true });
      expect(fetches - before).toBe(1);
    } finally {
      mode = 'ok';
    }
  });
});
