import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';

// Visibility-driven rates (docs/protocol.md#visibility) through a real gateway: off-screen
// latest-value subscriptions drop to throttle.offscreenMs, a hidden page pauses them, and coming
// back sends a fresh snapshot whose seq the live updates continue from. Trades never move.

let engine: Engine;
beforeAll(async () => {
  engine = await startEngine({
    host: '127.0.0.1',
    port: 0,
    log: { level: 'silent' },
    synthetic: { seed: 11, rate: 3000 },
    throttle: { tiers: [0, 100, 1000], minMs: 0, batchMs: 0, offscreenMs: 1000 },
  });
});
afterAll(async () => {
  await engine.close();
});

const url = (): string => `ws://127.0.0.1:${engine.port}/v1/stream`;
const data = (ch: string) => (f: Frame) => f.op === 'data' && f.ch === ch;
const ackOf = (id: number) => (f: Frame) => f.op === 'ack' && f.id === id;

/** Client with the arrival time of every frame. */
async function timedClient(): Promise<{ c: TestClient; at: Map<Frame, number> }> {
  const c = await TestClient.connect(url(), { encoding: 'json' });
  const at = new Map<Frame, number>();
  let seen = 0;
  c.ws.on('message', () => {
    const now = performance.now();
    for (; seen < c.frames.length; seen++) at.set(c.frames[seen]!, now);
  });
  return { c, at };
}

/** Wait for `n` frames matching pred at or after index `from`. */
async function countFrom(c: TestClient, pred: (f: Frame) => boolean, n: number, timeoutMs: number, from: number): Promise<void> {
  let k = 0;
  // waitFor tests frames in arrival order, each once: count the matches
  const matched = (f: Frame): boolean => pred(f) && ++k >= n;
  await c.waitFor(matched, timeoutMs, from);
}

/** Every item after the first is the one after it: no gap, no repeat. */
function expectContiguous(frames: Frame[]): void {
  for (let i = 1; i < frames.length; i++) expect(frames[i]!.seq, `item ${i} of ${frames.length}`).toBe(frames[i - 1]!.seq + 1);
}

describe('visibility', { timeout: 90_000 }, () => {
  it('off screen: a quote drops to the slow tier with a snapshot, trades stay; on screen again: a snapshot and the fast tier', async () => {
    const { c, at } = await timedClient();
    await c.request({ op: 'subscribe', id: 1, channels: ['quote:BTC-USD', 'trade:BTC-USD'], throttle: 0 });
    await c.waitForCount(data('quote:BTC-USD'), 30, 15_000);

    const off = await c.request({ op: 'visibility', id: 2, channels: ['quote:BTC-USD', 'trade:BTC-USD'], visible: false });
    expect(off.updated).toEqual(['quote:BTC-USD', 'trade:BTC-USD']);
    expect(off.rejected).toEqual([]);
    expect(off.page).toBe('visible');
    const iOff = c.frames.indexOf(off);
    const snapOff = await c.waitFor((f) => data('quote:BTC-USD')(f) && f.snapshot === true, 5000, iOff);
    // three live updates at the 1000 ms tier after that snapshot
    const slowFrom = c.frames.indexOf(snapOff);
    await countFrom(c, data('quote:BTC-USD'), 3, 10_000, slowFrom + 1);
    const slow = c.frames.slice(slowFrom).filter(data('quote:BTC-USD'));
    expectContiguous(slow.slice(0, 4));
    const live = slow.slice(1, 4);
    // two 1000 ms windows apart. Read from the quotes' own times, not arrival times: a loaded box
    // can deliver the first of them late and the third on time (arrivals 1415 ms apart were seen
    // at load 14). Emissions E0 < E1 < E2 are at least 1000 ms apart; the first quote was made by
    // E0, and the third after E1 (an emission needs an update newer than the one before; the
    // in-process bus hands a quote on in the turn it is made). So they are at least 1000 ms apart
    // whatever the load: at throttle 0 they were one quote interval apart. (The tighter 2000 ms
    // less one quote interval does not hold when the loaded feed itself makes quotes late: 1301 ms
    // was seen at load 21.)
    const t = (f: (typeof live)[number]): number => (f.d as { t: number }).t;
    expect(t(live[2]!) - t(live[0]!)).toBeGreaterThan(990); // (less the rounding of two clocks)
    expect(live.some((f) => (f.coalesced ?? 1) > 1)).toBe(true); // the feed sends faster: conflated

    const on = await c.request({ op: 'visibility', id: 3, channels: ['quote:BTC-USD'], visible: true });
    const iOn = c.frames.indexOf(on);
    const snapOn = await c.waitFor((f) => data('quote:BTC-USD')(f) && f.snapshot === true, 5000, iOn);
    const fastFrom = c.frames.indexOf(snapOn);
    await countFrom(c, data('quote:BTC-USD'), 20, 5000, fastFrom + 1);
    const fast = c.frames.slice(fastFrom).filter(data('quote:BTC-USD')).slice(0, 21);
    expectContiguous(fast);
    // 20 updates within well under the 20 s the slow tier would take
    expect(at.get(fast[20]!)! - at.get(fast[0]!)!).toBeLessThan(5000);

    // the trade stream never moved: no second snapshot, every trade in order
    const trades = c.frames.filter(data('trade:BTC-USD'));
    expect(trades.filter((f) => f.snapshot).length).toBe(1);
    expectContiguous(trades);
    c.close();
  });

  it('a hidden page pauses quotes and tickers (trades keep flowing, none lost); visible again resumes with a snapshot', async () => {
    const c = await TestClient.connect(url(), { encoding: 'msgpack' });
    await c.request({ op: 'subscribe', id: 1, channels: ['quote:ETH-USD', 'ticker:ETH-USD', 'trade:ETH-USD'], throttle: 100 });
    await c.waitForCount(data('quote:ETH-USD'), 5, 15_000);

    const hidden = await c.request({ op: 'visibility', id: 2, page: 'hidden' });
    expect(hidden.page).toBe('hidden');
    const iHidden = c.frames.indexOf(hidden);
    // the trades that keep arriving are the sentinel: 40 of them, and not one quote or ticker meanwhile
    await countFrom(c, data('trade:ETH-USD'), 40, 15_000, iHidden + 1);
    const during = c.frames.slice(iHidden + 1);
    expect(during.filter(data('quote:ETH-USD'))).toEqual([]);
    expect(during.filter(data('ticker:ETH-USD'))).toEqual([]);

    const shown = await c.request({ op: 'visibility', id: 3, page: 'visible' });
    expect(shown.page).toBe('visible');
    const iShown = c.frames.indexOf(shown);
    for (const ch of ['quote:ETH-USD', 'ticker:ETH-USD']) {
      const first = await c.waitFor(data(ch), 5000, iShown);
      expect(first.snapshot).toBe(true);
      const from = c.frames.indexOf(first);
      await countFrom(c, data(ch), 3, 10_000, from + 1);
      expectContiguous(c.frames.slice(from).filter(data(ch)).slice(0, 4));
    }
    // trades: one snapshot at the start, then every trade in order across the hidden period
    const trades = c.frames.filter(data('trade:ETH-USD'));
    expect(trades.filter((f) => f.snapshot).length).toBe(1);
    expectContiguous(trades);
    c.close();
  });

  it('subscribe with visible:false starts on the slow tier; re-subscribing resets it to on screen', async () => {
    const { c, at } = await timedClient();
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:SOL-USD'], throttle: 0, visible: false });
    expect(ack.subscribed).toEqual(['quote:SOL-USD']);
    expect(ack.throttle).toBe(0); // the tier asked for; visibility is a separate state
    const first = await c.waitFor(data('quote:SOL-USD'), 15_000);
    const from = c.frames.indexOf(first);
    await countFrom(c, data('quote:SOL-USD'), 3, 10_000, from + 1);
    const live = c.frames
      .slice(from + 1)
      .filter(data('quote:SOL-USD'))
      .slice(0, 3);
    expect(at.get(live[2]!)! - at.get(live[0]!)!).toBeGreaterThan(1500);
    const again = await c.request({ op: 'subscribe', id: 2, channels: ['quote:SOL-USD'], throttle: 0 });
    const i = c.frames.indexOf(again);
    await countFrom(c, data('quote:SOL-USD'), 10, 5000, i + 1);
    c.close();
  });

  it('a page hidden before subscribing: the subscription waits paused, and gets its snapshot when shown', async () => {
    const c = await TestClient.connect(url(), { encoding: 'json' });
    await c.request({ op: 'visibility', id: 1, page: 'hidden' });
    await c.request({ op: 'subscribe', id: 2, channels: ['quote:XRP-USD', 'trade:XRP-USD'], throttle: 0 });
    await c.waitForCount(data('trade:XRP-USD'), 20, 15_000);
    expect(c.frames.filter(data('quote:XRP-USD'))).toEqual([]);
    const shown = await c.request({ op: 'visibility', id: 3, page: 'visible' });
    const first = await c.waitFor(data('quote:XRP-USD'), 5000, c.frames.indexOf(shown));
    expect(first.snapshot).toBe(true);
    c.close();
  });

  it('bad visibility requests get clear errors and the connection stays usable', async () => {
    const c = await TestClient.connect(url(), { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL'], throttle: 0 });
    const notSub = await c.request({ op: 'visibility', id: 2, channels: ['quote:MSFT', 'quote:AAPL'], visible: false });
    expect(notSub.updated).toEqual(['quote:AAPL']);
    expect(notSub.rejected).toEqual([{ channel: 'quote:MSFT', code: 'UNKNOWN_CHANNEL', reason: 'not subscribed to "quote:MSFT" on this connection' }]);
    for (const [id, bad, text] of [
      [3, { page: 'gone' }, '"page" must be "visible" or "hidden"'],
      [4, { channels: ['quote:AAPL'] }, '"visible" must be true or false'],
      [5, { channels: ['quote:AAPL'], visible: 'no' }, '"visible" must be true or false'],
      [6, {}, 'give "page"'],
      [7, { channels: [], visible: true }, '"channels" is empty'],
    ] as const) {
      c.send({ op: 'visibility', id, ...bad });
      const err = await c.waitFor((f) => f.op === 'error' && f.id === id);
      expect(err.code).toBe('BAD_REQUEST');
      expect(err.message).toContain(text);
    }
    c.send({ op: 'subscribe', id: 8, channels: ['quote:AAPL'], visible: 1 });
    expect((await c.waitFor((f) => f.op === 'error' && f.id === 8)).message).toContain('"visible" must be true or false');
    expect((await c.request({ op: 'ping', id: 9 })).op).toBe('pong');
    await c.waitFor(ackOf(2));
    c.close();
  });
});
