import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { nsToMs } from '../../../src/core/time.js';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { AlpacaFeed, AlpacaOptionsSchema } from '../alpaca-feed.js';
import { startAlpacaFake } from '../fake-server.js';
import type { AlpacaFakeOptions, AlpacaFakeServer } from '../fake-server.js';
import { quietFor } from '../../../test/helpers/wait.js';

const DOC_FRAMES = (JSON.parse(readFileSync(new URL('../fixtures/doc-examples.json', import.meta.url), 'utf8')) as { frames: Record<string, any>[][] }).frames;
const KEY = 'PKTEST1234';
const SECRET = 'sekret-5678';
const creds = { key: KEY, secret: SECRET, keyEnv: 'ALPACA_KEY_ID', secretEnv: 'ALPACA_SECRET_KEY' };
const options = (url: string, extra: Record<string, unknown> = {}) =>
  AlpacaOptionsSchema.parse({ url, symbols: ['AAPL', 'MSFT'], backoff: { initialMs: 20, maxMs: 200 }, ...extra });
const fake =
  (extra: Partial<AlpacaFakeOptions> = {}) =>
  () =>
    startAlpacaFake({ key: KEY, secret: SECRET, ...extra });

for (const encoding of ['json', 'msgpack'] as const) {
  runAdapterConformance({
    name: `alpaca (${encoding})`,
    startProvider: fake(),
    createAdapter: (p) => new AlpacaFeed('alpaca', options(p.url, { encoding }), creds),
    symbols: ['AAPL', 'MSFT'],
    kinds: ['trade', 'quote', 'bar'],
  });
}

/**
 * A feed whose fake Alpaca runs `act` on the adapter once, just before it answers the opening
 * subscription: symbols added or removed while that subscription is unanswered.
 */
const startActingBeforeOpeningAnswer = (act: (adapter: AlpacaFeed) => void): Promise<AdapterHarness<AlpacaFakeServer>> => {
  let adapter: AlpacaFeed | undefined;
  let acted = false;
  return startHarness(
    fake({
      pumpMs: 60_000,
      replayFixtures: false,
      beforeAnswer: () => {
        if (acted) return;
        acted = true;
        act(adapter!);
      },
    }),
    (p) => (adapter = new AlpacaFeed('alpaca', options(p.url), creds)),
  );
};

describe('alpaca adapter', () => {
  let h: AdapterHarness<AlpacaFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('authenticates, subscribes to trades/quotes/bars and normalizes the recorded frames (JSON)', async () => {
    h = await startHarness(fake({ pumpMs: 60_000 }), (p) => new AlpacaFeed('alpaca', options(p.url), creds));
    await h.waitFor('4 fixture ticks', () => h!.ticks.length >= 4);
    expect(h.provider.requests()).toEqual([
      { action: 'auth', key: KEY, secret: SECRET },
      { action: 'subscribe', trades: ['AAPL', 'MSFT'], quotes: ['AAPL', 'MSFT'], bars: ['AAPL', 'MSFT'] },
    ]);
    expect(h.state).toBe('connected');
    // trade ids are per exchange: the canonical id is venue-qualified
    // conditions ["@", "I"]: an odd lot, which sets no price
    expect(h.ticks[0]).toEqual({ k: 'trade', sym: 'AAPL', id: 'D:96921', p: 126.55, s: 1, venue: 'D', volumeOnly: true, ts: 1718026201123456789n });
    // quote sizes are shares by default (Alpaca: "in shares as of 2025-11-03"), passed through
    expect(h.ticks[1]).toEqual({ k: 'quote', sym: 'AAPL', bp: 126.54, bs: 3, ap: 126.56, as: 4, ts: 1718026201200000000n });
    expect(h.ticks[2]).toMatchObject({ k: 'trade', sym: 'MSFT', id: 'V:52983525033', p: 415.2, s: 100, ts: 1718026201300000001n });
    expect(h.ticks[3]).toEqual({
      k: 'bar',
      sym: 'AAPL',
      iv: '1m',
      t: 1718026200000,
      o: 126.5,
      h: 126.9,
      l: 126.4,
      c: 126.55,
      v: 49378,
      n: 461,
      closed: true,
      ts: 1718026260000000000n,
    });
  });

  it('speaks MessagePack when configured: binary requests, times from MessagePack timestamps', async () => {
    h = await startHarness(fake({ pumpMs: 60_000 }), (p) => new AlpacaFeed('alpaca', options(p.url, { encoding: 'msgpack' }), creds));
    await h.waitFor('4 fixture ticks', () => h!.ticks.length >= 4);
    expect(h.provider.allReceived.every((r) => Buffer.isBuffer(r))).toBe(true);
    expect(h.provider.requests()[0]).toEqual({ action: 'auth', key: KEY, secret: SECRET });
    expect(String([...h.provider.conns][0]!.headers['content-type'])).toBe('application/msgpack');
    // MessagePack timestamps keep their nanoseconds (not a millisecond Date)
    expect(h.ticks[0]).toMatchObject({ k: 'trade', sym: 'AAPL', id: 'D:96921', p: 126.55, ts: 1718026201123456789n });
    expect(h.ticks[2]).toMatchObject({ k: 'trade', sym: 'MSFT', ts: 1718026201300000001n });
    expect(h.ticks[3]).toMatchObject({ k: 'bar', iv: '1m', t: 1718026200000, n: 461 });
  });

  it('maps 402 auth failed to state auth_failed with a log line naming the env vars', async () => {
    h = await startHarness(
      fake(),
      (p) => new AlpacaFeed('alpaca', options(p.url, { backoff: { initialMs: 20, maxMs: 60_000 } }), { ...creds, secret: 'wrong' }),
    );
    await h.waitFor('auth_failed', () => h!.state === 'auth_failed');
    const detail = h.states.at(-1)!.detail!;
    expect(detail).toMatch(/alpaca error 402 "auth failed"/);
    expect(detail).toMatch(/ALPACA_KEY_ID/);
    expect(detail).toMatch(/ALPACA_SECRET_KEY/);
    expect(h.logs.some((l) => l.level === 'error' && /402/.test(l.msg))).toBe(true);
    expect(h.ticks).toHaveLength(0);
    // it does not hammer the provider: no reconnect within the (long) retry delay
    await quietFor(150, 'no reconnect within the retry delay');
    expect(h.provider.totalConnections).toBe(1);
  });

  it('maps 409 insufficient subscription to auth_failed and 405 symbol limit to error', async () => {
    h = await startHarness(
      fake({ failSubscribeWith: { code: 409, msg: 'insufficient subscription' } }),
      (p) => new AlpacaFeed('alpaca', options(p.url), creds),
    );
    await h.waitFor('auth_failed', () => h!.state === 'auth_failed');
    expect(h.states.at(-1)!.detail).toMatch(/409 "insufficient subscription".*plan does not include this feed/);
    await h.close();
    h = await startHarness(fake({ failSubscribeWith: { code: 405, msg: 'symbol limit exceeded' } }), (p) => new AlpacaFeed('alpaca', options(p.url), creds));
    await h.waitFor('error', () => h!.state === 'error');
    expect(h.states.at(-1)!.detail).toMatch(/405 "symbol limit exceeded".*feeds\.alpaca\.symbols/);
  });

  it('maps 406 connection limit exceeded to error with a clear line', async () => {
    h = await startHarness(fake({ connectionLimit: 0 }), (p) => new AlpacaFeed('alpaca', options(p.url), creds));
    await h.waitFor('error', () => h!.state === 'error');
    expect(h.states.at(-1)!.detail).toMatch(/406 "connection limit exceeded": another client uses this key/);
  });

  it('reconnects on 407 slow client and recovers', async () => {
    h = await startHarness(fake(), (p) => new AlpacaFeed('alpaca', options(p.url), creds));
    await h.waitFor('connected', () => h!.state === 'connected');
    [...h.provider.conns][0]!.send([{ T: 'error', code: 407, msg: 'slow client' }]);
    await h.waitFor('reconnecting', () => h!.states.some((s) => s.state === 'reconnecting' && /407/.test(s.detail ?? '')));
    await h.waitFor('connected again', () => h!.provider.totalConnections >= 2 && h!.state === 'connected');
  });

  it('subscribes and unsubscribes live', async () => {
    h = await startHarness(fake(), (p) => new AlpacaFeed('alpaca', options(p.url, { symbols: ['AAPL'] }), creds));
    await h.waitFor('connected', () => h!.state === 'connected');
    await h.adapter.subscribe(['MSFT']);
    await h.waitFor('MSFT ticks', () => h!.ticks.some((t) => t.sym === 'MSFT'));
    await h.adapter.unsubscribe(['MSFT']);
    await h.waitFor('unsubscribe sent', () => h!.provider.requests().some((r) => r.action === 'unsubscribe' && r.trades?.[0] === 'MSFT'));
  });

  // Real-time Stock Data > "Subscribe" / "Unsubscribe": the answer to an unsubscribe is the new
  // subscription, sent once Alpaca has processed the request; data sent before that is still on
  // the wire. Those trades, quotes and bars are no longer the feed's: the engine left the symbol
  // (no subscriber), so they must not be published (as Binance's are dropped)
  it('drops the trades, quotes and bars of a symbol still in flight after its unsubscribe, keeps the other symbols, and publishes it again once re-subscribed', async () => {
    h = await startHarness(fake({ pumpMs: 60_000, replayFixtures: false }), (p) => new AlpacaFeed('alpaca', options(p.url), creds));
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected');
    const t = new Date().toISOString();
    const minute = new Date(Math.floor(Date.now() / 60_000) * 60_000 - 60_000).toISOString();
    const frame = (S: string, i: number): Record<string, any>[] => [
      { T: 't', S, i, x: 'V', p: 100, s: 10, t, c: ['@'], z: 'C' },
      { T: 'q', S, bx: 'V', bp: 99.99, bs: 2, ax: 'V', ap: 100.01, as: 3, t, c: ['R'], z: 'C' },
      { T: 'b', S, o: 100, h: 100.5, l: 99.5, c: 100, v: 1000, t: minute, n: 12, vw: 100 },
    ];
    hh.provider.push([...frame('MSFT', 1), ...frame('AAPL', 1)]);
    await hh.waitFor(
      'both symbols published',
      () => hh.ticks.filter((x) => x.sym === 'MSFT').length === 3 && hh.ticks.filter((x) => x.sym === 'AAPL').length === 3,
    );
    await hh.adapter.unsubscribe(['MSFT']);
    const after = hh.ticks.length;
    // sent by Alpaca before it read the unsubscribe: the same frame with AAPL, which stays
    hh.provider.push([...frame('MSFT', 2), ...frame('AAPL', 2)]);
    await hh.waitFor('AAPL of the frame published', () => hh.ticks.slice(after).filter((x) => x.sym === 'AAPL').length === 3);
    expect(hh.ticks.slice(after).filter((x) => x.sym === 'MSFT')).toEqual([]);
    // subscribed again: its data is published again
    await hh.adapter.subscribe(['MSFT']);
    await hh.waitFor('MSFT subscribed again', () => hh.provider.requests().filter((r) => r.action === 'subscribe' && r.trades?.includes('MSFT')).length === 2);
    hh.provider.push(frame('MSFT', 3));
    await hh.waitFor('MSFT published again', () => hh.ticks.slice(after).filter((x) => x.sym === 'MSFT').length === 3);
  });

  it('drops the data of a symbol unsubscribed while the opening subscription is unanswered', async () => {
    h = await startActingBeforeOpeningAnswer((a) => {
      void a.unsubscribe(['MSFT']);
    });
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected');
    const t = new Date().toISOString();
    // MSFT was in the opening request, which Alpaca answered with it: its data flows until the
    // unsubscribe sent after that answer is processed
    hh.provider.push([
      { T: 't', S: 'MSFT', i: 1, x: 'V', p: 100, s: 10, t, c: ['@'], z: 'C' },
      { T: 't', S: 'AAPL', i: 1, x: 'V', p: 100, s: 10, t, c: ['@'], z: 'C' },
    ]);
    await hh.waitFor('the AAPL trade', () => hh.ticks.some((x) => x.sym === 'AAPL'));
    expect(hh.ticks.filter((x) => x.sym === 'MSFT')).toEqual([]);
  });

  it('publishes a symbol unsubscribed and subscribed again while the opening subscription is unanswered', async () => {
    h = await startActingBeforeOpeningAnswer((a) => {
      void a.unsubscribe(['MSFT']);
      void a.subscribe(['MSFT']);
    });
    const hh = h;
    await hh.waitFor('connected', () => hh.state === 'connected');
    const t = new Date().toISOString();
    // wanted again before the opening answer came: the connection streams it as it did
    hh.provider.push([
      { T: 't', S: 'AAPL', i: 1, x: 'V', p: 100, s: 10, t, c: ['@'], z: 'C' },
      { T: 't', S: 'MSFT', i: 1, x: 'V', p: 100, s: 10, t, c: ['@'], z: 'C' },
    ]);
    await hh.waitFor('the MSFT trade', () => hh.ticks.some((x) => x.sym === 'MSFT'));
  });

  it('gives the same canonical ticks in JSON and MessagePack, nanoseconds included (docs examples and edge cases)', async () => {
    const run = async (encoding: 'json' | 'msgpack') => {
      const hh = await startHarness(fake({ pumpMs: 60_000, replayFixtures: false }), (p) => new AlpacaFeed('alpaca', options(p.url, { encoding }), creds));
      try {
        await hh.waitFor('connected', () => hh.state === 'connected');
        const conn = [...hh.provider.conns][0]!;
        for (const frame of DOC_FRAMES) conn.send(frame);
        const n = DOC_FRAMES.flat().length;
        await hh.waitFor(`${n} ticks`, () => hh.ticks.length >= n);
        return [...hh.ticks];
      } finally {
        await hh.close();
      }
    };
    const json = await run('json');
    const msgpack = await run('msgpack');
    expect(msgpack).toEqual(json);
    expect(json).toEqual([
      { k: 'trade', sym: 'AAPL', id: 'D:96921', p: 126.55, s: 1, venue: 'D', volumeOnly: true, ts: 1614009104208000000n },
      { k: 'quote', sym: 'AAPL', bp: 87.66, bs: 1, ap: 87.68, as: 4, ts: 1614009105335689322n },
      // one trade id from two exchanges: two distinct canonical ids
      { k: 'trade', sym: 'AAPL', id: 'V:4242', p: 126.5512, s: 1, venue: 'V', ts: 1614009106000000001n },
      { k: 'trade', sym: 'AAPL', id: 'K:4242', p: 126.5513, s: 2500000, venue: 'K', ts: 1614009106000000999n },
      { k: 'trade', sym: 'MSFT', id: 'V:52983525033', p: 415.123456, s: 0.0001, venue: 'V', ts: 1614009106999999999n },
      { k: 'quote', sym: 'MSFT', bp: 415.12, bs: 0, ap: 415.13, as: 123_456_789, ts: 1614009107123456789n },
    ]);
    // on the wire (protocol v1 `t`): milliseconds with the microseconds kept, in both encodings
    expect(msgpack.map((t) => nsToMs(t.ts))).toEqual([1614009104208, 1614009105335.689, 1614009106000, 1614009106000, 1614009106999.999, 1614009107123.456]);
  });
});
