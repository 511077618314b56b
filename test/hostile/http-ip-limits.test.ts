import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, testEngine } from '../auth/helpers.js';
import { parseProm } from '../ops/prom-text.js';

/**
 * Per-IP limit on the HTTP routes that cost the gateway something per request (a bar store read,
 * a JWT verification, gathering stats): one address cannot flood them. A refill of one request
 * per 100 s keeps the counts exact on a loaded machine.
 */
describe('per-IP limit on costly HTTP routes', () => {
  let engine: Engine;
  const url = (path: string): string => `http://127.0.0.1:${engine.port}${path}`;
  const refusals = async (): Promise<number> =>
    parseProm(await engine.metrics!.render()).get('tickwire_limit_refusals_total{limit="http_requests_per_ip"}') ?? 0;

  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'required', jwtSecret: SECRET },
      // loopback is exempt by default: here it is the attacker
      limits: { httpRequestsPerIpPerSec: 0.01, httpBurstPerIp: 3, exemptIps: [] },
    });
  });
  afterAll(() => engine.close());

  it('beyond the burst: 429 RATE_LIMIT with Retry-After on every costly route, counted in the limit metric', async () => {
    const before = await refusals();
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(url('/v1/auth/check?token=abc.def.ghi'))).status);
    expect(statuses).toEqual([401, 401, 401]);
    // every costly route shares the address's budget, HEAD too
    for (const [method, path] of [
      ['GET', '/v1/auth/check?token=abc.def.ghi'],
      ['GET', '/v1/bars?channel=bar.1m:BTC-USD'],
      ['HEAD', '/v1/bars?channel=bar.1m:BTC-USD'],
      ['GET', '/v1/stats'],
      ['GET', '/metrics'],
      ['GET', '/v1/stream/sse'],
    ] as const) {
      const res = await fetch(url(path), { method });
      expect(res.status, `${method} ${path}`).toBe(429);
      expect(Number(res.headers.get('retry-after')), `${method} ${path}`).toBeGreaterThanOrEqual(1);
      // readable by a page on another origin (a chart reading history with fetch), Retry-After too
      expect(res.headers.get('access-control-allow-origin'), `${method} ${path}`).toBe('*');
      expect(res.headers.get('access-control-expose-headers'), `${method} ${path}`).toBe('retry-after');
      if (method === 'GET')
        expect(await res.json(), path).toMatchObject({ error: 'RATE_LIMIT', message: expect.stringContaining('limits.httpRequestsPerIpPerSec') });
    }
    expect((await refusals()) - before).toBe(6);
  });

  it('probes, pages and the WebSocket path are not counted against it', async () => {
    expect((await fetch(url('/health'))).status).toBe(200);
    expect((await fetch(url('/ready'))).status).toBe(200);
    expect((await fetch(url('/v1/stream'))).status).toBe(426);
  });
});

describe('exempt addresses', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET }, limits: { httpRequestsPerIpPerSec: 0.01, httpBurstPerIp: 1 } });
  });
  afterAll(() => engine.close());

  it('loopback (limits.exemptIps by default) is never refused', async () => {
    for (let i = 0; i < 5; i++) expect((await fetch(`http://127.0.0.1:${engine.port}/v1/auth/check?token=x`)).status).toBe(401);
  });
});
