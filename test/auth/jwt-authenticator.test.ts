import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthenticator, entitlementsOf, JwtAuthenticator } from '../../src/access/jwt-authenticator.js';
import { loadConfig } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { keyPair, SECRET, token, unsignedToken } from './helpers.js';

function authConfig(auth: Record<string, unknown>) {
  return loadConfig({ env: {}, overrides: { auth: { mode: 'required', ...auth } } }).auth;
}

const hs = () => new JwtAuthenticator(authConfig({ jwtSecret: SECRET }));

describe('JwtAuthenticator: HMAC', () => {
  it('accepts a valid HS256 token and reports sub, claims and expiry', async () => {
    const t = await token({ sub: 'alice', expIn: 600, claims: { role: 'trader' } });
    const r = await hs().authenticate(t);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.principal.user).toBe('alice');
    expect(r.principal.claims?.role).toBe('trader');
    expect(r.expiresAt).toBeGreaterThan(Date.now() + 590_000);
    expect(r.expiresAt! % 1000).toBe(0);
  });

  it('refuses a missing token', async () => {
    expect(await hs().authenticate(undefined)).toMatchObject({ ok: false, code: 'missing' });
    expect(await hs().authenticate('')).toMatchObject({ ok: false, code: 'missing' });
  });

  it('refuses garbage', async () => {
    expect(await hs().authenticate('not.a.jwt')).toMatchObject({ ok: false, code: 'malformed' });
    expect(await hs().authenticate('x'.repeat(20_000))).toMatchObject({ ok: false, code: 'malformed' });
  });

  it('refuses alg "none" (unsigned tokens), whatever the case', async () => {
    expect(await hs().authenticate(unsignedToken({ sub: 'alice' }))).toMatchObject({ ok: false, code: 'alg_none' });
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const noneUpper = `${enc({ alg: 'NONE' })}.${enc({ sub: 'alice' })}.`;
    expect(await hs().authenticate(noneUpper)).toMatchObject({ ok: false, code: 'alg_none' });
  });

  it('refuses a token signed with another secret', async () => {
    const t = await token({ secret: 'another-secret-that-is-long-enough-0123456789' });
    expect(await hs().authenticate(t)).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it('refuses an expired token, with a small clock tolerance', async () => {
    expect(await hs().authenticate(await token({ expIn: -60 }))).toMatchObject({ ok: false, code: 'expired' });
    // 2 s past exp is within the default 5 s tolerance
    expect((await hs().authenticate(await token({ expIn: -2 }))).ok).toBe(true);
    const strict = new JwtAuthenticator(authConfig({ jwtSecret: SECRET, clockToleranceSec: 0 }));
    expect(await strict.authenticate(await token({ expIn: -2 }))).toMatchObject({ ok: false, code: 'expired' });
  });

  it('refuses a token that is not valid yet (nbf)', async () => {
    expect(await hs().authenticate(await token({ nbfIn: 120 }))).toMatchObject({ ok: false, code: 'not_yet_valid' });
  });

  it('refuses a token issued in the future (iat beyond the clock tolerance), as the docs promise leeway on iat', async () => {
    const at = (iatIn: number | string) =>
      new SignJWT({ iat: (typeof iatIn === 'number' ? Math.floor(Date.now() / 1000) + iatIn : iatIn) as number })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('alice')
        .setExpirationTime(Math.floor(Date.now() / 1000) + 3600)
        .sign(new TextEncoder().encode(SECRET));
    expect(await hs().authenticate(await at(3600))).toMatchObject({ ok: false, code: 'not_yet_valid', reason: expect.stringMatching(/"iat"/) });
    expect(await hs().authenticate(await at(120))).toMatchObject({ ok: false, code: 'not_yet_valid' });
    // within auth.clockToleranceSec (5 s): a clock a little ahead at the issuer
    expect((await hs().authenticate(await at(3))).ok).toBe(true);
    expect((await hs().authenticate(await at(-60))).ok).toBe(true);
    expect(await hs().authenticate(await at('soon'))).toMatchObject({ ok: false, code: 'bad_claim' });
  });

  it('takes aud as a string or an array (RFC 7519 4.1.3), iss only as one string', async () => {
    const a = new JwtAuthenticator(authConfig({ jwtSecret: SECRET, issuer: ['https://idp.example'], audience: ['tickwire'] }));
    const sign = (claims: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setIssuedAt().sign(new TextEncoder().encode(SECRET));
    expect((await a.authenticate(await sign({ iss: 'https://idp.example', aud: ['other', 'tickwire'] }))).ok).toBe(true);
    expect(await a.authenticate(await sign({ iss: 'https://idp.example', aud: ['other'] }))).toMatchObject({ ok: false, code: 'bad_audience' });
    expect(await a.authenticate(await sign({ iss: ['https://idp.example'], aud: 'tickwire' }))).toMatchObject({ ok: false, code: 'bad_issuer' });
  });

  it('requires sub, and exp when configured', async () => {
    expect(await hs().authenticate(await token({ sub: '' }))).toMatchObject({ ok: false, code: 'bad_claim' });
    expect((await hs().authenticate(await token({ expIn: null }))).ok).toBe(true);
    const requireExp = new JwtAuthenticator(authConfig({ jwtSecret: SECRET, requireExp: true }));
    expect(await requireExp.authenticate(await token({ expIn: null }))).toMatchObject({ ok: false, code: 'bad_claim' });
  });

  it('checks iss and aud when configured', async () => {
    const a = new JwtAuthenticator(authConfig({ jwtSecret: SECRET, issuer: ['https://idp.example'], audience: ['tickwire'] }));
    expect((await a.authenticate(await token({ iss: 'https://idp.example', aud: 'tickwire' }))).ok).toBe(true);
    expect(await a.authenticate(await token({ iss: 'https://evil.example', aud: 'tickwire' }))).toMatchObject({ ok: false, code: 'bad_issuer' });
    expect(await a.authenticate(await token({ iss: 'https://idp.example', aud: 'other' }))).toMatchObject({ ok: false, code: 'bad_audience' });
    expect(await a.authenticate(await token({ aud: 'tickwire' }))).toMatchObject({ ok: false, code: 'bad_issuer' });
    expect(await a.authenticate(await token({ iss: 'https://idp.example' }))).toMatchObject({ ok: false, code: 'bad_audience' });
  });

  it('refuses a malformed entitlements claim at authentication', async () => {
    const r = await hs().authenticate(await token({ claims: { ent: { classes: ['fx'] } } }));
    expect(r).toMatchObject({ ok: false, code: 'bad_entitlements' });
    if (!r.ok) expect(r.reason).toContain('ent.classes');
  });
});

describe('JwtAuthenticator: public keys', () => {
  let rsa: Awaited<ReturnType<typeof keyPair>>;
  let ec: Awaited<ReturnType<typeof keyPair>>;
  let ed: Awaited<ReturnType<typeof keyPair>>;
  beforeAll(async () => {
    [rsa, ec, ed] = await Promise.all([keyPair('RS256'), keyPair('ES256'), keyPair('EdDSA')]);
  });

  it('verifies RS256 with a PEM key, ES256 with a JWK, EdDSA with a PEM', async () => {
    const r1 = await new JwtAuthenticator(authConfig({ jwtPublicKey: rsa.publicPem })).authenticate(await token({ alg: 'RS256', key: rsa.privateKey }));
    expect(r1.ok).toBe(true);
    const r2 = await new JwtAuthenticator(authConfig({ jwtPublicKey: JSON.stringify(ec.publicJwk) })).authenticate(
      await token({ alg: 'ES256', key: ec.privateKey }),
    );
    expect(r2.ok).toBe(true);
    const r3 = await new JwtAuthenticator(authConfig({ jwtPublicKey: ed.publicPem })).authenticate(await token({ alg: 'EdDSA', key: ed.privateKey }));
    expect(r3.ok).toBe(true);
  });

  it('refuses a token signed by another key', async () => {
    const other = await keyPair('RS256');
    const a = new JwtAuthenticator(authConfig({ jwtPublicKey: rsa.publicPem }));
    expect(await a.authenticate(await token({ alg: 'RS256', key: other.privateKey }))).toMatchObject({ ok: false, code: 'bad_signature' });
  });

  it('refuses an HS token against an RS key (no HMAC/RSA confusion), even one keyed with the public PEM', async () => {
    const a = new JwtAuthenticator(authConfig({ jwtPublicKey: rsa.publicPem }));
    expect(a.algorithms).not.toContain('HS256');
    expect(await a.authenticate(await token({ alg: 'HS256' }))).toMatchObject({ ok: false, code: 'alg_not_allowed' });
    // the classic attack: HMAC with the public key bytes as the secret
    const forged = await token({ alg: 'HS256', key: new TextEncoder().encode(rsa.publicPem) });
    expect(await a.authenticate(forged)).toMatchObject({ ok: false, code: 'alg_not_allowed' });
    // with both a secret and a public key, an HS token is checked against the secret only
    const both = new JwtAuthenticator(authConfig({ jwtSecret: SECRET, jwtPublicKey: rsa.publicPem }));
    expect(await both.authenticate(forged)).toMatchObject({ ok: false, code: 'bad_signature' });
    expect((await both.authenticate(await token({ alg: 'RS256', key: rsa.privateKey }))).ok).toBe(true);
    expect((await both.authenticate(await token({ alg: 'HS256' }))).ok).toBe(true);
  });

  it('refuses an algorithm outside the allowlist or the key type', async () => {
    const a = new JwtAuthenticator(authConfig({ jwtPublicKey: rsa.publicPem, algorithms: ['RS256'] }));
    expect((await a.authenticate(await token({ alg: 'RS256', key: rsa.privateKey }))).ok).toBe(true);
    const { privateKey: rs384 } = await generateKeyPair('RS384');
    expect(await a.authenticate(await token({ alg: 'RS384', key: rs384 }))).toMatchObject({ ok: false, code: 'alg_not_allowed' });
    const ecOnly = new JwtAuthenticator(authConfig({ jwtPublicKey: ec.publicPem }));
    expect(await ecOnly.authenticate(await token({ alg: 'RS256', key: rsa.privateKey }))).toMatchObject({ ok: false, code: 'alg_not_allowed' });
  });

  it('refuses private keys and symmetric JWKs as the public key', async () => {
    expect(() => new JwtAuthenticator(authConfig({ jwtPublicKey: JSON.stringify({ kty: 'oct', k: 'c2VjcmV0' }) }))).toThrow(ConfigError);
    expect(() => new JwtAuthenticator(authConfig({ jwtPublicKey: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----' }))).toThrow(/private key/);
    expect(() => new JwtAuthenticator(authConfig({ jwtPublicKey: '/nonexistent/key.pem' }))).toThrow(ConfigError);
  });
});

describe('JwtAuthenticator: JWKS URL', () => {
  let server: Server;
  let url = '';
  let fetches = 0;
  let rsa: Awaited<ReturnType<typeof keyPair>>;
  beforeAll(async () => {
    rsa = await keyPair('RS256');
    server = createServer((_req, res) => {
      fetches++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: [{ ...rsa.publicJwk, kid: 'k1', alg: 'RS256', use: 'sig' }] }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/.well-known/jwks.json`;
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('verifies against the fetched key set and caches it', async () => {
    const a = new JwtAuthenticator(authConfig({ jwksUrl: url }));
    const t = await token({ alg: 'RS256', key: rsa.privateKey, kid: 'k1' });
    expect((await a.authenticate(t)).ok).toBe(true);
    expect((await a.authenticate(t)).ok).toBe(true);
    expect((await a.authenticate(await token({ alg: 'RS256', key: rsa.privateKey, kid: 'k1', sub: 'bob' }))).ok).toBe(true);
    expect(fetches).toBe(1);
  });

  it('refuses unknown kids, other keys and HS tokens', async () => {
    const a = new JwtAuthenticator(authConfig({ jwksUrl: url }));
    const other = await keyPair('RS256');
    expect(await a.authenticate(await token({ alg: 'RS256', key: other.privateKey, kid: 'k1' }))).toMatchObject({ ok: false, code: 'bad_signature' });
    expect(await a.authenticate(await token({ alg: 'RS256', key: rsa.privateKey, kid: 'nope' }))).toMatchObject({ ok: false });
    expect(await a.authenticate(await token({ alg: 'HS256' }))).toMatchObject({ ok: false, code: 'alg_not_allowed' });
  });
});

describe('auth configuration', () => {
  it('is anonymous when off', async () => {
    const a = createAuthenticator(loadConfig({ env: {} }).auth);
    expect(a.mode).toBe('off');
    expect(await a.authenticate(undefined)).toMatchObject({ ok: true, principal: {} });
  });

  it('refuses required auth without any key, naming the variables', () => {
    expect(() => loadConfig({ env: { TICKWIRE_AUTH: 'required' } })).toThrow(/TICKWIRE_JWT_SECRET/);
  });

  it('reads the conventional env names and refuses short secrets', () => {
    const cfg = loadConfig({
      env: { TICKWIRE_AUTH: 'optional', TICKWIRE_JWT_SECRET: SECRET, TICKWIRE_JWT_AUDIENCE: 'a,b', TICKWIRE_SERVICE_TOKEN: 'x'.repeat(20) },
    });
    expect(cfg.auth).toMatchObject({ mode: 'optional', jwtSecret: SECRET, audience: ['a', 'b'], serviceToken: 'x'.repeat(20) });
    expect(() => loadConfig({ env: { TICKWIRE_JWT_SECRET: 'short' } })).toThrow(/auth.jwtSecret/);
  });

  it('gives tokens without entitlements the default, anonymous connections theirs', async () => {
    const cfg = authConfig({ jwtSecret: SECRET, defaultEntitlement: 'delayed', anonymousEntitlement: 'none' });
    const r = await new JwtAuthenticator(cfg).authenticate(await token());
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(entitlementsOf(r.principal, cfg).access('AAPL', 'stock')).toBe('delayed');
    expect(entitlementsOf({}, cfg).access('AAPL', 'stock')).toBe('none');
  });
});
