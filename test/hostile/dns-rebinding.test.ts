import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { loadConfig } from '../../src/core/config.js';
import { answeredHosts, hostCheck } from '../../src/core/hosts.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { metricValue, rawHttp } from './kit.js';

/**
 * DNS rebinding (docs/operations.md#host-names): a page on evil.example re-binds its DNS name to
 * the gateway's address. The browser then sends the page's requests to the gateway with
 * `Origin: http://evil.example:PORT` and `Host: evil.example:PORT`, and lets the page read every
 * answer (to the browser it is the page's own site). The own-origin rule of
 * gateway.allowedOrigins (the origin names the request's Host) took the pair for the dashboard:
 * the feed, /v1/bars, the HTTP stream and the dashboard were served to it whatever the list
 * said. gateway.allowedHosts: only the host names the gateway is reached at are answered.
 */

const APP = 'https://app.example.com';

/** GET `path` with these headers (Host included): status and JSON body, if any. */
function get(port: number, path: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      // a stream that was opened is not read to its end
      if (res.statusCode === 200 && path.startsWith('/v1/stream')) {
        res.destroy();
        return resolve({ status: 200, body: undefined });
      }
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // not JSON (the dashboard's HTML)
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function metric(port: number, code: string): Promise<number> {
  const res = await get(port, '/metrics', { host: `127.0.0.1:${port}` });
  return metricValue(String(res.body), 'tickwire_protocol_errors_total', { code });
}

describe('DNS rebinding: gateway.allowedHosts', () => {
  let engine: Engine;
  let open: Engine;
  beforeAll(async () => {
    const base = { host: '127.0.0.1', port: 0, log: { level: 'silent' } };
    engine = await startEngine(
      { ...base, auth: { mode: 'off' }, gateway: { allowedOrigins: [APP], allowedHosts: ['md.example.com', '*.corp.example'] } },
      { roles: { feeds: [] }, env: {} },
    );
    open = await startEngine({ ...base, gateway: { allowedOrigins: [APP], allowedHosts: ['*'] } }, { roles: { feeds: [] }, env: {} });
  });
  afterAll(async () => {
    await engine?.close();
    await open?.close();
  });

  it('a re-bound page (Origin and Host both name its own site) is refused everywhere with 421 HOST_NOT_ALLOWED, counted', async () => {
    const port = engine.port;
    const before = await metric(port, 'HOST_NOT_ALLOWED');
    const evil = { origin: `http://evil.example:${port}`, host: `evil.example:${port}` };
    const ws = await rawUpgrade(port, evil);
    expect(ws.status).toBe(421);
    expect(JSON.parse(ws.text)).toMatchObject({ error: 'HOST_NOT_ALLOWED', message: expect.stringContaining('gateway.allowedHosts') });
    for (const path of ['/v1/stream/sse', '/v1/bars?symbol=BTC-USD&interval=1m', '/', '/metrics', '/v1/stats', '/health', '/admin/api/session']) {
      const r = await get(port, path, evil);
      expect(r.status, path).toBe(421);
      expect(r.body, path).toMatchObject({ error: 'HOST_NOT_ALLOWED', message: expect.stringContaining('evil.example') });
    }
    // without Origin (a same-origin GET of the re-bound page sends none) it is the same
    expect((await get(port, '/', { host: `evil.example:${port}` })).status).toBe(421);
    expect(await metric(port, 'HOST_NOT_ALLOWED')).toBe(before + 9);
  });

  it('IP addresses, localhost, *.localhost and the listed names are answered, and their pages are the own origin', async () => {
    const port = engine.port;
    for (const host of [
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      `localhost:${port}`,
      `LOCALHOST`,
      `app.localhost:${port}`,
      `md.example.com`,
      `md.example.com.:443`,
      `eu.corp.example`,
    ]) {
      expect((await get(port, '/health', { host })).status, host).toBe(200);
    }
    // the dashboard on a listed name opens its stream: the own-origin rule holds for the names listed
    expect((await rawUpgrade(port, { origin: 'https://md.example.com', host: 'md.example.com' })).status).toBe(101);
    expect((await rawUpgrade(port, { origin: `http://localhost:${port}`, host: `localhost:${port}` })).status).toBe(101);
    // not a subdomain of a listed name
    for (const host of ['corp.example', 'evilcorp.example', 'md.example.com.evil.example', 'localhost.evil.example']) {
      expect((await get(port, '/health', { host })).status, host).toBe(421);
    }
  });

  it('a Host that is empty or not host[:port] gets 400 (RFC 9112 3.2)', async () => {
    for (const host of ['', 'a b', 'x:y', '[::1', 'user@evil.example']) {
      // by hand: node:http puts its own Host in place of an empty one
      const answer = await rawHttp(engine.port, `GET /health HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      expect(answer.status, host).toBe(400);
      expect(JSON.parse(answer.body), host).toMatchObject({ error: 'BAD_HTTP_FRAMING' });
    }
  });

  it('a request without Host reaches no route: uWS answers nothing and drops it (RFC 9112 3.2 wants a 400 it cannot send)', async () => {
    // uWebSockets.js 20 refuses such a request in its parser, before any handler of ours runs,
    // and closes the connection at its idle timeout (about 10 s, measured) without an answer
    for (const request of ['GET /health HTTP/1.1\r\n\r\n', 'GET /health HTTP/1.0\r\n\r\n', 'GET / HTTP/1.1\r\nX-Host: 127.0.0.1\r\n\r\n']) {
      const r = await rawHttp(engine.port, request, { waitMs: 1500 });
      expect(r.status, request).toBe(0);
      expect(r.head + r.body, request).toBe('');
    }
  });

  it('`*` answers every host, as before', async () => {
    const port = open.port;
    expect((await get(port, '/health', { host: `evil.example:${port}` })).status).toBe(200);
    expect((await rawUpgrade(port, { origin: `http://evil.example:${port}`, host: `evil.example:${port}` })).status).toBe(101);
  });

  it('the default answers IP addresses, localhost and the listen address when it is a name; entries are checked', () => {
    const check = hostCheck([], 'gw.internal');
    for (const h of ['127.0.0.1:8080', '10.0.0.7', '[::1]:8080', '[fe80::1%25eth0]', 'localhost:8080', 'a.localhost', 'gw.internal:8080'])
      expect(check(h), h).toBe(true);
    for (const h of ['evil.example:8080', 'gw.internal.evil.example', '127.0.0.1.evil.example', '']) expect(check(h), h).toBe(false);
    expect(hostCheck([], '0.0.0.0')('0.0.0.0:8080')).toBe(true);
    // what the start-up line says
    expect(answeredHosts([], '0.0.0.0')).toBe('IP addresses, localhost, *.localhost');
    expect(answeredHosts(['md.example.com'], 'gw.internal')).toBe('IP addresses, localhost, *.localhost, gw.internal, md.example.com');
    expect(answeredHosts(['*'], '0.0.0.0')).toMatch(/^any/);
    expect(() => loadConfig({ env: { TICKWIRE_GATEWAY_ALLOWED_HOSTS: 'md.example.com,https://md.example.com' } })).toThrow(
      /gateway\.allowedHosts\.1 \(env TICKWIRE_GATEWAY_ALLOWED_HOSTS\): "https:\/\/md\.example\.com" is not a host name/,
    );
    expect(() => loadConfig({ env: { TICKWIRE_GATEWAY_ALLOWED_HOSTS: 'md.example.com:8080' } })).toThrow(/without a port/);
    expect(loadConfig({ env: { TICKWIRE_GATEWAY_ALLOWED_HOSTS: 'md.example.com, *.example.org' } }).gateway.allowedHosts).toEqual([
      'md.example.com',
      '*.example.org',
    ]);
  });
});
