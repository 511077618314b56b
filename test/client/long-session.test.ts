import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { TickwireClient } from '../../packages/client/src/index.js';
import { TickwireStore } from '../../packages/react/src/store.js';

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
    const store = new TickwireStore(client as never, { schedule: (fn) => void setTimeout(fn, 0), onError: () => undefined });
    const turn = (): Promise<void> => new Promise((r) => setTimeout(r, 0)); // the store syncs claims once per macrotask
    const cycle = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        const ch = `quote:SYM${i}`;
        const stop = store.listen(ch, () => undefined);
        const id = store.acquire(ch, { throttle: 250 });
        await turn(); // subscribed (queued until a connection)
        store.release(ch, id);
        stop();
        await turn(); // unsubscribed
      }
    };
    await cycle(0, 500);
    const before = heapAfterGc();
    await cycle(500, 3500);
    const grown = heapAfterGc() - before;
    expect(store.claims()).toEqual({});
    expect(client.subscriptions).toEqual([]);
    expect(grown).toBeLessThan(256 * 1024);
  });
});
