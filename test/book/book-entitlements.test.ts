import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { marketSubject } from '../../src/bus/subjects.js';
import { encodeTick } from '../../src/codec/tick-codec.js';
import type { Engine } from '../../src/app/engine.js';
import type { BookTick } from '../../src/core/schema.js';
import { msToNs } from '../../src/core/time.js';
import { LocalBook } from '../../src/protocol/book.js';
import { TestClient } from '../helpers/ws-client.js';
import type { Frame } from '../helpers/ws-client.js';
import { SECRET, testEngine, token, wsUrl } from '../auth/helpers.js';
import { quietFor, waitFor } from '../helpers/wait.js';

/** Entitlements and delayed data on `book:SYM`: FORBIDDEN per item, delayed books built from the delayed stream only. */
describe('book channels: entitlements and delay', () => {
  let engine: Engine;
  const DELAY = 1500;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'required', jwtSecret: SECRET, delayMs: DELAY, defaultEntitlement: 'none' } });
  });
  afterAll(() => engine.close());

  const connect = async (ent: unknown, sub: string): Promise<TestClient> =>
    TestClient.connect(wsUrl(engine), { headers: { authorization: `Bearer ${await token({ sub, claims: { ent } })}` }, encoding: 'json' });
  let seq = 0;
  const publish = (sym: string, t: Pick<BookTick, 'bids' | 'asks'> & { reset?: boolean }): void => {
    const now = Date.now();
    const tick: BookTick = { k: 'book', sym, src: 'test', seq: ++seq, ep: 7, ts: msToNs(now), rt: msToNs(now), ...t };
    engine.bus.publish(marketSubject('crypto', 'book', sym), encodeTick(tick));
  };

  it('refuses a book outside the entitlements with FORBIDDEN in the ack', async () => {
    const c = await connect({ classes: ['stock'] }, 'stock-only');
    const ack = await c.request({ op: 'subscribe', id: 1, channels: ['book:BTC-USD', 'quote:AAPL'], depth: 10 });
    expect(ack.subscribed).toEqual(['quote:AAPL']);
    expect(ack.rejected).toEqual([{ channel: 'book:BTC-USD', code: 'FORBIDDEN', reason: expect.stringMatching(/not entitled to BTC-USD/) }]);
    c.close();
  });

  it('serves a delayed entitlement the book from the delayed stream: nothing real time, then the same book', async () => {
    const rt = await connect({ classes: ['crypto'] }, 'rt');
    const dl = await connect({ delayed: ['crypto'] }, 'dl');
    const isBook = (f: Frame): boolean => f.op === 'data' && f.ch === 'book:ETH-USD';
    expect((await rt.request({ op: 'subscribe', id: 1, channels: ['book:ETH-USD'], depth: 10 })).subscribed).toEqual(['book:ETH-USD']);
    expect((await dl.request({ op: 'subscribe', id: 1, channels: ['book:ETH-USD'], depth: 10 })).subscribed).toEqual(['book:ETH-USD']);
    const sentAt = Date.now();
    publish('ETH-USD', {
      reset: true,
      bids: [
        [3000, 1],
        [2999, 2],
      ],
      asks: [[3001, 1.5]],
    });
    publish('ETH-USD', {
      bids: [
        [3000, 0],
        [2998, 4],
      ],
      asks: [[3002, 2]],
    });
    // the book of a client: every item must check out
    const rebuild = (c: TestClient): LocalBook => {
      const b = new LocalBook();
      for (const f of c.frames.filter(isBook)) expect(b.apply(f as never), `seq ${f.seq}`).toBe(true);
      return b;
    };
    const rtBook = await waitFor(() => {
      const b = rebuild(rt);
      return b.bids().length === 2 ? b : undefined;
    }, 'the real-time book with both updates');
    expect(rtBook.bids()).toEqual([
      [2999, 2],
      [2998, 4],
    ]);
    expect(rt.frames.filter(isBook).every((f) => f.d.delayed === undefined)).toBe(true);

    await quietFor(DELAY / 2, 'a delayed entitlement gets no book item before the delay');
    expect(dl.frames.filter(isBook)).toEqual([]);
    const first = await dl.waitFor(isBook, 10_000);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(DELAY - 50);
    expect(first).toMatchObject({ snapshot: true, d: { delayed: DELAY } });
    const dlBook = await waitFor(() => {
      const b = rebuild(dl);
      return JSON.stringify([b.bids(), b.asks()]) === JSON.stringify([rtBook.bids(), rtBook.asks()]) ? b : undefined;
    }, 'the delayed book equal to the real-time one');
    expect({ bids: dlBook.bids(), asks: dlBook.asks() }).toEqual({ bids: rtBook.bids(), asks: rtBook.asks() });
    rt.close();
    dl.close();
  });
});
