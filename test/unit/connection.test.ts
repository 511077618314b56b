import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { CODECS } from '../../src/codec/frames.js';
import type { FrameCodec } from '../../src/codec/frames.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import type { Config } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import { MARKET_KINDS, PLAIN_CHANNELS } from '../../src/protocol/channels.js';
import { Hub } from '../../src/fanout/hub.js';
import type { Authenticator } from '../../src/gateway/auth-hook.js';
import { anonymousAuthenticator } from '../../src/gateway/auth-hook.js';
import { CLOSE_SLOW_CONSUMER, Connection, newGatewayCounters } from '../../src/gateway/connection.js';
import { CostlyQueues } from '../../src/gateway/costly-queue.js';
import type { ConnectionDeps, GatewayCounters } from '../../src/gateway/connection.js';
import { GatewayLimits } from '../../src/gateway/limits.js';
import { LocalTopics } from '../../src/gateway/transport.js';
import { MemoryTransport } from '../helpers/memory-transport.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * Connection (protocol state of one client) driven through an in-memory transport: no server,
 * no sockets. The hub publishes into a LocalTopics registry the transport joins.
 */
const registry = defaultRegistry();
let clock: VirtualClock;
let bus: MemoryBus;
let topics: LocalTopics;
let hub: Hub;
let counters: GatewayCounters;
let seq = 0;

const newCounters = newGatewayCounters;

function config(overrides: Record<string, unknown> = {}): Readonly<Config> {
  return loadConfig({
    env: {},
    overrides: { slow: { highWaterBytes: 4096, lowWaterBytes: 1024, hardLimitBytes: 16384, stuckMs: 1000, lagMs: 0 }, ...overrides },
  });
}

function quote(sym: string, bp: number): void {
  const cls = registry.get(sym)!.assetClass;
  bus.publish(marketSubject(cls, 'quote', sym), encodeTick({ k: 'quote', sym, src: 't', seq: ++seq, ep: 1, ts: 1n, rt: 1n, bp, ap: bp + 1 }));
}

interface Rig {
  conn: Connection;
  t: MemoryTransport;
  /** send a client frame as the transport would hand it over */
  send(frame: unknown): void;
}

function open(opts: { cfg?: Readonly<Config>; codec?: FrameCodec; ping?: boolean; authenticator?: Authenticator; deps?: Partial<ConnectionDeps> } = {}): Rig {
  const codec = opts.codec ?? CODECS.json;
  const t = new MemoryTransport(topics, { remoteAddress: '10.0.0.7', ...(opts.ping === undefined ? {} : { ping: opts.ping }) });
  const deps: ConnectionDeps = {
    hub,
    resolvers: [new MarketChannelResolver(registry)],
    config: opts.cfg ?? config(),
    counters,
    authenticator: opts.authenticator ?? anonymousAuthenticator,
    costlyQueues: new CostlyQueues(),
    ...opts.deps,
  };
  const conn = new Connection(t, { id: 'c1', codec, principal: {}, expiresAt: undefined, ip: '10.0.0.7' }, deps);
  t.onEnd = () => conn.onClose();
  const send = (frame: unknown): void => {
    const bytes = codec.binary ? codec.encode(frame as object) : Buffer.from(typeof frame === 'string' ? frame : JSON.stringify(frame));
    const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    conn.onMessage(ab, codec.binary);
  };
  return { conn, t, send };
}

beforeEach(() => {
  clock = new VirtualClock();
  bus = new MemoryBus();
  topics = new LocalTopics();
  hub = new Hub({ bus, publisher: topics, clock, upstreamReleaseMs: 0 });
  counters = newCounters();
});

describe('Connection over an in-memory transport: protocol handling', () => {
  it('takes its address from the transport and answers ping with pong (id echoed, corked)', () => {
    const { conn, t, send } = open();
    expect(conn.ip).toBe('10.0.0.7');
    send({ op: 'ping', id: 'p1' });
    expect(t.ofOp('pong')).toEqual([{ op: 'pong', id: 'p1', server_time: expect.any(Number) }]);
    expect(t.corks).toBe(1);
  });

  it("subscribe: ack with the tier, snapshot then live data through the transport's topic", () => {
    const { conn, t, send } = open();
    quote('AAPL', 100); // nobody subscribed yet: no upstream, nothing kept
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL'], throttle: 0 });
    expect(t.ofOp('ack')).toEqual([{ op: 'ack', id: 1, subscribed: ['quote:AAPL'], rejected: [], throttle: 0 }]);
    expect(conn.subscriptions()).toEqual(['quote:AAPL']);
    quote('AAPL', 101);
    clock.turn();
    quote('AAPL', 102);
    clock.turn();
    const data = t.data('quote:AAPL');
    expect(data.map((f) => f.d.bp)).toEqual([101, 102]);
    expect(data[0]!.snapshot).toBe(true);
    expect(data[1]!.seq).toBe(data[0]!.seq + 1);
    expect(t.joined.size).toBe(1);
    expect(counters.subscribes).toBe(1);
  });

  it('msgpack connections get binary frames through the same transport', () => {
    const { t, send } = open({ codec: CODECS.msgpack });
    send({ op: 'subscribe', id: 2, channels: ['quote:MSFT'] });
    quote('MSFT', 50);
    clock.turn();
    expect(t.ofOp('ack')[0]!.subscribed).toEqual(['quote:MSFT']);
    expect(t.data('quote:MSFT').map((f) => f.d.bp)).toEqual([50]);
  });

  it('unsubscribe: ack, leaves the topic, no more data', () => {
    const { conn, t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL'], snapshot: false });
    quote('AAPL', 1);
    clock.turn();
    send({ op: 'unsubscribe', id: 2, channels: ['quote:AAPL', 'quote:NOPE'] });
    expect(t.ofOp('ack')[1]).toEqual({ op: 'ack', id: 2, unsubscribed: ['quote:AAPL', 'quote:NOPE'], rejected: [] });
    quote('AAPL', 2);
    clock.turn();
    expect(t.data().map((f) => f.d.bp)).toEqual([1]);
    expect(t.joined.size).toBe(0);
    expect(conn.subscriptionCount).toBe(0);
  });

  it('bad input gets protocol errors with the request id, and the connection stays usable', () => {
    const { t, send } = open();
    send('{not json');
    send({ op: 'launch', id: 7 });
    send({ op: 'subscribe', id: 8, channels: 'quote:AAPL' });
    send({ op: 'subscribe', id: 9, channels: ['quote:AAPL'], throttle: -1 });
    const errors = t.ofOp('error');
    expect(errors.map((e) => [e.code, e.id])).toEqual([
      ['BAD_FRAME', undefined],
      ['UNKNOWN_OP', 7],
      ['BAD_REQUEST', 8],
      ['BAD_REQUEST', 9],
    ]);
    expect(errors[1]!.message).toMatch(/unknown op "launch"/);
    expect(counters.protocolErrors).toMatchObject({ BAD_FRAME: 1, UNKNOWN_OP: 1, BAD_REQUEST: 2 });
    send({ op: 'ping', id: 10 });
    expect(t.ofOp('pong')).toHaveLength(1);
    expect(t.ended).toBeUndefined();
  });

  it('unknown and malformed channels are rejected per channel; the rest are subscribed', () => {
    const { t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'quote:ZZZZ', 'weather:PARIS', 'bad channel\u0001'] });
    const ack = t.ofOp('ack')[0]!;
    expect(ack.subscribed).toEqual(['quote:AAPL']);
    expect(ack.rejected.map((r: { code: string }) => r.code)).toEqual(['UNKNOWN_CHANNEL', 'UNKNOWN_CHANNEL', 'UNKNOWN_CHANNEL']);
    // the reasons list every kind a client may subscribe to (book included), and the plain channels
    const kindReason = (ack.rejected as { reason: string }[])[1]!.reason;
    for (const kind of MARKET_KINDS) expect(kindReason, `'weather:PARIS' reason names ${kind}`).toContain(kind);
    send({ op: 'subscribe', id: 2, channels: ['weather'] });
    const nameReason = (t.ofOp('ack')[1]!.rejected as { reason: string }[])[0]!.reason;
    for (const name of [...MARKET_KINDS, ...PLAIN_CHANNELS]) expect(nameReason, `'weather' reason names ${name}`).toContain(name);
  });

  it('limits: at most gateway.maxSubscriptions per connection (LIMIT), at most 1000 channels per request', () => {
    const { conn, t, send } = open({ cfg: config({ gateway: { maxSubscriptions: 2 } }) });
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'quote:MSFT', 'quote:TSLA'] });
    const ack = t.ofOp('ack')[0]!;
    expect(ack.subscribed).toEqual(['quote:AAPL', 'quote:MSFT']);
    expect(ack.rejected).toEqual([{ channel: 'quote:TSLA', code: 'LIMIT', reason: 'at most 2 subscriptions per connection' }]);
    send({ op: 'subscribe', id: 2, channels: Array.from({ length: 1001 }, (_, i) => `quote:S${i}`) });
    expect(t.ofOp('error').at(-1)).toMatchObject({ id: 2, code: 'LIMIT' });
    expect(conn.subscriptionCount).toBe(2);
  });

  it('the message-rate limit drops frames with RATE_LIMIT and closes 4008 through the transport', () => {
    const limits = new GatewayLimits(config({ limits: { messagesPerSec: 1, messageBurst: 2, rateLimitCloseMs: 1000 } }).limits);
    try {
      const { conn, t, send } = open();
      const sendLimited = (frame: object, now: number): void => {
        if (limits.admitMessage(conn, now)) send(frame);
      };
      for (let i = 0; i < 4; i++) sendLimited({ op: 'ping', id: i }, 1000);
      expect(t.ofOp('pong')).toHaveLength(2);
      expect(t.ofOp('error').map((e) => e.code)).toEqual(['RATE_LIMIT']);
      // kept over the rate for rateLimitCloseMs: closed
      for (let now = 1100; now <= 2000 && !t.ended; now += 100) for (let i = 0; i < 3; i++) sendLimited({ op: 'ping' }, now);
      expect(t.ended?.code).toBe(4008);
      expect(conn.closed).toBe(true);
    } finally {
      limits.close();
    }
  });

  it('in-band auth: a refused token is UNAUTHENTICATED and the principal stays', async () => {
    // (a token that expired already is refused too: test/auth/session-expiry.test.ts)
    const exp = Date.now() + 3_600_000;
    const authenticator: Authenticator = {
      mode: 'required',
      authenticate: async (token) =>
        token === 'good' ? { ok: true, principal: { user: 'alice' }, expiresAt: exp } : { ok: false, reason: 'bad signature', code: 'bad_signature' },
    };
    const { conn, t, send } = open({ authenticator });
    send({ op: 'auth', id: 1, token: 'bad' });
    await new Promise((r) => setImmediate(r));
    expect(t.ofOp('error')[0]).toMatchObject({ id: 1, code: 'UNAUTHENTICATED' });
    expect(conn.principal.user).toBeUndefined();
    send({ op: 'auth', id: 2, token: 'good' });
    await new Promise((r) => setImmediate(r));
    expect(t.ofOp('ack')[0]).toEqual({ op: 'ack', id: 2, subscribed: [], rejected: [], expires: exp });
    expect(conn.principal.user).toBe('alice');
  });
});

describe('Connection over an in-memory transport: slow consumers', () => {
  it('over high water it leaves its topics; drained, it resyncs with the latest value and rejoins', () => {
    const { conn, t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL'], snapshot: false });
    quote('AAPL', 1);
    clock.turn();
    t.buffered = 5000; // the client stopped reading
    expect(conn.checkBackpressure(0)).toBe(5000);
    expect(conn.slow).toBe(true);
    expect(t.joined.size).toBe(0);
    for (let i = 2; i <= 10; i++) {
      quote('AAPL', i);
      clock.turn();
    }
    expect(t.data().map((f) => f.d.bp)).toEqual([1]); // nothing while paused
    t.buffered = 500;
    conn.checkBackpressure(100);
    expect(conn.slow).toBe(false);
    const after = t.data();
    expect(after.map((f) => f.d.bp)).toEqual([1, 10]); // the latest value, its seq shows the gap
    expect(after[1]!.seq - after[0]!.seq).toBe(9);
    expect(t.joined.size).toBe(1);
    quote('AAPL', 11);
    clock.turn();
    expect(t.data().at(-1)!.seq).toBe(after[1]!.seq + 1);
    expect(counters).toMatchObject({ slowEpisodes: 1, resyncs: 1, maxBufferedBytes: 5000 });
  });

  it('a pause during which the channel emitted nothing ends without a resync item: no repeated seq', () => {
    const { conn, t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'quote:MSFT'], snapshot: false });
    quote('AAPL', 1);
    quote('MSFT', 1);
    clock.turn();
    t.buffered = 5000;
    conn.checkBackpressure(0);
    quote('MSFT', 2); // only MSFT moves while the client is paused
    clock.turn();
    t.buffered = 500;
    conn.checkBackpressure(100);
    expect(conn.slow).toBe(false);
    const items = t.data();
    // AAPL: its seq 1 was already sent, so nothing to resend; MSFT: the latest value after a gap
    expect(items.map((f) => [f.ch, f.seq])).toEqual([
      ['quote:AAPL', 1],
      ['quote:MSFT', 1],
      ['quote:MSFT', 2],
    ]);
    quote('AAPL', 2);
    clock.turn();
    expect(t.data().at(-1)).toMatchObject({ ch: 'quote:AAPL', seq: 2 });
  });

  it('a subscription moved or started while paused gets its snapshot once: the resync does not repeat its seq', () => {
    const { conn, t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'quote:MSFT'], snapshot: false });
    quote('AAPL', 1);
    quote('MSFT', 1);
    clock.turn();
    t.buffered = 5000;
    conn.checkBackpressure(0);
    expect(conn.slow).toBe(true);
    // while paused: AAPL goes off screen (a new tier: a snapshot at its seq), MSFT is subscribed again
    send({ op: 'visibility', id: 2, channels: ['quote:AAPL'], visible: false });
    send({ op: 'subscribe', id: 3, channels: ['quote:MSFT'] });
    // MSFT's channel was released and has no value yet: its first live value is its snapshot, sent now
    quote('MSFT', 2);
    clock.turn();
    t.buffered = 500;
    conn.checkBackpressure(100);
    expect(conn.slow).toBe(false);
    // per channel: a snapshot may restart seq; any other item has a higher seq than the one before
    const check = (ch: string): void => {
      const items = t.data().filter((f) => f.ch === ch);
      for (let i = 1; i < items.length; i++) {
        if (!items[i]!.snapshot) expect(items[i]!.seq, `${ch}: item ${i} after seq ${items[i - 1]!.seq}`).toBeGreaterThan(items[i - 1]!.seq);
      }
    };
    expect(
      t
        .data()
        .filter((f) => f.ch === 'quote:AAPL')
        .at(-1),
    ).toMatchObject({ snapshot: true, d: { bp: 1 } });
    check('quote:AAPL');
    check('quote:MSFT');
    quote('MSFT', 3);
    clock.turn();
    expect(t.data().at(-1)).toMatchObject({ ch: 'quote:MSFT', d: { bp: 3 } });
    check('quote:MSFT');
  });

  it('closes 4009 over the hard limit, and when stuck above water for slow.stuckMs', () => {
    const a = open();
    a.send({ op: 'subscribe', channels: ['quote:AAPL'] });
    a.t.buffered = 20_000;
    a.conn.checkBackpressure(0); // paused first
    a.conn.checkBackpressure(1);
    expect(a.t.ended).toEqual({ code: CLOSE_SLOW_CONSUMER, reason: 'slow consumer: could not keep up even with conflation' });
    expect(a.conn.closed).toBe(true);

    const b = open();
    b.send({ op: 'subscribe', channels: ['quote:MSFT'] });
    b.t.buffered = 5000;
    b.conn.checkBackpressure(0);
    b.conn.checkBackpressure(900);
    expect(b.t.ended).toBeUndefined();
    b.conn.checkBackpressure(1001);
    expect(b.t.ended?.code).toBe(CLOSE_SLOW_CONSUMER);
    expect(counters.slowDisconnects).toBe(2);
  });

  it('whenWritable: undefined under high water; over it, pauses and resolves once drained', async () => {
    const { conn, t } = open();
    expect(conn.whenWritable()).toBeUndefined();
    t.buffered = 4096;
    const p = conn.whenWritable();
    expect(p).toBeInstanceOf(Promise);
    expect(conn.slow).toBe(true);
    t.buffered = 0;
    conn.checkBackpressure(10);
    await expect(p).resolves.toBeUndefined();
  });

  it('read lag: pings go through the transport; a transport without pings is never paused for lag', () => {
    const cfg = config({
      slow: { highWaterBytes: 4096, lowWaterBytes: 1024, hardLimitBytes: 16384, stuckMs: 1000, lagMs: 500, lagCloseMs: 5000, pingMs: 100 },
    });
    const a = open({ cfg });
    a.send({ op: 'subscribe', channels: ['quote:AAPL'] });
    a.conn.checkBackpressure(1000);
    expect(a.t.pings).toHaveLength(1);
    a.conn.onPong(new TextEncoder().encode(a.t.pings[0]!).buffer as ArrayBuffer, 1010); // answered: held to the measure from now on
    a.conn.checkBackpressure(1200);
    a.conn.checkBackpressure(1800); // the second ping unanswered for 600 ms
    expect(a.conn.slow).toBe(true);
    expect(counters.lagEpisodes).toBe(1);

    const b = open({ cfg, ping: false });
    b.send({ op: 'subscribe', channels: ['quote:AAPL'] });
    for (let now = 1000; now < 10_000; now += 100) b.conn.checkBackpressure(now);
    expect(b.conn.slow).toBe(false);
    expect(b.t.ended).toBeUndefined();
  });

  it('close: leaves the hub and wakes replays; nothing is sent after the transport ended', () => {
    const { conn, t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL'] });
    conn.end(1001, 'server shutting down');
    expect(t.ended).toEqual({ code: 1001, reason: 'server shutting down' });
    expect(conn.closed).toBe(true);
    quote('AAPL', 3);
    clock.turn();
    conn.sendFrame({ op: 'pong', server_time: 0 });
    expect(t.data()).toEqual([]);
    expect(hub.upstreamCount).toBe(0);
  });
});

function trade(sym: string, p: number): void {
  const cls = registry.get(sym)!.assetClass;
  bus.publish(marketSubject(cls, 'trade', sym), encodeTick({ k: 'trade', sym, src: 't', seq: ++seq, ep: 1, ts: 1n, rt: 1n, id: `t${p}`, p, s: 1 }));
}

describe('Connection: subscribing again to a channel it has (docs/protocol.md#subscribe)', () => {
  it('trades pending in the old subscription are sent before the ack, whatever the new throttle', () => {
    for (const [from, to] of [
      [0, 0],
      [0, 250],
      [250, 100],
      [250, 250],
    ] as const) {
      for (const snapshot of [false, true]) {
        const what = `throttle ${from} -> ${to}, snapshot ${snapshot}`;
        clock = new VirtualClock();
        bus = new MemoryBus();
        topics = new LocalTopics();
        hub = new Hub({ bus, publisher: topics, clock, upstreamReleaseMs: 0 });
        const { t, send } = open();
        send({ op: 'subscribe', id: 1, channels: ['trade:AAPL'], throttle: from, snapshot: false });
        trade('AAPL', 1);
        clock.advance(1000);
        trade('AAPL', 2); // a throttled tier holds these for its window; tier 0 for the turn's batch
        trade('AAPL', 3);
        send({ op: 'subscribe', id: 2, channels: ['trade:AAPL'], throttle: to, snapshot });
        clock.advance(1000);
        trade('AAPL', 4);
        clock.advance(1000);
        // every trade published while subscribed reaches the client (a new snapshot may repeat the last one)
        expect([...new Set(t.data('trade:AAPL').map((f) => f.d.p as number))], what).toEqual([1, 2, 3, 4]);
        const items = t.data('trade:AAPL');
        if (from === to && !snapshot) {
          // the same channel and tier without a snapshot: the subscription simply continues
          expect(
            items.map((f) => [f.d.p, f.seq - items[0]!.seq]),
            what,
          ).toEqual([
            [1, 0],
            [2, 1],
            [3, 2],
            [4, 3],
          ]);
          continue;
        }
        // the old subscription's items come before the ack, with contiguous seq; the new one's after it
        const ackAt = t.messages.findIndex((m) => m.op === 'ack' && m.id === 2);
        const before = t.messages.slice(0, ackAt).flatMap((m) => (m.op === 'batch' ? (m.items as typeof t.messages) : m.op === 'data' ? [m] : []));
        expect(
          before.map((f) => [f.d.p, f.seq - before[0]!.seq]),
          what,
        ).toEqual([
          [1, 0],
          [2, 1],
          [3, 2],
        ]);
      }
    }
  });

  it('a latest-value channel subscribed again without a snapshot is not left on an older value', () => {
    const { t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL'], snapshot: false });
    quote('AAPL', 1);
    clock.turn();
    quote('AAPL', 2); // pending for the turn's batch
    send({ op: 'subscribe', id: 2, channels: ['quote:AAPL', 'quote:MSFT'], snapshot: false });
    clock.advance(1000);
    expect(t.data('quote:AAPL').map((f) => f.d.bp)).toEqual([1, 2]);
    const items = t.data('quote:AAPL');
    expect(items[1]!.seq).toBe(items[0]!.seq + 1); // the same channel and tier: the subscription simply continues
  });

  it('a snapshot the hub serves while the connection is paused is not repeated by the resync', () => {
    const { conn, t, send } = open();
    send({ op: 'subscribe', id: 1, channels: ['quote:AAPL'] }); // no value yet: the first live one is the snapshot
    quote('AAPL', 1);
    t.buffered = 5000; // the client stops reading before the turn's flush
    conn.checkBackpressure(0);
    expect(conn.slow).toBe(true);
    clock.turn(); // the waiting subscriber is sent its snapshot
    t.buffered = 0;
    conn.checkBackpressure(100);
    expect(conn.slow).toBe(false);
    const items = t.data('quote:AAPL');
    expect(items.map((f) => [f.seq, f.snapshot])).toEqual([[1, true]]);
    quote('AAPL', 2);
    clock.turn();
    expect(t.data('quote:AAPL').map((f) => f.seq)).toEqual([1, 2]);
  });
});

describe('Connection: frames after an auth wait for its answer', () => {
  it('a request sent right after an auth runs with the new identity, and is answered after it', async () => {
    let verify: ((ok: boolean) => void) | undefined;
    const authenticator: Authenticator = {
      mode: 'optional',
      authenticate: (token) =>
        new Promise((resolve) => {
          verify = (ok) => resolve(ok ? { ok: true, principal: { user: token! } } : { ok: false, reason: 'bad signature', code: 'bad_signature' });
        }),
    };
    // a private channel: only for a user
    const mine = {
      resolve: (name: string, principal: { user?: string }) =>
        name !== 'mine'
          ? undefined
          : principal.user
            ? { ok: true as const, spec: { ...(new MarketChannelResolver(registry).resolve('quote:AAPL') as { spec: object }).spec, name: 'mine' } }
            : { ok: false as const, code: 'UNAUTHENTICATED' as const, reason: 'log in first' },
    };
    const { conn, t, send } = open({ authenticator, deps: { resolvers: [mine as never, new MarketChannelResolver(registry)] } });
    send({ op: 'auth', id: 1, token: 'alice' });
    send({ op: 'subscribe', id: 2, channels: ['mine'] });
    send({ op: 'ping', id: 3 });
    send({ op: 'auth', id: 4, token: 'alice' });
    send({ op: 'ping', id: 5 });
    expect(t.frames).toEqual([]); // nothing is answered before the auth is
    verify!(true);
    await new Promise((r) => setImmediate(r));
    verify!(false);
    await new Promise((r) => setImmediate(r));
    expect(t.frames.map((f) => [f.op, f.id, f.code])).toEqual([
      ['ack', 1, undefined],
      ['ack', 2, undefined],
      ['pong', 3, undefined],
      ['error', 4, 'UNAUTHENTICATED'],
      ['pong', 5, undefined],
    ]);
    expect(t.ofOp('ack')[1]!.rejected).toEqual([]);
    expect(conn.principal.user).toBe('alice');
  });

  it(`at most ${256} frames wait; more are refused with LIMIT, with their id`, async () => {
    let verify: (() => void) | undefined;
    const authenticator: Authenticator = {
      mode: 'optional',
      authenticate: () =>
        new Promise((resolve) => {
          verify = () => resolve({ ok: true, principal: { user: 'bob' } });
        }),
    };
    const { t, send } = open({ authenticator });
    send({ op: 'auth', id: 'a', token: 'x' });
    for (let i = 0; i < 258; i++) send({ op: 'ping', id: i });
    expect(t.frames.map((f) => [f.op, f.id, f.code])).toEqual([
      ['error', 256, 'LIMIT'],
      ['error', 257, 'LIMIT'],
    ]);
    verify!();
    await new Promise((r) => setImmediate(r));
    expect(t.ofOp('pong').map((f) => f.id)).toEqual([...Array(256).keys()]);
  });

  it('and at most 16 times gateway.maxFrameBytes bytes', async () => {
    let verify: (() => void) | undefined;
    const authenticator: Authenticator = {
      mode: 'optional',
      authenticate: () =>
        new Promise((resolve) => {
          verify = () => resolve({ ok: true, principal: { user: 'bob' } });
        }),
    };
    const { t, send } = open({ authenticator, cfg: config({ gateway: { maxFrameBytes: 1024 } }) });
    send({ op: 'auth', id: 'a', token: 'x' });
    // 20 frames of about 1000 bytes: 16 of them fit in 16 KiB
    for (let i = 0; i < 20; i++) send({ op: 'ping', id: i, pad: 'x'.repeat(960) });
    expect(t.frames.map((f) => [f.op, f.id, f.code])).toEqual([16, 17, 18, 19].map((i) => ['error', i, 'LIMIT']));
    verify!();
    await new Promise((r) => setImmediate(r));
    expect(t.ofOp('pong').map((f) => f.id)).toEqual([...Array(16).keys()]);
  });
});

describe('Connection: an auth whose verifier fails', () => {
  it('is answered UNAUTHENTICATED (retry later), keeps the identity, and the frames after it are served', async () => {
    const authenticator: Authenticator = {
      mode: 'optional',
      authenticate: () => Promise.reject(new Error('identity provider down')),
    };
    const { conn, t, send } = open({ authenticator });
    send({ op: 'auth', id: 1, token: 'x' });
    send({ op: 'ping', id: 2 });
    await new Promise((r) => setImmediate(r));
    expect(t.frames.map((f) => [f.op, f.id, f.code])).toEqual([
      ['error', 1, 'UNAUTHENTICATED'],
      ['pong', 2, undefined],
    ]);
    expect(t.frames[0]!.message).toMatch(/could not be checked.*retry/);
    expect(conn.principal.user).toBeUndefined();
    expect(conn.closed).toBe(false);
  });
});

describe('Connection: answers quoting client text are well-formed Unicode', () => {
  it('an op or channel name cut in the middle of an emoji is sent with U+FFFD, in MessagePack as in JSON', () => {
    const loneSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
    for (const codec of [CODECS.msgpack, CODECS.json]) {
      const { t, send } = open({ codec });
      send({ op: `x${'😀'.repeat(40)}`, id: 1 });
      send({ op: 'subscribe', id: 2, channels: [`x${'😀'.repeat(100)}`] });
      send({ op: 'visibility', id: 3, channels: [`x${'😀'.repeat(100)}`], visible: false });
      const [error, ack, vis] = t.frames;
      expect(error).toMatchObject({ op: 'error', id: 1, code: 'UNKNOWN_OP' });
      expect(error!.message).not.toMatch(loneSurrogate);
      expect(error!.message).toContain('\ufffd');
      expect(ack!.rejected[0].channel).not.toMatch(loneSurrogate);
      expect(vis!.rejected[0].channel).not.toMatch(loneSurrogate);
      expect(vis!.rejected[0].reason).not.toMatch(loneSurrogate);
    }
  });
});
