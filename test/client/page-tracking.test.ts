import { afterEach, describe, expect, it, vi } from 'vitest';
import WS from 'ws';
import type { Engine } from '../../src/app/engine.js';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type WebSocketConstructor } from '../../packages/client/src/index.js';
import { startTestEngine, streamUrl } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Browser events the client follows. Page visibility (issue #11) follows `document.visibilityState` for the client's whole life: also
 * after `close()` and a new `connect()` (a page that disconnects while a view is closed and
 * connects again when it opens). A document of our own stands in for the browser's.
 */
class FakeDocument extends EventTarget {
  visibilityState: 'visible' | 'hidden' = 'visible';
  set(state: 'visible' | 'hidden'): void {
    this.visibilityState = state;
    this.dispatchEvent(new Event('visibilitychange'));
  }
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  delete (globalThis as { document?: unknown }).document;
  delete (globalThis as { addEventListener?: unknown }).addEventListener;
  delete (globalThis as { removeEventListener?: unknown }).removeEventListener;
  vi.restoreAllMocks();
});

describe('page visibility across close() and connect()', { timeout: 60_000 }, () => {
  it('a client closed and connected again still tells the server when the page hides and shows', async () => {
    const engine: Engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const doc = new FakeDocument();
    (globalThis as { document?: unknown }).document = doc;
    const sent: Record<string, unknown>[] = [];
    class Recording extends WS {
      override send(data: unknown): void {
        sent.push(JSON.parse(String(data)) as Record<string, unknown>);
        super.send(data as string);
      }
    }
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json', WebSocket: Recording as unknown as WebSocketConstructor });
    cleanups.push(() => client.close());
    await client.connect();
    await client.subscribe(['quote:BTC-USD']);
    await client.close();
    await client.connect();

    doc.set('hidden');
    expect(client.pageVisible).toBe(false);
    await waitFor(() => sent.some((f) => f.op === 'visibility' && f.page === 'hidden'), 'the hidden page told to the server');
    doc.set('visible');
    expect(client.pageVisible).toBe(true);
    await waitFor(() => sent.some((f) => f.op === 'visibility' && f.page === 'visible'), 'the shown page told to the server');
  });

  it('the page hidden while the client was closed: the next connection starts hidden; close() leaves no listener', async () => {
    const engine: Engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const doc = new FakeDocument();
    let listeners = 0;
    const add = doc.addEventListener.bind(doc);
    const remove = doc.removeEventListener.bind(doc);
    doc.addEventListener = (...args: Parameters<EventTarget['addEventListener']>) => (listeners++, add(...args));
    doc.removeEventListener = (...args: Parameters<EventTarget['removeEventListener']>) => (listeners--, remove(...args));
    (globalThis as { document?: unknown }).document = doc;
    const client = new TickwireClient({ url: streamUrl(engine.port) });
    cleanups.push(() => client.close());
    await client.connect();
    expect(listeners).toBe(1);
    await client.close();
    expect(listeners).toBe(0);
    doc.set('hidden');
    await client.connect();
    expect(listeners).toBe(1);
    expect(client.pageVisible).toBe(false);
    await client.close();
    expect(listeners).toBe(0);
  });
});

/**
 * An engine and a client whose reconnects wait 5 minutes (the middle of a 10-minute backoff window:
 * Math.random at 0.5), so that only the event a test sends can bring it back soon. `delays`: the
 * client's reconnect delays; `gateway` stops the engine and starts it again on its port.
 */
async function longBackoffClient(): Promise<{ client: TickwireClient; delays: number[]; gateway: { stop(): Promise<void>; start(): Promise<void> } }> {
  let engine: Engine | undefined = await startTestEngine();
  const port = engine.port;
  cleanups.push(() => engine?.close());
  vi.spyOn(Math, 'random').mockReturnValue(0.5);
  const client = new TickwireClient({
    url: streamUrl(port),
    WebSocket: WS as unknown as WebSocketConstructor,
    reconnect: { initialDelayMs: 600_000, maxDelayMs: 600_000 },
  });
  cleanups.push(() => client.close());
  const delays: number[] = [];
  client.on('reconnecting', (r) => delays.push(r.delayMs));
  client.on('error', () => undefined); // the outage's TRANSPORT error
  const gateway = {
    async stop(): Promise<void> {
      await engine?.close();
      engine = undefined;
    },
    async start(): Promise<void> {
      engine = await startTestEngine(port);
    },
  };
  return { client, delays, gateway };
}

describe('network back online', { timeout: 60_000 }, () => {
  it("the browser's `online` event ends the backoff wait: the client reconnects at once, and close() stops listening", async () => {
    // a browser's window: `online` and `offline` events on the global object
    const win = new EventTarget();
    let listeners = 0;
    Object.assign(globalThis, {
      addEventListener: (t: string, l: () => void) => (/^(on|off)line$/.test(t) && listeners++, win.addEventListener(t, l)),
      removeEventListener: (t: string, l: () => void) => (/^(on|off)line$/.test(t) && listeners--, win.removeEventListener(t, l)),
    });
    // only the event can bring the client back soon
    const { client, delays, gateway } = await longBackoffClient();
    await client.connect();
    expect(listeners).toBe(2); // online and offline
    await gateway.stop();
    await waitFor(() => client.state === 'reconnecting' && delays.length > 0, 'the drop noticed');
    expect(delays[0]).toBe(300_000);
    await gateway.start();
    win.dispatchEvent(new Event('online'));
    await waitFor(() => client.state === 'open', { what: 'reconnected after the online event', timeout: 20_000 });
    // the network gone: the open connection is given up at once (its socket could stay open, and
    // its data stale, until the heartbeat gives up), then the network back ends the wait
    const closes: string[] = [];
    client.on('close', (c) => closes.push(`${c.code} ${c.reason} ${c.willReconnect}`));
    win.dispatchEvent(new Event('offline'));
    expect(client.state).toBe('reconnecting');
    expect(closes).toEqual(['4000 offline true']);
    win.dispatchEvent(new Event('online'));
    await waitFor(() => client.state === 'open', { what: 'reconnected after the online event', timeout: 20_000 });
    await client.close();
    expect(listeners).toBe(0);
  });
});

describe('page shown again', { timeout: 60_000 }, () => {
  it('a tab shown again while the client waits out a backoff delay retries at once (its own document tracking, and setPageVisible as @tickwire/react calls it)', async () => {
    const doc = new FakeDocument();
    (globalThis as { document?: unknown }).document = doc;
    // only the page shown again can bring the client back soon
    const { client, delays, gateway } = await longBackoffClient();
    await client.connect();
    // the tab goes to the background, the gateway restarts meanwhile
    doc.set('hidden');
    await gateway.stop();
    await waitFor(() => client.state === 'reconnecting' && delays.length > 0, 'the drop noticed');
    expect(delays[0]).toBe(300_000);
    await gateway.start();
    // the user comes back to the tab: not up to 5 minutes of a blank board
    doc.set('visible');
    await waitFor(() => client.state === 'open', { what: 'reconnected when the page was shown', timeout: 20_000 });

    // the same through setPageVisible (the React provider follows the document itself and calls it)
    await client.setPageVisible(false);
    await gateway.stop();
    await waitFor(() => client.state === 'reconnecting' && delays.length > 1, 'the second drop noticed');
    await gateway.start();
    await client.setPageVisible(true);
    await waitFor(() => client.state === 'open', { what: 'reconnected after setPageVisible(true)', timeout: 20_000 });
    expect(delays.length).toBe(2); // no retry of its own: the backoff delays were cut short
  });
});
