import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { RawWs } from '../helpers/raw-ws.js';
import { metricValue } from './kit.js';

/**
 * Every JWT attack against the upgrade (auth.mode required): each forged token is refused with 401
 * and nothing else (no 101, no frame), counted by reason in tickwire_auth_failures_total, and the
 * same tokens in `{"op":"auth"}` on an open connection get UNAUTHENTICATED without closing it.
 *
 * Keys: an RSA public key (RS256 and the other RSA algorithms) and a JWKS endpoint holding one EC key (kid "ec1"), no HMAC
 * secret, so an HS256 token signed with the RSA public key (the HMAC/RSA confusion) has no key to
 * verify against. iss, aud and exp are required. Last, a connection whose token lapses without
 * an `auth` renewal is closed 1008.
 */
const ISS = 'https://idp.test';
const AUD = 'tickwire';
let engine: Engine;
let jwks: Server;
let rsa: { privateKey: CryptoKey; publicKey: CryptoKey };
let other: { privateKey: CryptoKey; publicKey: CryptoKey };
let ec: { privateKey: CryptoKey; publicKey: CryptoKey };
let ecOther: { privateKey: CryptoKey; publicKey: CryptoKey };
let rsaPem = '';
const now = (): number => Math.floor(Date.now() / 1000);

beforeAll(async () => {
  rsa = await generateKeyPair('RS256');
  other = await generateKeyPair('RS256');
  ec = await generateKeyPair('ES256');
  ecOther = await generateKeyPair('ES256');
  rsaPem = await exportSPKI(rsa.publicKey);
  const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'ec1', alg: 'ES256', use: 'sig' };
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
  engine = await startEngine(
    {
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      feeds: [],
      auth: {
        mode: 'required',
        jwtPublicKey: rsaPem,
        jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
        issuer: [ISS],
        audience: [AUD],
        requireExp: true,
        clockToleranceSec: 5,
      },
      // one connection sends every forged token in band, to read each verdict: more than the
      // default budget of auth frames (test/hostile/upgrade-ip-limits.test.ts tests that)
      limits: { authsPerConnectionPerMin: 100 },
    },
    { env: {} },
  );
}, 60_000);

afterAll(async () => {
  await engine?.close();
  await new Promise((r) => jwks?.close(r));
});

const claims = (over: JWTPayload = {}): JWTPayload => ({ sub: 'mallory', iss: ISS, aud: AUD, iat: now(), exp: now() + 600, ...over });

async function sign(payload: JWTPayload, key: CryptoKey | Uint8Array, header: Record<string, unknown>): Promise<string> {
  return new SignJWT(payload).setProtectedHeader(header as { alg: string }).sign(key);
}

const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** Try an upgrade with this token; the status line and whatever followed it. */
async function upgrade(token: string, via: 'header' | 'query' = 'header'): Promise<{ status: number; frames: number }> {
  try {
    const ws = await RawWs.connect(
      engine.port,
      via === 'header' ? { headers: { Authorization: `Bearer ${token}` } } : { path: `/v1/stream?token=${encodeURIComponent(token)}` },
    );
    await ws.waitFor(() => ws.frames.length > 0, 2000).catch(() => undefined);
    const frames = ws.frames.length;
    ws.destroy();
    return { status: 101, frames };
  } catch (err) {
    const head = (err as { head?: string }).head ?? '';
    return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), frames: 0 };
  }
}

async function failures(reason: string): Promise<number> {
  return metricValue(await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text(), 'tickwire_auth_failures_total', { reason });
}

/** [name, metric reason, token] */
const attacks: [string, string, () => Promise<string>][] = [
  ['alg none', 'alg_none', async () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`],
  ['alg "NoNe" with a signature part', 'alg_none', async () => `${b64({ alg: 'NoNe' })}.${b64(claims())}.c2ln`],
  [
    'HS256 signed with the RSA public key (HMAC/RSA confusion)',
    'alg_not_allowed',
    async () => sign(claims(), new TextEncoder().encode(rsaPem), { alg: 'HS256' }),
  ],
  ['RS256 signed by another key (bad signature)', 'bad_signature', async () => sign(claims(), other.privateKey, { alg: 'RS256' })],
  [
    'payload swapped under a valid signature',
    'bad_signature',
    async () => {
      const [h, , s] = (await sign(claims(), rsa.privateKey, { alg: 'RS256' })).split('.');
      return `${h}.${b64(claims({ sub: 'admin' }))}.${s}`;
    },
  ],
  ['ES256 with an unknown kid', 'unknown_key', async () => sign(claims(), ecOther.privateKey, { alg: 'ES256', kid: 'nope' })],
  ['ES256 with the right kid, signed by another key', 'bad_signature', async () => sign(claims(), ecOther.privateKey, { alg: 'ES256', kid: 'ec1' })],
  ['expired (beyond the 5 s tolerance)', 'expired', async () => sign(claims({ iat: now() - 3600, exp: now() - 60 }), rsa.privateKey, { alg: 'RS256' })],
  ['not yet valid (nbf in an hour)', 'not_yet_valid', async () => sign(claims({ nbf: now() + 3600 }), rsa.privateKey, { alg: 'RS256' })],
  ['issued in an hour (iat in the future)', 'not_yet_valid', async () => sign(claims({ iat: now() + 3600 }), rsa.privateKey, { alg: 'RS256' })],
  [
    'a crit header the gateway does not understand (RFC 7515 4.1.11)',
    'invalid',
    async () =>
      new SignJWT(claims())
        .setProtectedHeader({ alg: 'RS256', crit: ['x-must-check'], 'x-must-check': true })
        .sign(rsa.privateKey, { crit: { 'x-must-check': true } }),
  ],
  [
    'self-signed with its own key embedded in the header (jwk), and a jku pointing elsewhere',
    'bad_signature',
    async () => sign(claims(), other.privateKey, { alg: 'RS256', jwk: await exportJWK(other.publicKey), jku: 'http://127.0.0.1:1/evil.json' }),
  ],
  ['a numeric sub', 'bad_subject', async () => sign(claims({ sub: 42 as unknown as string }), rsa.privateKey, { alg: 'RS256' })],
  ['wrong audience', 'bad_audience', async () => sign(claims({ aud: 'someone-else' }), rsa.privateKey, { alg: 'RS256' })],
  ['wrong issuer', 'bad_issuer', async () => sign(claims({ iss: 'https://evil.test' }), rsa.privateKey, { alg: 'RS256' })],
  ['no exp (required here)', 'bad_claim', async () => sign({ sub: 'mallory', iss: ISS, aud: AUD }, rsa.privateKey, { alg: 'RS256' })],
  ['no sub', 'bad_claim', async () => sign({ iss: ISS, aud: AUD, exp: now() + 600 }, rsa.privateKey, { alg: 'RS256' })],
  ['not a JWT', 'malformed', async () => 'hello.world'],
  ['base64 garbage in three parts', 'malformed', async () => '!!!.@@@.###'],
  ['a token of 20 000 characters', 'malformed', async () => `${b64({ alg: 'RS256' })}.${'A'.repeat(20_000)}.sig`],
];

describe('JWT attacks at the upgrade: 401, nothing else, counted by reason', () => {
  it('control: valid RS256 (configured key) and ES256 (JWKS, kid ec1) tokens are accepted', async () => {
    expect(await upgrade(await sign(claims(), rsa.privateKey, { alg: 'RS256' }))).toEqual({ status: 101, frames: 1 });
    expect(await upgrade(await sign(claims(), ec.privateKey, { alg: 'ES256', kid: 'ec1' }))).toEqual({ status: 101, frames: 1 });
    expect(await upgrade(await sign(claims(), rsa.privateKey, { alg: 'RS256' }), 'query')).toEqual({ status: 101, frames: 1 });
  });

  it.each(attacks)('%s -> 401 (%s)', async (_name, reason, make) => {
    const token = await make();
    const before = await failures(reason);
    expect(await upgrade(token)).toEqual({ status: 401, frames: 0 });
    expect(await upgrade(token, 'query')).toEqual({ status: 401, frames: 0 });
    expect(await failures(reason)).toBe(before + 2);
  });

  it('no token or a Basic header -> 401 (missing); an empty bearer -> 401 (malformed: docs/auth.md)', async () => {
    const before = await failures('missing');
    const variants: Record<string, string>[] = [{}, { Authorization: 'Basic dXNlcjpwYXNz' }];
    for (const headers of variants) {
      await expect(RawWs.connect(engine.port, { headers })).rejects.toMatchObject({ head: expect.stringMatching(/^HTTP\/1\.1 401/) });
    }
    expect(await failures('missing')).toBe(before + 2);
    const malformed = await failures('malformed');
    await expect(RawWs.connect(engine.port, { headers: { Authorization: 'Bearer ' } })).rejects.toMatchObject({
      head: expect.stringMatching(/^HTTP\/1\.1 401/),
    });
    expect(await failures('malformed')).toBe(malformed + 1);
  });

  it('an Authorization header of 200 KB -> refused, the engine unaffected', async () => {
    const r = await upgrade(`x${'A'.repeat(200_000)}`);
    expect(r.status === 401 || r.status === 0).toBe(true);
    expect((await fetch(`http://127.0.0.1:${engine.port}/health`)).status).toBe(200);
  });
});

describe('JWT attacks in {"op":"auth"} on an open connection', () => {
  it('forged tokens get UNAUTHENTICATED saying why, another user FORBIDDEN; the connection stays open with its identity', async () => {
    const ws = await RawWs.connect(engine.port, {
      protocol: 'tickwire.v1.json',
      headers: { Authorization: `Bearer ${await sign(claims(), rsa.privateKey, { alg: 'RS256' })}` },
    });
    await ws.waitFor(() => ws.frames.length >= 1);
    const replies = (): Record<string, any>[] =>
      ws.frames
        .slice(1)
        .filter((f) => f.opcode === 1)
        .map((f) => JSON.parse(f.payload.toString()) as Record<string, any>);
    const forged = attacks.filter(([name]) => !name.includes('20 000'));
    let id = 0;
    for (const [, , make] of forged) ws.sendText(JSON.stringify({ op: 'auth', id: ++id, token: await make() }));
    await ws.waitFor(() => replies().filter((r) => r.op === 'error').length === forged.length, 10_000);
    for (const r of replies()) expect(r).toMatchObject({ op: 'error', code: 'UNAUTHENTICATED', message: expect.stringMatching(/^token refused: .{5,}/) });
    // a token over 16 KiB is refused by the request parser before any verification
    ws.sendText(JSON.stringify({ op: 'auth', id: 'long', token: 'x'.repeat(20_000) }));
    await ws.waitFor(() => replies().some((r) => r.id === 'long'));
    expect(replies().find((r) => r.id === 'long')).toMatchObject({ op: 'error', code: 'BAD_REQUEST', message: expect.stringMatching(/longer than 16384/) });
    ws.sendText(JSON.stringify({ op: 'auth', id: 'other', token: await sign(claims({ sub: 'alice' }), rsa.privateKey, { alg: 'RS256' }) }));
    await ws.waitFor(() => replies().some((r) => r.id === 'other'));
    expect(replies().find((r) => r.id === 'other')).toMatchObject({ op: 'error', code: 'FORBIDDEN' });
    ws.sendText(JSON.stringify({ op: 'auth', id: 'ok', token: await sign(claims(), rsa.privateKey, { alg: 'RS256' }) }));
    await ws.waitFor(() => replies().some((r) => r.id === 'ok'));
    expect(replies().find((r) => r.id === 'ok')).toMatchObject({ op: 'ack', expires: expect.any(Number) });
    expect(ws.ended).toBe(false);
    ws.destroy();
    expect((await fetch(`http://127.0.0.1:${engine.port}/health`)).status).toBe(200);
  });
});

describe('a client that does not renew its token in time', () => {
  it('is closed 1008 when its token expires; a client that sends {"op":"auth"} with a fresh token before then stays', async () => {
    const short = await sign(claims({ exp: now() + 3 }), rsa.privateKey, { alg: 'RS256' });
    const lapsed = await RawWs.connect(engine.port, { protocol: 'tickwire.v1.json', headers: { Authorization: `Bearer ${short}` } });
    const renewing = await RawWs.connect(engine.port, { protocol: 'tickwire.v1.json', headers: { Authorization: `Bearer ${short}` } });
    const replies = (ws: RawWs): Record<string, any>[] =>
      ws.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString()) as Record<string, any>);
    renewing.sendText(JSON.stringify({ op: 'auth', id: 'renew', token: await sign(claims(), rsa.privateKey, { alg: 'RS256' }) }));
    await renewing.waitFor(() => replies(renewing).some((r) => r.op === 'ack' && r.id === 'renew'));
    await lapsed.waitFor(() => lapsed.ended, 10_000);
    expect(lapsed.closeFrame()?.code).toBe(1008);
    // it was told first
    expect(replies(lapsed).some((r) => r.op === 'error' && r.code === 'UNAUTHENTICATED' && /expires/.test(r.message))).toBe(true);
    renewing.sendText(JSON.stringify({ op: 'ping', id: 'still' }));
    await renewing.waitFor(() => replies(renewing).some((r) => r.op === 'pong' && r.id === 'still'));
    expect(renewing.ended).toBe(false);
    renewing.destroy();
  });
});
