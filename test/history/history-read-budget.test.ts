import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import type { Tick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import type { StoredBar } from '../../src/history/bar-store.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { testEngine, wsUrl } from '../auth/helpers.js';

const CHANNEL = 'bar.1m:BTC-USD';
const bar = (i: number): StoredBar => ({ t: 1_700_000_000_000 + i * 60_000, iv: 60_000, o: 1, h: 2, l: 0.5, c: 1.5, v: 10, n: 3, closed: true }) as StoredBar;

/**
 * `history` on subscribe and GET /v1/bars read the bar store. Without a bound, one client at its
 * frame rate re-subscribing with `history: 1000` made the gateway read a thousand bars per frame
 * and channel (results of superseded requests were read, then dropped): one anonymous connection
 * took a bystander's ping from 1 ms to 150 ms on a Redis store. Reads now take from a budget of
 * bars per second per user (per IP when anonymous) and per gateway; requests over it wait, and a
 * request superseded while it waits never reads.
 */
describe('bar store reads take from a budget (history.readBarsPerUserPerSec)', () => {
  let engine: Engine;
  let reads = 0;
  beforeAll(async () => {
    engine = await testEngine({ history: { readBarsPerUserPerSec: 1000, readBarsPerGatewayPerSec: 0 }, limits: { connectionsPerIpPerSec: 0 } });
    const store = engine.bars!;
    for (let i = 0; i < 1000; i++) store.put(CHANNEL, bar(i));
    const range = store.range.bind(store);
    store.range = (...args) => {
      reads++;
      return range(...args);
    };
  });
  afterAll(() => engine.close());

  it('40 re-subscribes with history 1000 in a burst: a few store reads, and the last subscribe gets its 1000 bars', async () => {
    const c = await TestClient.connect(wsUrl(engine), { encoding: 'json' });
    const before = reads;
    for (let i = 1; i <= 40; i++) c.send({ op: 'subscribe', id: i, channels: [CHANNEL], history: 1000 });
    await c.waitFor((f: Frame) => f.op === 'ack' && f.id === 40);
    // the open bar after the stored ones, as a feed publishes it: the snapshot that carries the history
    let seq = 0;
    const publishOpenBar = (): void => {
      const now = Date.now();
      const open = {
        src: 'test',
        seq: ++seq,
        ep: 1,
        ts: msToNs(now),
        rt: msToNs(now),
        sym: 'BTC-USD',
        k: 'bar',
        iv: '1m',
        t: bar(1000).t,
        o: 1,
        h: 1,
        l: 1,
        c: 1,
        v: seq,
        n: seq,
        closed: false,
      };
      engine.bus.publish(marketSubject('crypto', 'bar.1m', 'BTC-USD'), encodeTick(open as unknown as Tick));
    };
    publishOpenBar();
    const timer = setInterval(publishOpenBar, 100);
    let snap: Frame;
    try {
      snap = await c.waitFor((f: Frame) => f.op === 'data' && f.ch === CHANNEL && Array.isArray(f.history) && f.history.length === 1000, 20_000);
    } finally {
      clearInterval(timer);
    }
    expect(snap.history[999].t).toBe(bar(999).t);
    // the budget (1000 bars/s) lets about one read a second; without it each of
    // the 40 subscribes read the store
    expect(reads - before).toBeLessThanOrEqual(4);
    c.close();
  });

  it('GET /v1/bars takes from the same budget (per IP for anonymous clients): requests wait, all are answered', async () => {
    const before = reads;
    const url = `http://127.0.0.1:${engine.port}/v1/bars?symbol=BTC-USD&interval=1m&limit=1000`;
    // 5 x 1000 bars against 1000 a second: one is read at once, the others wait their turn (a second each)
    let answered = 0;
    let readsWhenTwoAnswered = -1;
    const answers = await Promise.all(
      Array.from({ length: 5 }, () =>
        fetch(url).then(async (r) => {
          const body = (await r.json()) as { bars: unknown[] };
          if (++answered === 2) readsWhenTwoAnswered = reads - before;
          return { status: r.status, bars: body.bars.length };
        }),
      ),
    );
    expect(answers).toEqual(Array(5).fill({ status: 200, bars: 1000 }));
    expect(readsWhenTwoAnswered).toBeLessThanOrEqual(3);
    expect(reads - before).toBe(5);
  });
});
