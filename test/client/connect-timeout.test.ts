import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WS from 'ws';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type ReconnectEvent, type TickwireClientError, type WebSocketConstructor } from '../../packages/client/src/index.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `connectTimeoutMs` (docs/client-sdk.md#reconnect) against a server that takes the TCP
 * connection and never answers the upgrade (a proxy or gateway that hangs). The attempt is given
 * up and retried. Before: the client closed the `ws` package's socket, still connecting, after
 * taking its error handler away, and `ws` threw "WebSocket was closed before the connection was
 * established" as an uncaught exception: a Node process without a handler for those died. And
 * the outage was reported as a `close` event per attempt (for connections that never opened)
 * and no `error`: useConnectionError said nothing while the client went round.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('a connection attempt the server never answers', { timeout: 20_000 }, () => {
  it('is given up after connectTimeoutMs and retried, with nothing thrown', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((s) => {
      s.on('error', () => undefined);
      sockets.push(s);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))));
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown): number => uncaught.push(err);
    process.on('uncaughtException', onUncaught);
    cleanups.push(() => process.off('uncaughtException', onUncaught));
    const port = (server.address() as net.AddressInfo).port;
    const client = new TickwireClient({
      url: `ws://127.0.0.1:${port}/v1/stream`,
      WebSocket: WS as unknown as WebSocketConstructor,
      connectTimeoutMs: 200,
      authCheckUrl: false,
      reconnect: { initialDelayMs: 10, maxDelayMs: 20 },
    });
    cleanups.push(() => client.close());
    const retries: ReconnectEvent[] = [];
    const errors: TickwireClientError[] = [];
    client.on('reconnecting', (r) => retries.push(r));
    client.on('error', (e) => errors.push(e));
    const closes: number[] = [];
    client.on('close', (e) => closes.push(e.code));
    client.connect().catch(() => undefined);
    await waitFor(() => retries.length >= 3 && sockets.length >= 3, { what: 'three attempts given up', timeout: 10_000 });
    // the `ws` package reports a socket closed while connecting on the next tick
    await new Promise((r) => setImmediate(r));
    expect(uncaught).toEqual([]);
    expect(client.state).not.toBe('closed');
    // one outage: one TRANSPORT error, and no close event (no connection had opened)
    expect(errors.map((e) => e.code)).toEqual(['TRANSPORT']);
    expect(errors[0]!.message).toBe('connect timeout');
    expect(closes).toEqual([]);
  });
});
