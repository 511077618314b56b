import { afterEach, describe, expect, it } from 'vitest';
// this checkout's sources (node_modules may link another checkout's package)
import { startTestEngine, tappedClient } from './helpers.js';

/**
 * More than 1000 channels in one call that sends a request per call (docs/protocol.md: at most
 * 1000 channels a request; the gateway refuses more with LIMIT, the whole request). `setVisible`
 * goes in parts as `unsubscribe` and the resubscribe do. Before, it was refused with LIMIT after
 * the client had marked every channel: the client then held them off screen (and subscribed them
 * off screen after a reconnect) while the gateway had them on screen.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('more than 1000 channels in one call', { timeout: 30_000 }, () => {
  it('setVisible goes in requests of at most 1000 channels, each accepted', async () => {
    const engine = await startTestEngine();
    cleanups.push(() => engine.close());
    const { client, tap } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0 });
    // the gateway knows none of these symbols: its refusals are kept from the client, which then
    // holds all 1,500 as subscribed (as a gateway that serves them would have it)
    const acks: { op?: string; unsubscribed?: string[]; rejected?: unknown[]; channels?: string[] }[] = [];
    tap.filter = (data) => {
      const f = JSON.parse(String(data)) as { op?: string; rejected?: unknown[] };
      if (f.op === 'ack') acks.push(f);
      return f.op === 'ack' && f.rejected?.length ? JSON.stringify({ ...f, rejected: [] }) : data;
    };
    await client.connect();
    const many = Array.from({ length: 1500 }, (_, i) => `ticker:S${i}-USD`);
    await client.subscribe(many.slice(0, 1000));
    await client.subscribe(many.slice(1000));
    expect(client.subscriptions).toHaveLength(1500);
    const before = acks.length;
    await client.setVisible(many, false);
    expect(acks.length - before).toBe(2);
  });
});
