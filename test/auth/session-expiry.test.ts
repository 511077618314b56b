import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { CODECS } from '../../src/codec/frames.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import { Hub } from '../../src/fanout/hub.js';
import { anonymousAuthenticator } from '../../src/gateway/auth-hook.js';
import { Connection, newGatewayCounters } from '../../src/gateway/connection.js';
import { CostlyQueues } from '../../src/gateway/costly-queue.js';
import { LocalTopics } from '../../src/gateway/transport.js';
import { CloseCode } from '../../src/protocol/index.js';
import { MemoryTransport } from '../helpers/memory-transport.js';
import { TestClient } from '../helpers/ws-client.js';
import { publishTick, SECRET, testEngine, token, wsUrl } from './helpers.js';

/**
 * A token's `exp` is the end of what its connection may do. The session policy closes the
 * connection with a timer at `exp`, but a timer runs only when the event loop gets to it: frames
 * read in the same turn (a busy gateway, or frames held while an `auth` was verified) were
 * handled with the lapsed identity first, subscriptions acked and snapshots sent.
 */
const counters = newGatewayCounters;

describe('a frame handled after the token expired, before the expiry timer ran', () => {
  it('is not handled: the connection is closed 1008 "token expired" instead', () => {
    const topics = new LocalTopics();
    const bus = new MemoryBus();
    const hub = new Hub({ bus, publisher: topics, upstreamReleaseMs: 0 });
    const t = new MemoryTransport(topics);
    // the token lapsed a moment ago; the session policy's timer has not run yet
    const conn = new Connection(
      t,
      { id: 'c1', codec: CODECS.json, principal: { user: 'alice' }, expiresAt: Date.now() - 1, ip: '127.0.0.1' },
      {
        hub,
        resolvers: [new MarketChannelResolver(defaultRegistry())],
        config: loadConfig({ env: {} }),
        counters: counters(),
        authenticator: anonymousAuthenticator,
        costlyQueues: new CostlyQueues(),
      },
    );
    t.onEnd = () => conn.onClose();
    const frame = (o: object) => new TextEncoder().encode(JSON.stringify(o)).buffer as ArrayBuffer;
    conn.onMessage(frame({ op: 'subscribe', id: 1, channels: ['quote:AAPL'] }), false);
    conn.onMessage(frame({ op: 'ping', id: 2 }), false);
    expect(t.frames).toEqual([]);
    expect(t.ended).toEqual({ code: CloseCode.POLICY, reason: 'token expired' });
    expect(conn.subscriptionCount).toBe(0);
    hub.close();
  });
});

describe('an in-band auth whose token has already expired (within the clock tolerance)', () => {
  let engine: Engine;
  beforeAll(async () => {
    // clockToleranceSec 5 (the default): jose accepts a token that expired 2 s ago
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, clockToleranceSec: 5 } });
  });
  afterAll(() => engine.close());

  it('is refused (UNAUTHENTICATED, token expired); the frames sent after it run with the identity the connection had', async () => {
    const c = await TestClient.connect(wsUrl(engine), {
      headers: { authorization: `Bearer ${await token({ sub: 'alice', claims: { ent: { classes: ['crypto'] } } })}` },
      encoding: 'json',
    });
    await c.waitFor((f) => f.op === 'welcome');
    publishTick(engine, 'stock', { k: 'quote', sym: 'AAPL', bp: 100, ap: 101 } as never);
    // a lapsed token entitled to stocks, then a stock subscribe in the same burst (held while the auth is verified)
    c.send({ op: 'auth', id: 'a', token: await token({ sub: 'alice', expIn: -2, claims: { ent: { classes: ['stock', 'crypto'] } } }) });
    c.send({ op: 'subscribe', id: 's', channels: ['quote:AAPL', 'quote:BTC-USD'] });
    const auth = await c.waitFor((f) => f.id === 'a');
    expect(auth).toMatchObject({ op: 'error', code: 'UNAUTHENTICATED', message: expect.stringMatching(/expired/) });
    const ack = await c.waitFor((f) => f.id === 's');
    expect(ack.subscribed).toEqual(['quote:BTC-USD']);
    expect(ack.rejected).toMatchObject([{ channel: 'quote:AAPL', code: 'FORBIDDEN' }]);
    expect((await c.request({ op: 'ping', id: 'p' })).op).toBe('pong');
    expect(c.frames.some((f) => f.op === 'data' && f.ch === 'quote:AAPL')).toBe(false);
    expect(c.closeCode).toBeUndefined();
    c.close();
  });
});
