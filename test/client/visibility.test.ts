import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient, type GapEvent, type Update } from '../../src/client/index.js';
import type { Engine } from '../../src/app/engine.js';
import { startTestEngine, streamUrl } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

// The SDK side of visibility (docs/protocol.md#visibility) against a real gateway: setVisible,
// setPageVisible, and both kept across a reconnect. No `gap` event is ever raised by a switch.

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const overrides = { synthetic: { seed: 5, rate: 3000 }, throttle: { tiers: [0, 100, 1000], minMs: 0, batchMs: 0, offscreenMs: 1000 } };

async function engineOn(port?: number): Promise<Engine> {
  const e = await startTestEngine(port, overrides);
  cleanups.push(() => e.close());
  return e;
}

function clientFor(port: number): { client: TickwireClient; quotes: (Update & { at: number })[]; trades: Update[]; gaps: GapEvent[] } {
  const client = new TickwireClient({ url: streamUrl(port), reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
  cleanups.push(() => client.close());
  const quotes: (Update & { at: number })[] = [];
  const trades: Update[] = [];
  const gaps: GapEvent[] = [];
  client.on('quote', (u) => quotes.push({ ...u, at: performance.now() }));
  client.on('trade', (u) => trades.push(u));
  client.on('gap', (g) => gaps.push(g));
  return { client, quotes, trades, gaps };
}

describe('client visibility', { timeout: 90_000 }, () => {
  it('setVisible moves a quote to the slow tier and back, setPageVisible pauses it; no gap is reported', async () => {
    const engine = await engineOn();
    const { client, quotes, trades, gaps } = clientFor(engine.port);
    await client.connect();
    expect(client.pageVisible).toBe(true); // Node: no document, the page counts as shown
    await client.subscribe(['quote:BTC-USD', 'trade:BTC-USD'], { throttle: 0 });
    await waitFor(() => quotes.length > 20, 'fast quotes');

    // (ack and snapshot may arrive in one read, before the await resumes: count from before)
    const offAt = quotes.length;
    await client.setVisible(['quote:BTC-USD'], false);
    await waitFor(() => quotes.length >= offAt + 4, 'a snapshot and three slow quotes');
    const slow = quotes.slice(offAt);
    const snapAt = slow.findIndex((u) => u.snapshot);
    expect(snapAt).toBeGreaterThanOrEqual(0);
    await waitFor(() => quotes.length >= offAt + snapAt + 4, 'three live quotes after the snapshot');
    const live = quotes.slice(offAt + snapAt + 1, offAt + snapAt + 4);
    // two 1000 ms windows (arrival times carry the loaded box's jitter: a margin, not 2000)
    expect(live[2]!.at - live[0]!.at).toBeGreaterThan(1500);

    await client.setPageVisible(false);
    expect(client.pageVisible).toBe(false);
    const hiddenQuotes = quotes.length;
    const hiddenTrades = trades.length;
    await waitFor(() => trades.length >= hiddenTrades + 30, 'trades while hidden');
    // a quote already in flight when the page went hidden may land; then nothing more
    expect(quotes.length - hiddenQuotes).toBeLessThanOrEqual(1);

    await client.setVisible(['quote:BTC-USD'], true);
    const backAt = quotes.length;
    await client.setPageVisible(true);
    await waitFor(() => quotes.length >= backAt + 20, 'fast quotes again');
    expect(quotes[backAt]!.snapshot).toBe(true);
    expect(gaps).toEqual([]);
  });

  it('keeps off-screen channels and a hidden page across a reconnect', async () => {
    const first = await startTestEngine(undefined, overrides);
    const port = first.port;
    const { client, quotes, trades } = clientFor(port);
    await client.connect();
    await client.subscribe(['quote:ETH-USD', 'trade:ETH-USD'], { throttle: 0, visible: false });
    await waitFor(() => quotes.length > 0, 'the first quote');
    await client.setPageVisible(false);
    await first.close();
    await waitFor(() => client.state === 'reconnecting' || client.state === 'connecting', 'the drop');
    const e2 = await engineOn(port);
    expect(e2.port).toBe(port);
    await waitFor(() => client.state === 'open', 'the reconnect');
    const q0 = quotes.length;
    const t0 = trades.length;
    await waitFor(() => trades.length >= t0 + 30, 'trades after the reconnect');
    expect(quotes.length).toBe(q0); // still paused: the page is hidden
    const shownAt = quotes.length;
    await client.setPageVisible(true);
    await waitFor(() => quotes.length >= q0 + 4, 'quotes when shown');
    const back = quotes.slice(shownAt);
    expect(back[0]!.snapshot).toBe(true);
    // still off screen: the slow tier (three live quotes span two 1000 ms windows; a margin for arrival jitter)
    expect(back[3]!.at - back[1]!.at).toBeGreaterThan(1500);
  });
});

describe('client visibility before the connection opens', { timeout: 60_000 }, () => {
  it('a channel marked off screen while its subscribe waits for the connection is off screen on the server', async () => {
    const engine = await engineOn();
    const { client, quotes } = clientFor(engine.port);
    const sub = client.subscribe(['quote:SOL-USD'], { throttle: 0 });
    await client.setVisible(['quote:SOL-USD'], false); // not connected yet: kept, sent after the subscribe
    await client.connect();
    await sub;
    // live quotes after the last snapshot (the tier switch sends one)
    const liveAfterSnapshot = (): typeof quotes => quotes.slice(quotes.map((u) => u.snapshot).lastIndexOf(true) + 1);
    await waitFor(() => liveAfterSnapshot().length >= 3, 'three quotes after the snapshot');
    // the slow tier: three live quotes span two 1000 ms windows (margin for arrival jitter)
    const live = liveAfterSnapshot();
    expect(live[2]!.at - live[0]!.at).toBeGreaterThan(1500);
  });
});
