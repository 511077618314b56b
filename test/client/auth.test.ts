import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient, type ClientOptions, type ConnectionState, type TickwireClientError } from '../../src/client/index.js';
import type { Engine } from '../../src/app/engine.js';
import { SECRET, token } from '../auth/helpers.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { freePort } from '../helpers/servers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

/**
 * #14 item 3: a refused token ends in one clear error (the reason, read from the auth check a
 * browser can read too), not in retries forever with one error each; a token function that
 * yields a new token recovers; tokens are refreshed before they expire; an outage is one error
 * and one state change, however many retries.
 */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** `onFinished`: a concurrent test's own onTestFinished (the afterEach above would clean up for tests still running) */
type OnFinished = (fn: () => Promise<void>) => void;
const afterThisTest: OnFinished = (fn) => void cleanups.push(fn);

async function authEngine(onFinished: OnFinished = afterThisTest): Promise<Engine> {
  const e = await startTestEngine(undefined, { auth: { mode: 'required', jwtSecret: SECRET, clockToleranceSec: 0, expiryWarningSec: 1 } });
  onFinished(async () => {
    await e.close();
  });
  return e;
}

interface Watched {
  client: TickwireClient;
  errors: TickwireClientError[];
  states: ConnectionState[];
  reconnects: number;
}

function watch(opts: ClientOptions, onFinished: OnFinished = afterThisTest): Watched {
  const client = new TickwireClient({ reconnect: { initialDelayMs: 20, maxDelayMs: 100 }, ...opts });
  onFinished(async () => {
    await client.close();
  });
  const w: Watched = { client, errors: [], states: [], reconnects: 0 };
  client.on('error', (e) => w.errors.push(e));
  client.on('state', (s) => w.states.push(s.state));
  client.on('reconnecting', () => w.reconnects++);
  return w;
}

const refusals = (e: Engine, code: string): number => {
  const stats = e.gateway?.counters.protocolErrors ?? {};
  return stats[`auth:${code}`] ?? 0;
};

describe('auth that fails clearly', { timeout: 60_000 }, () => {
  it('an expired token: connect() rejects with UNAUTHENTICATED/expired, one error, connecting -> closed, no retry', async () => {
    const engine = await authEngine();
    const w = watch({ url: streamUrl(engine.port), token: await token({ expIn: -60 }) });
    const err = await w.client.connect().then(
      () => undefined,
      (e: TickwireClientError) => e,
    );
    expect(err?.code).toBe('UNAUTHENTICATED');
    expect(err?.reason).toBe('expired');
    expect(w.errors.map((e) => [e.code, e.reason])).toEqual([['UNAUTHENTICATED', 'expired']]);
    expect(w.states).toEqual(['connecting', 'closed']);
    expect(w.reconnects).toBe(0);
    // the upgrade was tried once; 'closed' has no reconnect timer left
    expect(refusals(engine, 'expired')).toBe(1); // the upgrade was tried once (the auth check is not counted)
    expect(w.client.state).toBe('closed');
  });

  it('a token function that keeps yielding a bad token: one error with the reason, then closed', async () => {
    const engine = await authEngine();
    const bad = await token({ secret: 'not-the-secret-0123456789-0123456789' });
    let calls = 0;
    const w = watch({ url: streamUrl(engine.port), getToken: () => (calls++, bad) });
    const err = await w.client.connect().then(
      () => undefined,
      (e: TickwireClientError) => e,
    );
    expect(err?.reason).toBe('bad_signature');
    expect(calls).toBe(2); // the attempt, and once more after the refusal
    expect(w.errors).toHaveLength(1);
    expect(w.states).toEqual(['connecting', 'closed']);
  });

  it('a token function that yields a new token after a refusal connects, without an error', async () => {
    const engine = await authEngine();
    const tokens = [await token({ expIn: -60 }), await token({ expIn: 3600 })];
    let calls = 0;
    const w = watch({ url: streamUrl(engine.port), getToken: () => tokens[Math.min(calls++, 1)] });
    const welcome = await w.client.connect();
    expect(welcome.op).toBe('welcome');
    expect(w.errors).toEqual([]);
    const ack = await w.client.subscribe(['portfolio']);
    expect(ack.subscribed).toEqual(['portfolio']); // authenticated as alice
  });

  it('a token function that keeps yielding new tokens the gateway refuses is asked at the backoff pace, not in a loop', async () => {
    const engine = await authEngine();
    let calls = 0;
    // each one different (its own jti) and already expired: a token backend whose clock is behind
    const w = watch({
      url: streamUrl(engine.port),
      reconnect: { initialDelayMs: 200, maxDelayMs: 400 },
      getToken: () => token({ expIn: -60, claims: { jti: String(++calls) } }),
    });
    w.client.connect().catch(() => undefined);
    await quietFor(1500, 'token requests faster than the backoff');
    // the attempt and one retry at once, then one attempt per backoff delay (at most 200-400 ms,
    // jittered), two token requests each: a few dozen at most, where retrying each new token at
    // once asked hundreds of times (807 in this test before)
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(calls).toBeLessThan(50);
    expect(w.client.state).toBe('reconnecting');
  });

  it('no token where one is required: UNAUTHENTICATED/missing', async () => {
    const engine = await authEngine();
    const w = watch({ url: streamUrl(engine.port) });
    const err = await w.client.connect().then(
      () => undefined,
      (e: TickwireClientError) => e,
    );
    expect([err?.code, err?.reason]).toEqual(['UNAUTHENTICATED', 'missing']);
    expect(w.errors).toHaveLength(1);
  });

  // the next three wait for a token's exp (3 s) on engines of their own: at the same time
  it('refreshes the token in band before it expires: the connection outlives the first token', { concurrent: true }, async ({ onTestFinished }) => {
    const engine = await authEngine(onTestFinished);
    const first = await token({ expIn: 3 });
    const firstExp = Math.floor(Date.now() / 1000) * 1000 + 3000;
    let calls = 0;
    const w = watch(
      { url: streamUrl(engine.port), getToken: async () => (++calls === 1 ? first : token({ expIn: 3600 })), refreshBeforeExpiryMs: 2000 },
      onTestFinished,
    );
    const closes: number[] = [];
    w.client.on('close', (c) => closes.push(c.code));
    await w.client.connect();
    await waitFor(() => calls >= 2, 'the token function is asked for a fresh token before expiry');
    // past the first token's exp (plus the server's expiry timer): still the same connection
    await waitFor(() => Date.now() > firstExp + 1500, 'the first token has expired');
    await w.client.ping();
    expect(closes).toEqual([]);
    expect(w.errors).toEqual([]);
    expect(w.states).toEqual(['connecting', 'open']);
  });

  it(
    'a fixed token replaced in band with refreshAuth(token) is the one a reconnect presents, not the expired first',
    { concurrent: true },
    async ({ onTestFinished }) => {
      const engine = await authEngine(onTestFinished);
      const first = await token({ expIn: 3 });
      const firstExp = Math.floor(Date.now() / 1000) * 1000 + 3000;
      const tap: Tap = { filter: undefined, sockets: [] };
      const w = watch({ url: streamUrl(engine.port), token: first, WebSocket: filteringWebSocket(tap), heartbeatIntervalMs: 0 }, onTestFinished);
      await w.client.connect();
      await w.client.refreshAuth(await token({ expIn: 3600 }));
      await waitFor(() => Date.now() > firstExp + 500, 'the first token has expired');
      // the connection drops (a network blip): the reconnect needs a token the gateway accepts
      tap.sockets[0]!.terminate();
      await waitFor(() => tap.sockets.length > 1 && (w.client.state === 'open' || w.client.state === 'closed'), { what: 'the reconnect', timeout: 10_000 });
      expect(w.errors.map((e) => `${e.code} ${e.reason}`)).toEqual([]);
      expect(w.client.state).toBe('open');
    },
  );

  it(
    'a fixed token given to refreshAuth(token) while reconnecting is the one the reconnect presents (not dropped)',
    { concurrent: true },
    async ({ onTestFinished }) => {
      const engine = await authEngine(onTestFinished);
      const first = await token({ expIn: 3 });
      const firstExp = Math.floor(Date.now() / 1000) * 1000 + 3000;
      const fresh = await token({ expIn: 3600 });
      const tap: Tap = { filter: undefined, sockets: [] };
      const w = watch({ url: streamUrl(engine.port), token: first, WebSocket: filteringWebSocket(tap), heartbeatIntervalMs: 0 }, onTestFinished);
      await w.client.connect();
      const given: Promise<void>[] = [];
      w.client.on('state', ({ state }) => {
        // the app renews its token while the connection is down
        if (state === 'reconnecting' && given.length === 0) given.push(w.client.refreshAuth(fresh));
      });
      tap.sockets[0]!.terminate();
      await waitFor(() => tap.sockets.length > 1 && w.client.state === 'open', { what: 'the reconnect', timeout: 10_000 });
      await Promise.all(given);
      // the gateway ends a connection when its token expires: this one holds the fresh token
      await waitFor(() => Date.now() > firstExp + 1500, 'the first token has expired');
      expect(w.errors.map((e) => `${e.code} ${e.reason}`)).toEqual([]);
      expect(w.client.state).toBe('open');
    },
  );

  it('an outage is one error and one state change, however many retries', async () => {
    const port = await freePort(); // nothing listens here
    const w = watch({ url: streamUrl(port) });
    void w.client.connect().catch(() => undefined);
    await waitFor(() => w.reconnects >= 4, 'four retries');
    expect(w.errors).toHaveLength(1);
    expect(w.errors[0]!.code).toBe('TRANSPORT');
    expect(w.states).toEqual(['connecting', 'reconnecting']);
  });
});

describe('GET /v1/auth/check', { timeout: 30_000 }, () => {
  it('tells why a token is refused, readable from any origin; answers the CORS preflight', async () => {
    const engine = await authEngine();
    const base = `http://127.0.0.1:${engine.port}/v1/auth/check`;
    const expired = await fetch(`${base}?token=${await token({ expIn: -60 })}`, { headers: { origin: 'http://app.example' } });
    expect(expired.status).toBe(401);
    expect(expired.headers.get('access-control-allow-origin')).toBe('*');
    expect(expired.headers.get('cache-control')).toBe('no-store');
    expect(await expired.json()).toMatchObject({ ok: false, error: 'UNAUTHENTICATED', reason: 'expired' });
    const ok = await fetch(base, { headers: { authorization: `Bearer ${await token({ sub: 'bob' })}` } });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { ok: boolean; sub: string; expires: number; mode: string };
    expect(body).toMatchObject({ ok: true, sub: 'bob', mode: 'required' });
    expect(body.expires).toBeGreaterThan(Date.now());
    expect(await (await fetch(base)).json()).toMatchObject({ ok: false, reason: 'missing' });
    const pre = await fetch(base, {
      method: 'OPTIONS',
      headers: { origin: 'http://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toBe('authorization');
  });
});
