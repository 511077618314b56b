import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type ReconnectEvent } from '../../packages/client/src/index.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A connection welcomed and then dropped at once (a gateway that crashes on each connection, a
 * proxy that cuts every connection, a slow consumer closed 4009 again right after its snapshots)
 * is not a recovery: the reconnect backoff keeps growing, up to its cap, until a connection
 * stays open for `maxDelayMs`. Before, each `welcome` reset the backoff, so such a client came
 * back at `initialDelayMs` for ever (36 connections in 3 s with a 3 s cap, from one client).
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('reconnect backoff against a connection that flaps', { timeout: 60_000 }, () => {
  it('keeps growing across connections cut right after their welcome, and starts again after one that stayed up', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const tap: Tap = { filter: undefined, sockets: [] };
    /** connections still to cut right after their welcome */
    let cuts = 0;
    const welcomes: number[] = [];
    tap.filter = (data, i) => {
      if (typeof data === 'string' && data.includes('"op":"welcome"')) {
        welcomes.push(Date.now());
        // cut without a close frame (as a crashed gateway or a proxy does), 20 ms after the welcome
        if (cuts > 0 && cuts--) setTimeout(() => tap.sockets[i]!.terminate(), 20);
      }
      return data;
    };
    const maxDelayMs = 800;
    const client = new TickwireClient({
      url: streamUrl(engine.port),
      encoding: 'json',
      WebSocket: filteringWebSocket(tap),
      heartbeatIntervalMs: 0,
      reconnect: { initialDelayMs: 50, maxDelayMs },
    });
    cleanups.push(() => client.close());
    client.on('error', () => undefined); // the outage's TRANSPORT error
    const retries: ReconnectEvent[] = [];
    client.on('reconnecting', (r) => retries.push(r));
    await client.connect();
    await client.subscribe(['ticker:AAPL']);

    cuts = 6;
    tap.sockets[0]!.terminate();
    await waitFor(() => welcomes.length >= 7, { what: 'six connections cut after their welcome', timeout: 20_000 });
    // one retry per drop, each the next step of one backoff: 1, 2, 3, ... (before: 1 each time)
    const flaps = retries.slice(0, 6).map((r) => r.attempt);
    expect(flaps).toEqual([1, 2, 3, 4, 5, 6]);
    // full jitter under the cap: 50, 100, 200, 400 ms, then 800 ms
    retries.slice(0, 6).forEach((r, n) => expect(r.delayMs).toBeLessThanOrEqual(Math.min(maxDelayMs, 50 * 2 ** n)));

    // a connection that stays open for maxDelayMs is a recovery: the next drop starts again at 1
    await waitFor(() => welcomes.length >= 8 && client.state === 'open', { what: 'a connection that stays up', timeout: 10_000 });
    const before = retries.length;
    const opened = welcomes.at(-1)!;
    await waitFor(() => Date.now() - opened > maxDelayMs + 100, { what: 'the connection up for maxDelayMs', timeout: 5_000 });
    expect(retries.length).toBe(before);
    tap.sockets.at(-1)!.terminate();
    await waitFor(() => retries.length > before, 'the retry after the drop');
    expect(retries[before]!.attempt).toBe(1);
    await waitFor(() => client.state === 'open', { what: 'back', timeout: 10_000 });
  });
});
