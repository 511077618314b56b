import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type * as UWS from 'uWebSockets.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecutionService } from '../../src/executions/execution-service.js';
import { registerServiceApi } from '../../src/service-api/service-api.js';
import type { Engine } from '../../src/app/engine.js';
import { loadConfig, SERVICE_SCOPES } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { ServiceTokens } from '../../src/access/service-tokens.js';
import { api, SECRET, SERVICE_TOKEN, testEngine, token } from './helpers.js';
import { parseProm } from '../ops/prom-text.js';

/**
 * Scoped service tokens (docs/auth.md#service-tokens-and-scopes): each auth.serviceTokens entry
 * reaches only the routes of its scopes; auth.serviceToken keeps every scope.
 */
const uws = createRequire(import.meta.url)('uWebSockets.js') as typeof UWS;

const OMS = 'oms-token-0123456789abcdef';
const OPS_READ = 'ops-read-token-0123456789abcdef';
const FROM_ENV = 'notifier-token-from-env-0123456789';

const execution = (id: string) => ({ user: 'alice', id, order: 'o1', sym: 'BTC-USD', side: 'buy', qty: 1, p: 100, t: Date.now() });
const positions = { ccy: 'USD', positions: [{ sym: 'BTC-USD', qty: 1, cost: 100 }] };
const notification = (id: string) => ({ id, type: 'info', title: 'hello' });
const announcement = { level: 'info', title: 't', message: 'm' };

describe('scoped service tokens over HTTP (embedded engine)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine(
      {
        auth: {
          mode: 'required',
          jwtSecret: SECRET,
          serviceToken: SERVICE_TOKEN,
          serviceTokens: [
            { name: 'oms', token: OMS, scopes: ['executions:write'] },
            { name: 'ops', token: OPS_READ, scopes: ['admin:read', 'positions:read'] },
          ],
        },
      },
      { feeds: [] },
    );
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('a token with executions:write posts executions and nothing else', async () => {
    expect((await api(engine, 'POST', '/v1/executions', execution('e1'), OMS)).status).toBe(201);
    const forbidden: [string, string, unknown, string][] = [
      ['PUT', '/v1/users/alice/positions', positions, 'positions:write'],
      ['GET', '/v1/users/alice/positions', undefined, 'positions:read'],
      ['POST', '/v1/announcements', announcement, 'announcements:write'],
      ['POST', '/v1/users/alice/notifications', notification('n1'), 'notifications:write'],
      ['GET', '/v1/users/alice/notifications', undefined, 'notifications:read'],
      ['POST', '/v1/users/alice/notifications/read', { upTo: 1 }, 'notifications:write'],
      ['GET', '/v1/users/alice/alerts', undefined, 'alerts:read'],
      ['POST', '/v1/users/alice/alerts', { id: 'a1', symbol: 'BTC-USD', when: { above: 1 } }, 'alerts:write'],
      ['DELETE', '/v1/users/alice/alerts/a1', undefined, 'alerts:write'],
      ['GET', '/admin/api/overview', undefined, 'admin:read'],
      ['GET', '/admin/api/connections', undefined, 'admin:read'],
      ['POST', '/admin/api/announcements', announcement, 'admin:write'],
      ['POST', '/admin/api/connections/x/close', undefined, 'admin:write'],
    ];
    for (const [method, path, body, scope] of forbidden) {
      const r = await api(engine, method, path, body, OMS);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body, `${method} ${path}`).toMatchObject({ error: 'FORBIDDEN', scope });
      expect(r.body.message, `${method} ${path}`).toContain(`"oms"`);
      expect(r.body.message, `${method} ${path}`).toContain(scope);
      expect(JSON.stringify(r.body)).not.toContain(OMS);
    }
  });

  it('an admin:read token reads the console but cannot close connections or announce', async () => {
    expect((await api(engine, 'GET', '/admin/api/overview', undefined, OPS_READ)).status).toBe(200);
    const close = await api(engine, 'POST', '/admin/api/connections/x/close', undefined, OPS_READ);
    expect(close).toMatchObject({ status: 403, body: { error: 'FORBIDDEN', scope: 'admin:write' } });
    expect((await api(engine, 'POST', '/admin/api/announcements', announcement, OPS_READ)).body).toMatchObject({ error: 'FORBIDDEN', scope: 'admin:write' });
  });

  it('counts each 403 scope refusal by token name and scope (tickwire_service_scope_refusals_total)', async () => {
    const before = parseProm((await api(engine, 'GET', '/metrics', undefined, null)).body as string);
    const key = (name: string, scope: string): string => `tickwire_service_scope_refusals_total{token="${name}",scope="${scope}"}`;
    expect((await api(engine, 'POST', '/admin/api/announcements', announcement, OPS_READ)).status).toBe(403);
    expect((await api(engine, 'POST', '/admin/api/announcements', announcement, OPS_READ)).status).toBe(403);
    expect((await api(engine, 'PUT', '/v1/users/alice/positions', positions, OPS_READ)).status).toBe(403);
    // a 401 (no token, an unknown one) is not a scope refusal
    expect((await api(engine, 'POST', '/v1/executions', execution('e9'), 'not-a-configured-token-0123456789')).status).toBe(401);
    const after = parseProm((await api(engine, 'GET', '/metrics', undefined, null)).body as string);
    const delta = (k: string): number => (after.get(k) ?? 0) - (before.get(k) ?? 0);
    expect(delta(key('ops', 'admin:write'))).toBe(2);
    expect(delta(key('ops', 'positions:write'))).toBe(1);
    const text = JSON.stringify([...after.keys()]);
    expect(text).not.toContain(OPS_READ);
  });

  it("GET /admin/api/session tells the console the token's name and scopes (never the token)", async () => {
    const r = await api(engine, 'GET', '/admin/api/session', undefined, OPS_READ);
    expect(r).toMatchObject({ status: 200, body: { token: 'ops', scopes: ['admin:read', 'positions:read'] } });
    expect(JSON.stringify(r.body)).not.toContain(OPS_READ);
    expect((await api(engine, 'GET', '/admin/api/session')).body).toMatchObject({ token: 'serviceToken', scopes: [...SERVICE_SCOPES].sort() });
    expect((await api(engine, 'GET', '/admin/api/session', undefined, OMS)).status).toBe(403);
  });

  it('the legacy auth.serviceToken still reaches every route', async () => {
    expect((await api(engine, 'POST', '/v1/executions', execution('e2'))).status).toBe(201);
    expect((await api(engine, 'PUT', '/v1/users/alice/positions', positions)).status).toBe(200);
    expect((await api(engine, 'GET', '/v1/users/alice/positions')).status).toBe(200);
    expect((await api(engine, 'POST', '/v1/announcements', announcement)).status).toBe(202);
    expect((await api(engine, 'POST', '/v1/users/alice/notifications', notification('n2'))).status).toBe(201);
    expect((await api(engine, 'GET', '/admin/api/overview')).status).toBe(200);
    expect((await api(engine, 'POST', '/admin/api/announcements', announcement)).status).toBe(202);
    expect((await api(engine, 'POST', '/admin/api/connections/nope/close')).status).toBe(404);
    // and a positions:read token reads what it wrote
    expect((await api(engine, 'GET', '/v1/users/alice/positions', undefined, OPS_READ)).status).toBe(200);
  });

  it('no token or an unknown one: 401; a user token on the service API: 401, on the console: 403', async () => {
    for (const auth of [null, 'not-a-configured-token-0123456789', `${OMS}x`]) {
      const r = await api(engine, 'POST', '/v1/executions', execution('e3'), auth);
      expect(r, String(auth)).toMatchObject({ status: 401, body: { error: 'UNAUTHENTICATED' } });
      expect((await api(engine, 'GET', '/admin/api/overview', undefined, auth)).status, String(auth)).toBe(401);
    }
    const user = await token({ sub: 'mallory' });
    expect((await api(engine, 'POST', '/v1/executions', execution('e4'), user)).status).toBe(401);
    expect((await api(engine, 'GET', '/admin/api/overview', undefined, user)).body).toMatchObject({ error: 'FORBIDDEN' });
  });
});

describe('auth.serviceTokens: tokenEnv', () => {
  let engine: Engine | undefined;
  afterAll(async () => {
    await engine?.close();
  });

  it('reads the token from the named environment variable', async () => {
    const { startEngine } = await import('../../src/app/engine.js');
    engine = await startEngine(
      {
        host: '127.0.0.1',
        port: 0,
        log: { level: 'silent' },
        auth: { serviceTokens: [{ name: 'notifier', tokenEnv: 'NOTIFIER_TOKEN', scopes: ['notifications:write'] }] },
      },
      { roles: { feeds: [] }, env: { NOTIFIER_TOKEN: FROM_ENV } },
    );
    expect((await api(engine, 'POST', '/v1/users/bob/notifications', notification('n1'), FROM_ENV)).status).toBe(201);
    expect((await api(engine, 'POST', '/v1/executions', execution('e1'), FROM_ENV)).body).toMatchObject({ error: 'FORBIDDEN', scope: 'executions:write' });
  });
});

describe('auth.serviceTokens: configuration errors name the key and the fix', () => {
  const load = (serviceTokens: unknown, env: Record<string, string> = {}, serviceToken?: string) =>
    loadConfig({ env, overrides: { auth: { serviceTokens, ...(serviceToken ? { serviceToken } : {}) } } as Record<string, unknown> });
  const error = (fn: () => unknown): string => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('no ConfigError');
  };

  it('unknown scope', () => {
    const m = error(() => load([{ name: 'oms', token: OMS, scopes: ['executions:wrte'] }]));
    expect(m).toContain('auth.serviceTokens.0.scopes.0');
    expect(m).toContain('unknown scope');
    expect(m).toContain('executions:write');
  });
  it('no scope, short token, bad name, both or neither of token and tokenEnv', () => {
    expect(error(() => load([{ name: 'oms', token: OMS, scopes: [] }]))).toMatch(/auth\.serviceTokens\.0\.scopes.*at least one scope/);
    expect(error(() => load([{ name: 'oms', token: 'short', scopes: ['executions:write'] }]))).toMatch(/auth\.serviceTokens\.0\.token.*at least 16/);
    expect(error(() => load([{ name: 'o m s', token: OMS, scopes: ['executions:write'] }]))).toMatch(/auth\.serviceTokens\.0\.name/);
    expect(error(() => load([{ name: 'oms', token: OMS, tokenEnv: 'X', scopes: ['executions:write'] }]))).toMatch(/exactly one of token and tokenEnv/);
    expect(error(() => load([{ name: 'oms', scopes: ['executions:write'] }]))).toMatch(/exactly one of token and tokenEnv/);
    expect(error(() => load([{ name: 'oms', token: OMS, scopes: ['executions:write'], extra: 1 }]))).toMatch(/unknown key.*extra/);
  });
  it('duplicate names and duplicate tokens (also through tokenEnv and against auth.serviceToken), never printing the token', () => {
    const a = { name: 'oms', token: OMS, scopes: ['executions:write'] };
    expect(error(() => load([a, { ...a, token: OPS_READ }]))).toMatch(/auth\.serviceTokens\.1\.name.*duplicate name "oms"/);
    const dupToken = error(() => load([a, { ...a, name: 'oms2' }]));
    expect(dupToken).toMatch(/auth\.serviceTokens\.1\.token.*"oms2"/);
    expect(dupToken).not.toContain(OMS);
    const viaEnv = error(() => load([a, { name: 'b', tokenEnv: 'B_TOKEN', scopes: ['admin:read'] }], { B_TOKEN: OMS }));
    expect(viaEnv).toMatch(/auth\.serviceTokens\.1.*"b".*"oms"/);
    expect(viaEnv).not.toContain(OMS);
    const legacy = error(() => load([a], {}, OMS));
    expect(legacy).toMatch(/auth\.serviceTokens\.0.*auth\.serviceToken/);
    expect(legacy).not.toContain(OMS);
  });
  it('tokenEnv unset, short, or a TICKWIRE_ name', () => {
    const e = { name: 'n', tokenEnv: 'N_TOKEN', scopes: ['notifications:write'] };
    expect(error(() => load([e]))).toMatch(/auth\.serviceTokens\.0\.tokenEnv: environment variable N_TOKEN .*not set/);
    expect(error(() => load([e], { N_TOKEN: 'short' }))).toMatch(/N_TOKEN .*shorter than 16/);
    expect(error(() => load([{ ...e, tokenEnv: 'TICKWIRE_N_TOKEN' }]))).toMatch(/without the TICKWIRE_ prefix/);
  });
  it('from the environment as a JSON array (TICKWIRE_AUTH_SERVICE_TOKENS)', () => {
    const cfg = loadConfig({ env: { TICKWIRE_AUTH_SERVICE_TOKENS: JSON.stringify([{ name: 'oms', token: OMS, scopes: ['executions:write'] }]) } });
    expect(cfg.auth.serviceTokens).toEqual([{ name: 'oms', token: OMS, scopes: ['executions:write'] }]);
  });
});

describe('ServiceTokens', () => {
  it('the legacy token holds every scope; a scoped token only its own', () => {
    const t = new ServiceTokens({ serviceToken: SERVICE_TOKEN, serviceTokens: [{ name: 'oms', token: OMS, scopes: ['executions:write'] }] });
    for (const s of SERVICE_SCOPES) expect(t.check(`Bearer ${SERVICE_TOKEN}`, s, 'x'), s).toBeUndefined();
    expect(t.check(`Bearer ${OMS}`, 'executions:write', 'x')).toBeUndefined();
    expect(t.check(`bearer   ${OMS} `, 'admin:write', 'x')).toMatchObject({ status: 403, scope: 'admin:write' });
    expect(t.check(`Basic ${OMS}`, 'executions:write', 'x')).toMatchObject({ status: 401 });
    expect(new ServiceTokens({ serviceToken: undefined }).check(`Bearer ${OMS}`, 'executions:write', 'service API')).toMatchObject({
      status: 401,
      message: expect.stringMatching(/disabled/),
    });
  });
});

describe('docs/auth.md#service-tokens-and-scopes', () => {
  const doc = readFileSync(new URL('../../docs/auth.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## Service tokens and scopes'), doc.indexOf('## Keys and algorithms'));

  it('the YAML example loads as written (its tokenEnv variables set)', () => {
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    const dir = mkdtempSync(join(tmpdir(), 'scopes-'));
    const file = join(dir, 'tickwire.yaml');
    writeFileSync(file, yaml);
    try {
      const cfg = loadConfig({
        env: { TICKWIRE_CONFIG: file, OMS_SERVICE_TOKEN: OMS, NOTIFIER_SERVICE_TOKEN: FROM_ENV, OPS_SERVICE_TOKEN: OPS_READ },
      });
      expect(cfg.auth.serviceTokens.map((t) => [t.name, t.token])).toEqual([
        ['oms', OMS],
        ['notifier', FROM_ENV],
        ['ops', OPS_READ],
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the scopes table lists exactly SERVICE_SCOPES; the 403 example is the real answer', () => {
    const rows = [...section.matchAll(/^\| `([a-z]+:[a-z]+)` \|/gm)].map((m) => m[1]);
    expect(rows).toEqual([...SERVICE_SCOPES]);
    const json = JSON.parse(/```json\n([\s\S]*?)```/.exec(section)![1]!);
    const {
      status,
      token: name,
      ...body
    } = new ServiceTokens({ serviceTokens: [{ name: 'oms', token: OMS, scopes: ['executions:write'] }] }).check(
      `Bearer ${OMS}`,
      'positions:write',
      'service API',
    )!;
    expect([status, name]).toEqual([403, 'oms']); // the name goes to the log; the answer is the rest
    expect(json).toEqual(body);
  });

  it('the env example is a valid TICKWIRE_AUTH_SERVICE_TOKENS', () => {
    const value = /TICKWIRE_AUTH_SERVICE_TOKENS='([^']+)'/.exec(section)![1]!;
    const cfg = loadConfig({ env: { TICKWIRE_AUTH_SERVICE_TOKENS: value, OMS_SERVICE_TOKEN: OMS } });
    expect(cfg.auth.serviceTokens[0]).toMatchObject({ name: 'oms', token: OMS, scopes: ['executions:write'] });
  });
});

describe('a token used beyond its scopes is logged by name, never by value', () => {
  let app: UWS.TemplatedApp;
  let socket: UWS.us_listen_socket;
  let port = 0;
  const logged: { obj: Record<string, unknown>; msg: string }[] = [];

  beforeAll(async () => {
    app = uws.App();
    // the refused request never reaches the execution log or the portfolio: neither is needed here
    registerServiceApi(app, {
      serviceToken: undefined,
      serviceTokens: [{ name: 'oms', token: OMS, scopes: ['executions:write'] }],
      executions: {} as ExecutionService,
      portfolio: undefined,
      log: { warn: (obj, msg) => logged.push({ obj: obj as Record<string, unknown>, msg }) },
    });
    await new Promise<void>((resolve) =>
      app.listen('127.0.0.1', 0, (s) => {
        socket = s as UWS.us_listen_socket;
        port = uws.us_socket_local_port(s as never);
        resolve();
      }),
    );
  });
  afterAll(() => uws.us_listen_socket_close(socket));

  it('403 and one warning naming the token, the scope and the route', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/v1/users/alice/positions`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${OMS}`, 'content-type': 'application/json' },
      body: JSON.stringify(positions),
    });
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: 'FORBIDDEN', scope: 'positions:write', message: expect.stringContaining('"oms"') });
    expect(logged).toEqual([
      { obj: { tokenName: 'oms', scope: 'positions:write', route: 'PUT /v1/users/:user/positions' }, msg: 'service token lacks the scope' },
    ]);
    expect(JSON.stringify(logged)).not.toContain(OMS);
  });
});
