import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient } from '../../src/client/index.js';
import { startTestEngine, streamUrl } from './helpers.js';
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
});
