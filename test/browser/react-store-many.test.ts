import { afterEach, describe, expect, it } from 'vitest';
import { TickwireClient } from '@tickwire/client';
// the package from this checkout's sources (node_modules may link another checkout's)
import { TickwireStore } from '../../packages/react/src/index.js';
import { startTestEngine, streamUrl } from '../client/helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * A page of more than 1000 channels claimed in one turn (a screener): the store's requests go in
 * parts of at most 1000 channels, which the gateway accepts (docs/protocol.md#subscribe: 1 to
 * 1000 per request; more are refused with LIMIT). Before, the store asked for all of them in one
 * subscribe: every channel of the page was refused with LIMIT, none streamed.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('the React store with more than 1000 channels', { timeout: 30_000 }, () => {
  it('subscribes, marks off screen and releases them in requests the gateway accepts', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const client = new TickwireClient({ url: streamUrl(engine.port), encoding: 'json', heartbeatIntervalMs: 0 });
    cleanups.push(() => client.close());
    const errors: { code?: string; message?: string }[] = [];
    const store = new TickwireStore(client, { schedule: (fn) => void setTimeout(fn, 0), onError: (e) => errors.push(e as never) });
    cleanups.push(() => store.dispose());
    await client.connect();
    // 1,200 channels: BTC-USD streams, the symbols the gateway does not know are rejected one by one
    const many = ['ticker:BTC-USD', ...Array.from({ length: 1199 }, (_, i) => `ticker:S${i}-USD`)];
    const claims = many.map((ch) => [ch, store.acquire(ch, { throttle: 0 })] as const);
    await waitFor(() => store.snapshot('ticker:BTC-USD').value, { what: 'the BTC-USD ticker', timeout: 10_000 });
    await waitFor(() => many.slice(1).every((ch) => store.snapshot(ch).error), { what: 'each unknown symbol refused', timeout: 10_000 });
    expect(new Set(many.slice(1).map((ch) => store.snapshot(ch).error?.code))).toEqual(new Set(['UNKNOWN_CHANNEL']));
    expect(errors.filter((e) => e.code !== 'UNKNOWN_CHANNEL')).toEqual([]);
    // off screen, all at once: one visibility change per part, none refused
    for (const [ch, id] of claims) store.update(ch, id, { throttle: 0, visible: false });
    for (const [ch, id] of claims) store.release(ch, id);
    await waitFor(() => client.subscriptions.length === 0 && Object.keys(store.claims()).length === 0, 'every channel released');
    const ping = await client.ping(); // every request before it has been answered
    expect(ping).toBeGreaterThanOrEqual(0);
    expect(errors.filter((e) => e.code !== 'UNKNOWN_CHANNEL')).toEqual([]);
  });
});
