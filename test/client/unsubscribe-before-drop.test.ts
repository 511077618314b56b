import { afterEach, describe, expect, it } from 'vitest';
import { startTestEngine, tappedClient } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A subscribe and an unsubscribe of one of its channels are both on the wire when the connection
 * drops, before either ack: the subscribe goes out again on the next connection, without the
 * channel the app unsubscribed (docs/client-sdk.md, Reference: `unsubscribe`), and its promise
 * resolves with what was subscribed.
 */
describe('unsubscribe, then a drop before the acks', () => {
  it('the subscribe sent again leaves out the unsubscribed channel', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const { client, tap } = tappedClient(engine.port, cleanups);
    await client.connect();
    // the first connection answers nothing more: the acks never arrive on it
    tap.filter = (data, socket) => (socket === 0 ? undefined : data);
    const sub = client.subscribe(['quote:AAPL', 'quote:MSFT']);
    const unsub = client.unsubscribe(['quote:AAPL']);
    await waitFor(() => (engine.gateway!.stats().channels as { channel: string }[]).length >= 2, {
      what: 'both subscribed on the first connection',
      timeout: 5000,
    });
    tap.sockets[0]!.terminate();
    await expect(unsub).resolves.toEqual({ unsubscribed: ['quote:AAPL'] });
    const ack = await sub;
    expect(ack.subscribed).toEqual(['quote:MSFT']);
    expect(client.subscriptions).toEqual(['quote:MSFT']);
    await waitFor(() => engine.gateway!.connections.size === 1, { what: 'the second connection alone', timeout: 5000 });
    const [conn] = [...engine.gateway!.connections];
    expect(conn!.subscriptions()).toEqual(['quote:MSFT']);
  });
});
