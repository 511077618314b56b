import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { TickwireClient } from '../../src/client/index.js';
import { httpStreamUrl } from '../../packages/client/src/http-stream.js';
import type { ConnectionState, Update } from '../../src/client/index.js';
import { NoUpgradeProxy } from '../helpers/no-upgrade-proxy.js';
import { SECRET, token } from '../auth/helpers.js';
import { filteringWebSocket, type Tap } from './helpers.js';
import { quietFor } from '../helpers/wait.js';

/** The SDK's HTTP-streaming fallback, in Node, behind a proxy that refuses WebSocket upgrades. */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(overrides: Record<string, unknown> = {}): Promise<{ engine: Engine; proxy: NoUpgradeProxy }> {
  const engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { seed: 4, rate: 800 }, ...overrides }, { env: {} });
  cleanups.push(() => engine.close());
  const proxy = await NoUpgradeProxy.start(engine.port);
  cleanups.push(() => proxy.close());
  return { engine, proxy };
}

function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  return expect.poll(cond, { timeout: ms, interval: 20, message: what }).toBe(true);
}

describe('client: HTTP-streaming fallback', () => {
  it('maps the WebSocket URL to the stream URL', () => {
    expect(httpStreamUrl('ws://h:1/v1/stream')).toBe('http://h:1/v1/stream/sse');
    expect(httpStreamUrl('wss://h/v1/stream?token=t&x=1')).toBe('https://h/v1/stream/sse?token=t');
  });

  it('falls back after a refused upgrade: quotes flow, subscribe and unsubscribe work, msgpack clients get JSON on the stream', async () => {
    const { proxy } = await setup();
    const client = new TickwireClient({ url: `ws://127.0.0.1:${proxy.port}/v1/stream`, reconnect: { initialDelayMs: 10, maxDelayMs: 100 } });
    cleanups.push(() => client.close());
    const states: ConnectionState[] = [];
    client.on('state', (e) => states.push(e.state));
    const quotes: Update[] = [];
    client.on('quote', (u) => quotes.push(u));
    await client.connect();
    expect(proxy.refusedUpgrades).toBeGreaterThanOrEqual(1);
    expect(client.transport).toBe('http');
    expect(client.codec.encoding).toBe('msgpack');
    const ack = await client.subscribe(['quote:BTC-USD', 'quote:NOPE'], { throttle: 100 });
    expect(ack.subscribed).toEqual(['quote:BTC-USD']);
    expect(ack.rejected[0]).toMatchObject({ channel: 'quote:NOPE', code: 'UNKNOWN_CHANNEL' });
    await until(() => quotes.length >= 3, 'three quotes');
    expect(quotes[0]!.snapshot).toBe(true);
    expect(await client.ping()).toBeGreaterThanOrEqual(0);
    await client.unsubscribe(['quote:BTC-USD']);
    const n = quotes.length;
    await client.ping(); // a round trip after the unsubscribe's ack: nothing more arrives
    expect(quotes.length).toBe(n);
    expect(states).toEqual(['connecting', 'reconnecting', 'open']);
  });

  it('tries WebSocket again while on the fallback and moves over when upgrades pass', async () => {
    const { proxy } = await setup();
    const client = new TickwireClient({
      url: `ws://127.0.0.1:${proxy.port}/v1/stream`,
      encoding: 'json',
      reconnect: { initialDelayMs: 10, maxDelayMs: 100 },
      fallback: { retryWebSocketMs: 300 },
    });
    cleanups.push(() => client.close());
    const quotes: Update[] = [];
    client.on('quote', (u) => quotes.push(u));
    await client.connect();
    await client.subscribe(['quote:ETH-USD']);
    expect(client.transport).toBe('http');
    await until(() => quotes.length >= 1, 'a quote on the fallback');
    const refusedBefore = proxy.refusedUpgrades;
    await until(() => proxy.refusedUpgrades > refusedBefore, 'a WebSocket retry');
    expect(client.transport).toBe('http');
    const m = quotes.length;
    proxy.allowUpgrades = true;
    await until(() => client.transport === 'websocket' && client.state === 'open', 'the move to WebSocket');
    // resubscribed over the WebSocket: a snapshot, then live quotes
    await until(() => quotes.slice(m).some((q) => q.snapshot), 'the snapshot after the move');
    const s = quotes.length;
    await until(() => quotes.length > s, 'quotes over the WebSocket');
  });

  it('a refused token on the fallback ends in one clear error (static token: no retry loop)', async () => {
    const { proxy } = await setup({ auth: { mode: 'required', jwtSecret: SECRET } });
    const bad = await token({ secret: 'another-secret-0123456789-abcdefghijkl' });
    const client = new TickwireClient({ url: `ws://127.0.0.1:${proxy.port}/v1/stream`, token: bad, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    cleanups.push(() => client.close());
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.message));
    await expect(client.connect()).rejects.toThrow(/token refused/);
    expect(errors).toHaveLength(1);
    expect(client.state).toBe('closed');
  });

  it('a page refused by gateway.allowedOrigins (403 ORIGIN_NOT_ALLOWED) on the fallback is an outage saying so, not a refused token', async () => {
    const { proxy } = await setup({ gateway: { allowedOrigins: ['https://app.example.com'] } });
    // the stream's GET as a page from another origin sends it (Node's fetch sends no Origin by itself)
    const plain = globalThis.fetch;
    globalThis.fetch = (url, init) => plain(url, { ...init, headers: { ...(init?.headers as Record<string, string>), origin: 'https://evil.example' } });
    cleanups.push(() => {
      globalThis.fetch = plain;
    });
    const client = new TickwireClient({
      url: `ws://127.0.0.1:${proxy.port}/v1/stream`,
      authCheckUrl: false,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    const errors: { code: string; message: string }[] = [];
    client.on('error', (e) => errors.push({ code: e.code, message: e.message }));
    client.connect().catch(() => undefined);
    await until(() => client.transport === 'http' && errors.length > 0, 'a failed attempt on the fallback');
    await quietFor(300, 'a terminal close');
    expect(client.state).not.toBe('closed');
    expect(errors.map((e) => e.code)).not.toContain('UNAUTHENTICATED');
  });

  it("without the auth check, the fallback's own 401 ends in one clear error", async () => {
    const { proxy } = await setup({ auth: { mode: 'required', jwtSecret: SECRET } });
    const bad = await token({ secret: 'another-secret-0123456789-abcdefghijkl' });
    const client = new TickwireClient({
      url: `ws://127.0.0.1:${proxy.port}/v1/stream`,
      token: bad,
      authCheckUrl: false,
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.message));
    await expect(client.connect()).rejects.toThrow(/token refused \(bad_signature\)/);
    expect(client.transport).toBe('http');
    expect(errors.filter((m) => /token refused/.test(m))).toHaveLength(1);
    expect(client.state).toBe('closed');
  });

  it('the docs example (examples/client/fallback.ts) runs as written behind the refusing proxy', async () => {
    const { proxy } = await setup();
    const r = await promisify(execFile)(process.execPath, ['--conditions=tickwire-source', '--import', 'tsx', 'examples/client/fallback.ts'], {
      env: { PATH: process.env.PATH ?? '', TICKWIRE_URL: `ws://127.0.0.1:${proxy.port}/v1/stream` },
      timeout: 60_000,
    });
    expect(r.stdout).toContain('connected over http');
    expect(r.stdout.match(/bid [\d.]+ over http/g)).toHaveLength(3);
  });

  it('works with a token and auth required (token in the Authorization header)', async () => {
    const { proxy } = await setup({ auth: { mode: 'required', jwtSecret: SECRET, defaultEntitlement: 'realtime' } });
    const client = new TickwireClient({
      url: `ws://127.0.0.1:${proxy.port}/v1/stream`,
      token: () => token({ sub: 'erin' }),
      reconnect: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    const got: Update[] = [];
    client.on('quote', (u) => got.push(u));
    await client.connect();
    expect(client.transport).toBe('http');
    await client.subscribe(['quote:BTC-USD']);
    await until(() => got.length >= 1, 'a quote');
  });

  it('rejects a bad outageAttempts or outageProbeMs with a message that names it', () => {
    const url = 'ws://127.0.0.1:1/v1/stream';
    expect(() => new TickwireClient({ url, fallback: { outageAttempts: 0 } })).toThrow(
      'options.fallback.outageAttempts is 0: takes a number from 1 to Infinity',
    );
    expect(() => new TickwireClient({ url, fallback: { outageProbeMs: -1 } })).toThrow(
      'options.fallback.outageProbeMs is -1: takes a number from 0 to 2147483647',
    );
  });
});

/**
 * A client once welcomed over WebSocket whose server goes away (a gateway restart, a deploy):
 * the failures are an outage, not a network that refuses upgrades, so it comes back over
 * WebSocket and does not spend a minute on the HTTP stream (#alternateTransport). The socket is
 * the `ws` package behind a tap whose `block` makes new connections fail as if nothing listened
 * (ECONNREFUSED), while the gateway itself, and so its HTTP stream, stays up: a client that fell
 * back would connect over HTTP at once.
 */
describe('client: WebSocket outages after a welcome over WebSocket', { timeout: 60_000 }, () => {
  async function watched(
    fallback: Record<string, number>,
    reconnect = { initialDelayMs: 20, maxDelayMs: 200 },
  ): Promise<{ client: TickwireClient; tap: Tap; welcomes: string[]; quotes: Update[] }> {
    const engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { seed: 5, rate: 800 } }, { env: {} });
    cleanups.push(() => engine.close());
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = new TickwireClient({
      url: `ws://127.0.0.1:${engine.port}/v1/stream`,
      WebSocket: filteringWebSocket(tap),
      fallback, // given explicitly: with a WebSocket of its own the fallback is off by default
      reconnect,
    });
    cleanups.push(() => client.close());
    const welcomes: string[] = [];
    client.on('welcome', () => welcomes.push(client.transport));
    const quotes: Update[] = [];
    client.on('quote', (u) => quotes.push(u));
    await client.connect();
    await client.subscribe(['quote:BTC-USD'], { throttle: 100 });
    await until(() => quotes.length >= 2, 'quotes over WebSocket');
    expect(welcomes).toEqual(['websocket']);
    return { client, tap, welcomes, quotes };
  }

  it('keeps retrying WebSocket through a short outage and comes back over it with one reconnect', async () => {
    const { client, tap, welcomes, quotes } = await watched({});
    tap.block = true;
    tap.sockets[0]!.terminate();
    await until(() => client.state === 'reconnecting', 'the drop');
    // two failed WebSocket attempts (a client that falls back is meanwhile open over HTTP)
    await until(() => tap.sockets.length >= 3 || client.state === 'open', 'two failed WebSocket attempts');
    tap.block = false;
    await until(() => client.state === 'open' && welcomes.length === 2, 'the reconnect');
    expect(welcomes).toEqual(['websocket', 'websocket']);
    expect(client.transport).toBe('websocket');
    const n = quotes.length;
    await until(() => quotes.slice(n).some((q) => !q.snapshot), 'live quotes after the reconnect');
    expect(welcomes).toHaveLength(2);
  });

  it('after outageAttempts failures it tries the fallback, then probes WebSocket after outageProbeMs, long before retryWebSocketMs', async () => {
    const { client, tap, welcomes, quotes } = await watched({ outageAttempts: 3, outageProbeMs: 200, retryWebSocketMs: 600_000 });
    // counted before the drop: the fallback's resubscription snapshot can arrive before the
    // poll below sees its welcome
    const m = quotes.length;
    tap.block = true;
    tap.sockets[0]!.terminate();
    await until(() => client.state === 'open' && welcomes.length === 2, 'the reconnect over the fallback');
    expect(welcomes).toEqual(['websocket', 'http']);
    expect(tap.sockets.length).toBe(1 + 3); // the first socket, then three failed attempts before the fallback
    await until(() => quotes.slice(m).some((q) => q.snapshot), 'the resubscription on the fallback');
    // probes at 200 ms, 400 ms, ...: WebSocket is still refused
    await until(() => tap.sockets.length >= 6, 'two WebSocket probes while on the fallback', 10_000);
    expect(client.transport).toBe('http');
    tap.block = false;
    await until(() => client.state === 'open' && welcomes.length === 3, 'the move back to WebSocket', 10_000);
    expect(welcomes).toEqual(['websocket', 'http', 'websocket']);
    const n = quotes.length;
    await until(() => quotes.slice(n).some((q) => !q.snapshot), 'live quotes over WebSocket');
  });

  it("a probe that finds WebSocket reachable moves over at the first step of the backoff, not the outage's next", async () => {
    // (a connection dropped soon after its welcome keeps the backoff growing: leaving the fallback
    // is not such a drop, whenever the probe comes)
    const { client, tap, welcomes } = await watched(
      { outageAttempts: 3, outageProbeMs: 200, retryWebSocketMs: 600_000 },
      { initialDelayMs: 20, maxDelayMs: 60_000 },
    );
    const retries: { attempt: number; reason: string }[] = [];
    let reason = '';
    client.on('close', (c) => void (reason = c.reason));
    client.on('reconnecting', (r) => retries.push({ attempt: r.attempt, reason }));
    tap.block = true;
    tap.sockets[0]!.terminate();
    await until(() => client.state === 'open' && welcomes.length === 2, 'the reconnect over the fallback');
    tap.block = false;
    await until(() => client.state === 'open' && welcomes.length === 3, 'the move back to WebSocket', 10_000);
    expect(welcomes).toEqual(['websocket', 'http', 'websocket']);
    expect(retries.at(-1)).toEqual({ attempt: 1, reason: 'leaving the fallback' });
  });

  it('outageProbeMs 0: after an outage on the fallback, no sooner probe than retryWebSocketMs', async () => {
    const { client, tap, welcomes } = await watched({ outageAttempts: 1, outageProbeMs: 0, retryWebSocketMs: 600_000 });
    tap.block = true;
    tap.sockets[0]!.terminate();
    await until(() => client.state === 'open' && welcomes.length === 2, 'the reconnect over the fallback');
    expect(welcomes).toEqual(['websocket', 'http']);
    const n = tap.sockets.length;
    await quietFor(1000, 'a WebSocket probe');
    expect(tap.sockets.length).toBe(n);
    expect(client.transport).toBe('http');
  });

  it('a client never welcomed over WebSocket still falls back after its first failure', async () => {
    const { proxy } = await setup();
    const client = new TickwireClient({
      url: `ws://127.0.0.1:${proxy.port}/v1/stream`,
      reconnect: { initialDelayMs: 10, maxDelayMs: 100 },
      fallback: { outageAttempts: 50 },
    });
    cleanups.push(() => client.close());
    await client.connect();
    expect(client.transport).toBe('http');
    expect(proxy.refusedUpgrades).toBe(1);
  });
});
