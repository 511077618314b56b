import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, SERVICE_TOKEN, testEngine, token } from '../auth/helpers.js';
import { waitFor } from '../helpers/wait.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * The per-IP checks of a new connection (WebSocket upgrade, HTTP-stream open) run before its
 * token is verified: one address sending junk or expensive tokens (RSA signatures, JWKS fetches)
 * reaches the verifier only as often as `limits.connectionsPerIpPerSec` lets it, and holds at most
 * `limits.verifyingPerIp` upgrades (each a socket and a slot of `gateway.maxConnections`) while
 * their tokens are checked. Loopback is exempt by default: here it is the attacker.
 */
interface Upgrade {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  ws?: WebSocket;
}

/** One upgrade attempt: its status (101 or the refusal's), headers and body. */
function upgrade(port: number, opts: { headers?: Record<string, string>; protocols?: string[]; localAddress?: string } = {}): Promise<Upgrade> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, opts.protocols ?? ['tickwire.v1.json'], {
    headers: opts.headers ?? {},
    ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ status: 101, headers: {}, body: '', ws }));
    ws.once('unexpected-response', (_req, res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once('error', reject);
  });
}

/** Count the calls of the engine's real verifier (every path that checks a token calls it). */
function countVerifications(engine: Engine): { calls: number } {
  const counter = { calls: 0 };
  const authenticator = engine.gateway!.authenticator;
  const verify = authenticator.authenticate.bind(authenticator);
  authenticator.authenticate = (token) => {
    counter.calls++;
    return verify(token);
  };
  return counter;
}

describe('junk tokens from one address', () => {
  let engine: Engine;
  let verifier: { calls: number };
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET },
      // a refill of one connection per 100 s keeps the counts exact on a loaded machine; the HTTP
      // budget is off so that the HTTP-stream opens meet the connection limit alone
      limits: { connectionsPerIpPerSec: 0.01, connectionBurstPerIp: 3, httpRequestsPerIpPerSec: 0, exemptIps: [] },
    });
    verifier = countVerifications(engine);
  });
  afterAll(() => engine.close());

  it('reach the verifier only within the per-IP connection burst; then 429 with Retry-After, before any verification', async () => {
    const junk = { authorization: 'Bearer abc.def.ghi' };
    const results: Upgrade[] = [];
    for (let i = 0; i < 8; i++) results.push(await upgrade(engine.port, { headers: junk }));
    expect(results.map((r) => r.status)).toEqual([401, 401, 401, 429, 429, 429, 429, 429]);
    expect(verifier.calls).toBe(3);
    for (const r of results.slice(3)) {
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(r.body)).toMatchObject({ error: 'RATE_LIMIT', message: expect.stringContaining('limits.connectionsPerIpPerSec') });
    }
    // the token subprotocol and ?token= take the same way
    expect((await upgrade(engine.port, { protocols: ['tickwire.v1.json', 'tickwire.bearer.abc.def.ghi'] })).status).toBe(429);
    // the HTTP-streaming fallback's open is a new connection of the same address
    const sse = await fetch(`http://127.0.0.1:${engine.port}/v1/stream/sse?token=abc.def.ghi`);
    expect(sse.status).toBe(429);
    expect(Number(sse.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(await sse.json()).toMatchObject({ error: 'RATE_LIMIT' });
    expect(verifier.calls).toBe(3);
    const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text();
    expect(metrics).toMatch(/^tickwire_limit_refusals_total\{limit="new_connections_per_ip"\} 7$/m);
  });
});

describe('tokens whose verification stalls (the JWKS endpoint does not answer)', () => {
  let jwks: Server;
  /** JWKS requests held until `release` */
  const held: ServerResponse[] = [];
  let keySet = '';
  let engine: Engine;
  let verifier: { calls: number };
  let signed: string;

  beforeAll(async () => {
    const rsa = await generateKeyPair('RS256', { extractable: true });
    keySet = JSON.stringify({ keys: [{ ...(await exportJWK(rsa.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] });
    signed = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('mallory').setExpirationTime('1h').sign(rsa.privateKey);
    jwks = createServer((_req, res) => held.push(res));
    await new Promise<void>((r) => jwks.listen(0, '127.0.0.1', () => r()));
    engine = await testEngine({
      auth: { mode: 'optional', jwksUrl: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json` },
      gateway: { maxConnections: 4 },
      limits: { connectionsPerIpPerSec: 0, verifyingPerIp: 2, exemptIps: [] },
    });
    verifier = countVerifications(engine);
  });
  afterAll(async () => {
    await engine.close();
    jwks.closeAllConnections();
    await new Promise((r) => jwks.close(r));
  });

  it('one address holds at most limits.verifyingPerIp slots while they wait; other clients still get in', async () => {
    const headers = { authorization: `Bearer ${signed}` };
    const refused: Upgrade[] = [];
    const attempts = Array.from({ length: 4 }, () =>
      upgrade(engine.port, { headers }).then((r) => {
        if (r.status === 429) refused.push(r);
        return r;
      }),
    );
    // every attempt is either refused or waiting in the verifier for the key set
    await waitFor(() => refused.length + verifier.calls === 4 && held.length > 0, { what: 'every attempt refused or verifying' });
    // another client (another loopback address) is not shut out by the attacker's stalled upgrades
    const bystander = await upgrade(engine.port, { localAddress: '127.0.0.2' });
    expect(bystander.status).toBe(101);
    expect(refused.length).toBe(2);
    expect(JSON.parse(refused[0]!.body)).toMatchObject({ error: 'RATE_LIMIT', message: expect.stringContaining('limits.verifyingPerIp') });
    expect(Number(refused[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    // the key set arrives: the upgrades that waited for it are admitted
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'application/json' }).end(keySet);
    const done = await Promise.all(attempts);
    expect(done.map((r) => r.status).sort()).toEqual([101, 101, 429, 429]);
    for (const r of [...done, bystander]) r.ws?.close();
  });
});

describe('other paths that verify a token', () => {
  let engine: Engine;
  let verifier: { calls: number };
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN },
      limits: { httpRequestsPerIpPerSec: 0.01, httpBurstPerIp: 2, exemptIps: [] },
    });
    verifier = countVerifications(engine);
  });
  afterAll(() => engine.close());

  it("the operator's console verifies a token that is not a service token only within the address's HTTP budget", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++)
      statuses.push((await fetch(`http://127.0.0.1:${engine.port}/admin/api/overview`, { headers: { authorization: 'Bearer abc.def.ghi' } })).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 401]);
    expect(verifier.calls).toBe(2);
    // the service token itself is never limited
    const ok = await fetch(`http://127.0.0.1:${engine.port}/admin/api/overview`, { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } });
    expect(ok.status).toBe(200);
  });
});

describe('in-band auth frames with junk tokens', () => {
  let engine: Engine;
  let verifier: { calls: number };
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'optional', jwtSecret: SECRET },
      // the frame rate would let 200 through at once: the in-band auth budget is what holds them
      limits: { messageBurst: 200, authsPerConnectionPerMin: 3 },
    });
    verifier = countVerifications(engine);
  });
  afterAll(() => engine.close());

  it('one connection reaches the verifier only limits.authsPerConnectionPerMin times; the rest get RATE_LIMIT with their id', async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    await c.waitFor((f) => f.op === 'welcome');
    for (let i = 0; i < 30; i++) c.send({ op: 'auth', id: i, token: `junk.${i}.token` });
    await c.waitFor((f) => f.op === 'error' && f.id === 29);
    const answers = c.frames.filter((f) => f.op === 'error');
    expect(verifier.calls).toBe(3);
    expect(answers.filter((f) => f.code === 'UNAUTHENTICATED').map((f) => f.id)).toEqual([0, 1, 2]);
    const limited = answers.filter((f) => f.code === 'RATE_LIMIT');
    expect(limited).toHaveLength(27);
    expect(limited[0]!.message).toContain('limits.authsPerConnectionPerMin');
    // the connection stays open and served
    expect((await c.request({ op: 'ping', id: 'after' })).op).toBe('pong');
    c.close();
  });
});

describe("a user's connection limit", () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET }, limits: { connectionsPerUser: 1 } });
  });
  afterAll(() => engine.close());

  it('answers 429 RATE_LIMIT with Retry-After, after the token was verified, like the per-IP refusals', async () => {
    const headers = { authorization: `Bearer ${await token({ sub: 'trent' })}` };
    const first = await upgrade(engine.port, { headers });
    expect(first.status).toBe(101);
    const second = await upgrade(engine.port, { headers });
    expect(second.status).toBe(429);
    expect(Number(second.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(second.body)).toMatchObject({ error: 'RATE_LIMIT', message: expect.stringContaining('limits.connectionsPerUser') });
    const sse = await fetch(`http://127.0.0.1:${engine.port}/v1/stream/sse`, { headers });
    expect(sse.status).toBe(429);
    expect(Number(sse.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    first.ws?.close();
  });
});
