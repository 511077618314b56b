import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
// this checkout's sources (node_modules may link another checkout's package)
import { startTestEngine, tappedClient } from './helpers.js';

/**
 * More than 1000 channels in one call that sends a request per call (docs/protocol.md: at most
 * 1000 channels a request; the gateway refuses more with LIMIT, the whole request). `setVisible`
 * goes in parts as `unsubscribe` and the resubscribe do. Before, it was refused with LIMIT after
 * the client had marked every channel: the client then held them off screen (and subscribed them
 * off screen after a reconnect) while the gateway had them on screen. `subscribe` and
 * `setThrottle` go in parts too: before, a dashboard subscribing 2,500 channels in one call was
 * refused with LIMIT as a whole.
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

/** An engine with `count` stock symbols and no feed (channels the gateway accepts, quiet). */
async function engineWithSymbols(count: number, maxSubscriptions: number, limits?: Record<string, number>): Promise<{ engine: Engine; channels: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-instruments-'));
  const file = join(dir, 'instruments.json');
  const symbols = Array.from({ length: count }, (_, i) => `S${String(i).padStart(3, '0')}`);
  writeFileSync(file, JSON.stringify(symbols.map((symbol) => ({ symbol, assetClass: 'stock', currency: 'USD' }))));
  const engine = await startTestEngine(undefined, { feeds: [], instrumentsFile: file, gateway: { maxSubscriptions }, ...(limits ? { limits } : {}) });
  const kinds = ['trade', 'quote', 'ticker', 'bar.1s', 'bar.1m', 'bar.5m', 'bar.1h', 'bar.1d'];
  return { engine, channels: symbols.flatMap((s) => kinds.map((k) => `${k}:${s}`)) };
}

describe('subscribe and setThrottle of more than 1000 channels', { timeout: 60_000 }, () => {
  it('subscribe sends requests of at most 1000 channels and resolves with all of them', async () => {
    const { engine, channels } = await engineWithSymbols(313, 3000);
    cleanups.push(() => engine.close());
    const many = channels.slice(0, 2500);
    const { client, tap } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0 });
    const acks: { subscribed?: string[] }[] = [];
    tap.filter = (data) => {
      const f = JSON.parse(String(data)) as { op?: string; subscribed?: string[] };
      if (f.op === 'ack') acks.push(f);
      return data;
    };
    await client.connect();
    const held = (): number => [...engine.gateway!.connections].reduce((n, c) => n + c.subscriptionCount, 0);

    const ack = await client.subscribe(many, { throttle: 250 });
    expect(ack.rejected).toEqual([]);
    expect(ack.subscribed).toEqual(many);
    expect(ack.throttle).toBe(250);
    expect(acks.map((a) => a.subscribed?.length)).toEqual([1000, 1000, 500]);
    expect(held()).toBe(2500);
    expect(client.subscriptions).toHaveLength(2500);

    // the same for a change of throttle (an unsubscribe and a subscribe per part)
    const again = await client.setThrottle(many, 1000);
    expect(again.subscribed).toHaveLength(2500);
    expect(again.throttle).toBe(1000);
    expect(held()).toBe(2500);
  });

  it('over the per-connection limit, the channels past it are rejected one by one, the rest kept', async () => {
    const { engine, channels } = await engineWithSymbols(313, 1500);
    cleanups.push(() => engine.close());
    const many = channels.slice(0, 2500);
    const { client } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0 });
    await client.connect();
    const ack = await client.subscribe(many);
    expect(ack.subscribed).toHaveLength(1500);
    expect(ack.rejected).toHaveLength(1000);
    expect(new Set(ack.rejected.map((r) => r.code))).toEqual(new Set(['LIMIT']));
    expect(client.subscriptions).toHaveLength(1500);
  });

  it('a part refused for the message rate is sent again on its own, and the call resolves with every part', async () => {
    // parts of 1000, 1000 and 500 channels count as 10, 10 and 5 frames: the first two leave 4 of
    // the burst of 24, the third is refused RATE_LIMIT (with its id: at 1 frame a second it
    // would need a second more) and goes again after requestTimeoutMs, when the budget has
    // refilled
    const { engine, channels } = await engineWithSymbols(313, 3000, { messagesPerSec: 1, messageBurst: 24, rateLimitCloseMs: 60_000 });
    cleanups.push(() => engine.close());
    const many = channels.slice(0, 2500);
    const { client, tap } = tappedClient(engine.port, cleanups, { heartbeatIntervalMs: 0, requestTimeoutMs: 2500 });
    const refused: unknown[] = [];
    tap.filter = (data) => {
      const f = JSON.parse(String(data)) as { op?: string; code?: string; id?: number };
      if (f.op === 'error' && f.code === 'RATE_LIMIT' && f.id !== undefined) refused.push(f.id);
      return data;
    };
    await client.connect();
    const ack = await client.subscribe(many);
    expect(refused.length).toBeGreaterThanOrEqual(1);
    expect(ack.subscribed).toHaveLength(2500);
    expect(ack.rejected).toEqual([]);
    expect([...engine.gateway!.connections].reduce((n, c) => n + c.subscriptionCount, 0)).toBe(2500);
  });
});
