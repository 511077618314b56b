import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient } from '../../packages/client/src/index.js';
import { TickwireStore } from '../../packages/react/src/store.js';
import type { Engine } from '../../src/app/engine.js';
import { filteringWebSocket, startTestEngine, streamUrl, type Tap } from './helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A dashboard open for weeks: thousands of channels looked at once each (a symbol search, a
 * scrolling screener) must leave nothing behind in the client. Heap measured after a full GC,
 * not guessed.
 */
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const heapAfterGc = (): number => {
  for (let n = 0; n < 3; n++) gc();
  return process.memoryUsage().heapUsed;
};

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  vi.restoreAllMocks();
});

describe('long sessions', { timeout: 60_000 }, () => {
  it('20,000 channel listeners added and removed, each on its own channel: the heap does not grow with them', async () => {
    const client = new TickwireClient({ url: 'ws://127.0.0.1:9/v1/stream', trackPageVisibility: false });
    cleanups.push(() => client.close());
    const cycle = (from: number, to: number): void => {
      for (let i = from; i < to; i++) client.channel(`ticker:SYM${i}`, () => undefined)();
    };
    cycle(0, 1000); // warm up (code, maps' first growth)
    const before = heapAfterGc();
    cycle(1000, 21_000);
    const grown = heapAfterGc() - before;
    // each channel name left behind costs a map entry, a Set and the name: about 200 bytes
    expect(grown).toBeLessThan(512 * 1024);
  });

  it('React store: 3,000 channels claimed and released one after another leave nothing in the store nor the client', async () => {
    const client = new TickwireClient({ url: 'ws://127.0.0.1:9/v1/stream', trackPageVisibility: false, reconnect: false });
    cleanups.push(() => client.close());
    // channels the store asked the client to subscribe and unsubscribe (counted, not kept: a list would grow the heap)
    const asked = { subscribe: 0, unsubscribe: 0 };
    for (const op of ['subscribe', 'unsubscribe'] as const) {
      const call = client[op].bind(client) as (channels: string[], ...rest: unknown[]) => Promise<never>;
      (client as unknown as Record<typeof op, typeof call>)[op] = (channels, ...rest) => {
        asked[op] += channels.length;
        return call(channels, ...rest);
      };
    }
    const store = new TickwireStore(client as never, { schedule: (fn) => void setTimeout(fn, 0), onError: () => undefined });
    const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 0)); // the store syncs claims once per macrotask
    // one sync per channel: the release of a channel and the claim of the next go in the same turn
    // (each sync then unsubscribes one and subscribes the other). A sync is a setTimeout(0) of the
    // store, at least 1 ms: a sync of its own for each release took twice the time (16 s at load 8)
    const cycle = async (from: number, to: number): Promise<void> => {
      let held: (() => void) | undefined;
      for (let i = from; i < to; i++) {
        const ch = `quote:SYM${i}`;
        held?.(); // the previous channel released
        const stop = store.listen(ch, () => undefined);
        const id = store.acquire(ch, { throttle: 250 });
        held = () => {
          store.release(ch, id);
          stop();
        };
        await turn(); // subscribed (queued until a connection); the previous one unsubscribed
      }
      held?.();
      await turn(); // the last one unsubscribed
    };
    await cycle(0, 500);
    // Two rounds of 3,000, each measured: what a leak keeps grows the heap in both, while one
    // measurement alone can be off by a few hundred KB in a busy test process (CI once saw 407 KB
    // for a round that, repeated here 10 times over, kept nothing: heap flat within 6 KB).
    const grown: number[] = [];
    let before = heapAfterGc();
    for (let round = 0; round < 2; round++) {
      await cycle(500 + round * 3000, 3500 + round * 3000);
      const after = heapAfterGc();
      grown.push(after - before);
      before = after;
    }
    expect(store.claims()).toEqual({});
    expect(client.subscriptions).toEqual([]);
    // every channel was subscribed once and unsubscribed once
    expect(asked).toEqual({ subscribe: 6500, unsubscribe: 6500 });
    // 256 KB per round is 85 bytes a channel: less than a channel name and its map entry
    expect(Math.min(...grown), `heap growth per round: ${grown.join(', ')} bytes`).toBeLessThan(256 * 1024);
  });

  it('close() leaves no timer behind: heartbeat, request timeouts, token refresh and reconnect timers all go', async () => {
    const engine: Engine = await startTestEngine();
    cleanups.push(() => engine.close());
    // the client's timers: those created from its sources, not yet fired nor cleared (the engine runs in this process too)
    const live = new Set<NodeJS.Timeout>();
    for (const name of ['setTimeout', 'setInterval'] as const) {
      const orig = globalThis[name];
      vi.spyOn(globalThis, name).mockImplementation(((fn: () => void, ms?: number, ...args: unknown[]) => {
        const t = (orig as (...a: unknown[]) => NodeJS.Timeout)(fn, ms, ...args);
        if (new Error().stack?.includes('packages/client/src')) live.add(t);
        return t;
      }) as never);
    }
    const timers = (): number => [...live].filter((t) => !(t as unknown as { _destroyed: boolean })._destroyed).length;
    const before = 0;
    const client = new TickwireClient({ url: streamUrl(engine.port), heartbeatIntervalMs: 1000, reconnect: { initialDelayMs: 60_000, maxDelayMs: 60_000 } });
    cleanups.push(() => client.close());
    await client.connect();
    await client.subscribe(['quote:BTC-USD', 'trade:BTC-USD']);
    const pending = client.request('alert.list').catch(() => undefined); // in flight when closed (a request timer)
    expect(timers()).toBeGreaterThan(before);
    await client.close();
    await pending;
    await waitFor(() => timers() === before, 'no timer of the client left');
    // the same after a drop: the reconnect timer goes with close()
    await client.connect();
    client.on('error', () => undefined);
    await engine.close();
    await waitFor(() => client.state === 'reconnecting', 'the drop noticed');
    await client.close();
    await waitFor(() => timers() === before, 'no timer of the client left after a drop');
  });

  it('450 reconnects with subscriptions: the heap does not grow with them (no socket, timer or request kept)', async () => {
    const engine: Engine = await startTestEngine(undefined, { synthetic: { seed: 1, rate: 200 } });
    cleanups.push(() => engine.close());
    const tap: Tap = { filter: undefined, sockets: [] };
    const client = new TickwireClient({ url: streamUrl(engine.port), WebSocket: filteringWebSocket(tap), reconnect: { initialDelayMs: 1, maxDelayMs: 5 } });
    cleanups.push(() => client.close());
    let welcomes = 0;
    client.on('welcome', () => welcomes++);
    client.on('error', () => undefined); // one TRANSPORT error per outage
    await client.connect();
    await client.subscribe(['quote:BTC-USD', 'trade:BTC-USD', 'ticker:AAPL']);
    const reconnects = async (n: number): Promise<void> => {
      for (let k = 0; k < n; k++) {
        const w = welcomes;
        tap.sockets.at(-1)!.terminate(); // a dropped network connection
        await waitFor(() => welcomes > w, { what: 'the reconnect', interval: 2 });
        tap.sockets.splice(0, tap.sockets.length - 1); // the test keeps only the live socket
      }
    };
    await reconnects(150); // warm up: the engine in this process grows its own structures too
    const before = heapAfterGc();
    await reconnects(450);
    const grown = heapAfterGc() - before;
    expect(client.subscriptions.sort()).toEqual(['quote:BTC-USD', 'ticker:AAPL', 'trade:BTC-USD']);
    // a socket, its handlers or a request kept per reconnect would be several KB each
    expect(grown).toBeLessThan(2 * 1024 * 1024);
  });
});
