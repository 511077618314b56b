import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient, type TickwireClientError } from '../../packages/client/src/index.js';
import { spendBurst, startTestEngine, tappedClient, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A subscribe the gateway drops unanswered because the connection is over its message rate
 * (docs/protocol.md#limits: "frame dropped, RATE_LIMIT at most once a second"). The client sends
 * it again, each time after twice the wait before, and resolves with the ack; a subscribe never
 * answered rejects with TIMEOUT and leaves `subscriptions` as it was (docs/client-sdk.md#reconnect).
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(requestTimeoutMs: number, limits: Record<string, number> = {}): Promise<{ client: TickwireClient; tap: Tap }> {
  const engine = await startTestEngine(undefined, { limits });
  cleanups.push(() => engine.close());
  const { client, tap } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0, requestTimeoutMs });
  client.on('error', () => undefined); // the gateway's RATE_LIMIT notice
  await client.connect();
  return { client, tap };
}

/** Frames of the application's own on the same connection: they take the burst. */
const spend = (tap: Tap, n: number): void => spendBurst(tap, 0, n);

describe('a subscribe dropped under the rate limit', { timeout: 30_000 }, () => {
  it('is sent again and resolves with the ack; the channel then gets its data', async () => {
    // 2 frames a second, a burst of 2, and no 4008 close
    const { client, tap } = await setup(400, { messagesPerSec: 2, messageBurst: 2, rateLimitCloseMs: 60_000 });
    const ticks: unknown[] = [];
    client.channel('ticker:BTC-USD', (t) => ticks.push(t));
    spend(tap, 2);
    const ack = await client.subscribe(['ticker:BTC-USD']);
    expect(ack.subscribed).toEqual(['ticker:BTC-USD']);
    expect(client.subscriptions).toEqual(['ticker:BTC-USD']);
    await waitFor(() => ticks.length > 0, 'the snapshot of the channel');
  });

  it('never answered, it rejects with TIMEOUT after three sends and the channel is not reported as subscribed', async () => {
    const { client, tap } = await setup(150);
    await client.subscribe(['ticker:ETH-USD']);
    // the gateway never answers this subscribe (here: its acks are lost on the way)
    let acksLost = 0;
    tap.filter = (data) => {
      const f = JSON.parse(String(data)) as { op?: string; subscribed?: string[] };
      if (f.op === 'ack' && f.subscribed?.includes('ticker:BTC-USD')) return void acksLost++;
      return data;
    };
    const t0 = Date.now();
    const err = await client.subscribe(['ticker:BTC-USD']).then(
      () => undefined,
      (e: TickwireClientError) => e,
    );
    expect(err?.code).toBe('TIMEOUT');
    expect(acksLost).toBe(3);
    // sent at 0, 150 and 450 ms; given up 600 ms after the last
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1000);
    expect(client.subscriptions).toEqual(['ticker:ETH-USD']);
  });
});
