import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient } from '../../packages/client/src/index.js';
import { startTestEngine, streamUrl } from './helpers.js';

/**
 * A subscribe naming many channels counts as one frame per started 100 of them against the
 * connection's message rate (docs/protocol.md#limits); one the connection's budget cannot cover
 * now is answered RATE_LIMIT with its id, and nothing of it is done. The client sends it again
 * (after requestTimeoutMs, twice that, up to three sends), as it does an unanswered one, instead
 * of failing the application's subscribe. Before: the subscribe rejected with RATE_LIMIT.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const channels = (prefix: string, n: number): string[] => Array.from({ length: n }, (_, i) => `quote:${prefix}${i}`);

describe('a subscribe refused for the message rate', () => {
  it('is sent again once the budget refilled, and resolves', async () => {
    const engine = await startTestEngine(undefined, { limits: { messagesPerSec: 4, messageBurst: 10 } });
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json', heartbeatIntervalMs: 0, requestTimeoutMs: 800 });
    cleanups.push(() => client.close());
    await client.connect();
    // 3 + 3 + 3 frames of the 10 of the burst, then one of 3 the connection has not left
    const results = await Promise.allSettled([0, 1, 2, 3].map((k) => client.subscribe(channels(`K${k}X`, 300))));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled']);
    // every channel was answered by the gateway (refused there as unknown symbols, not by the rate)
    for (const r of results) if (r.status === 'fulfilled') expect(r.value.rejected).toHaveLength(300);
  });

  it('fails with RATE_LIMIT after the third refusal', async () => {
    // one frame a second: a first subscribe of 1000 channels spends the whole burst of 10, and the
    // next one of 1000 finds 1 or 2 frames where it needs 10 at each of its later sends
    const engine = await startTestEngine(undefined, { limits: { messagesPerSec: 1, messageBurst: 10, rateLimitCloseMs: 60_000 } });
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json', heartbeatIntervalMs: 0, requestTimeoutMs: 1000 });
    cleanups.push(() => client.close());
    await client.connect();
    await client.subscribe(channels('A', 1000));
    const started = Date.now();
    // the first send finds no frame left (dropped unanswered), the second and third are refused
    await expect(client.subscribe(channels('Z', 1000))).rejects.toMatchObject({ code: 'RATE_LIMIT' });
    // sent three times: after 1000 and 2000 ms more
    expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
  });
});
