import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient, type ReconnectEvent, type TickwireClientError } from '../../src/client/index.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * React StrictMode mounts, unmounts and mounts again: `connect()`, `close()`, `connect()` in a
 * row, while the first attempt still waits for its token. "close() ... leaves no timer or listener
 * behind" and "a connect() after close() starts again" (docs/client-sdk.md): one connection, and
 * none once closed.
 */
describe('connect, close, connect in a row', () => {
  it('opens one connection, and none is left after the last close', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const client = new TickwireClient({
      url: streamUrl(engine.port),
      // a token that takes a moment (a fetch to the app's backend): the first attempt is still waiting for it
      getToken: () => new Promise<undefined>((r) => setTimeout(() => r(undefined), 50)),
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    cleanups.push(() => client.close());
    const first = client.connect();
    first.catch(() => undefined);
    await client.close();
    await expect(first).rejects.toMatchObject({ code: 'CLOSED' });
    await client.connect();
    await quietFor(300, 'a second connection from the first attempt');
    expect(engine.gateway!.connections.size).toBe(1);
    await client.close();
    await waitFor(() => engine.gateway!.connections.size === 0, { what: 'no connection left', timeout: 5000 });
    await quietFor(200, 'a connection opened after the close');
    expect(engine.gateway!.connections.size).toBe(0);
  });

  it('an attempt that failed before close() does not act after connect(): no error, no retry, no second connection', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    // the auth check a failed attempt asks, answered when the test says so
    const held: ServerResponse[] = [];
    const check = createServer((_req, res) => void held.push(res));
    await new Promise<void>((r) => check.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise((r) => (check.closeAllConnections(), check.close(r))));
    const tap: Tap = { filter: undefined, sockets: [], block: true };
    let tokenGate: Promise<void> = Promise.resolve();
    const client = new TickwireClient({
      url: streamUrl(engine.port),
      WebSocket: filteringWebSocket(tap),
      authCheckUrl: `http://127.0.0.1:${(check.address() as AddressInfo).port}/v1/auth/check`,
      // a token from the app's backend, which takes a moment
      getToken: async () => {
        await tokenGate;
        return undefined;
      },
      heartbeatIntervalMs: 0,
      reconnect: { initialDelayMs: 20, maxDelayMs: 50 },
    });
    cleanups.push(() => client.close());
    // the first attempt fails (the network is down) and asks the auth check why
    client.connect().catch(() => undefined);
    await waitFor(() => held.length === 1, 'the failed attempt asking the auth check');
    await client.close();
    const errors: TickwireClientError[] = [];
    const retries: ReconnectEvent[] = [];
    client.on('error', (e) => errors.push(e));
    client.on('reconnecting', (r) => retries.push(r));
    tap.block = false;
    let release!: () => void;
    tokenGate = new Promise((r) => (release = r));
    const second = client.connect();
    // the old attempt's verdict ("the token is fine": an outage) comes while the new attempt waits for its token
    held[0]!.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, mode: 'off' }));
    await quietFor(300, 'the old attempt reporting an outage and scheduling a retry');
    release();
    await second;
    await quietFor(300, 'a second connection opened by the old attempt');
    expect(errors).toEqual([]);
    expect(retries).toEqual([]);
    expect(engine.gateway!.connections.size).toBe(1);
  });
});
