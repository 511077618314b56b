import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import { createLogger } from '../../src/core/logger.js';
import { freePort } from '../helpers/servers.js';
import { runToExit, tickwireCli } from '../helpers/processes.js';
import { rawUpgrade } from '../helpers/raw-upgrade.js';
import { waitFor } from '../helpers/wait.js';

/**
 * No secret reaches a log line or the one line a failed start prints: passwords in Redis and NATS
 * URLs, JWTs (in a query or an Authorization header), API keys in a provider's or identity
 * provider's URL; error paths included (a failed connect, a JWKS fetch that fails). Logs are
 * captured as the process writes them.
 */
const PASSWORD = 'pw-Zq81xK';
const API_KEY = 'ak-Ml40Rt';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

const cleanEnv = (): Record<string, string> =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      (e): e is [string, string] =>
        e[1] !== undefined && !e[0].startsWith('TICKWIRE_') && !['PORT', 'HOST', 'NATS_URL', 'REDIS_URL', 'LOG_LEVEL'].includes(e[0]),
    ),
  );

describe('the logger', () => {
  it('hides credentials in fields, messages, errors (with their causes and stacks) and child bindings', () => {
    const out = capture();
    const log = createLogger({ level: 'trace', format: 'json' }, 'tickwire', out.stream);
    const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz';
    const cause = new Error(`connect ECONNREFUSED redis://:${PASSWORD}@10.0.0.5:6379`);
    log.warn({ err: new Error(`cannot connect to NATS at nats://svc:${PASSWORD}@10.0.0.6:4222`, { cause }) }, 'bus down');
    log.info({ url: `wss://feed.example.com/v2?apikey=${API_KEY}&symbols=AAPL` }, 'provider connecting');
    log.info({ headers: { authorization: `Bearer ${jwt}`, 'x-api-key': API_KEY, host: 'gw' } }, 'request');
    log.info(`upgrade /v1/stream?token=${jwt} refused`);
    log.error(new Error(`provider refused Authorization: Basic ${API_KEY}`));
    log.child({ redis: `redis://user:${PASSWORD}@10.0.0.7:6379` }).info('store ready');
    const text = out.text();
    expect(text.trim().split('\n')).toHaveLength(6);
    for (const secret of [PASSWORD, API_KEY, jwt, 'c2lnbmF0dXJlLWJ5dGVz']) expect(text).not.toContain(secret);
    // what an operator needs is still there
    for (const kept of ['10.0.0.5:6379', '10.0.0.6:4222', 'feed.example.com', 'symbols=AAPL', '"host":"gw"', 'ECONNREFUSED', '10.0.0.7:6379'])
      expect(text).toContain(kept);
    expect(text).toMatch(/"stack":"Error: cannot connect to NATS at nats:\/\/svc:\[redacted\]@10\.0\.0\.6:4222/);
  });

  it('hides the arguments of a Redis AUTH or HELLO command that an ioredis error carries (err.command.args)', () => {
    const out = capture();
    const log = createLogger({ level: 'info', format: 'json' }, 'tickwire', out.stream);
    // ioredis's ReplyError names the command that failed, with its arguments
    const auth = Object.assign(new Error('WRONGPASS invalid username-password pair or user is disabled.'), {
      command: { name: 'auth', args: ['svc', PASSWORD] },
    });
    const hello = Object.assign(new Error('NOAUTH HELLO must be called with the client already authenticated'), {
      command: { name: 'hello', args: ['3', 'AUTH', 'svc', PASSWORD] },
    });
    const get = Object.assign(new Error('WRONGTYPE'), { command: { name: 'get', args: ['tickwire:last:AAPL'] } });
    for (const err of [auth, hello, get]) log.warn({ err }, 'redis command failed');
    const text = out.text();
    expect(text).not.toContain(PASSWORD);
    expect(text).toContain('WRONGPASS');
    expect(text).toContain('tickwire:last:AAPL'); // other commands' arguments say what failed
  });

  it('keeps fields that only name or count secrets: the 403 line names the service token (docs/auth.md)', () => {
    const out = capture();
    const log = createLogger({ level: 'info', format: 'json' }, 'tickwire', out.stream);
    log.info({ tokenName: 'oms', scope: 'positions:write', route: 'PUT /v1/users/:user/positions' }, 'service token lacks the scope');
    log.info({ secretCount: 2, tokenSource: 'jwks', tokens: 5 }, 'auth ready');
    log.info({ token: 'tk-Secret9', apiKey: API_KEY }, 'still hidden');
    const [scope, counts, hidden] = out
      .text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(scope).toMatchObject({ tokenName: 'oms', scope: 'positions:write' });
    expect(counts).toMatchObject({ secretCount: 2, tokenSource: 'jwks', tokens: 5 });
    expect(hidden).toMatchObject({ token: '[redacted]', apiKey: '[redacted]' });
  });
});

/**
 * The tickwire CLI with `args` to its exit (killed after 60 s), its output apart. Not spawnSync: the
 * cases below run at the same time, each waiting on processes of its own.
 */
function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runToExit([...tickwireCli(), ...args], env);
}

describe('a process that cannot reach its servers', { concurrent: true, timeout: 90_000 }, () => {
  it('names NATS without its password (tickwire gateway, one event loop and two)', async ({ expect }) => {
    const port = await freePort();
    const env = { ...cleanEnv(), NATS_URL: `nats://svc:${PASSWORD}@127.0.0.1:${port}`, LOG_LEVEL: 'trace' };
    const runs = await Promise.all(['1', '2'].map((workers) => cli(['gateway', '--workers', workers, '--port=0', '--log.format=json'], env)));
    for (const r of runs) {
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`cannot connect to NATS at nats://svc:\\[redacted\\]@127\\.0\\.0\\.1:${port} \\(NATS_URL\\)`));
      expect(r.stdout + r.stderr).not.toContain(PASSWORD);
    }
  });

  it('an embedding gets the NATS failure without the password too (startEngine rejects with it)', async ({ expect }) => {
    const port = await freePort();
    const out = capture();
    const log = createLogger({ level: 'trace', format: 'json' }, 'tickwire', out.stream);
    const err = await startEngine(
      { host: '127.0.0.1', port: 0, natsUrl: `nats://svc:${PASSWORD}@127.0.0.1:${port}` },
      { roles: { feeds: [] }, env: {}, log },
    ).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/cannot connect to NATS at nats:\/\/svc:\[redacted\]@127\.0\.0\.1/);
    expect(err?.message).not.toContain(PASSWORD);
    expect(out.text()).not.toContain(PASSWORD);
  });

  it('names Redis without its password (tickwire start, logs at trace)', async ({ expect }) => {
    const port = await freePort();
    const r = await cli(['start', '--workers', '1', '--port=0', '--log.format=json', '--feeds='], {
      ...cleanEnv(),
      REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${port}`,
      LOG_LEVEL: 'trace',
    });
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/cannot reach Redis at redis:\/\/:\[redacted\]@127\.0\.0\.1/);
    expect(r.stdout + r.stderr).not.toContain(PASSWORD);
  });
});

describe('a JWKS endpoint that fails', () => {
  let server: Server;
  let jwksUrl = '';
  /** what the JWKS endpoint was sent: the URL's user:password goes as Basic auth (fetch() refuses it in the URL) */
  const seen: { url?: string; authorization?: string }[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ ...(req.url ? { url: req.url } : {}), ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}) });
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end(`overloaded; retry with apikey=${API_KEY}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    jwksUrl = `http://svc:${PASSWORD}@127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json?api_key=${API_KEY}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('logs the failure without the URL credentials, the API key or the tokens presented', async () => {
    const out = capture();
    const log = createLogger({ level: 'trace', format: 'json' }, 'tickwire', out.stream);
    const engine = await startEngine(
      { host: '127.0.0.1', port: 0, gateway: { workers: 1 }, auth: { mode: 'required', jwksUrl } },
      { roles: { feeds: [] }, env: {}, log },
    );
    try {
      const { privateKey } = await generateKeyPair('RS256');
      const jwt = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setSubject('alice').sign(privateKey);
      const check = await fetch(`http://127.0.0.1:${engine.port}/v1/auth/check`, { headers: { authorization: `Bearer ${jwt}` } });
      expect(check.status).toBe(503);
      expect((await rawUpgrade(engine.port, { authorization: `Bearer ${jwt}` })).status).toBe(503);
      // a token the gateway refuses outright (HS256 where only the JWKS's keys verify): logged with its reason
      const hs = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('bob')
        .sign(new TextEncoder().encode('k'.repeat(32)));
      expect((await rawUpgrade(engine.port, { authorization: `Bearer ${hs}` })).status).toBe(401);
      await waitFor(() => /upgrade refused: authentication failed/.test(out.text()), 'the refused upgrade in the log');
      // the failed JWKS fetch itself, with the URL (credentials redacted) and the reason
      const failed = out
        .text()
        .split('\n')
        .filter((l) => l.includes('JWKS fetch failed'))
        .map((l) => JSON.parse(l) as { url: string; reason: string });
      expect(failed).toHaveLength(1);
      expect(seen[0]).toEqual({ url: `/jwks.json?api_key=${API_KEY}`, authorization: `Basic ${Buffer.from(`svc:${PASSWORD}`).toString('base64')}` });
      expect(failed[0]).toMatchObject({
        reason: 'HTTP 503 from the JWKS URL',
        url: expect.stringMatching(/^http:\/\/svc:\[redacted\]@127\.0\.0\.1:\d+\/jwks\.json/),
      });
      const text = out.text();
      for (const s of [PASSWORD, API_KEY, jwt.split('.')[1]!, jwt.split('.')[2]!, hs.split('.')[2]!]) expect(text).not.toContain(s);
    } finally {
      await engine.close();
    }
  });
});
