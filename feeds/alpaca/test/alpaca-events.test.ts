import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { AlpacaFeed, AlpacaOptionsSchema } from '../alpaca-feed.js';
import { startAlpacaFake } from '../fake-server.js';
import type { AlpacaFakeServer } from '../fake-server.js';

/**
 * Alpaca corrections ("c"), cancels/errors ("x"), trading statuses ("s") and LULD bands ("l"):
 * fixtures/events.json holds the examples published for these messages (the correction and
 * cancel examples Alpaca gave for its stock stream, the status and LULD examples of its SDK),
 * the rest are edge cases of our own.
 */
const EVENTS: Record<string, unknown>[][] = JSON.parse(readFileSync(new URL('../fixtures/events.json', import.meta.url), 'utf8'));
const KEY = 'PKTEST1234';
const SECRET = 'sekret-5678';
const creds = { key: KEY, secret: SECRET };
const SYMBOLS = ['IWM', 'UPS', 'BIIB', 'TEST', 'AAPL'];
const options = (url: string, extra: Record<string, unknown> = {}) =>
  AlpacaOptionsSchema.parse({ url, symbols: SYMBOLS, backoff: { initialMs: 20, maxMs: 200 }, ...extra });

describe('alpaca corrections, cancels and trading status', () => {
  let h: AdapterHarness<AlpacaFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  async function connected(extra: Record<string, unknown> = {}): Promise<AdapterHarness<AlpacaFakeServer>> {
    const harness = await startHarness(
      () => startAlpacaFake({ key: KEY, secret: SECRET, pumpMs: 60_000, replayFixtures: false }),
      (p) => new AlpacaFeed('alpaca', options(p.url, extra), creds),
    );
    await harness.waitFor('connected', () => harness.state === 'connected');
    return harness;
  }

  it('maps the documented examples to canonical correction, cancel and status ticks', async () => {
    h = await connected({ channels: ['trades', 'quotes', 'bars', 'statuses', 'lulds'] });
    expect(h.provider.requests()[1]).toMatchObject({ action: 'subscribe', statuses: SYMBOLS, lulds: SYMBOLS });
    for (const frame of EVENTS) h.provider.push(frame);
    await h.waitFor('4 event ticks', () => h!.ticks.length >= 4);
    expect(h.ticks).toEqual([
      {
        k: 'correction',
        sym: 'IWM',
        ref: 'D:79372207866957',
        id: 'D:79372223926359',
        p: 208.65,
        s: 14950,
        op: 208.65,
        os: 14950,
        venue: 'D',
        // corrected conditions [" ", "7", "Z", "V"]: 7 (qualified contingent trade) sets no price
        volumeOnly: true,
        ts: 1642699568000760661n,
      },
      { k: 'cancel', sym: 'UPS', ref: 'D:79371806259278', op: 214.655, os: 10, ts: 1640708089427742253n },
      { k: 'status', sym: 'BIIB', status: 'trading', code: 'T', reason: 'Trading Resumption: Volatility Trading Pause', ts: 1614960000000000000n },
      { k: 'status', sym: 'TEST', luld: { up: 4.21, down: 3.22 }, ts: 1614960000000000000n },
    ]);
  });

  it('names the trade a correction or cancel refers to exactly as the trade itself was named', async () => {
    h = await connected();
    h.provider.push([{ T: 't', S: 'AAPL', i: 7001, x: 'V', p: 100, s: 5, t: '2024-06-10T13:30:01Z', c: ['@'], z: 'C' }]);
    h.provider.push([{ T: 'x', S: 'AAPL', i: 7001, x: 'V', p: 100, s: 5, a: 'C', z: 'C', t: '2024-06-10T13:30:05Z' }]);
    h.provider.push([{ T: 't', S: 'AAPL', i: 7002, x: 'V', p: 101, s: 5, t: '2024-06-10T13:30:06Z', c: ['@'], z: 'C' }]);
    h.provider.push([
      { T: 'c', S: 'AAPL', x: 'V', oi: 7002, op: 101, os: 5, oc: ['@'], ci: 7003, cp: 101.5, cs: 6, cc: ['@'], z: 'C', t: '2024-06-10T13:30:07Z' },
    ]);
    await h.waitFor('4 ticks', () => h!.ticks.length >= 4);
    const [t1, cancel, t2, corr] = h.ticks as Record<string, unknown>[];
    expect(cancel).toMatchObject({ k: 'cancel', ref: t1!.id });
    expect(corr).toMatchObject({ k: 'correction', ref: t2!.id, p: 101.5, s: 6 });
  });

  it('edge cases: an error report is flagged, codes that do not start or end a halt change nothing, other symbols are ignored', async () => {
    h = await connected({ channels: ['trades', 'statuses'] });
    h.provider.push([{ T: 'x', S: 'AAPL', i: 9, x: 'K', p: 10, s: 1, a: 'E', z: 'C', t: '2024-06-10T13:30:05Z' }]);
    h.provider.push([{ T: 's', S: 'AAPL', sc: '5', sm: 'Price Indication', rc: '', rm: '', t: '2024-06-10T13:30:06Z', z: 'C' }]);
    h.provider.push([{ T: 's', S: 'ZZZZ', sc: 'H', sm: 'Trading Halt', rc: 'T1', rm: 'News Pending', t: '2024-06-10T13:30:06Z', z: 'C' }]);
    h.provider.push([{ T: 's', S: 'AAPL', sc: 'H', sm: 'Trading Halt', rc: 'T1', rm: 'News Pending', t: '2024-06-10T13:30:07Z', z: 'C' }]);
    h.provider.push([{ T: 's', S: 'AAPL', sc: '2', sm: 'Trading Halt', t: '2024-06-10T13:30:08Z', z: 'A' }]);
    await h.waitFor('3 ticks', () => h!.ticks.length >= 3);
    expect(h.ticks).toEqual([
      { k: 'cancel', sym: 'AAPL', ref: 'K:9', error: true, op: 10, os: 1, ts: 1718026205000000000n },
      { k: 'status', sym: 'AAPL', status: 'halted', code: 'H', reason: 'Trading Halt: News Pending', ts: 1718026207000000000n },
      { k: 'status', sym: 'AAPL', status: 'halted', code: '2', reason: 'Trading Halt', ts: 1718026208000000000n },
    ]);
  });

  it('an updated bar (late trades) comes out as a bar tick with the start time of the bar it replaces', async () => {
    h = await connected({ channels: ['bars', 'updatedBars'] });
    expect(h.provider.requests()[1]).toMatchObject({ bars: SYMBOLS, updatedBars: SYMBOLS });
    h.provider.push([{ T: 'b', S: 'AAPL', o: 126.5, h: 126.9, l: 126.4, c: 126.55, v: 49378, t: '2024-06-10T13:30:00Z', n: 461, vw: 126.62 }]);
    h.provider.push([{ T: 'u', S: 'AAPL', o: 126.5, h: 127.1, l: 126.4, c: 126.55, v: 49478, t: '2024-06-10T13:30:00Z', n: 462, vw: 126.63 }]);
    await h.waitFor('2 bars', () => h!.ticks.length >= 2);
    expect(h.ticks.map((t) => [t.k, (t as { t: number }).t, (t as { v: number }).v])).toEqual([
      ['bar', 1718026200000, 49378],
      ['bar', 1718026200000, 49478],
    ]);
  });

  it('a quote with a zero price on one side (no bid or no ask) is published without that side, and the rest of its frame is kept', async () => {
    h = await connected({ channels: ['trades', 'quotes'] });
    // Real-time Stock Data > Quotes: bp/bs and ap/as (sizes in shares, the default unit); a side with price 0
    // holds no order. Data points share one array (WebSocket Stream > Message format).
    h.provider.push([
      { T: 'q', S: 'AAPL', bx: '', bp: 0, bs: 0, ax: 'V', ap: 192.5, as: 300, c: ['R'], z: 'C', t: '2024-06-10T13:30:01.000000001Z' },
      { T: 't', S: 'AAPL', i: 11, x: 'V', p: 192.4, s: 5, c: ['@'], z: 'C', t: '2024-06-10T13:30:01.000000002Z' },
      { T: 'q', S: 'AAPL', bx: 'V', bp: 192.3, bs: 200, ax: '', ap: 0, as: 0, c: ['R'], z: 'C', t: '2024-06-10T13:30:01.000000003Z' },
    ]);
    await h.waitFor('3 ticks', () => h!.ticks.length >= 3);
    expect(h.ticks).toEqual([
      { k: 'quote', sym: 'AAPL', ap: 192.5, as: 300, ts: 1718026201000000001n },
      { k: 'trade', sym: 'AAPL', id: 'V:11', p: 192.4, s: 5, venue: 'V', ts: 1718026201000000002n },
      { k: 'quote', sym: 'AAPL', bp: 192.3, bs: 200, ts: 1718026201000000003n },
    ]);
  });

  it('one message that cannot be read costs only itself: the data points after it in the same frame are published', async () => {
    h = await connected({ channels: ['trades'] });
    h.provider.push([
      { T: 't', S: 'AAPL', i: 21, x: 'V', p: 'not a price', s: 5, c: ['@'], z: 'C', t: '2024-06-10T13:30:01Z' },
      { T: 't', S: 'AAPL', i: 22, x: 'V', p: 192.4, s: 5, c: ['@'], z: 'C', t: '2024-06-10T13:30:02Z' },
    ]);
    await h.waitFor('1 tick', () => h!.ticks.length >= 1);
    expect(h.ticks).toEqual([{ k: 'trade', sym: 'AAPL', id: 'V:22', p: 192.4, s: 5, venue: 'V', ts: 1718026202000000000n }]);
  });

  it('flags trades whose sale conditions set no price as volumeOnly (odd lot I; average price B on tapes A/B, W on tape C), corrections by their corrected conditions', async () => {
    h = await connected({ channels: ['trades'] });
    const t = (i: number, c: string[], z: string) => ({ T: 't', S: 'AAPL', i, x: 'V', p: 192.4, s: 5, c, z, t: '2024-06-10T13:30:01Z' });
    h.provider.push([
      t(1, ['@', 'I'], 'C'),
      t(2, ['@', 'B'], 'A'),
      t(3, ['@', 'B'], 'C'),
      t(4, ['@', 'W'], 'C'),
      t(5, ['@', 'T'], 'C'),
      t(6, ['@', 'F'], 'C'),
      t(7, [' ', 'P'], 'A'),
    ]);
    h.provider.push([
      { T: 'c', S: 'AAPL', x: 'V', oi: 6, op: 192.4, os: 5, oc: ['@'], ci: 8, cp: 192.4, cs: 5, cc: ['@', 'I'], z: 'C', t: '2024-06-10T13:30:07Z' },
      { T: 'c', S: 'AAPL', x: 'V', oi: 1, op: 192.4, os: 5, oc: ['@', 'I'], ci: 9, cp: 192.4, cs: 500, cc: ['@'], z: 'C', t: '2024-06-10T13:30:08Z' },
    ]);
    await h.waitFor('9 ticks', () => h!.ticks.length >= 9);
    expect(h.ticks.map((x) => [(x as { id: string }).id, (x as { volumeOnly?: boolean }).volumeOnly])).toEqual([
      ['V:1', true],
      ['V:2', true],
      ['V:3', undefined],
      ['V:4', true],
      ['V:5', undefined],
      ['V:6', undefined],
      ['V:7', true],
      ['V:8', true],
      ['V:9', false],
    ]);
  });

  // Market Data FAQ, "How are bars aggregated?": `M` (official close), `Q` (official open) and `9`
  // (corrected consolidated close) update no value, volume and trade count included, and "the
  // strictest rule is applied". A correction whose corrected conditions `cc` hold one of them makes
  // the trade count in nothing: flagged `excluded` (with `volumeOnly`), as such a trade is. Before,
  // it carried `volumeOnly` only, so its size stayed in the day volume and the bars.
  it('flags a correction whose corrected conditions count in nothing (M, Q, 9) as excluded', async () => {
    h = await connected({ channels: ['trades'] });
    const c = (oi: number, ci: number, cc: string[], z: string) => ({
      T: 'c',
      S: 'AAPL',
      x: 'N',
      oi,
      op: 192.4,
      os: 500,
      oc: ['@'],
      ci,
      cp: 192.4,
      cs: 500,
      cc,
      z,
      t: '2024-06-10T20:00:07Z',
    });
    h.provider.push([c(1, 2, ['M'], 'A'), c(3, 4, ['@', '9'], 'C'), c(5, 6, ['Q'], 'B'), c(7, 8, ['@', 'I'], 'A'), c(9, 10, ['@'], 'A')]);
    await h.waitFor('5 corrections', () => h!.ticks.length >= 5);
    expect(h.ticks.map((x) => [(x as { id: string }).id, (x as { volumeOnly?: boolean }).volumeOnly, (x as { excluded?: boolean }).excluded])).toEqual([
      ['N:2', true, true],
      ['N:4', true, true],
      ['N:6', true, true],
      ['N:8', true, undefined],
      ['N:10', false, undefined],
    ]);
  });

  // Real-time Stock Data, Corrections > Schema lists `cc` without saying it is always sent, and
  // Alpaca's own .NET SDK (Alpaca.Markets, JsonCorrection) reads it as optional (`cp`, `cs`
  // required). Without it the correction says nothing of what the corrected trade counts in: no
  // flag is set, and the engine keeps the trade's own (an excluded print stays excluded:
  // test/unit/trade-eligibility.test.ts). It is not guessed from `oc`.
  it('sets no condition flag on a correction without corrected conditions (cc absent)', async () => {
    h = await connected({ channels: ['trades'] });
    h.provider.push([{ T: 'c', S: 'AAPL', x: 'N', oi: 1, op: 192.4, os: 500, oc: ['M'], ci: 2, cp: 192.5, cs: 400, z: 'A', t: '2024-06-10T20:00:07Z' }]);
    await h.waitFor('the correction', () => h!.ticks.length >= 1);
    expect(h.ticks[0]).toEqual({
      k: 'correction',
      sym: 'AAPL',
      ref: 'N:1',
      id: 'N:2',
      p: 192.5,
      s: 400,
      op: 192.4,
      os: 500,
      venue: 'N',
      ts: 1718049607000000000n,
    });
    expect(h.counters.errors).toEqual([]);
  });

  // Market Data FAQ, "How are bars aggregated?": `Z`, `P`, `4` (and UTDF `G`) update a daily bar's
  // high / low, not its close or a minute bar's range: flagged `highLowOnly` (with `volumeOnly`),
  // on trades and on corrections by their corrected conditions; the strictest condition decides
  it('flags late prints (Z, P, 4, UTDF G) highLowOnly, on trades and on corrections', async () => {
    h = await connected({ channels: ['trades'] });
    const t = (i: number, c: string[], z: string) => ({ T: 't', S: 'AAPL', i, x: 'V', p: 192.4, s: 5, c, z, t: '2024-06-10T13:30:01Z' });
    h.provider.push([t(1, ['@', 'Z'], 'A'), t(2, ['@', 'G'], 'C'), t(3, ['@', 'Z', 'I'], 'C')]);
    h.provider.push([
      { T: 'c', S: 'AAPL', x: 'V', oi: 4, op: 192.4, os: 5, oc: ['@'], ci: 5, cp: 192.4, cs: 5, cc: ['@', '4'], z: 'B', t: '2024-06-10T13:30:07Z' },
      { T: 'c', S: 'AAPL', x: 'V', oi: 1, op: 192.4, os: 5, oc: ['@', 'Z'], ci: 6, cp: 192.4, cs: 5, cc: ['@'], z: 'A', t: '2024-06-10T13:30:08Z' },
    ]);
    await h.waitFor('5 ticks', () => h!.ticks.length >= 5);
    const flags = (x: unknown) => [(x as { id: string }).id, (x as { volumeOnly?: boolean }).volumeOnly, (x as { highLowOnly?: boolean }).highLowOnly];
    expect(h.ticks.map(flags)).toEqual([
      ['V:1', true, true],
      ['V:2', true, true],
      ['V:3', true, undefined],
      ['V:5', true, true],
      ['V:6', false, undefined],
    ]);
  });

  it('reads a tape O (OTC) trade with the UTDF codes: average price W sets no price, a regular sale does', async () => {
    h = await connected({ channels: ['trades'] });
    const t = (i: number, c: string[]) => ({ T: 't', S: 'AAPL', i, x: 'D', p: 1.23, s: 500, c, z: 'O', t: '2024-06-10T13:30:01Z' });
    h.provider.push([t(1, ['@', 'W']), t(2, ['@'])]);
    await h.waitFor('2 ticks', () => h!.ticks.length >= 2);
    expect(h.ticks.map((x) => [(x as { id: string }).id, (x as { volumeOnly?: boolean }).volumeOnly])).toEqual([
      ['D:1', true],
      ['D:2', undefined],
    ]);
  });

  it('a symbol added or removed while the opening subscription is unanswered is subscribed or unsubscribed once it is answered', async () => {
    let adapter: AlpacaFeed | undefined;
    let acted = false;
    h = await startHarness(
      () =>
        startAlpacaFake({
          key: KEY,
          secret: SECRET,
          pumpMs: 60_000,
          replayFixtures: false,
          beforeAnswer: () => {
            if (acted) return;
            acted = true;
            void adapter!.subscribe(['NEWCO']);
            void adapter!.unsubscribe(['TEST']);
          },
        }),
      (p) => (adapter = new AlpacaFeed('alpaca', options(p.url, { channels: ['trades'] }), creds)),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    const conn = () => [...h!.provider.conns][0]!;
    await h.waitFor('NEWCO subscribed and TEST unsubscribed', () => conn().state.subs.trades.has('NEWCO') && !conn().state.subs.trades.has('TEST'));
    expect([...conn().state.subs.trades].sort()).toEqual(['AAPL', 'BIIB', 'IWM', 'NEWCO', 'UPS']);
  });

  it('reads quote sizes as shares by default (since 2025-11-03), and multiplies them by 100 with quoteSizeUnit: round-lots', async () => {
    // Alpaca's Market Data guidance (alpacahq/alpaca-skills, "Alpaca Market Data API — Stocks",
    // 3. Feeds): "Trade/quote sizes are in shares as of 2025-11-03 (were round lots before)", the
    // SEC Market Data Infrastructure round-lot change. The Quotes schema's "in round lots" predates it.
    expect(AlpacaOptionsSchema.parse({ symbols: ['AAPL'] }).quoteSizeUnit).toBe('shares');
    expect(() => AlpacaOptionsSchema.parse({ symbols: ['AAPL'], quoteSizeUnit: 'lots' })).toThrow(/quoteSizeUnit/);
    h = await connected({ channels: ['quotes'] });
    // Real-time Stock Data > Quotes > Example (its symbol AMD as AAPL, one of this feed's): bs 1, as 4
    const q = { T: 'q', S: 'AAPL', bx: 'U', bp: 87.66, bs: 1, ax: 'Q', ap: 87.68, as: 4, t: '2021-02-22T15:51:45.335689322Z', c: ['R'], z: 'C' };
    h.provider.push([q]);
    await h.waitFor('1 quote', () => h!.ticks.length >= 1);
    expect(h.ticks).toEqual([{ k: 'quote', sym: 'AAPL', bp: 87.66, bs: 1, ap: 87.68, as: 4, ts: 1614009105335689322n }]);
    await h.close();
    // data from before the change (a recording of 2021 IEX quotes: the Alpaca forum's bid of 300 shares sent as bs 3, no offer)
    h = await connected({ channels: ['quotes'], quoteSizeUnit: 'round-lots' });
    const old = { T: 'q', S: 'AAPL', bx: 'V', bp: 177.23, bs: 3, ax: 'V', ap: 0, as: 0, c: ['R'], z: 'A', t: '2021-09-03T13:30:01.027520534Z' };
    h.provider.push([old]);
    await h.waitFor('1 quote', () => h!.ticks.length >= 1);
    expect(h.ticks).toEqual([{ k: 'quote', sym: 'AAPL', bp: 177.23, bs: 300, ts: 1630675801027520534n }]);
  });

  it('declares its minute bars as the provider bars of its symbols (only when it subscribes to bars)', () => {
    expect(new AlpacaFeed('a', options('ws://127.0.0.1:1'), creds).providesBars).toEqual(['1m']);
    expect(new AlpacaFeed('a', options('ws://127.0.0.1:1', { channels: ['trades'] }), creds).providesBars).toEqual([]);
  });
});
