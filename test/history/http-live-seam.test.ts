import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { startEngine } from '../../src/app/engine.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';

/**
 * The seam a chart library meets when its first page comes over HTTP and the live bars over the
 * WebSocket (TradingView's getBars, then subscribeBars), as docs/protocol.md "Wiring a chart
 * library" tells it: GET /v1/bars, bars close meanwhile, then subscribe with a small `history`
 * and take from it only the bars newer than the page's newest. Under a fast feed the merged
 * series is every closed bar once, no gap, and each live item is either the last bar again or a
 * newer one (what an update()-style API accepts).
 */
let engine: Engine;
let base = '';
beforeAll(async () => {
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, synthetic: { seed: 11, rate: 2000, symbols: ['BTC-USD'], bookLevels: 0 } },
    { env: {} },
  );
  base = `127.0.0.1:${engine.port}`;
});
afterAll(() => engine?.close());

const CH = 'bar.1s:BTC-USD';
interface Bar {
  t: number;
  closed: boolean;
  c: number;
}
async function page(query: string): Promise<{ bars: Bar[]; next: number | null }> {
  const res = await fetch(`http://${base}/v1/bars?symbol=BTC-USD&interval=1s&${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as { bars: Bar[]; next: number | null };
}

describe('history over HTTP, then live bars', { timeout: 60_000 }, () => {
  it('merge by t with no gap and no duplicate when bars close between the two requests', async () => {
    await new Promise((r) => setTimeout(r, 3500)); // a few closed 1s bars
    const first = await page('limit=1000');
    expect(first.bars.length).toBeGreaterThan(1);
    const series: Bar[] = [...first.bars];
    await new Promise((r) => setTimeout(r, 2200)); // two more bars close before the subscribe

    const c = await TestClient.connect(`ws://${base}/v1/stream`, { encoding: 'json' });
    const violations: string[] = [];
    const take = (b: Bar): void => {
      const last = series[series.length - 1]!;
      if (b.t === last.t) series[series.length - 1] = b;
      else if (b.t > last.t) series.push(b);
      else violations.push(`older bar ${b.t} after ${last.t}`);
    };
    c.send({ op: 'subscribe', id: 1, channels: [CH], throttle: 0, history: 10 });
    const snap = await c.waitFor((f: Frame) => f.op === 'data' && f.ch === CH && f.snapshot === true, 10_000);
    const held = series[series.length - 1]!.t;
    const fromHistory = (snap.history as Bar[]).filter((b) => b.t > held);
    expect(fromHistory.length, 'bars that closed between the page and the subscribe').toBeGreaterThanOrEqual(1);
    for (const b of fromHistory) take(b);
    take(snap.d as Bar);
    // live for a while: several more bars close
    const start = c.frames.indexOf(snap) + 1;
    await new Promise((r) => setTimeout(r, 3000));
    for (const f of c.frames.slice(start)) if (f.op === 'data' && f.ch === CH) take(f.d as Bar);
    c.close();
    expect(violations).toEqual([]);

    // the truth: every closed bar the store holds over the same span
    const lastClosed = series.filter((b) => b.closed).at(-1)!.t;
    const truth = (await page(`from=${series[0]!.t}&to=${lastClosed + 1}&limit=1000`)).bars.map((b) => b.t);
    const merged = series.filter((b) => b.closed && b.t <= lastClosed).map((b) => b.t);
    expect(merged).toEqual(truth);
    expect(new Set(merged).size).toBe(merged.length);
    // and the closed values are the stored ones
    const stored = new Map((await page(`from=${series[0]!.t}&to=${lastClosed + 1}&limit=1000`)).bars.map((b) => [b.t, b.c]));
    for (const b of series.filter((x) => x.closed && x.t <= lastClosed)) expect(b.c, `close of ${b.t}`).toBe(stored.get(b.t));
  });
});
