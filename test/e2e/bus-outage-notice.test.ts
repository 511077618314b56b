import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { startNats } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';

let nats: TestServer & { destroy(): Promise<void> };
let engine: Engine;
beforeAll(async () => {
  nats = await startNats();
  engine = await startEngine({ host: '127.0.0.1', port: 0, natsUrl: nats.url, log: { level: 'silent' } }, { roles: { gateway: true, feeds: ['synthetic'] } });
});
afterAll(async () => {
  await engine?.close();
  await nats?.destroy();
});

const sys = (f: Frame) => f.op === 'data' && f.ch === 'system';
const quote = (f: Frame) => f.op === 'data' && f.ch === 'quote:BTC-USD';

describe('bus outage notice', () => {
  it('tells system subscribers that data is stale when NATS drops, and that it resumed', { timeout: 60_000 }, async () => {
    const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['system', 'quote:BTC-USD'] });
    expect(ack.subscribed).toEqual(['system', 'quote:BTC-USD']);
    await c.waitForCount(quote, 3, 15_000);
    await nats.stop();
    const warn = await c.waitFor((f) => sys(f) && f.d.level === 'warning', 20_000);
    expect(warn.d.title).toMatch(/interrupted/i);
    expect(warn.d.message).toMatch(/stale/);
    await nats.start();
    const info = await c.waitFor((f) => sys(f) && f.d.level === 'info', 30_000);
    expect(info.d.title).toMatch(/resumed/i);
    expect(info.seq).toBe(warn.seq + 1);
    const before = c.frames.filter(quote).length;
    await c.waitForCount(quote, before + 3, 20_000);
    expect(c.closeCode).toBeUndefined();
    c.close();
  });
});
