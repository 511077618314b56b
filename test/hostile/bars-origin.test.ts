import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { testEngine } from '../auth/helpers.js';
import { metricValue } from './kit.js';

/**
 * `gateway.allowedOrigins` exists "so that other sites cannot show a public feed on their pages"
 * (docs/protocol.md#allowed-origins-extension): the stream's upgrade, the HTTP stream and its
 * preflight refuse another site's page. GET /v1/bars, the same public data as history for
 * charts, answered every origin with `Access-Control-Allow-Origin: *`: a page on any site could
 * draw the gateway's charts, anonymously, whatever the list said.
 */
const APP = 'https://app.example.com';
const EVIL = 'https://evil.example.net';

describe('GET /v1/bars and gateway.allowedOrigins', () => {
  let engine: Engine;
  const url = (): string => `http://127.0.0.1:${engine.port}/v1/bars?symbol=BTC-USD&interval=1m`;

  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'off' }, gateway: { allowedOrigins: [APP, 'https://*.example.org'] } });
  });
  afterAll(() => engine?.close());

  it('a page of another site gets 403 ORIGIN_NOT_ALLOWED, readable by the page, counted; the preflight too', async () => {
    const before = metricValue(await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text(), 'tickwire_protocol_errors_total', {
      code: 'ORIGIN_NOT_ALLOWED',
    });
    for (const origin of [EVIL, 'null', 'https://app.example.com.evil.example.net', 'http://app.example.com', 'https://example.org']) {
      const res = await fetch(url(), { headers: { origin } });
      expect(res.status, origin).toBe(403);
      expect(res.headers.get('access-control-allow-origin'), origin).toBe('*');
      expect(await res.json(), origin).toMatchObject({
        error: 'ORIGIN_NOT_ALLOWED',
        message: expect.stringContaining('may not read bar history here (gateway.allowedOrigins)'),
      });
      const pre = await fetch(url(), {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      });
      expect(pre.status, origin).toBe(403);
      expect(pre.headers.get('access-control-allow-methods'), origin).toBeNull();
    }
    const after = metricValue(await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text(), 'tickwire_protocol_errors_total', {
      code: 'ORIGIN_NOT_ALLOWED',
    });
    expect(after - before).toBe(10);
  });

  it('an allowed page, the gateway’s own pages and a client without Origin are served as before', async () => {
    for (const headers of [{ origin: APP }, { origin: 'https://charts.example.org' }, { origin: `http://127.0.0.1:${engine.port}` }, {}] as Record<
      string,
      string
    >[]) {
      const res = await fetch(url(), { headers });
      expect(res.status, JSON.stringify(headers)).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(await res.json()).toMatchObject({ bars: expect.any(Array) });
      const pre = await fetch(url(), { method: 'OPTIONS', headers });
      expect(pre.status).toBe(204);
    }
  });
});
