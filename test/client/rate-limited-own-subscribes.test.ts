import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type TickwireClientError, type Update } from '../../packages/client/src/index.js';
import { spendBurst, startTestEngine, tappedClient, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The subscribes the client sends by itself (the resubscribe after a reconnect, the refresh of a
 * channel after a `seq` gap) dropped unanswered by a gateway over its message rate
 * (docs/protocol.md#limits). They go out again as a user's subscribe does (after
 * requestTimeoutMs and twice that); never answered, an `error` event names their channels
 * (docs/client-sdk.md#errors). Before: no timer at all, the channel stayed silent (or the book
 * blocked) until the next reconnect.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  requestTimeoutMs: number,
  limits: Record<string, number> = {},
): Promise<{ client: TickwireClient; tap: Tap; errors: TickwireClientError[] }> {
  const engine = await startTestEngine(undefined, { limits });
  cleanups.push(() => engine.close());
  const { client, tap } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0, requestTimeoutMs });
  const errors: TickwireClientError[] = [];
  client.on('error', (e) => errors.push(e)); // and the gateway's RATE_LIMIT notices
  await client.connect();
  return { client, tap, errors };
}

/** Frames of the application's own on socket `i`: they take the connection's burst. */
const spend = spendBurst;

const parse = (data: unknown): { op?: string; ch?: string; seq?: number; snapshot?: boolean; subscribed?: string[] } => JSON.parse(String(data)) as never;

describe("the client's own subscribes dropped under the rate limit", { timeout: 30_000 }, () => {
  it('the resubscribe after a reconnect is sent again and the channel gets its data', async () => {
    // 2 frames a second, a burst of 2, and no 4008 close
    const { client, tap } = await setup(400, { messagesPerSec: 2, messageBurst: 2, rateLimitCloseMs: 60_000 });
    const onSecond: Update[] = [];
    client.on('data', (u) => {
      if (tap.sockets.length === 2) onSecond.push(u);
    });
    await client.subscribe(['ticker:BTC-USD']);
    // the new connection's burst is taken (by the application) before the resubscribe goes out
    tap.filter = (data, socket) => {
      if (socket === 1 && parse(data).op === 'welcome') spend(tap, 1, 2);
      return data;
    };
    tap.sockets[0]!.terminate();
    await waitFor(() => onSecond.some((u) => u.channel === 'ticker:BTC-USD' && u.snapshot), { what: 'the snapshot on the new connection', timeout: 10_000 });
    expect(client.subscriptions).toEqual(['ticker:BTC-USD']);
  });

  it("an order book's refresh after a gap is sent again and the book goes on", async () => {
    const { client, tap } = await setup(500, { messagesPerSec: 2, messageBurst: 2, rateLimitCloseMs: 60_000 });
    const book: Update[] = [];
    const gaps: string[] = [];
    client.channel('book:BTC-USD', (_d, u) => book.push(u));
    client.on('gap', (g) => gaps.push(g.channel));
    await client.subscribe(['book:BTC-USD']);
    await waitFor(() => book.filter((u) => !u.snapshot).length >= 2, { what: 'live book updates', timeout: 10_000 });
    // lose one live book update, and take the burst then: the refresh (unsubscribe, subscribe) is dropped
    let dropped = false;
    tap.filter = (data) => {
      const f = parse(data);
      if (dropped || f.op !== 'data' || f.ch !== 'book:BTC-USD' || f.snapshot) return data;
      dropped = true;
      spend(tap, 0, 2);
      return undefined;
    };
    await waitFor(() => gaps.length > 0, { what: 'the gap', timeout: 10_000 });
    const at = book.length;
    await waitFor(() => book.slice(at).some((u) => u.snapshot), { what: 'the refresh snapshot', timeout: 10_000 });
    const snap = book.findIndex((u, i) => i >= at && u.snapshot);
    await waitFor(() => book.length > snap + 2, { what: 'book updates after the refresh', timeout: 10_000 });
    expect(gaps).toEqual(['book:BTC-USD']);
  });

  it('a resubscribe sent again leaves out a channel unsubscribed meanwhile', async () => {
    const { client, tap } = await setup(400, { messagesPerSec: 2, messageBurst: 2, rateLimitCloseMs: 60_000 });
    await client.subscribe(['ticker:BTC-USD']);
    // what the gateway sends on the new connection, before the client's filtering
    const raw: string[] = [];
    tap.filter = (data, socket) => {
      const f = parse(data);
      if (socket === 1 && f.op === 'welcome') spend(tap, 1, 2); // the resubscribe is dropped
      if (socket === 1 && f.ch) raw.push(f.ch);
      return data;
    };
    tap.sockets[0]!.terminate();
    await waitFor(() => tap.sockets.length === 2 && client.state === 'open', 'the new connection');
    void client.unsubscribe(['ticker:BTC-USD']).catch(() => undefined); // dropped too: the gateway never held it
    // a channel asked for after it: by the time it streams, the resubscribe's sends are over
    const eth: Update[] = [];
    client.channel('ticker:ETH-USD', (_d, u) => eth.push(u));
    await client.subscribe(['ticker:ETH-USD']);
    await waitFor(() => eth.filter((u) => !u.snapshot).length >= 3, { what: 'live ETH-USD tickers', timeout: 10_000 });
    expect(raw.filter((ch) => ch === 'ticker:BTC-USD')).toEqual([]);
    expect(client.subscriptions).toEqual(['ticker:ETH-USD']);
  });

  it('a resubscribe never answered ends in an error event that names its channel; the channel is kept', async () => {
    const { client, tap, errors } = await setup(150);
    await client.subscribe(['ticker:BTC-USD']);
    // the new connection never answers the resubscribe (here: its acks are lost on the way)
    let acksLost = 0;
    tap.filter = (data, socket) => {
      const f = parse(data);
      if (socket === 1 && f.op === 'ack' && f.subscribed?.includes('ticker:BTC-USD')) return void acksLost++;
      return data;
    };
    tap.sockets[0]!.terminate();
    const err = await waitFor(() => errors.find((e) => e.code === 'TIMEOUT'), { what: 'a TIMEOUT error event', timeout: 10_000 });
    expect(acksLost).toBe(3);
    expect(err.channels).toEqual(['ticker:BTC-USD']);
    expect(err.message).toContain('ticker:BTC-USD');
    expect(client.subscriptions).toEqual(['ticker:BTC-USD']);
  });
});
