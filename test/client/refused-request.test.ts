import { afterEach, describe, expect, it } from 'vitest';
// the SDK of this checkout, by path (`@tickwire/client` may resolve to another checkout's package)
import { TickwireClient, TickwireClientError, type Update } from '../../packages/client/src/index.js';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine, streamUrl, tappedClient } from './helpers.js';

/**
 * A subscribe the server refuses as a whole (an `error` frame: BAD_REQUEST, LIMIT) changes
 * nothing on the server (docs/protocol.md#error-codes), so it must change nothing in the client
 * either: the channels it held stay as they were and are re-established, as they were, after a
 * reconnect; channels it did not hold are not kept (docs/client-sdk.md#errors).
 */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('client SDK: a refused subscribe request', { timeout: 60_000 }, () => {
  it('leaves the client subscribed as before, across a reconnect', async () => {
    const engine: Engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const { client, tap } = tappedClient(engine.port, cleanups);
    const errors: TickwireClientError[] = [];
    client.on('error', (e) => errors.push(e));
    const quotes: Update[] = [];
    client.channel('quote:BTC-USD', (_q, u) => quotes.push(u));

    await client.connect();
    expect((await client.subscribe(['quote:BTC-USD'], { throttle: 100 })).subscribed).toEqual(['quote:BTC-USD']);
    // refused as a whole: a bad throttle, and a new channel in the same request
    const refused = await client.subscribe(['quote:BTC-USD', 'ticker:BTC-USD'], { throttle: -1 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TickwireClientError);
    expect((refused as TickwireClientError).code).toBe('BAD_REQUEST');
    expect(client.subscriptions).toEqual(['quote:BTC-USD']);

    // the connection drops: the client subscribes again to what the server had, with its throttle
    const before = tap.sockets.length;
    tap.sockets[0]!.terminate();
    const resubscribed = new Promise<void>((resolve) => {
      const off = client.on('state', ({ state }) => {
        if (state !== 'open') return;
        off();
        resolve();
      });
    });
    await resubscribed;
    expect(tap.sockets.length).toBeGreaterThan(before);
    const from = quotes.length;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no quote snapshot after the reconnect; errors: ${errors.map((e) => e.message).join('; ')}`)), 15_000);
      const off = client.channel('quote:BTC-USD', (_q, u) => {
        if (!u.snapshot) return;
        clearTimeout(t);
        off();
        resolve();
      });
    });
    expect(quotes.length).toBeGreaterThan(from);
    expect(errors.filter((e) => e.code === 'BAD_REQUEST')).toEqual([]);
    expect(client.subscriptions).toEqual(['quote:BTC-USD']);
  });

  it('setThrottle refused: the channel is joined again with the throttle it had', async () => {
    const engine: Engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json', reconnect: false });
    cleanups.push(() => client.close());
    await client.connect();
    expect((await client.subscribe(['quote:BTC-USD'], { throttle: 100 })).throttle).toBe(100);
    const refused = await client.setThrottle(['quote:BTC-USD'], -1).catch((e: unknown) => e);
    expect((refused as TickwireClientError).code).toBe('BAD_REQUEST');
    // setThrottle left the channel before it asked again: it is joined again, with a snapshot
    const snapshot = await new Promise<Update>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('quote:BTC-USD was not joined again after the refused setThrottle')), 10_000);
      const off = client.channel('quote:BTC-USD', (_q, u) => {
        if (!u.snapshot) return;
        clearTimeout(t);
        off();
        resolve(u);
      });
    });
    expect(snapshot.channel).toBe('quote:BTC-USD');
    expect(client.subscriptions).toEqual(['quote:BTC-USD']);
    const conn = [...engine.gateway!.connections][0]!;
    expect(conn.subscriptions()).toEqual(['quote:BTC-USD']);
  });

  it('refused while reconnecting: the channel is joined again with the settings it had', async () => {
    const engine: Engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const { client, tap } = tappedClient(engine.port, cleanups);
    await client.connect();
    await client.subscribe(['quote:BTC-USD'], { throttle: 100 });
    tap.sockets[0]!.terminate();
    await new Promise<void>((resolve) => {
      const off = client.on('state', ({ state }) => {
        if (state !== 'reconnecting') return;
        off();
        resolve();
      });
    });
    // queued for the next connection, whose resubscribe leaves this channel to it
    const refused = await client.subscribe(['quote:BTC-USD'], { throttle: -1 }).catch((e: unknown) => e);
    expect((refused as TickwireClientError).code).toBe('BAD_REQUEST');
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('quote:BTC-USD was not joined again after the refused subscribe')), 10_000);
      const off = client.channel('quote:BTC-USD', (_q, u) => {
        if (!u.snapshot) return;
        clearTimeout(t);
        off();
        resolve();
      });
    });
    const conn = [...engine.gateway!.connections][0]!;
    expect(conn.subscriptions()).toEqual(['quote:BTC-USD']);
    expect(client.subscriptions).toEqual(['quote:BTC-USD']);
  });

  it('a channel the ack refuses keeps the subscription it had, on the server and in the client', async () => {
    const engine: Engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json', reconnect: false });
    cleanups.push(() => client.close());
    const rejected: string[] = [];
    client.on('rejected', (r) => rejected.push(`${r.channel} ${r.code}`));
    await client.connect();
    expect((await client.subscribe(['book:BTC-USD'], { depth: 10 })).subscribed).toEqual(['book:BTC-USD']);
    // over the largest configured depth (100): refused in the ack; the depth-10 book stays
    const ack = await client.subscribe(['book:BTC-USD'], { depth: 101 });
    expect(ack.subscribed).toEqual([]);
    expect(rejected).toEqual(['book:BTC-USD BAD_REQUEST']);
    expect(client.subscriptions).toEqual(['book:BTC-USD']);
    const conn = [...engine.gateway!.connections][0]!;
    expect(conn.subscriptions()).toEqual(['book:BTC-USD']);
    // and its items are still delivered
    const from = client.lastSeq('book:BTC-USD');
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no book:BTC-USD item after the refused subscribe')), 10_000);
      const off = client.channel('book:BTC-USD', () => {
        clearTimeout(t);
        off();
        resolve();
      });
    });
    expect(client.lastSeq('book:BTC-USD')).not.toBe(from);
  });
});
