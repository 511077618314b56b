import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Entitlements } from '../../src/access/entitlements.js';
import { MarketDelay } from '../../src/fanout/market-delay.js';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import type { Tick } from '../../src/core/schema.js';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { publishTick, SECRET, testEngine, token, wsUrl } from './helpers.js';
import { quietFor } from '../helpers/wait.js';

describe('entitlements claim', () => {
  it('grants classes and symbol patterns in real time, delayed ones delayed, nothing else', () => {
    const e = Entitlements.parse({ classes: ['crypto'], symbols: ['AAPL', 'BRK.*'], delayed: ['stock', 'EUR-*'] });
    expect(typeof e).not.toBe('string');
    const ent = e as Entitlements;
    expect(ent.access('BTC-USD', 'crypto')).toBe('realtime');
    expect(ent.access('AAPL', 'stock')).toBe('realtime');
    expect(ent.access('BRK.B', 'stock')).toBe('realtime');
    expect(ent.access('MSFT', 'stock')).toBe('delayed');
    expect(ent.access('EUR-USD', 'forex')).toBe('delayed');
    expect(ent.access('USD-JPY', 'forex')).toBe('none');
  });

  it('rejects malformed claims with a message naming the field', () => {
    expect(Entitlements.parse(['crypto'])).toMatch(/must be an object/);
    expect(Entitlements.parse({ classes: 'crypto' })).toMatch(/ent.classes/);
    expect(Entitlements.parse({ symbols: ['aapl'] })).toMatch(/ent.symbols/);
    expect(Entitlements.parse({ realtime: [] })).toMatch(/ent.realtime/);
  });
});

describe('MarketDelay memory bound', () => {
  it('thins conflatable updates per time slot and keeps trades up to the bound, oldest dropped', async () => {
    const bus = new MemoryBus();
    const delay = new MarketDelay(bus, { delayMs: 60_000, maxBuffered: 16 });
    const quotes = marketSubject('stock', 'quote', 'AAPL');
    const trades = marketSubject('stock', 'trade', 'AAPL');
    const offQ = delay.subscribe(quotes, () => undefined);
    const offT = delay.subscribe(trades, () => undefined);
    const now = BigInt(Date.now()) * 1_000_000n;
    for (let i = 0; i < 1000; i++) {
      bus.publish(quotes, encodeTick({ k: 'quote', sym: 'AAPL', src: 't', seq: i, ep: 1, ts: now, rt: now, bp: 1, ap: 2 } as Tick));
      bus.publish(trades, encodeTick({ k: 'trade', sym: 'AAPL', src: 't', seq: i, ep: 1, ts: now, rt: now, id: String(i), p: 1, s: 1 } as Tick));
    }
    // quotes within one slot (60 s / 16) collapse; trades are capped at 16
    expect(delay.stats.buffered).toBeLessThanOrEqual(16 + 2);
    expect(delay.stats.thinned).toBeGreaterThan(900);
    expect(delay.stats.dropped).toBe(1000 - 16);
    offQ();
    offT();
    expect(delay.stats).toMatchObject({ buffered: 0, lines: 0 });
    delay.close();
  });
});

describe('entitlements at subscribe, delayed market data', () => {
  let engine: Engine;
  const DELAY = 1500;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, delayMs: DELAY, defaultEntitlement: 'none' } });
  });
  afterAll(() => engine.close());

  const connect = async (ent: unknown, sub = 'alice'): Promise<TestClient> =>
    TestClient.connect(wsUrl(engine), {
      headers: { authorization: `Bearer ${await token({ sub, claims: ent === undefined ? {} : { ent } })}` },
      encoding: 'json',
    });

  it('refuses channels outside the entitlements per item with FORBIDDEN', async () => {
    const c = await connect({ classes: ['crypto'], symbols: ['AAPL'] });
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'trade:BTC-USD', 'quote:MSFT', 'ticker:EUR-USD', 'quote:NOPE'] });
    expect(ack.subscribed).toEqual(['quote:AAPL', 'trade:BTC-USD']);
    expect(ack.rejected).toEqual([
      expect.objectContaining({ channel: 'quote:MSFT', code: 'FORBIDDEN' }),
      expect.objectContaining({ channel: 'ticker:EUR-USD', code: 'FORBIDDEN' }),
      expect.objectContaining({ channel: 'quote:NOPE', code: 'UNKNOWN_CHANNEL' }),
    ]);
    c.close();
    const none = await connect(undefined);
    const ack2 = await none.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'system'] });
    expect(ack2.subscribed).toEqual(['system']);
    expect(ack2.rejected[0]).toMatchObject({ channel: 'quote:AAPL', code: 'FORBIDDEN' });
    none.close();
  });

  it('serves a delayed entitlement the same channel, delayed, without a real-time snapshot', async () => {
    const rt = await connect({ symbols: ['NVDA'] }, 'rt-user');
    const dl = await connect({ delayed: ['stock'] }, 'delayed-user');
    const isQuote = (f: Frame) => f.op === 'data' && f.ch === 'quote:NVDA';
    // a value before anyone subscribes: real time gets it as a snapshot, delayed must not
    publishTick(engine, 'stock', { k: 'quote', sym: 'NVDA', bp: 100, ap: 101 } as never);
    expect((await rt.request({ op: 'subscribe', id: 1, channels: ['quote:NVDA'] })).subscribed).toEqual(['quote:NVDA']);
    expect((await dl.request({ op: 'subscribe', id: 1, channels: ['quote:NVDA'] })).subscribed).toEqual(['quote:NVDA']);

    const sentAt = Date.now();
    publishTick(engine, 'stock', { k: 'quote', sym: 'NVDA', bp: 110, ap: 111 } as never);
    const live = await rt.waitFor((f) => isQuote(f) && f.d.bp === 110);
    expect(live.d.delayed).toBeUndefined();

    await quietFor(DELAY / 2, 'no quote on the delayed connection before its delay');
    expect(dl.frames.filter(isQuote)).toEqual([]);
    const delayed = await dl.waitFor((f) => isQuote(f) && f.d.bp === 110, 10_000);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(DELAY - 50);
    expect(delayed.d).toMatchObject({ bp: 110, ap: 111, delayed: DELAY });
    expect(dl.frames.filter(isQuote).some((f) => f.d.bp === 100)).toBe(false);
    rt.close();
    dl.close();
  });

  it('delivers delayed trades in order, none lost', async () => {
    const dl = await connect({ delayed: ['crypto'] }, 'delayed-trader');
    await dl.request({ op: 'subscribe', id: 1, channels: ['trade:ETH-USD'] });
    for (let i = 0; i < 20; i++) publishTick(engine, 'crypto', { k: 'trade', sym: 'ETH-USD', id: `t${i}`, p: 2000 + i, s: 1 } as never);
    const got = await dl.waitForCount((f) => f.op === 'data' && f.ch === 'trade:ETH-USD', 20, 10_000);
    expect(got.map((f) => f.d.id)).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}`));
    expect(got.every((f) => f.d.delayed === DELAY)).toBe(true);
    const seqs = got.map((f) => f.seq);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBe(seqs[i - 1] + 1);
    dl.close();
  });
});
