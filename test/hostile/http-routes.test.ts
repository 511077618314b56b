import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { guardHandlerErrors } from '../../src/http/http-framing.js';
import { sendJson } from '../../src/http/http.js';
import { startTarget } from './kit.js';
import type { Target } from './kit.js';

const uws = createRequire(import.meta.url)('uWebSockets.js') as typeof UWS;

/**
 * Hostile requests on the gateway's plain HTTP routes, against a real `tickwire start` process:
 * a route handler that throws must cost one request, never the process (uWS does not catch a
 * handler's exception: it reaches Node as an uncaught exception and the engine exits).
 */
describe('HTTP routes under hostile paths (real process)', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({});
  }, 90_000);
  afterAll(() => target?.stop());

  it('GET /v1/feeds/<malformed percent-encoding> -> 400 naming the id; the engine stays up', async () => {
    for (const id of ['%E0%A4%A', '%', '%ZZ', '%C0%80x', '%D8%00']) {
      const res = await fetch(`http://127.0.0.1:${target.port}/v1/feeds/${id}`);
      expect(res.status, id).toBe(400);
      expect(await res.json(), id).toMatchObject({ error: 'BAD_REQUEST', field: 'id', message: expect.stringContaining('percent-encoding') });
      expect(await target.health(), `/health after ${id}`).toBe(200);
    }
    // a well-formed id still gets its answer: no feed of that name reported, 404
    expect((await fetch(`http://127.0.0.1:${target.port}/v1/feeds/no%20such`)).status).toBe(404);
  });
});

describe('guardHandlerErrors: a route that throws answers 500, the process goes on', () => {
  let app: UWS.TemplatedApp;
  let socket: UWS.us_listen_socket;
  let port = 0;
  const thrown: string[] = [];
  beforeAll(async () => {
    app = guardHandlerErrors(uws.App(), (err, where) => thrown.push(`${where}: ${(err as Error).message}`));
    app.get('/throws', () => {
      throw new Error('secret internal detail');
    });
    app.get('/answers-then-throws', (res) => {
      sendJson(res, 200, { ok: true });
      throw new Error('after the answer');
    });
    app.get('/ok', (res) => sendJson(res, 200, { ok: true }));
    await new Promise<void>((resolve) =>
      app.listen('127.0.0.1', 0, (s) => {
        socket = s as UWS.us_listen_socket;
        port = uws.us_socket_local_port(s as never);
        resolve();
      }),
    );
  });
  afterAll(() => uws.us_listen_socket_close(socket));

  it('500 INTERNAL without the exception text; the exception goes to onThrown; later requests are served', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/throws`);
    expect(res.status).toBe(500);
    const body = (await res.json()) as { error: string; message: string };
    expect(body.error).toBe('INTERNAL');
    expect(body.message).not.toContain('secret');
    const after = await fetch(`http://127.0.0.1:${port}/answers-then-throws`);
    expect(after.status).toBe(200);
    expect(await after.json()).toEqual({ ok: true });
    expect((await fetch(`http://127.0.0.1:${port}/ok`)).status).toBe(200);
    expect(thrown).toEqual(['GET /throws: secret internal detail', 'GET /answers-then-throws: after the answer']);
  });
});
