import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/gateway/limits.js';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import { SECRET, testEngine, token, wsUrl } from './helpers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

async function status(url: string, headers: Record<string, string> = {}): Promise<{ status: number; client?: TestClient }> {
  try {
    const client = await TestClient.connect(url, { headers, encoding: 'json' });
    return { status: 101, client };
  } catch (err) {
    return { status: (err as { statusCode?: number }).statusCode ?? -1 };
  }
}

describe('TokenBucket', () => {
  it('allows the burst, then the rate', () => {
    const b = new TokenBucket(10, 3, 0);
    expect([b.take(0), b.take(0), b.take(0), b.take(0)]).toEqual([true, true, true, false]);
    expect(b.take(50)).toBe(false);
    expect(b.take(100)).toBe(true);
    expect(b.full(10_000)).toBe(true);
  });
});

describe('gateway limits', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'optional', jwtSecret: SECRET },
      gateway: { maxSubscriptions: 3 },
      limits: { messagesPerSec: 5, messageBurst: 5, rateLimitCloseMs: 1500, connectionsPerUser: 2, connectionsPerIpPerSec: 0 },
    });
  });
  afterAll(() => engine.close());

  it('subscriptions per connection: LIMIT per item beyond the maximum', async () => {
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'quote:MSFT', 'quote:NVDA', 'quote:TSLA'] });
    expect(ack.subscribed).toEqual(['quote:AAPL', 'quote:MSFT', 'quote:NVDA']);
    expect(ack.rejected).toEqual([expect.objectContaining({ channel: 'quote:TSLA', code: 'LIMIT' })]);
    c.close();
  });

  it('messages per second: RATE_LIMIT error and dropped frames, then 4008 when sustained', async () => {
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    await c.waitFor((f) => f.op === 'welcome');
    for (let i = 0; i < 20; i++) c.send({ op: 'ping', id: i });
    const err = await c.waitFor((f) => f.op === 'error' && f.code === 'RATE_LIMIT');
    expect(err.message).toMatch(/5 frames per second/);
    await c.waitFor((f) => f.op === 'pong' && f.id === 4); // the pings within the rate are answered
    await quietFor(300, 'no pong for the pings over the rate');
    const pongs = c.frames.filter((f) => f.op === 'pong').length;
    expect(pongs).toBeGreaterThanOrEqual(5);
    expect(pongs).toBeLessThan(20);
    expect(c.closeCode).toBeUndefined();
    // keep flooding: the connection is closed with 4008
    const flood = setInterval(() => {
      if (c.closeCode === undefined) for (let i = 0; i < 5; i++) c.send({ op: 'ping' });
    }, 50);
    try {
      expect(await c.waitClose(10_000)).toBe(4008);
    } finally {
      clearInterval(flood);
    }
    const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text();
    expect(metrics).toMatch(/^tickwire_limit_refusals_total\{limit="rate_limit_closes"\} [1-9]/m);
    expect(metrics).toMatch(/^tickwire_limit_refusals_total\{limit="rate_limited_frames"\} [1-9]/m);
  });

  it('a connection back under its rate is served again and not closed', async () => {
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    await c.waitFor((f) => f.op === 'welcome');
    for (let i = 0; i < 10; i++) c.send({ op: 'ping', id: i });
    await c.waitFor((f) => f.op === 'error' && f.code === 'RATE_LIMIT');
    // the token bucket refills with time: the clock is the condition here (any frame sent to
    // probe it would be one more frame over the rate)
    await quietFor(1200, 'the rate window passes with nothing sent');
    for (let i = 0; i < 3; i++) expect((await c.request({ op: 'ping', id: `later-${i}` })).op).toBe('pong');
    await quietFor(1000, 'no 4008 close for a connection back under its rate');
    expect(c.closeCode).toBeUndefined();
    c.close();
  });

  it('connections per user: 429 at the upgrade beyond the maximum, free again after a close', async () => {
    const headers = { authorization: `Bearer ${await token({ sub: 'dave' })}` };
    const a = await status(wsUrl(engine), headers);
    const b = await status(wsUrl(engine), headers);
    expect([a.status, b.status]).toEqual([101, 101]);
    expect((await status(wsUrl(engine), headers)).status).toBe(429);
    // another user is not affected
    const other = await status(wsUrl(engine), { authorization: `Bearer ${await token({ sub: 'erin' })}` });
    expect(other.status).toBe(101);
    a.client!.close();
    await a.client!.waitClose();
    await waitFor(() => engine.access!.limits.connectionsOf('dave') === 1, 'the closed connection to give its slot back');
    const c = await status(wsUrl(engine), headers);
    expect(c.status).toBe(101);
    for (const x of [b, other, c]) x.client?.close();
  });
});

describe('connections per user on every path (in-band auth)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({
      auth: { mode: 'optional', jwtSecret: SECRET },
      limits: { messagesPerSec: 0, connectionsPerUser: 2, connectionsPerIpPerSec: 0 },
    });
  });
  afterAll(() => engine.close());

  it('connections per user hold for in-band auth: LIMIT, and the connection stays anonymous', async () => {
    const headers = { authorization: `Bearer ${await token({ sub: 'frank' })}` };
    const a = await status(wsUrl(engine), headers);
    const b = await status(wsUrl(engine), headers);
    expect([a.status, b.status]).toEqual([101, 101]);
    // an anonymous connection (auth optional) authenticating in band as frank would be the third
    const anon = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    const refused = await anon.request({ op: 'auth', id: 'a1', token: await token({ sub: 'frank' }) });
    expect(refused).toMatchObject({ op: 'error', id: 'a1', code: 'LIMIT' });
    expect(refused.message).toMatch(/at most 2/);
    expect(engine.access!.limits.connectionsOf('frank')).toBe(2);
    // still anonymous: private channels are refused, and the connection is open
    const ack = await anon.request({ op: 'subscribe', id: 'a2', channels: ['executions'] });
    expect(ack.rejected).toEqual([expect.objectContaining({ channel: 'executions', code: 'UNAUTHENTICATED' })]);
    expect(anon.closeCode).toBeUndefined();
    // once a slot is free, in-band auth takes it, and the upgrade path sees the count
    a.client!.close();
    await a.client!.waitClose();
    await waitFor(() => engine.access!.limits.connectionsOf('frank') === 1);
    const ok = await anon.request({ op: 'auth', id: 'a3', token: await token({ sub: 'frank' }) });
    expect(ok).toMatchObject({ op: 'ack', id: 'a3' });
    expect(engine.access!.limits.connectionsOf('frank')).toBe(2);
    expect((await status(wsUrl(engine), headers)).status).toBe(429);
    // a refreshed token for the same user does not count twice
    const again = await anon.request({ op: 'auth', id: 'a4', token: await token({ sub: 'frank' }) });
    expect(again).toMatchObject({ op: 'ack', id: 'a4' });
    expect(engine.access!.limits.connectionsOf('frank')).toBe(2);
    // a token for another user is refused and counts nowhere
    const other = await anon.request({ op: 'auth', id: 'a5', token: await token({ sub: 'grace' }) });
    expect(other).toMatchObject({ op: 'error', id: 'a5', code: 'FORBIDDEN' });
    expect(engine.access!.limits.connectionsOf('grace')).toBe(0);
    expect(engine.access!.limits.connectionsOf('frank')).toBe(2);
    // closing the in-band connection gives its slot back
    anon.close();
    await anon.waitClose();
    await waitFor(() => engine.access!.limits.connectionsOf('frank') === 1);
    const c = await status(wsUrl(engine), headers);
    expect(c.status).toBe(101);
    const metrics = await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text();
    expect(metrics).toMatch(/^tickwire_limit_refusals_total\{limit="connections_per_user"\} [1-9]/m);
    for (const x of [b, c]) x.client?.close();
  });

  it('connections per user: many anonymous connections authenticating at once as one user never exceed it', async () => {
    const anons = await Promise.all(Array.from({ length: 6 }, () => TestClient.connect(wsUrl(engine), { encoding: 'json' })));
    const jwt = await token({ sub: 'heidi' });
    const replies = await Promise.all(anons.map((c, i) => c.request({ op: 'auth', id: i, token: jwt })));
    expect(replies.filter((r) => r.op === 'ack')).toHaveLength(2);
    expect(replies.filter((r) => r.op === 'error' && r.code === 'LIMIT')).toHaveLength(4);
    expect(engine.access!.limits.connectionsOf('heidi')).toBe(2);
    // concurrent upgrades for the same user are held to it too
    const headers = { authorization: `Bearer ${await token({ sub: 'ivan' })}` };
    const ups = await Promise.all(Array.from({ length: 6 }, () => status(wsUrl(engine), headers)));
    expect(ups.filter((u) => u.status === 101)).toHaveLength(2);
    expect(ups.filter((u) => u.status === 429)).toHaveLength(4);
    for (const c of anons) c.close();
    for (const u of ups) u.client?.close();
    await waitFor(() => engine.access!.limits.connectionsOf('heidi') === 0 && engine.access!.limits.connectionsOf('ivan') === 0);
  });
});

describe('connection ceiling (gateway.maxConnections) with tokens verified concurrently', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'optional', jwtSecret: SECRET }, gateway: { maxConnections: 3 }, limits: { connectionsPerIpPerSec: 0 } });
  });
  afterAll(() => engine.close());

  it('admits exactly the ceiling when upgrades race through token verification; the rest get 503', async () => {
    const headers = await Promise.all(Array.from({ length: 8 }, async (_, i) => ({ authorization: `Bearer ${await token({ sub: `cap-${i}` })}` })));
    const ups = await Promise.all(headers.map((h) => status(wsUrl(engine), h)));
    expect(ups.filter((u) => u.status === 101)).toHaveLength(3);
    expect(ups.filter((u) => u.status === 503)).toHaveLength(5);
    expect(engine.gateway!.capacity.refused).toBe(5);
    for (const u of ups) u.client?.close();
    await waitFor(() => engine.gateway!.connections.size === 0);
  });
});

describe('new connections per IP', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ limits: { connectionsPerIpPerSec: 1, connectionBurstPerIp: 3, exemptIps: [] } });
  });
  afterAll(() => engine.close());

  it('answers 429 before the upgrade once the burst is used, and recovers at the rate', async () => {
    const results: { status: number; client?: TestClient }[] = [];
    for (let i = 0; i < 5; i++) results.push(await status(wsUrl(engine)));
    expect(results.map((r) => r.status)).toEqual([101, 101, 101, 429, 429]);
    const res = await fetch(`http://127.0.0.1:${engine.port}/health`);
    expect(res.status).toBe(200); // plain HTTP is not counted
    const refusedAt = Date.now();
    // a refused upgrade takes no token: probe until the bucket has one again (1 per second)
    const again = await waitFor(
      async () => {
        const r = await status(wsUrl(engine));
        return r.status === 101 ? r : undefined;
      },
      { what: 'an upgrade admitted again', timeout: 5000, interval: 100 },
    );
    expect(Date.now() - refusedAt).toBeGreaterThanOrEqual(500);
    for (const r of [...results, again]) r.client?.close();
  });
});

describe('loopback is exempt from the per-IP rate by default', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ limits: { connectionsPerIpPerSec: 1, connectionBurstPerIp: 1 } });
  });
  afterAll(() => engine.close());

  it('accepts many local connections', async () => {
    const cs = await Promise.all(Array.from({ length: 10 }, () => TestClient.connect(wsUrl(engine))));
    expect(cs).toHaveLength(10);
    for (const c of cs) c.close();
  });
});
