import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type ReconnectEvent, type TickwireClientError } from '../../packages/client/src/index.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

/**
 * A gateway at its connection ceiling refuses with 503 and `Retry-After` (5 to 10 s,
 * docs/protocol.md#refusals-at-the-upgrade); the HTTP-streaming fallback's GET is refused the
 * same way. The next attempt waits at least that long, however short the backoff's delay
 * (docs/client-sdk.md#reconnect).
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  delete (globalThis as { addEventListener?: unknown }).addEventListener;
  delete (globalThis as { removeEventListener?: unknown }).removeEventListener;
});

/** An engine holding its only connection slot: the next upgrade or stream gets 503 AT_CAPACITY. */
async function fullEngine(): Promise<Engine> {
  const engine = await startTestEngine(undefined, { gateway: { maxConnections: 1 } });
  cleanups.push(() => engine.close());
  const holder = new TickwireClient({ url: streamUrl(engine.port), heartbeatIntervalMs: 0 });
  cleanups.push(() => holder.close());
  await holder.connect();
  return engine;
}

function refused(opts: ConstructorParameters<typeof TickwireClient>[0]): { retries: ReconnectEvent[]; errors: TickwireClientError[]; client: TickwireClient } {
  const client = new TickwireClient({ heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, ...opts });
  cleanups.push(() => client.close());
  const w = { retries: [] as ReconnectEvent[], errors: [] as TickwireClientError[], client };
  client.on('reconnecting', (r) => w.retries.push(r));
  client.on('error', (e) => w.errors.push(e));
  client.connect().catch(() => undefined);
  return w;
}

describe('Retry-After', { timeout: 30_000 }, () => {
  it('on a refused WebSocket upgrade (Node, the ws package): the next attempt waits at least that long', async () => {
    const engine = await fullEngine();
    const w = refused({ url: streamUrl(engine.port), fallback: false });
    await waitFor(() => w.retries.length > 0, 'the retry after the refusal');
    expect(w.errors[0]?.message).toMatch(/503/);
    // the backoff alone would wait at most 50 ms
    expect(w.retries[0]!.delayMs).toBeGreaterThanOrEqual(5000);
  });

  it('on a refused HTTP stream (the fallback): the next attempt waits at least that long', async () => {
    const engine = await fullEngine();
    // WebSockets fail (a network that refuses upgrades), so the second attempt streams over HTTP
    const tap: Tap = { filter: undefined, sockets: [], block: true };
    const w = refused({ url: streamUrl(engine.port), WebSocket: filteringWebSocket(tap), fallback: {} });
    await waitFor(() => w.retries.length > 1, 'the retry after the refused stream');
    expect(w.retries[0]!.delayMs).toBeLessThanOrEqual(50);
    expect(w.retries[1]!.delayMs).toBeGreaterThanOrEqual(5000);
  });

  it("is kept when the browser's `online` event comes during the wait (the network being back does not make the server ready)", async () => {
    // a browser's window: `online` events on the global object
    const win = new EventTarget();
    Object.assign(globalThis, { addEventListener: win.addEventListener.bind(win), removeEventListener: win.removeEventListener.bind(win) });
    const engine = await fullEngine();
    const w = refused({ url: streamUrl(engine.port), fallback: false });
    await waitFor(() => w.retries.length > 0, 'the retry after the refusal');
    expect(w.retries[0]!.delayMs).toBeGreaterThanOrEqual(5000);
    const refusals = w.errors.length;
    win.dispatchEvent(new Event('online'));
    // (a negative check: well within the 5 s the server asked for, no attempt is made)
    await quietFor(1000, 'an attempt the online event would start at once');
    expect(w.retries).toHaveLength(1);
    expect(w.errors).toHaveLength(refusals);
  });

  it('is kept when the page is shown again during the wait (setPageVisible, the document)', async () => {
    const engine = await fullEngine();
    const w = refused({ url: streamUrl(engine.port), fallback: false, trackPageVisibility: false });
    await waitFor(() => w.retries.length > 0, 'the retry after the refusal');
    expect(w.retries[0]!.delayMs).toBeGreaterThanOrEqual(5000);
    const refusals = w.errors.length;
    const client = w.client;
    await client.setPageVisible(false);
    await client.setPageVisible(true);
    // (a negative check: well within the 5 s the server asked for, no attempt is made)
    await quietFor(1000, 'an attempt the page shown again would start at once');
    expect(w.retries).toHaveLength(1);
    expect(w.errors).toHaveLength(refusals);
  });
});
