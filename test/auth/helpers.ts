import { generateKeyPair, exportJWK, exportSPKI, SignJWT, base64url } from 'jose';
import type { CryptoKey, JWTPayload } from 'jose';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { marketSubject } from '../../src/bus/subjects.js';
import type { Engine, EngineRoles } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import type { AssetClass, Tick } from '../../src/core/schema.js';
import { channelKindOf } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';

/** HMAC secret used by the auth tests (>= 32 characters). */
export const SECRET = 'test-secret-0123456789-abcdefghijklmnop';
export const SERVICE_TOKEN = 'service-token-for-tests-0123456789';

export interface TokenOptions {
  sub?: string;
  /** seconds from now; null = no exp claim */
  expIn?: number | null;
  iss?: string;
  aud?: string;
  alg?: string;
  kid?: string;
  secret?: string;
  key?: CryptoKey | Uint8Array;
  claims?: JWTPayload;
  nbfIn?: number;
}

/** Sign a JWT (HS256 with SECRET unless told otherwise). */
export async function token(opts: TokenOptions = {}): Promise<string> {
  const alg = opts.alg ?? 'HS256';
  const jwt = new SignJWT({ ...(opts.claims ?? {}) }).setProtectedHeader(opts.kid ? { alg, kid: opts.kid } : { alg }).setIssuedAt();
  if (opts.sub !== '') jwt.setSubject(opts.sub ?? 'alice');
  const expIn = opts.expIn === undefined ? 3600 : opts.expIn;
  if (expIn !== null) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + expIn);
  if (opts.nbfIn !== undefined) jwt.setNotBefore(Math.floor(Date.now() / 1000) + opts.nbfIn);
  if (opts.iss) jwt.setIssuer(opts.iss);
  if (opts.aud) jwt.setAudience(opts.aud);
  const key = opts.key ?? new TextEncoder().encode(opts.secret ?? SECRET);
  return jwt.sign(key);
}

/** An unsigned token (alg "none"), as an attacker would send it. */
export function unsignedToken(payload: JWTPayload): string {
  const enc = (o: object): string => base64url.encode(JSON.stringify(o));
  return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ exp: Math.floor(Date.now() / 1000) + 3600, ...payload })}.`;
}

export async function keyPair(alg: 'RS256' | 'ES256' | 'EdDSA'): Promise<{ privateKey: CryptoKey; publicPem: string; publicJwk: Record<string, unknown> }> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicPem: await exportSPKI(publicKey), publicJwk: (await exportJWK(publicKey)) as Record<string, unknown> };
}

/** An embedded engine for tests: loopback, any port, silent, no feeds, env ignored. */
export function testEngine(overrides: Record<string, unknown> = {}, roles: Partial<EngineRoles> = { feeds: [] }): Promise<Engine> {
  return startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, ...overrides }, { roles, env: {} });
}

export function wsUrl(engine: Engine, query = ''): string {
  return `ws://127.0.0.1:${engine.port}/v1/stream${query}`;
}

export async function api(
  engine: Engine,
  method: string,
  path: string,
  body?: unknown,
  auth: string | null = SERVICE_TOKEN,
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (auth !== null) headers.authorization = `Bearer ${auth}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`http://127.0.0.1:${engine.port}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}

let tickSeq = 0;
/** Publish a canonical tick straight onto an engine's bus (as a feed would). */
export function publishTick(engine: Engine, assetClass: AssetClass, tick: Omit<Tick, 'seq' | 'ep' | 'rt' | 'src' | 'ts'> & { t?: number }): void {
  const now = tick.t ?? Date.now();
  const { t: _t, ...rest } = tick as Record<string, unknown>;
  const full = { src: 'test', seq: ++tickSeq, ep: 1, ts: msToNs(now), rt: msToNs(now), ...rest } as unknown as Tick;
  const kind = channelKindOf(full);
  engine.bus.publish(marketSubject(assetClass, kind, full.sym), encodeTick(full));
}
