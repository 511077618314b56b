import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
// this checkout's sources (node_modules may link another checkout's package)
import { CloseCode, TickwireClient, type CloseEvent, type ReconnectEvent, type TickwireClientError } from '../../packages/client/src/index.js';
import { SECRET, token } from '../auth/helpers.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * What the client does after the server's close codes, as docs/protocol.md#close-codes says a
 * client should: reconnect after 4008 (rate limit) only after a pause; after 1008 only with a
 * fresh token, and without one an error says why.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('close codes', { timeout: 60_000 }, () => {
  it('4008 (closed for flooding): the client reconnects after a pause of at least half of maxDelayMs, not at once', async () => {
    const engine: Engine = await startTestEngine(undefined, { limits: { messagesPerSec: 5, messageBurst: 5, rateLimitCloseMs: 300 } });
    cleanups.push(() => engine.close());
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = new TickwireClient({
      url: streamUrl(engine.port),
      encoding: 'json',
      WebSocket: filteringWebSocket(tap),
      heartbeatIntervalMs: 0,
      reconnect: { initialDelayMs: 100, maxDelayMs: 4000 },
    });
    cleanups.push(() => client.close());
    const closes: CloseEvent[] = [];
    const retries: ReconnectEvent[] = [];
    client.on('close', (c) => closes.push(c));
    client.on('reconnecting', (r) => retries.push(r));
    client.on('error', () => undefined); // the RATE_LIMIT notices
    await client.connect();
    // an application bug floods the connection: over the rate until the server closes it
    const socket = tap.sockets[0]!;
    let n = 0;
    const flood = setInterval(() => {
      for (let k = 0; k < 5 && socket.readyState === 1; k++) socket.send(JSON.stringify({ op: 'ping', id: `flood-${n++}` }));
    }, 20);
    cleanups.push(() => clearInterval(flood));
    await waitFor(() => closes.length > 0, 'the 4008 close');
    clearInterval(flood);
    expect(closes[0]!.code).toBe(CloseCode.RATE_LIMIT);
    expect(closes[0]!.willReconnect).toBe(true);
    expect(retries[0]!.delayMs).toBeGreaterThanOrEqual(2000);
    expect(retries[0]!.delayMs).toBeLessThanOrEqual(4000);
    await waitFor(() => client.state === 'open', { what: 'back after the pause', timeout: 10_000 });
  });

  it('1008 with a fixed token: no reconnect, and an error says why (token expired: UNAUTHENTICATED, reason expired)', async () => {
    // no expiry warning: the 1008 close at `exp` is all the gateway says
    const engine: Engine = await startTestEngine(undefined, { auth: { mode: 'required', jwtSecret: SECRET, clockToleranceSec: 0, expiryWarningSec: 0 } });
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), token: await token({ expIn: 2 }), heartbeatIntervalMs: 0 });
    cleanups.push(() => client.close());
    const closes: CloseEvent[] = [];
    const errors: TickwireClientError[] = [];
    client.on('close', (c) => closes.push(c));
    client.on('error', (e) => errors.push(e));
    await client.connect();
    await waitFor(() => closes.length > 0, { what: 'the 1008 close at exp', timeout: 10_000 });
    expect(closes[0]).toMatchObject({ code: CloseCode.POLICY, reason: 'token expired', willReconnect: false });
    expect(errors.map((e) => [e.code, e.reason])).toEqual([['UNAUTHENTICATED', 'expired']]);
    expect(errors[0]!.message).toContain('token expired');
    expect(client.state).toBe('closed');
  });
});
