import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAdmin } from '../../src/admin/admin.js';
import type { AdminView } from '../../src/admin/admin.js';
import type { Authenticator } from '../../src/gateway/auth-hook.js';
import type { Gateway } from '../../src/gateway/server.js';

const uws = createRequire(import.meta.url)('uWebSockets.js') as typeof UWS;

/**
 * The admin API when something inside it fails unexpectedly (a worker that does not answer, a
 * store error): the operator gets 500 INTERNAL with a fixed message, and the error itself, which
 * can carry connection strings, hosts or stack details, goes to the log only.
 */
describe('admin API: an unexpected failure answers 500 without its internals', () => {
  const TOKEN = 'admin-errors-service-token-0123456789';
  const logged: { obj: object; msg: string }[] = [];
  let app: UWS.TemplatedApp;
  let socket: UWS.us_listen_socket;
  let port = 0;
  let view: AdminView;

  beforeAll(async () => {
    app = uws.App();
    // the gateway's own lists are not read: `peers` answers for every worker, and here it fails
    const gateway = { connections: new Set(), hub: { channelStats: () => [] } } as unknown as Gateway;
    const authenticator = { mode: 'off', authenticate: async () => ({ ok: false }) } as unknown as Authenticator;
    view = registerAdmin(app, {
      gateway,
      serviceToken: TOKEN,
      authenticator,
      feeds: () => [],
      announce: () => Date.now(),
      peers: {
        gather: () =>
          Promise.reject(new Error('worker 2 did not answer: redis://ops:hunter2@10.1.2.3:6379 at Object.<anonymous> (/srv/tickwire/dist/x.js:1:1)')),
        close: () => Promise.reject(new Error('worker 3 crashed: hunter2')),
      },
      log: {
        info: (obj, msg) => logged.push({ obj, msg }),
        error: (obj: object, msg: string) => logged.push({ obj, msg }),
      },
    });
    await new Promise<void>((resolve) =>
      app.listen('127.0.0.1', 0, (s) => {
        socket = s as UWS.us_listen_socket;
        port = uws.us_socket_local_port(s as never);
        resolve();
      }),
    );
  });
  afterAll(() => {
    view?.stop();
    uws.us_listen_socket_close(socket);
  });

  it('GET /admin/api/overview and /connections: 500 INTERNAL, a fixed message, the error logged', async () => {
    for (const path of ['/admin/api/overview', '/admin/api/connections', '/admin/api/channels']) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status, path).toBe(500);
      const text = await res.text();
      expect(text, path).not.toMatch(/hunter2|10\.1\.2\.3|\/srv\/tickwire|redis:/);
      expect(JSON.parse(text), path).toEqual({ error: 'INTERNAL', message: expect.stringMatching(/gateway log/) });
    }
    expect(logged.some((l) => /hunter2/.test(String((l.obj as { err?: unknown }).err)))).toBe(true);
  });

  it('POST /admin/api/connections/{id}/close that fails inside: the same', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/admin/api/connections/abc/close`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(500);
    expect(await res.text()).not.toMatch(/hunter2|crashed/);
  });
});
