import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultMaxConnections } from '../../src/gateway/limits.js';
import { RawWs } from '../helpers/raw-ws.js';
import { freshAddress, rawHttp, startTarget, upgradeRequest } from './kit.js';
import type { Target } from './kit.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The gateway's ceiling on connections (`gateway.maxConnections`) and the memory a parked
 * connection can hold, against a real `tickwire start` process.
 */
const MIB = 1024 * 1024;
const MAX = 250;

describe('default connection ceiling from the open-file limit', () => {
  it('is the soft limit less a reserve of 256, at least 64; 1024 when the limit cannot be read', () => {
    const limits = (soft: string, hard: string): string =>
      `Limit                     Soft Limit           Hard Limit           Units\nMax processes             63412                63412                processes\nMax open files            ${soft}                ${hard}                files\n`;
    expect(defaultMaxConnections(limits('1024', '4096'))).toBe(768);
    expect(defaultMaxConnections(limits('20000', '20000'))).toBe(19_744);
    expect(defaultMaxConnections(limits('256', '256'))).toBe(64);
    expect(defaultMaxConnections(limits('unlimited', 'unlimited'))).toBe(1_048_576 - 256);
    expect(defaultMaxConnections('')).toBe(768);
    expect(defaultMaxConnections(undefined)).toBeGreaterThanOrEqual(64); // this process's own /proc/self/limits
  });
});

describe('connection ceiling and parked-connection memory', () => {
  let target: Target;
  beforeAll(async () => {
    target = await startTarget({
      feeds: [],
      gateway: { maxConnections: MAX, maxFrameBytes: 64 * 1024, idleTimeoutSec: 60 },
      limits: { connectionsPerIpPerSec: 0 },
    });
  }, 90_000);
  afterAll(async () => {
    await target?.stop();
  });

  it('idle connections cost little (figure printed)', async () => {
    const n = 200;
    const before = target.rss();
    const conns = await Promise.all(
      Array.from({ length: n }, (_, i) => RawWs.connect(target.port, { protocol: 'tickwire.v1.json', localAddress: `127.0.${200 + (i % 50)}.9` })),
    );
    await Promise.all(conns.map((c) => c.waitFor(() => c.frames.length >= 1)));
    const grown = target.rss() - before;
    console.log(`${n} idle connections: RSS +${(grown / MIB).toFixed(1)} MiB (${Math.round(grown / n / 1024)} KiB each)`);
    expect(grown / n).toBeLessThan(256 * 1024);
    for (const c of conns) c.destroy();
    await waitFor(async () => (await target.stats()).connections === 0);
  });

  it(`beyond gateway.maxConnections (${MAX}) the upgrade gets 503 with Retry-After, counted in /metrics; a freed slot is usable again`, async () => {
    const stats = await target.stats();
    expect(stats.capacity).toMatchObject({ maxConnections: MAX, refused: 0 });
    const conns: RawWs[] = [];
    for (let i = 0; i < MAX; i++) conns.push(await RawWs.connect(target.port, { protocol: 'tickwire.v1.json', localAddress: freshAddress() }));
    expect((await target.stats()).connections).toBe(MAX);
    const refused = await rawHttp(target.port, upgradeRequest(['Sec-WebSocket-Protocol: tickwire.v1.json']), { localAddress: freshAddress() });
    expect(refused.status).toBe(503);
    const retryAfter = /\r\nretry-after: (\d+)\r\n/i.exec(refused.head + '\r\n');
    expect(retryAfter, refused.head).not.toBeNull();
    expect(Number(retryAfter![1])).toBeGreaterThanOrEqual(1);
    expect(JSON.parse(refused.body)).toMatchObject({ error: 'AT_CAPACITY', message: expect.stringContaining(`${MAX}`) });
    expect(refused.head).not.toMatch(/^HTTP\/1\.1 101/);
    expect(await target.metric('tickwire_limit_refusals_total', { limit: 'max_connections' })).toBe(1);
    expect(await target.metric('tickwire_connections_max')).toBe(MAX);
    expect(await target.health()).toBe(200); // plain HTTP is not refused
    conns.pop()!.destroy();
    await waitFor(async () => (await target.stats()).connections === MAX - 1);
    conns.push(await RawWs.connect(target.port, { protocol: 'tickwire.v1.json', localAddress: freshAddress() }));
    for (const c of conns) c.destroy();
    await waitFor(async () => (await target.stats()).connections === 0);
  });

  it('each parked connection holds at most its documented bound, fragment buffers included', async () => {
    const { capacity } = await target.stats();
    const receiveBound = capacity.perConnection.receiveBytes as number;
    expect(receiveBound).toBe(1024 * 1024); // max(4 x maxFrameBytes, 1 MiB)
    // a fragmented message that would outgrow the receive bound is cut: the server buffers no more
    const greedy = await RawWs.connect(target.port, { protocol: 'tickwire.v1.json', localAddress: freshAddress() });
    const chunk = Buffer.alloc(60 * 1024, 0x20);
    greedy.send(0x1, Buffer.concat([Buffer.from('{"op":"ping","pad":"'), chunk]), { fin: false });
    for (let sent = chunk.length; sent <= receiveBound + chunk.length && !greedy.ended; sent += chunk.length) {
      greedy.send(0x0, chunk, { fin: false });
      await new Promise((r) => setImmediate(r));
    }
    await greedy.waitFor(() => greedy.ended, 10_000);
    expect(greedy.ended).toBe(true);

    // N connections each parking an unfinished fragmented message just under the bound
    const n = 30;
    const before = target.rss();
    const parked: RawWs[] = [];
    for (let i = 0; i < n; i++) {
      const ws = await RawWs.connect(target.port, { protocol: 'tickwire.v1.json', localAddress: freshAddress() });
      ws.send(0x1, Buffer.concat([Buffer.from('{"op":"ping","pad":"'), chunk]), { fin: false });
      for (let sent = chunk.length; sent + chunk.length < receiveBound - 4096; sent += chunk.length) ws.send(0x0, chunk, { fin: false });
      parked.push(ws);
    }
    // wait until the server has read it all (nothing left in our socket buffers)
    await waitFor(async () => parked.every((p) => p.socket.writableLength === 0));
    await waitFor(async () => (await target.stats()).connections === n);
    const grown = target.rss() - before;
    const perConnection = grown / n;
    console.log(
      `parked ${n} connections with ~${Math.round(receiveBound / 1024)} KiB of fragments each: RSS +${Math.round(grown / MIB)} MiB (${Math.round(perConnection / 1024)} KiB per connection; bound ${Math.round(capacity.perConnection.totalBytes / 1024)} KiB)`,
    );
    expect(perConnection).toBeLessThan(receiveBound + 512 * 1024);
    expect(parked.every((p) => !p.ended)).toBe(true);
    for (const p of parked) p.destroy();
    await waitFor(async () => (await target.stats()).connections === 0);
    expect(await target.health()).toBe(200);
  });
});
