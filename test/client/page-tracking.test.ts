import { afterEach, describe, expect, it } from 'vitest';
import WS from 'ws';
import type { Engine } from '../../src/app/engine.js';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type WebSocketConstructor } from '../../packages/client/src/index.js';
import { startTestEngine, streamUrl } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Page visibility (issue #11) follows `document.visibilityState` for the client's whole life: also
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
