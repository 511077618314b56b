import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { TickwireClient, type Bar, type Update } from '../../src/client/index.js';
import { startTestEngine, streamUrl } from '../client/helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The SDK's `history` option: the snapshot update of a bar channel carries the closed bars before
 * it (`update.history`), and the subscription asks for history again after a reconnect.
 */
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('SDK: subscribe with history', () => {
  it('hands the history to the snapshot update and asks again after a reconnect', async () => {
    let engine: Engine = await startTestEngine(undefined, { synthetic: { seed: 9, rate: 2000 } });
    const port = engine.port;
    cleanups.push(() => engine.close());
    // a few closed bars first (read back over HTTP: a condition, not a sleep)
    await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/v1/bars?symbol=BTC-USD&interval=1s`);
        return ((await r.json()) as { bars: Bar[] }).bars.length >= 3;
      },
      { timeout: 20_000, what: 'three closed bars' },
    );
    const client = new TickwireClient({ url: streamUrl(port), reconnect: { initialDelayMs: 50, maxDelayMs: 500 } });
    cleanups.push(() => client.close());
    const snapshots: Update<Bar>[] = [];
    client.channel('bar.1s:BTC-USD', (_bar, u) => {
      if (u.snapshot) snapshots.push(u);
    });
    await client.connect();
    const ack = await client.subscribe(['bar.1s:BTC-USD'], { history: 3 });
    expect(ack.subscribed).toEqual(['bar.1s:BTC-USD']);
    await waitFor(() => snapshots.length === 1, { timeout: 10_000, what: 'the snapshot' });
    const first = snapshots[0]!;
    expect(first.history).toHaveLength(3);
    for (const b of first.history!) {
      expect(b.closed).toBe(true);
      expect(b.t).toBeLessThan(first.d.t);
    }

    // the engine restarts on the same port: the client reconnects and resubscribes with history
    await engine.close();
    engine = await startTestEngine(port, { synthetic: { seed: 9, rate: 2000 } });
    await waitFor(() => snapshots.length === 2, { timeout: 30_000, what: 'the snapshot after the reconnect' });
    expect(Array.isArray(snapshots[1]!.history)).toBe(true); // a fresh engine may hold no closed bar yet
    await expect(client.subscribe(['bar.1s:BTC-USD'], { history: 5000 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
  });
});
