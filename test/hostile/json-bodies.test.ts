import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { MAX_JSON_DEPTH, MAX_JSON_VALUES, MAX_POSITIONS_JSON_VALUES } from '../../src/core/json-depth.js';
import { decode } from '@msgpack/msgpack';
import { api, SECRET, SERVICE_TOKEN, testEngine, token, wsUrl } from '../auth/helpers.js';
import { TestClient } from '../helpers/ws-client.js';

/** `{"a":{"a":...1...}}`, `levels` objects deep */
const nested = (levels: number): string => '{"a":'.repeat(levels) + '1' + '}'.repeat(levels);

/**
 * Hostile JSON bodies on the HTTP APIs (service API, admin console): nesting far deeper than any
 * request needs must be refused as bad input (400), never answered 503 "retry" after a validator
 * or an encoder ran out of stack; documented byte bounds hold in bytes, not UTF-16 units.
 */
describe('hostile JSON bodies (service API, admin console)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, serviceToken: SERVICE_TOKEN } });
  });
  afterAll(() => engine.close());

  const note = (id: string, data: string): string => `{"id":"${id}","type":"x","title":"t","data":${data}}`;

  it('a notification whose data nests 100 000 deep (600 KB) -> 400, not 503 "retry"; nothing is stored', async () => {
    const r = await api(engine, 'POST', '/v1/users/alice/notifications', note('deep', nested(100_000)));
    expect(r.status).toBe(400);
    expect(r.body.error).toBe('BAD_JSON');
    expect(r.body.message).toContain(`deeper than ${MAX_JSON_DEPTH} levels`);
    const list = await api(engine, 'GET', '/v1/users/alice/notifications');
    expect(list).toMatchObject({ status: 200, body: { items: [] } });
  });

  it('notification data: at most 16 levels and 4096 bytes of JSON (UTF-8 bytes, not characters)', async () => {
    const deepData = await api(engine, 'POST', '/v1/users/bob/notifications', note('d17', nested(17)));
    expect(deepData).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', field: 'data' } });
    expect(deepData.body.message).toContain('16 levels');
    // 1500 euro signs: 1500 characters, 4500 bytes of UTF-8
    const wide = await api(engine, 'POST', '/v1/users/bob/notifications', note('eur', JSON.stringify({ s: '€'.repeat(1500) })));
    expect(wide).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', field: 'data' } });
    // at the bounds: accepted
    expect(await api(engine, 'POST', '/v1/users/bob/notifications', note('d16', nested(16)))).toMatchObject({ status: 201 });
    expect(await api(engine, 'POST', '/v1/users/bob/notifications', note('eur2', JSON.stringify({ s: '€'.repeat(1300) })))).toMatchObject({ status: 201 });
  });

  it('notification data holding a "__proto__" key, at any depth -> 400 naming data; nothing stored; other keys pass through to strict MessagePack decoders', async () => {
    // A strict MessagePack decoder (@msgpack/msgpack) refuses a map with the key "__proto__", so a
    // notification carrying one could never be read by such a client: stored, it came again with
    // every subscribe. At the top of data, zod dropped the key without a word; deeper, it was kept
    for (const [id, data] of [
      ['p0', '{"__proto__":{"x":1}}'],
      ['p1', '{"a":{"__proto__":{"x":1}}}'],
      ['p2', '{"a":[1,{"b":[{"__proto__":null}]}]}'],
    ] as const) {
      const r = await api(engine, 'POST', '/v1/users/carol/notifications', note(id, data));
      expect(r).toMatchObject({ status: 400, body: { error: 'BAD_REQUEST', field: 'data' } });
      expect(r.body.message).toContain('__proto__');
    }
    expect(await api(engine, 'GET', '/v1/users/carol/notifications')).toMatchObject({ status: 200, body: { items: [] } });
    // "constructor" and "prototype" are ordinary keys for every decoder
    const ok = await api(engine, 'POST', '/v1/users/carol/notifications', note('c1', '{"constructor":{"prototype":{"x":1}},"__proto_":2}'));
    expect(ok.status).toBe(201);
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'msgpack', headers: { authorization: `Bearer ${await token({ sub: 'carol' })}` } });
    const raw: Buffer[] = [];
    c.ws.on('message', (m: Buffer) => raw.push(m));
    c.send({ op: 'subscribe', id: 1, channels: ['notifications'] });
    await c.waitFor((f) => f.op === 'data' && f.ch === 'notifications');
    const items = raw.map((m) => decode(m) as Record<string, unknown>).filter((f) => f.op === 'data');
    expect(items).toHaveLength(1);
    expect((items[0]!.d as { data: unknown }).data).toEqual({ constructor: { prototype: { x: 1 } }, __proto_: 2 });
    c.close();
  });

  it(`every JSON route refuses a body nested deeper than ${MAX_JSON_DEPTH} levels with 400 BAD_JSON; ${MAX_JSON_DEPTH} levels parse`, async () => {
    const routes: [string, string][] = [
      ['POST', '/v1/executions'],
      ['PUT', '/v1/users/carol/positions'],
      ['POST', '/v1/announcements'],
      ['POST', '/v1/users/carol/alerts'],
      ['PUT', '/v1/users/carol/alerts/a1'],
      ['POST', '/v1/users/carol/notifications'],
      ['POST', '/v1/users/carol/notifications/read'],
      ['POST', '/admin/api/announcements'],
    ];
    for (const [method, path] of routes) {
      const deep = await api(engine, method, path, `[${nested(MAX_JSON_DEPTH)}]`);
      expect(deep.status, `${method} ${path}`).toBe(400);
      expect(deep.body, `${method} ${path}`).toMatchObject({ error: 'BAD_JSON', message: expect.stringContaining(`deeper than ${MAX_JSON_DEPTH} levels`) });
      // at the bound the body parses, and the route's own validation answers
      const ok = await api(engine, method, path, nested(MAX_JSON_DEPTH));
      expect(ok.body.error, `${method} ${path}`).not.toBe('BAD_JSON');
    }
    expect((await fetch(`http://127.0.0.1:${engine.port}/health`)).status).toBe(200);
  });

  it('bodies dear to parse (1 MiB nesting half a million deep, half a million numbers, 87 000 distinct keys) are refused from their bytes: JSON.parse never sees them', async () => {
    // JSON.parse costs by values, not bytes: the deep body held the event loop 90 ms, the keys
    // 45 ms (and 59 ms more for the depth walk), where 10 000 positions (480 KB) take 4 ms. Each
    // was parsed whole before it was refused (400 BAD_JSON "deeper than", or the route's 400)
    const half = 512 * 1024;
    const bodies = (bytes: number): Record<string, string> => ({
      deep: '['.repeat(bytes / 2) + ']'.repeat(bytes / 2),
      numbers: `[${'0,'.repeat(bytes / 2 - 1)}0]`,
      keys: `{${Array.from({ length: bytes / 12 }, (_, i) => `"k${i}":0`).join(',')}}`,
    });
    const routes: [string, string, number][] = [
      ['POST', '/v1/executions', MAX_JSON_VALUES],
      ['PUT', '/v1/users/dave/positions', MAX_POSITIONS_JSON_VALUES],
      ['POST', '/v1/announcements', MAX_JSON_VALUES],
      ['POST', '/v1/users/dave/alerts', MAX_JSON_VALUES],
      ['POST', '/v1/users/dave/notifications', MAX_JSON_VALUES],
      ['POST', '/v1/users/dave/notifications/read', MAX_JSON_VALUES],
      // the console takes 64 KiB bodies
      ['POST', '/admin/api/announcements', MAX_JSON_VALUES],
    ];
    const parse = vi.spyOn(JSON, 'parse');
    try {
      for (const [method, path, values] of routes) {
        const size = path.startsWith('/admin') ? 60 * 1024 : 2 * half - 64;
        for (const [kind, body] of Object.entries(bodies(size & ~15))) {
          const r = await api(engine, method, path, body);
          expect(r.status, `${kind} ${method} ${path}`).toBe(400);
          expect(r.body.error, `${kind} ${method} ${path}`).toBe('BAD_JSON');
          expect(r.body.message, `${kind} ${method} ${path}`).toContain(
            kind === 'deep' ? `deeper than ${MAX_JSON_DEPTH} levels` : `more than ${values} values`,
          );
        }
      }
      const parsedLong = parse.mock.calls.filter(([text]) => typeof text === 'string' && text.length > 30_000);
      expect(parsedLong).toHaveLength(0);
    } finally {
      parse.mockRestore();
    }
    // the largest legitimate bodies pass the scan: 10 000 positions, 1000 ids to mark read
    const positions = { ccy: 'USD', positions: Array.from({ length: 10_000 }, (_, i) => ({ sym: `S${i}`, qty: 1, cost: 1 })) };
    expect((await api(engine, 'PUT', '/v1/users/dave/positions', positions)).body.error).not.toBe('BAD_JSON');
    const read = await api(engine, 'POST', '/v1/users/dave/notifications/read', { ids: Array.from({ length: 1000 }, (_, i) => `n${i}`) });
    expect(read.body.error).not.toBe('BAD_JSON');
    expect(read.status).toBeLessThan(300);
    expect((await fetch(`http://127.0.0.1:${engine.port}/health`)).status).toBe(200);
  });
});
