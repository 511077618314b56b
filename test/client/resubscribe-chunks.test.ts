import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
// the SDK of this checkout, by path (`@tickwire/client` may resolve to another checkout's package)
import type { TickwireClientError } from '../../packages/client/src/index.js';
import type { Engine } from '../../src/app/engine.js';
import { waitFor } from '../helpers/wait.js';
import { startTestEngine, tappedClient } from './helpers.js';

/**
 * A gateway may allow more subscriptions per connection (`gateway.maxSubscriptions`) than one
 * request may carry (1000 channels, docs/protocol.md#limits). After a reconnect the client
 * subscribes again to everything it had: in requests the protocol accepts, never in one the
 * server refuses as a whole (which lost every channel).
 */
const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('client SDK: resubscribing more than 1000 channels', { timeout: 60_000 }, () => {
  it('re-establishes all of them after a reconnect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-instruments-'));
    const file = join(dir, 'instruments.json');
    const symbols = Array.from({ length: 150 }, (_, i) => `S${String(i).padStart(3, '0')}`);
    writeFileSync(file, JSON.stringify(symbols.map((symbol) => ({ symbol, assetClass: 'stock', currency: 'USD' }))));
    const engine: Engine = await startTestEngine(undefined, { feeds: [], instrumentsFile: file, gateway: { maxSubscriptions: 2000 } });
    cleanups.push(() => engine.close());
    const channels = symbols.flatMap((s) => ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d'].map((k) => `${k}:${s}`));
    expect(channels.length).toBe(1200);

    const { client, tap } = tappedClient(engine.port, cleanups);
    const errors: TickwireClientError[] = [];
    client.on('error', (e) => errors.push(e));
    await client.connect();
    // two requests within the per-request limit: the connection holds 1200
    expect((await client.subscribe(channels.slice(0, 600))).subscribed).toHaveLength(600);
    expect((await client.subscribe(channels.slice(600))).subscribed).toHaveLength(600);
    const held = (): number => [...engine.gateway!.connections].reduce((n, c) => n + c.subscriptionCount, 0);
    expect(held()).toBe(1200);

    tap.sockets[0]!.terminate();
    await waitFor(() => tap.sockets.length > 1 && client.state === 'open', { what: 'a reconnect', timeout: 10_000 });
    await waitFor(() => held() === 1200 || errors.length > 0, { what: 'the channels subscribed again', timeout: 10_000 });
    expect(errors.map((e) => `${e.code}: ${e.message}`)).toEqual([]);
    expect(held()).toBe(1200);
    expect(client.subscriptions).toHaveLength(1200);
  });
});
