import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient } from '../../packages/client/src/index.js';
import { startTestEngine, streamUrl } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A closed client (close(), a refused token, reconnecting given up) rejects calls at once with
 * CLOSED instead of holding them for a connect() that may never come (a React component that
 * calls after its provider unmounted). docs/client-sdk.md#reconnect
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** The promise's outcome, or 'pending' when it has not settled within `ms`. */
const within = (p: Promise<unknown>, ms = 1000): Promise<unknown> =>
  Promise.race([
    p.then(
      () => 'resolved',
      (e: { code?: string }) => e.code ?? String(e),
    ),
    new Promise((r) => setTimeout(() => r('pending'), ms)),
  ]);

describe('calls on a closed client', { timeout: 30_000 }, () => {
  it('after close(): subscribe, request and setThrottle reject with CLOSED at once and change nothing; connect() opens again', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), heartbeatIntervalMs: 0 });
    cleanups.push(() => client.close());
    await client.connect();
    await client.subscribe(['ticker:BTC-USD']);
    await client.close();
    expect(await within(client.subscribe(['ticker:ETH-USD']))).toBe('CLOSED');
    expect(await within(client.request('alert.list'))).toBe('CLOSED');
    expect(await within(client.listAlerts())).toBe('CLOSED');
    expect(await within(client.setThrottle(['ticker:BTC-USD'], 250))).toBe('CLOSED');
    expect(client.subscriptions).toEqual(['ticker:BTC-USD']);
    // a connect() after close() starts again, with the subscriptions kept
    const ticks: unknown[] = [];
    client.channel('ticker:BTC-USD', (t) => ticks.push(t));
    await client.connect();
    await waitFor(() => ticks.length > 0, 'the resubscribed channel');
    expect((await client.subscribe(['ticker:ETH-USD'])).subscribed).toEqual(['ticker:ETH-USD']);
  });

  it('after reconnecting gave up: a subscribe rejects with CLOSED at once', async () => {
    const engine = await startTestEngine();
    const client = new TickwireClient({ url: streamUrl(engine.port), heartbeatIntervalMs: 0, reconnect: false });
    cleanups.push(() => client.close());
    await client.connect();
    await engine.close();
    await waitFor(() => client.state === 'closed', 'the client closed after the drop');
    expect(await within(client.subscribe(['ticker:BTC-USD']))).toBe('CLOSED');
  });

  it('before the first connect() a subscribe still waits for the connection', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), heartbeatIntervalMs: 0 });
    cleanups.push(() => client.close());
    const sub = client.subscribe(['ticker:BTC-USD']);
    expect(await within(sub, 200)).toBe('pending');
    await client.connect();
    expect((await sub).subscribed).toEqual(['ticker:BTC-USD']);
  });
});
