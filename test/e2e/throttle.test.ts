import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { quietFor, waitFor } from '../helpers/wait.js';

let engine: Engine;
beforeAll(async () => {
  engine = await startEngine({
    host: '127.0.0.1',
    port: 0,
    log: { level: 'silent' },
    synthetic: { seed: 9, rate: 2000 },
    throttle: { tiers: [0, 100, 1000], minMs: 0 },
  });
});
afterAll(async () => {
  await engine.close();
});

const url = (): string => `ws://127.0.0.1:${engine.port}/v1/stream`;
const data = (ch: string) => (f: Frame) => f.op === 'data' && f.ch === ch;
const key = (d: Record<string, unknown>): string => JSON.stringify(d);

describe('throttling through the gateway', () => {
  it('changes a channel throttle on re-subscribe, and throttled quotes are values the feed sent', async () => {
    const fast = await TestClient.connect(url(), { encoding: 'json' });
    await fast.request({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD', 'trade:BTC-USD'], throttle: 0, snapshot: false });
    const c = await TestClient.connect(url(), { encoding: 'msgpack' });
    const ack0 = await c.request({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD', 'trade:BTC-USD'], throttle: 0 });
    expect(ack0.throttle).toBe(0);
    await c.waitForCount(data('quote:BTC-USD'), 20, 15_000);

    const ack = await c.request({ op: 'subscribe', id: 2, channels: ['quote:BTC-USD', 'trade:BTC-USD'], throttle: 700 });
    expect(ack.throttle).toBe(1000);
    const from = c.frames.indexOf(ack);
    // the rate over a 3.5 s window is what is checked: the window is the measurement, not a wait
    await quietFor(3500, 'the measuring window: at most one quote per 1000 ms');
    const slowQuotes = c.frames.slice(from).filter(data('quote:BTC-USD'));
    // a snapshot for the new tier, then at most one update per 1000 ms window
    expect(slowQuotes[0]!.snapshot).toBe(true);
    const live = slowQuotes.slice(1);
    expect(live.length).toBeGreaterThanOrEqual(2);
    expect(live.length).toBeLessThanOrEqual(4);
    for (let i = 1; i < live.length; i++) expect(live[i]!.seq).toBe(live[i - 1]!.seq + 1);
    expect(live.every((f) => f.coalesced >= 1 || f.coalesced === undefined)).toBe(true);
    // no invented values: every throttled quote is one the unthrottled client also saw
    // (the unthrottled client reads the same stream; on a busy machine it may be a little behind)
    const sentAll = (): boolean => {
      const sent = new Set(fast.frames.filter(data('quote:BTC-USD')).map((f) => key(f.d)));
      return live.every((f) => sent.has(key(f.d)));
    };
    await waitFor(sentAll, { what: 'every throttled quote also on the unthrottled client', timeout: 5000 }).catch(() => undefined);
    const sent = new Set(fast.frames.filter(data('quote:BTC-USD')).map((f) => key(f.d)));
    for (const f of live) expect(sent.has(key(f.d))).toBe(true);
    // trades under the 1000 ms tier: all of them, in order, same ids as the unthrottled client
    // every trade the unthrottled client has seen by now reaches the 1000 ms tier in its next window
    const lastFast = fast.frames.filter(data('trade:BTC-USD')).at(-1)!.d.id as string;
    await waitFor(() => c.frames.slice(from).some((f) => data('trade:BTC-USD')(f) && f.d.id === lastFast), {
      what: 'the last unthrottled trade on the 1000 ms tier',
      timeout: 5000,
    });
    const slowAll = c.frames
      .slice(from)
      .filter(data('trade:BTC-USD'))
      .filter((f) => !f.snapshot)
      .map((f) => f.d.id as string);
    const slowTrades = slowAll.slice(0, slowAll.indexOf(lastFast) + 1); // up to the trade both have seen
    const fastTrades = fast.frames.filter(data('trade:BTC-USD')).map((f) => f.d.id as string);
    expect(slowTrades.length).toBeGreaterThan(5);
    const start = fastTrades.indexOf(slowTrades[0]!);
    expect(start).toBeGreaterThanOrEqual(0);
    expect(fastTrades.slice(start, start + slowTrades.length)).toEqual(slowTrades);
    c.close();
    fast.close();
  });

  it('enforces the deployment minimum throttle', async () => {
    const e2 = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], throttle: { tiers: [0, 100, 250], minMs: 100 } });
    try {
      const c = await TestClient.connect(`ws://127.0.0.1:${e2.port}/v1/stream`, { encoding: 'json' });
      const w = await c.waitFor((f) => f.op === 'welcome');
      expect(w.limits.min_throttle).toBe(100);
      const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL'], throttle: 0 });
      expect(ack.throttle).toBe(100);
      const ack2 = await c.request({ op: 'subscribe', id: 2, channels: ['quote:MSFT'], throttle: 60_000 });
      expect(ack2.throttle).toBe(250);
      c.close();
    } finally {
      await e2.close();
    }
  });

  // batchMs 0: the pure leading edge; the default 50 ms grid: a gateway that has sent nothing
  // throttled for a whole step (here, nothing else is subscribed) does not hold it for the grid
  it.each([
    { grid: 'batchMs 0', throttle: { tiers: [0, 1000], minMs: 0, batchMs: 0 } },
    { grid: 'the default grid, idle', throttle: { tiers: [0, 1000], minMs: 0 } },
  ])('leading edge ($grid): a quiet throttled channel emits its next update at once; a faster one waits for the window', async ({ throttle }) => {
    const e3 = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], throttle });
    try {
      const c = await TestClient.connect(`ws://127.0.0.1:${e3.port}/v1/stream`, { encoding: 'msgpack' });
      expect((await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL'], throttle: 1000, snapshot: false })).throttle).toBe(1000);
      expect((await c.request({ op: 'subscribe', id: 2, channels: ['quote:MSFT'], throttle: 0, snapshot: false })).throttle).toBe(0);
      let n = 0;
      const quote = (sym: string, bp: number): void => {
        const cls = e3.registry.get(sym)!.assetClass;
        const ts = BigInt(Date.now()) * 1_000_000n;
        e3.bus.publish(marketSubject(cls, 'quote', sym), encodeTick({ k: 'quote', sym, src: 'e2e', seq: ++n, ep: 1, ts, rt: ts, bp, ap: bp + 1 }));
      };
      const is = (ch: string, bp: number) => (f: Frame) => f.op === 'data' && f.ch === ch && f.d.bp === bp;
      // AAPL has never emitted at its 1000 ms tier: its update goes out in the same turn as the
      // unthrottled MSFT sentinel published right after it, so it is there when the sentinel is
      quote('AAPL', 1);
      quote('MSFT', 1);
      const sentinel1 = await c.waitFor(is('quote:MSFT', 1));
      const first = c.frames.findIndex(is('quote:AAPL', 1));
      expect(first).toBeGreaterThanOrEqual(0);
      expect(first).toBeLessThan(c.frames.indexOf(sentinel1));
      const firstAt = Date.now();
      // two more right away: inside the window that started at that emission, so they wait
      // for it and go as one conflated update
      quote('AAPL', 2);
      quote('AAPL', 3);
      quote('MSFT', 2);
      await c.waitFor(is('quote:MSFT', 2));
      // (only checkable while the window is surely still open: on a very slow box it may not be)
      if (Date.now() - firstAt < 500) expect(c.frames.filter((f) => f.op === 'data' && f.ch === 'quote:AAPL')).toHaveLength(1);
      const last = await c.waitFor(is('quote:AAPL', 3), 10_000);
      const aapl = c.frames.filter((f) => f.op === 'data' && f.ch === 'quote:AAPL');
      expect(aapl.map((f) => f.seq)).toEqual(aapl.map((_, i) => i + 1));
      if (aapl.length === 2) expect(last.coalesced).toBe(2); // 2 was replaced by 3 in the window
      c.close();
    } finally {
      await e3.close();
    }
  });
});
