import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';

/**
 * `history: N` on subscribe against the real gateway under a fast synthetic feed (2,500 ticks/s):
 * subscribers arrive exactly as bars close, at several throttles and in both encodings, and each
 * gets the N closed bars before its snapshot's bar and then every later closed bar once, stitched
 * by `seq`, checked against a reference subscriber that saw every bar close live.
 */
let engine: Engine;
let url = '';
beforeAll(async () => {
  engine = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { seed: 7, rate: 2500 } }, { env: {} });
  url = `ws://127.0.0.1:${engine.port}/v1/stream`;
});
afterAll(() => engine?.close());

const CH = 'bar.1s:BTC-USD';
const isBar = (f: Frame): boolean => f.op === 'data' && f.ch === CH;
const closedStarts = (frames: Frame[]): number[] => frames.filter((f) => isBar(f) && f.d.closed === true && !f.d.corrected).map((f) => f.d.t as number);

describe('history on subscribe under a fast feed', { timeout: 90_000 }, () => {
  it('stitches history and live bars with no gap and no duplicate while bars close', async () => {
    const ref = await TestClient.connect(url, { encoding: 'json' });
    await ref.request({ op: 'subscribe', id: 1, channels: [CH], throttle: 0 });
    // wait for a few closes so there is history to ask for
    await ref.waitForCount((f) => isBar(f) && f.d.closed === true, 4, 15_000);

    const subs: { c: TestClient; n: number; throttle: number }[] = [];
    const plan = [
      { n: 3, throttle: 0, encoding: 'json' as const },
      { n: 1, throttle: 100, encoding: 'msgpack' as const },
      { n: 5, throttle: 1000, encoding: 'json' as const },
      { n: 2, throttle: 0, encoding: 'msgpack' as const },
      { n: 4, throttle: 250, encoding: 'msgpack' as const },
      { n: 3, throttle: 50, encoding: 'json' as const },
    ];
    for (const p of plan) {
      const c = await TestClient.connect(url, { encoding: p.encoding });
      // subscribe the moment the reference sees a bar close: the race the stitch must survive
      const closes = ref.frames.filter((f) => isBar(f) && f.d.closed === true).length;
      await ref.waitForCount((f) => isBar(f) && f.d.closed === true, closes + 1, 10_000);
      c.send({ op: 'subscribe', id: 1, channels: [CH], throttle: p.throttle, history: p.n });
      subs.push({ c, n: p.n, throttle: p.throttle });
    }
    // every subscriber sees two more closes live
    for (const s of subs) await s.c.waitForCount((f) => isBar(f) && f.d.closed === true && f.snapshot !== true, 2, 15_000);
    const lastSeen = Math.max(...subs.map((s) => Math.max(...closedStarts(s.c.frames))));
    await ref.waitFor((f) => isBar(f) && f.d.closed === true && f.d.t >= lastSeen, 10_000);
    const truth = closedStarts(ref.frames);

    for (const { c, n } of subs) {
      const data = c.frames.filter(isBar);
      const snap = data[0]!;
      expect(snap.snapshot).toBe(true);
      data.forEach((f, i) => expect(f.seq, `seq of item ${i}`).toBe(snap.seq + i));
      const history = snap.history as Frame[];
      expect(history).toHaveLength(n);
      for (const b of history) expect(b).toMatchObject({ iv: 1000, closed: true });
      const all = [...history.map((b) => b.t as number), ...closedStarts(data)];
      const from = truth.indexOf(all[0]!);
      expect(from, `first history bar ${all[0]} is one the reference saw close`).toBeGreaterThanOrEqual(0);
      expect(all).toEqual(truth.slice(from, from + all.length));
      expect(history.at(-1)!.t).toBeLessThan(snap.d.t);
      c.close();
    }
    ref.close();
  });

  it('answers a bad history with BAD_REQUEST and keeps the connection', async () => {
    const c = await TestClient.connect(url, { encoding: 'json' });
    for (const history of [-1, 1001, 2.5, '10', null, true]) {
      const err = await c.request({ op: 'subscribe', id: `h${String(history)}`, channels: [CH], history });
      expect(err, String(history)).toMatchObject({ op: 'error', code: 'BAD_REQUEST' });
      expect(err.message).toContain('history');
    }
    const combo = await c.request({ op: 'subscribe', id: 'combo', channels: [CH], history: 5, snapshot: false });
    expect(combo).toMatchObject({ op: 'error', code: 'BAD_REQUEST' });
    const unknown = await c.request({ op: 'subscribe', id: 'iv', channels: ['bar.2m:BTC-USD', 'bar.1h:BTC-USD'], history: 5 });
    expect(unknown.subscribed).toEqual(['bar.1h:BTC-USD']);
    expect(unknown.rejected).toEqual([expect.objectContaining({ channel: 'bar.2m:BTC-USD', code: 'UNKNOWN_CHANNEL' })]);
    // history on a channel that is not a bar channel is ignored, like `since`
    const q = await c.request({ op: 'subscribe', id: 'q', channels: ['quote:BTC-USD'], history: 5 });
    expect(q.subscribed).toEqual(['quote:BTC-USD']);
    const snap = await c.waitFor((f) => f.op === 'data' && f.ch === 'quote:BTC-USD');
    expect(snap.history).toBeUndefined();
    const pong = await c.request({ op: 'ping', id: 'alive' });
    expect(pong.op).toBe('pong');
    c.close();
  });

  it('serves bar.5m, bar.1h and bar.1d built from trades, aligned on UTC', async () => {
    const c = await TestClient.connect(url, { encoding: 'json' });
    await c.request({ op: 'subscribe', id: 1, channels: ['bar.5m:ETH-USD', 'bar.1h:ETH-USD', 'bar.1d:ETH-USD'], history: 10 });
    const ivs = { 'bar.5m:ETH-USD': 300_000, 'bar.1h:ETH-USD': 3_600_000, 'bar.1d:ETH-USD': 86_400_000 };
    for (const [ch, iv] of Object.entries(ivs)) {
      const f = await c.waitFor((x) => x.op === 'data' && x.ch === ch, 15_000);
      expect(f.d.iv).toBe(iv);
      expect(f.d.t % iv).toBe(0);
      expect(f.d.t).toBeLessThanOrEqual(Date.now());
      expect(f.d.t + iv).toBeGreaterThan(Date.now() - iv);
    }
    c.close();
  });
});
