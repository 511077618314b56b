import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { loadConfig } from '../../src/core/config.js';
import { originCheck } from '../../src/core/origins.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';

/**
 * gateway.allowedOrigins (docs/protocol.md#refusals-at-the-upgrade, docs/operations.md): web
 * pages from other origins may not open a stream, neither a WebSocket nor the HTTP-streaming
 * fallback (its GET, POST and preflight). Clients that send no Origin (not a browser) and the
 * gateway's own pages stay allowed; an empty list (the default) allows every origin.
 */

/** A WebSocket upgrade with these headers: the status, and the JSON body of a refusal. */
async function upgrade(port: number, headers: Record<string, string>): Promise<{ status: number; body?: any }> {
  const r = await rawUpgrade(port, headers);
  return r.text ? { status: r.status, body: JSON.parse(r.text) } : { status: r.status };
}

async function http(port: number, method: string, headers: Record<string, string>, body?: string) {
  const res = await fetch(`http://127.0.0.1:${port}/v1/stream/sse`, { method, headers, ...(body !== undefined ? { body } : {}) });
  const text = method === 'GET' && res.status === 200 ? '' : await res.text();
  if (method === 'GET' && res.status === 200) await res.body?.cancel();
  return { status: res.status, acao: res.headers.get('access-control-allow-origin'), body: text ? JSON.parse(text) : undefined };
}

describe('gateway.allowedOrigins', () => {
  let engine: Engine;
  let open: Engine;
  beforeAll(async () => {
    const base = { host: '127.0.0.1', port: 0, log: { level: 'silent' } };
    engine = await startEngine(
      { ...base, gateway: { allowedOrigins: ['https://app.example.com', 'https://*.partner.test'] } },
      { roles: { feeds: [] }, env: {} },
    );
    open = await startEngine(base, { roles: { feeds: [] }, env: {} });
  });
  afterAll(async () => {
    await engine?.close();
    await open?.close();
  });

  it('WebSocket: a listed origin, a subdomain of a wildcard entry, no Origin and the own origin are upgraded', async () => {
    for (const origin of ['https://app.example.com', 'https://APP.example.com', 'https://eu.partner.test', 'https://a.b.partner.test']) {
      expect(await upgrade(engine.port, { origin }), origin).toEqual({ status: 101 });
    }
    expect(await upgrade(engine.port, {})).toEqual({ status: 101 });
    // the dashboard the gateway serves: its origin is the host the request went to
    expect(await upgrade(engine.port, { origin: `http://127.0.0.1:${engine.port}` })).toEqual({ status: 101 });
  });

  it('WebSocket: any other origin gets 403 ORIGIN_NOT_ALLOWED, counted in the protocol errors', async () => {
    for (const origin of [
      'https://evil.example',
      'http://app.example.com',
      'https://app.example.com:8443',
      'https://partner.test',
      'https://evilpartner.test',
      'null',
    ]) {
      const r = await upgrade(engine.port, { origin });
      expect(r, origin).toMatchObject({ status: 403, body: { error: 'ORIGIN_NOT_ALLOWED' } });
      expect(r.body.message).toContain('gateway.allowedOrigins');
    }
    const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text();
    expect(metrics).toMatch(/tickwire_protocol_errors_total\{code="ORIGIN_NOT_ALLOWED"\} 6/);
  });

  it('HTTP streaming: GET, POST and the preflight from another origin get 403, readable by the page', async () => {
    const evil = { origin: 'https://evil.example' };
    for (const [method, body] of [['GET'], ['POST', '{"op":"ping"}'], ['OPTIONS']] as const) {
      const r = await http(engine.port, method, { ...evil, 'x-tickwire-session': 'A'.repeat(24) }, body);
      expect(r, method).toMatchObject({ status: 403, acao: '*', body: { error: 'ORIGIN_NOT_ALLOWED' } });
    }
    // a listed origin opens a stream
    expect(await http(engine.port, 'GET', { origin: 'https://app.example.com' })).toMatchObject({ status: 200 });
  });

  it('without the setting every origin may open a stream, as before', async () => {
    expect(await upgrade(open.port, { origin: 'https://evil.example' })).toEqual({ status: 101 });
    expect(await http(open.port, 'GET', { origin: 'https://evil.example' })).toMatchObject({ status: 200 });
  });

  it('entries are checked when the configuration is read: a bad one names the key and the forms', () => {
    expect(() => loadConfig({ env: {}, overrides: { gateway: { allowedOrigins: ['app.example.com'] } } })).toThrow(
      /gateway\.allowedOrigins\.0.*"app\.example\.com" is not an origin: use scheme:\/\/host\[:port\]/,
    );
    expect(() => loadConfig({ env: { TICKWIRE_GATEWAY_ALLOWED_ORIGINS: 'https://a.test,ftp://b.test' } })).toThrow(/ftp:\/\/b\.test/);
    expect(loadConfig({ env: { TICKWIRE_GATEWAY_ALLOWED_ORIGINS: 'https://a.test, https://*.b.test' } }).gateway.allowedOrigins).toEqual([
      'https://a.test',
      'https://*.b.test',
    ]);
    expect(loadConfig({ env: {} }).gateway.allowedOrigins).toEqual([]);
  });

  it('the check itself: ports, schemes and wildcards', () => {
    const allowed = originCheck(['http://localhost:3000', 'https://*.example.com']);
    expect(allowed('http://localhost:3000', 'gw:8080')).toBe(true);
    expect(allowed('http://localhost:3001', 'gw:8080')).toBe(false);
    expect(allowed('https://localhost:3000', 'gw:8080')).toBe(false);
    expect(allowed('https://x.example.com', 'gw:8080')).toBe(true);
    expect(allowed('https://x.example.com:444', 'gw:8080')).toBe(false);
    expect(allowed('https://example.com', 'gw:8080')).toBe(false);
    expect(allowed('https://gw:8080', 'gw:8080')).toBe(true);
    expect(allowed('', 'gw:8080')).toBe(true);
    expect(originCheck(['*'])('https://any.test', 'gw')).toBe(true);
  });

  it("a scheme's default port is the same origin written without it (RFC 6454 serializes it away)", () => {
    const allowed = originCheck(['https://app.example.com', 'http://localhost:80', 'https://*.example.org:443']);
    expect(allowed('https://app.example.com:443', 'gw')).toBe(true);
    expect(allowed('https://app.example.com:8443', 'gw')).toBe(false);
    expect(allowed('http://app.example.com:443', 'gw')).toBe(false);
    expect(allowed('http://localhost', 'gw')).toBe(true);
    expect(allowed('https://a.example.org', 'gw')).toBe(true);
    expect(allowed('https://a.example.org:443', 'gw')).toBe(true);
    // the gateway's own page behind TLS on 443: Host carries no port
    expect(allowed('https://gw.example.net:443', 'gw.example.net')).toBe(true);
  });
});
