import { request, type IncomingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import { Gateway } from '../../src/gateway/server.js';
import { createMetrics } from '../../src/ops/metrics.js';
import { waitFor } from '../helpers/wait.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * A verifier that fails (it throws: a custom authenticator's backend down) is not a verdict on
 * the token: the WebSocket upgrade and the HTTP-streaming open answer 503 (retry later), as
 * `GET /v1/auth/check` does, never 401, which clients treat as "this token will never do".
 */
let gateway: Gateway;
let port: number;

beforeAll(async () => {
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', port: 0 } });
  gateway = new Gateway({
    config,
    bus: new MemoryBus(),
    resolvers: [],
    log: createLogger({ level: 'silent', format: 'json' }),
    authenticator: {
      mode: 'required',
      async authenticate() {
        throw new Error('identity backend unreachable');
      },
    },
  });
  port = await gateway.listen('127.0.0.1', 0);
});

afterAll(() => gateway?.close());

/** A WebSocket upgrade request, answered with a status and a body instead of a 101. */
function upgradeRequest(headers: Record<string, string>): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1',
      port,
      path: '/v1/stream',
      agent: false,
      headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' },
    });
    req.on('upgrade', () => reject(new Error('the upgrade was accepted')));
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a verifier that fails', () => {
  it('answers the WebSocket upgrade 503, with a body that says why', async () => {
    const res = await upgradeRequest({ authorization: 'Bearer some.jwt.token' });
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('5');
    expect(JSON.parse(res.body)).toMatchObject({ error: 'UNAUTHENTICATED', code: 'jwks_unavailable' });
    await expect(TestClient.connect(`ws://127.0.0.1:${port}/v1/stream`, { headers: { authorization: 'Bearer some.jwt.token' } })).rejects.toMatchObject({
      statusCode: 503,
    });
  });

  it('answers the HTTP stream 503 with the reason jwks_unavailable, as the auth check does', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/stream/sse`, { headers: { authorization: 'Bearer some.jwt.token' } });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: 'UNAUTHENTICATED', code: 'jwks_unavailable' });
    const check = await fetch(`http://127.0.0.1:${port}/v1/auth/check`, { headers: { authorization: 'Bearer some.jwt.token' } });
    expect(check.status).toBe(503);
    expect(await check.json()).toMatchObject({ reason: 'jwks_unavailable' });
  });

  it('counts each 503 in tickwire_auth_failures_total with the reason jwks_unavailable (upgrade and HTTP stream)', async () => {
    const metrics = createMetrics({ gateway }, { defaultMetrics: false });
    const count = async (): Promise<number> => {
      const line = (await metrics.render()).split('\n').find((l) => l.startsWith('tickwire_auth_failures_total{reason="jwks_unavailable"}'));
      return line ? Number(line.split(' ').at(-1)) : 0;
    };
    const before = await count();
    expect((await upgradeRequest({ authorization: 'Bearer some.jwt.token' })).status).toBe(503);
    // (renders are at least RENDER_MIN_GAP_MS apart: a scrape right after another may be the same)
    await waitFor(async () => (await count()) === before + 1, 'one jwks_unavailable counted');
    expect((await fetch(`http://127.0.0.1:${port}/v1/stream/sse`, { headers: { authorization: 'Bearer some.jwt.token' } })).status).toBe(503);
    await waitFor(async () => (await count()) === before + 2, 'two jwks_unavailable counted');
  });
});
