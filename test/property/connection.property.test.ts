import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { CODECS } from '../../src/codec/frames.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { MarketChannelResolver } from '../../src/fanout/channels.js';
import { Hub } from '../../src/fanout/hub.js';
import { anonymousAuthenticator } from '../../src/gateway/auth-hook.js';
import { Connection, newGatewayCounters } from '../../src/gateway/connection.js';
import { CostlyQueues } from '../../src/gateway/costly-queue.js';
import { LocalTopics } from '../../src/gateway/transport.js';
import { throttleTier } from '../../src/protocol/index.js';
import type { Frame } from '../helpers/memory-transport.js';
import { MemoryTransport } from '../helpers/memory-transport.js';
import { VirtualClock } from '../helpers/virtual-clock.js';

/**
 * Protocol v1 as a third-party client reads it (docs/protocol.md), for any sequence of requests
 * interleaved with ticks, clock advances and slow-consumer pauses: one Connection (the gateway's
 * protocol state of a client) and the hub on a virtual clock, through an in-memory transport.
 * The checker knows only the published contract, and reads the frames in the order the client gets
 * them:
 * - every request is answered in order, an ack or error carrying its `id`;
 * - per channel, an item comes only while subscribed (none after the unsubscribe ack, none while
 *   the page is hidden for a latest-value channel), a subscribe with `snapshot` (or a visibility
 *   change that moves a latest-value channel to another tier, or back from a hidden page) is
 *   followed by a snapshot before any other item of the channel, and `seq` then rises by one per
 *   item (a slow-consumer resync may skip forward, never back);
 * - trades and closed bars are never dropped: each one published while the client is subscribed reaches it
 *   (a re-subscribe with another throttle included), unless a slow-consumer pause intervened;
 * - latest-value channels end on the feed's last value, and get at most one live item per
 *   interval of the tier their throttle and visibility put them on, apart from what a subscribe
 *   again hands the old subscription at once, just before its ack (docs/protocol.md#subscribe:
 *   "the old one ends before the ack with what its throttle window owed it");
 * test/property/hub.property.test.ts checks the hub's emission timing; this file the contract
 * one connection sees.
 */
const registry = defaultRegistry();
const SYMS = ['AAPL', 'BTC-USD'] as const;
const KINDS = ['trade', 'quote', 'bar.1s'] as const;
const CHANNELS = SYMS.flatMap((s) => KINDS.map((k) => `${k}:${s}`));
const THROTTLES = [0, 30, 100, 250, 1000] as const;

type Op =
  | { op: 'sub'; channels: string[]; throttle: number; snapshot: boolean | undefined; visible: boolean | undefined }
  | { op: 'unsub'; channels: string[] }
  | { op: 'vis'; channels: string[] | undefined; visible: boolean; page: 'visible' | 'hidden' | undefined }
  | { op: 'ping' }
  | { op: 'tick'; kind: (typeof KINDS)[number]; sym: number; close: boolean }
  | { op: 'advance'; ms: number }
  | { op: 'turn' }
  | { op: 'slow' }
  | { op: 'drain' };

const channelsArb = fc.array(fc.constantFrom(...CHANNELS, 'quote:NOPE'), { minLength: 1, maxLength: 4 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('sub' as const),
      channels: channelsArb,
      throttle: fc.constantFrom(...THROTTLES),
      snapshot: fc.option(fc.boolean(), { nil: undefined }),
      visible: fc.option(fc.boolean(), { nil: undefined }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('unsub' as const), channels: channelsArb }) },
  {
    weight: 2,
    arbitrary: fc
      .record({
        op: fc.constant('vis' as const),
        channels: fc.option(channelsArb, { nil: undefined }),
        visible: fc.boolean(),
        page: fc.option(fc.constantFrom('visible' as const, 'hidden' as const), { nil: undefined }),
      })
      .filter((v) => v.channels !== undefined || v.page !== undefined),
  },
  { weight: 1, arbitrary: fc.constant({ op: 'ping' as const }) },
  {
    weight: 10,
    arbitrary: fc.record({ op: fc.constant('tick' as const), kind: fc.constantFrom(...KINDS), sym: fc.integer({ min: 0, max: 1 }), close: fc.boolean() }),
  },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 600 }) }) },
  { weight: 2, arbitrary: fc.constant({ op: 'turn' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'slow' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'drain' as const }) },
);

const newCounters = newGatewayCounters;

/** What the client knows of one channel, from the frames it has read. */
interface ChannelState {
  /** the tier the subscribe's throttle maps to (the ack's `throttle`) */
  requested: number;
  visible: boolean;
  /** the next item of the channel must be a snapshot */
  wantSnapshot: boolean;
  /** seq of the last item read (undefined: none since the subscribe) */
  seq: number | undefined;
  /** a slow-consumer resync came since the last item: seq may skip forward once */
  gapAllowed: boolean;
  /** virtual time of the last live (not snapshot) item at the current tier, for the throttle */
  lastLive: number | undefined;
}

/** A request sent, waiting for its answer (requests are answered in order). */
type Pending =
  | { op: 'subscribe'; id: number; channels: string[]; tier: number; snapshot: boolean; visible: boolean }
  | { op: 'unsubscribe'; id: number; channels: string[] }
  | { op: 'visibility'; id: number; channels: string[] | undefined; visible: boolean; page: 'visible' | 'hidden' | undefined }
  | { op: 'ping'; id: number };

function run(ops: Op[], batchMs: number, codec: 'json' | 'msgpack', lanes = 1): void {
  const config = loadConfig({
    env: {},
    overrides: {
      slow: { highWaterBytes: 4096, lowWaterBytes: 1024, hardLimitBytes: 1 << 30, stuckMs: 1 << 30, lagMs: 0 },
      throttle: { batchMs, lanes },
    },
  });
  const { tiers, minMs, offscreenMs } = config.throttle;
  const offscreenTier = throttleTier(offscreenMs, tiers, minMs);
  const clock = new VirtualClock();
  const bus = new MemoryBus();
  const topics = new LocalTopics();
  const hub = new Hub({ bus, publisher: topics, clock, upstreamReleaseMs: 300, batchMs, lanes });
  const t = new MemoryTransport(topics);
  // when each message reached the client (virtual time), for the throttle check
  const arrivedAt: number[] = [];
  const receive = t.send.bind(t);
  t.send = (bytes: Uint8Array, binary: boolean): void => {
    arrivedAt.push(clock.now);
    receive(bytes, binary);
  };
  const conn = new Connection(
    t,
    { id: 'c1', codec: CODECS[codec], principal: {}, expiresAt: undefined, ip: '127.0.0.1' },
    {
      hub,
      resolvers: [new MarketChannelResolver(registry)],
      config,
      counters: newCounters(),
      authenticator: anonymousAuthenticator,
      costlyQueues: new CostlyQueues(),
    },
  );
  t.onEnd = () => conn.onClose();
  const sendFrame = (frame: object): void => {
    const bytes = CODECS[codec].encode(frame);
    conn.onMessage(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer, CODECS[codec].binary);
  };

  // ---- drive the connection, noting where in the client's stream each event happened ----
  let nextId = 0;
  let n = 0;
  const barStart = new Map<string, number>();
  /** requests in the order sent */
  const requests: Pending[] = [];
  /** trades (by id) and closed bars (`c` + close), with the index of the next message when published */
  const trades: { ch: string; id: string; at: number }[] = [];
  /** message indices at which a slow-consumer pause began, and where resyncs happened */
  const pauses: number[] = [];
  const resyncs: number[] = [];
  const lastPublished = new Map<string, number>();
  let slow = false;
  for (const o of ops) {
    switch (o.op) {
      case 'sub': {
        const id = ++nextId;
        const frame: Record<string, unknown> = { op: 'subscribe', id, channels: o.channels, throttle: o.throttle };
        if (o.snapshot !== undefined) frame.snapshot = o.snapshot;
        if (o.visible !== undefined) frame.visible = o.visible;
        requests.push({
          op: 'subscribe',
          id,
          channels: o.channels,
          tier: throttleTier(o.throttle, tiers, minMs),
          snapshot: o.snapshot ?? true,
          visible: o.visible ?? true,
        });
        sendFrame(frame);
        break;
      }
      case 'unsub': {
        const id = ++nextId;
        requests.push({ op: 'unsubscribe', id, channels: o.channels });
        sendFrame({ op: 'unsubscribe', id, channels: o.channels });
        break;
      }
      case 'vis': {
        const id = ++nextId;
        const frame: Record<string, unknown> = { op: 'visibility', id };
        if (o.channels !== undefined) Object.assign(frame, { channels: o.channels, visible: o.visible });
        if (o.page !== undefined) frame.page = o.page;
        requests.push({ op: 'visibility', id, channels: o.channels, visible: o.visible, page: o.page });
        sendFrame(frame);
        break;
      }
      case 'ping': {
        const id = ++nextId;
        requests.push({ op: 'ping', id });
        sendFrame({ op: 'ping', id });
        break;
      }
      case 'tick': {
        const sym = SYMS[o.sym]!;
        const v = ++n;
        const cls = registry.get(sym)!.assetClass;
        const ts = BigInt(clock.now) * 1_000_000n;
        const base = { sym, src: 'p', seq: v, ep: 1, ts, rt: ts };
        const ch = `${o.kind}:${sym}`;
        let bytes: Uint8Array;
        if (o.kind === 'trade') {
          bytes = encodeTick({ ...base, k: 'trade', id: `t${v}`, p: v, s: 1 });
          trades.push({ ch, id: `t${v}`, at: t.messages.length });
        } else if (o.kind === 'quote') bytes = encodeTick({ ...base, k: 'quote', bp: v, ap: v + 1 });
        else {
          const start = barStart.get(sym) ?? 0;
          bytes = encodeTick({ ...base, k: 'bar', iv: '1s', t: start, o: v, h: v, l: v, c: v, v: 1, n: 1, closed: o.close });
          if (o.close) {
            barStart.set(sym, start + 1000);
            trades.push({ ch, id: `c${v}`, at: t.messages.length });
          }
        }
        lastPublished.set(ch, v);
        bus.publish(marketSubject(cls, o.kind, sym), bytes);
        break;
      }
      case 'advance':
        clock.advance(o.ms);
        break;
      case 'turn':
        clock.turn();
        break;
      case 'slow':
        if (slow) break;
        t.buffered = 5000;
        conn.checkBackpressure(clock.now);
        slow = conn.slow;
        if (slow) pauses.push(t.messages.length);
        break;
      case 'drain':
        if (!slow) break;
        t.buffered = 0;
        resyncs.push(t.messages.length);
        conn.checkBackpressure(clock.now);
        slow = conn.slow;
        break;
    }
  }
  if (slow) {
    t.buffered = 0;
    resyncs.push(t.messages.length);
    conn.checkBackpressure(clock.now);
  }
  clock.advance(6000); // every throttle window has been flushed

  // ---- read the stream as the client does ----
  const subs = new Map<string, ChannelState>();
  let pageHidden = false;
  /** latest-value channels the page/visibility puts where: paused, or a tier */
  const placement = (ch: string, s: ChannelState): number | 'paused' => {
    if (!ch.startsWith('quote:')) return s.requested;
    if (pageHidden) return 'paused';
    return s.visible ? s.requested : Math.max(s.requested, offscreenTier);
  };
  /** the subscription each trade of a channel was published under: delivered unless it ended or a pause came */
  const delivered = new Map<string, Set<string>>();
  let req = 0;
  const messages = t.messages;
  for (let i = 0; i <= messages.length; i++) {
    // slow-consumer events are marked at message indices: a resync may skip seq forward
    if (resyncs.includes(i))
      for (const s of subs.values()) {
        s.gapAllowed = true;
        s.lastLive = undefined;
      }
    if (i === messages.length) break;
    const m = messages[i]!;
    const where = `message ${i} ${JSON.stringify(m).slice(0, 200)}`;
    if (m.op === 'ack' || m.op === 'pong' || m.op === 'error') {
      const r = requests[req++]!;
      expect(r, `an answer with no request: ${where}`).toBeDefined();
      expect(m.id, `answers come in request order: ${where}`).toBe(r.id);
      if (r.op === 'ping') {
        expect(m.op).toBe('pong');
        continue;
      }
      expect(m.op, where).toBe('ack');
      if (r.op === 'subscribe') {
        const names = [...new Set(r.channels)];
        expect(m.subscribed, where).toEqual(names.filter((c) => c !== 'quote:NOPE'));
        expect(
          m.rejected.map((x: Frame) => [x.channel, x.code]),
          where,
        ).toEqual(names.includes('quote:NOPE') ? [['quote:NOPE', 'UNKNOWN_CHANNEL']] : []);
        expect(m.throttle, where).toBe(r.tier);
        for (const ch of m.subscribed as string[]) {
          subs.set(ch, { requested: r.tier, visible: r.visible, wantSnapshot: r.snapshot, seq: undefined, gapAllowed: false, lastLive: undefined });
        }
      } else if (r.op === 'unsubscribe') {
        expect(m.unsubscribed, where).toEqual([...new Set(r.channels)]);
        for (const ch of r.channels) subs.delete(ch);
      } else {
        const before = new Map([...subs].map(([ch, s]) => [ch, placement(ch, s)]));
        const names = r.channels === undefined ? [] : [...new Set(r.channels)];
        expect(m.updated, where).toEqual(names.filter((c) => subs.has(c)));
        expect(
          m.rejected.map((x: Frame) => x.channel),
          where,
        ).toEqual(names.filter((c) => !subs.has(c)));
        for (const ch of names) {
          const s = subs.get(ch);
          if (s) s.visible = r.visible;
        }
        if (r.page !== undefined) pageHidden = r.page === 'hidden';
        expect(m.page, where).toBe(pageHidden ? 'hidden' : 'visible');
        // a latest-value channel that moves to another tier, or comes back from a hidden page,
        // starts again with a snapshot at its new tier
        for (const [ch, s] of subs) {
          const was = before.get(ch)!;
          const now = placement(ch, s);
          if (now !== was && now !== 'paused') {
            s.wantSnapshot = true;
            s.seq = undefined;
            s.lastLive = undefined;
          }
        }
      }
      continue;
    }
    const items = m.op === 'batch' ? (m.items as Frame[]) : [m];
    // the items right before a subscribe's ack, of a channel it subscribes again: the old
    // subscription's hand-off, sent when the request came, whatever the throttle window
    let next = i + 1;
    while (next < messages.length && (messages[next]!.op === 'data' || messages[next]!.op === 'batch')) next++;
    const answered = messages[next]?.op === 'ack' ? requests[req] : undefined;
    const handOff = (ch: string): boolean => answered?.op === 'subscribe' && answered.channels.includes(ch);
    for (const it of items) {
      const ch = it.ch as string;
      const s = subs.get(ch);
      expect(s, `an item of a channel the client is not subscribed to: ${where}`).toBeDefined();
      expect(placement(ch, s!), `an item of a channel paused by the hidden page: ${where}`).not.toBe('paused');
      if (s!.wantSnapshot) expect(it.snapshot, `the first item after the subscribe is the snapshot: ${where}`).toBe(true);
      if (it.snapshot !== true && s!.seq !== undefined) {
        if (s!.gapAllowed) expect(it.seq, `seq after a resync: ${where}`).toBeGreaterThan(s!.seq);
        else expect(it.seq, `seq contiguous: ${where}`).toBe(s!.seq + 1);
      }
      // throttling: a latest-value channel gets at most one live item per interval of its tier
      const tier = placement(ch, s!) as number;
      if (ch.startsWith('quote:') && it.snapshot !== true && tier > 0) {
        if (s!.lastLive !== undefined && !s!.gapAllowed && !handOff(ch)) {
          expect(arrivedAt[i]! - s!.lastLive, `${ch} at tier ${tier}: live items ${s!.lastLive} and ${arrivedAt[i]} ms: ${where}`).toBeGreaterThanOrEqual(tier);
        }
        // (a resync item is the tier's last emission, sent late: not an emission of its own)
        s!.lastLive = s!.gapAllowed ? undefined : arrivedAt[i]!;
      }
      if (it.snapshot === true) s!.lastLive = undefined;
      s!.wantSnapshot = false;
      s!.gapAllowed = false;
      s!.seq = it.seq;
      const key = ch.startsWith('trade:') && it.op === 'data' ? (it.d.id as string) : ch.startsWith('bar') && it.d.closed === true ? `c${it.d.c}` : undefined;
      if (key !== undefined) {
        let set = delivered.get(ch);
        if (!set) delivered.set(ch, (set = new Set()));
        set.add(key);
      }
    }
  }
  expect(req, 'every request was answered').toBe(requests.length);

  // ---- trades and closed bars are never dropped while subscribed ----
  // when each channel was subscribed, by message index: from a subscribe ack to an unsubscribe ack
  const spans = new Map<string, [number, number][]>();
  {
    let k = 0;
    const open = new Map<string, number>();
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      if (m.op !== 'ack' && m.op !== 'pong' && m.op !== 'error') continue;
      const r = requests[k++]!;
      if (m.op !== 'ack') continue;
      if (r.op === 'subscribe') for (const ch of m.subscribed as string[]) if (!open.has(ch)) open.set(ch, i);
      if (r.op === 'unsubscribe') {
        for (const ch of new Set(r.channels)) {
          const from = open.get(ch);
          if (from === undefined) continue;
          open.delete(ch);
          spans.set(ch, [...(spans.get(ch) ?? []), [from, i]]);
        }
      }
    }
    for (const [ch, from] of open) spans.set(ch, [...(spans.get(ch) ?? []), [from, Infinity]]);
  }
  for (const tr of trades) {
    // subscribed when it was published, still subscribed at the end, and no pause from then on
    const covered = (spans.get(tr.ch) ?? []).some(([from, to]) => from < tr.at && to === Infinity);
    if (!covered || pauses.some((p) => p >= tr.at) || resyncs.some((p) => p >= tr.at)) continue;
    expect(delivered.get(tr.ch)?.has(tr.id) ?? false, `${tr.ch}: ${tr.id} published at message ${tr.at} while subscribed was never delivered`).toBe(true);
  }

  // ---- latest wins: a quote channel shown at the end holds the feed's last value ----
  for (const [ch, s] of subs) {
    if (!ch.startsWith('quote:') || placement(ch, s) === 'paused' || pauses.length > 0) continue;
    const last = lastPublished.get(ch);
    const got = t.data(ch).at(-1);
    if (last === undefined || got === undefined) continue;
    expect(got.d.bp, `${ch}: the last value read`).toBe(last);
  }
  hub.close();
}

const fcSeed = process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {};
const runs = (n: number): number => (process.env.FC_RUNS ? Number(process.env.FC_RUNS) : n);

describe('one connection, any request sequence: the contract of docs/protocol.md', { timeout: process.env.FC_RUNS ? 900_000 : 60_000 }, () => {
  it('acks in order by id; items only while subscribed; snapshot first; seq contiguous; trades never dropped; latest wins', () => {
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 80 }),
        fc.constantFrom(0, 50),
        fc.constantFrom('json' as const, 'msgpack' as const),
        fc.constantFrom(1, 1, 3),
        (ops, batchMs, codec, lanes) => run(ops, batchMs, codec, lanes),
      ),
      {
        ...fcSeed,
        numRuns: runs(1000),
        examples: [
          // a re-subscribe of an off-screen quote (tier 1000) one millisecond after its leading
          // emission: the old subscription's hand-off comes before the ack, inside the window (CI,
          // seed -1790651879; the checker counted it as a second live item of the window)
          [
            [
              { op: 'sub', channels: ['quote:BTC-USD'], throttle: 0, snapshot: false, visible: false },
              { op: 'tick', kind: 'quote', sym: 1, close: false },
              { op: 'advance', ms: 1 },
              { op: 'tick', kind: 'quote', sym: 1, close: false },
              { op: 'sub', channels: ['quote:BTC-USD', 'trade:AAPL'], throttle: 0, snapshot: undefined, visible: undefined },
            ] as Op[],
            0,
            'json',
            1,
          ],
          // found by this property: subscribing again (same tier, no snapshot) dropped the trade
          // pending in the old subscription's batch
          [
            [
              { op: 'sub', channels: ['trade:AAPL'], throttle: 0, snapshot: undefined, visible: undefined },
              { op: 'tick', kind: 'trade', sym: 0, close: false },
              { op: 'sub', channels: ['trade:AAPL'], throttle: 0, snapshot: false, visible: undefined },
            ] as Op[],
            0,
            'json',
            1,
          ],
          // ... and left a quote channel on an older value
          [
            [
              { op: 'sub', channels: ['quote:AAPL'], throttle: 0, snapshot: undefined, visible: undefined },
              { op: 'tick', kind: 'quote', sym: 0, close: false },
              { op: 'advance', ms: 1 },
              { op: 'tick', kind: 'quote', sym: 0, close: false },
              { op: 'sub', channels: ['quote:AAPL', 'trade:AAPL'], throttle: 0, snapshot: false, visible: undefined },
            ] as Op[],
            0,
            'json',
            1,
          ],
          // a snapshot served while the connection was paused came again, same seq, in the resync
          [
            [
              { op: 'sub', channels: ['quote:BTC-USD'], throttle: 0, snapshot: undefined, visible: undefined },
              { op: 'tick', kind: 'quote', sym: 1, close: false },
              { op: 'slow' },
              { op: 'advance', ms: 1 },
            ] as Op[],
            0,
            'json',
            1,
          ],
        ],
      },
    );
  });
});
