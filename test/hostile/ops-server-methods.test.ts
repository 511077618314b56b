import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpsServer } from '../../src/ops/ops-server.js';

/**
 * The ops port (`tickwire feed` with ops.port) answers methods as the gateway does
 * (docs/operations.md#http-endpoints): 405 names the methods in `Allow` (RFC 9110 15.5.6), OPTIONS
 * lists them, and every answer says nosniff.
 */
describe('ops server: methods and headers', () => {
  let ops: OpsServer;
  beforeAll(async () => {
    ops = await OpsServer.listen({ host: '127.0.0.1', port: 0, ready: () => ({ ready: true, checks: { bus: true } }) });
  });
  afterAll(() => ops?.close());

  it('405 with Allow for another method than GET or HEAD; OPTIONS 204 with Allow; nosniff on every answer', async () => {
    const base = `http://127.0.0.1:${ops.port}`;
    const post = await fetch(`${base}/health`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toMatchObject({ error: 'METHOD_NOT_ALLOWED' });
    const options = await fetch(`${base}/ready`, { method: 'OPTIONS' });
    expect(options.status).toBe(204);
    expect(options.headers.get('allow')).toBe('GET, HEAD');
    for (const path of ['/health', '/ready', '/nope']) expect((await fetch(`${base}${path}`)).headers.get('x-content-type-options'), path).toBe('nosniff');
    expect(post.headers.get('x-content-type-options')).toBe('nosniff');
  });
});
