import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { loadConfig } from '../../../src/core/config.js';
import { defaultRegistry } from '../../../src/core/instruments.js';
import { parseFeedsFile } from '../../config.js';
import { createFeed } from '../../registry.js';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { KRAKEN_FIXTURE_FRAMES, startKrakenFake } from '../fake-server.js';
import type { KrakenFakeOptions, KrakenFakeServer } from '../fake-server.js';
import { KrakenFeed, KrakenOptionsSchema } from '../kraken-feed.js';
import { quietFor } from '../../../test/helpers/wait.js';

const options = (url: string, symbols: string[], extra: Record<string, unknown> = {}) =>
  KrakenOptionsSchema.parse({ url, symbols, backoff: { initialMs: 20, maxMs: 200 }, ...extra });

runAdapterConformance({
  name: 'kraken',
  startProvider: () => startKrakenFake(),
  createAdapter: (p) => new KrakenFeed('kraken', options(p.url, ['BTC-USD', 'ETH-USD'])),
  symbols: ['BTC-USD', 'ETH-USD'],
  kinds: ['trade', 'quote'],
});

type Req = { method: string; params: { channel: string; symbol: string[]; snapshot?: boolean; event_trigger?: string }; req_id: number };

describe('kraken adapter', () => {
  let h: AdapterHarness<KrakenFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  const start = async (symbols: string[], fake: KrakenFakeOptions = {}, extra: Record<string, unknown> = {}) => {
    h = await startHarness(
      () => startKrakenFake(fake),
      (p) => new KrakenFeed('kraken', options(p.url, symbols, extra)),
    );
    return h;
  };
  const requests = (p: KrakenFakeServer) => p.receivedJson() as Req[];

  it('subscribes to trade (no history) and ticker (bbo, with snapshot) and normalizes the recorded messages field by field', async () => {
    const h = await start(['BTC-USD', 'SHIB-USD', 'ALGO-USD', 'MATIC-USD'], { pumpMs: 60_000 });
    await h.waitFor('connected', () => h.state === 'connected');
    await h.waitFor('fixture ticks and ticker snapshots', () => h.ticks.length >= 10);
    const reqs = requests(h.provider);
    expect(reqs).toEqual([
      { method: 'subscribe', params: { channel: 'trade', symbol: ['BTC/USD', 'SHIB/USD', 'ALGO/USD', 'MATIC/USD'], snapshot: false }, req_id: 1 },
      {
        method: 'subscribe',
        params: { channel: 'ticker', symbol: ['BTC/USD', 'SHIB/USD', 'ALGO/USD', 'MATIC/USD'], snapshot: true, event_trigger: 'bbo' },
        req_id: 2,
      },
      // every pair's own state (pairStatus, on by default) [instrument]
      { method: 'subscribe', params: { channel: 'instrument', snapshot: true }, req_id: 3 },
    ]);
    expect(h.states.at(-1)!.detail).toBe('subscribed trade+ticker for 4 symbols');

    // the documented MATIC/USD trade snapshot is history on a first connection: skipped
    expect(h.ticks.some((t) => t.sym === 'MATIC-USD' && t.k === 'trade')).toBe(false);
    // the documented ALGO/USD ticker: best bid/ask and their sizes, exchange time in ns
    expect(h.ticks[0]).toEqual({ k: 'quote', sym: 'ALGO-USD', bp: 0.10025, bs: 740, ap: 0.10036, as: 1361.44813783, ts: 1695632671742648000n });
    // several trades in one update, both taker sides, a tiny size, many decimals, a nanosecond time
    expect(h.ticks.slice(1, 4)).toEqual([
      { k: 'trade', sym: 'BTC-USD', id: '70001000', p: 67251.4, s: 0.00000001, side: 'buy', ts: 1718000001219873000n },
      { k: 'trade', sym: 'BTC-USD', id: '70001001', p: 67251.3, s: 0.12345678, side: 'sell', ts: 1718000001219874000n },
      { k: 'trade', sym: 'BTC-USD', id: '70001002', p: 67251.12345678, s: 1.5, side: 'sell', ts: 1718000001219874123n },
    ]);
    // a huge size at a tiny price; DOGE/USD (not ours) ignored; the item without trade_id reported and skipped
    expect(h.ticks.slice(4, 6)).toEqual([
      { k: 'trade', sym: 'SHIB-USD', id: '9000001', p: 0.00002345, s: 123456789.12345678, side: 'buy', ts: 1718000002000001000n },
      { k: 'trade', sym: 'SHIB-USD', id: '9000002', p: 0.00002344, s: 250000000000, side: 'sell', ts: 1718000002000004000n },
    ]);
    expect(h.counters.errors.filter((e) => /trade_id/.test(e))).toHaveLength(1);
    expect(h.logs.some((l) => l.level === 'warn' && /trade_id/.test(l.msg))).toBe(true);
    // a ticker without timestamp is stamped on receipt
    const receipt = h.ticks[6]!;
    expect(receipt).toMatchObject({ k: 'quote', sym: 'BTC-USD', bp: 67251.3, bs: 0.5, ap: 67251.4, as: 2.25 });
    expect(Number(receipt.ts / 1_000_000n)).toBeGreaterThan(Date.now() - 60_000);
    // then the ticker snapshots of the four pairs
    expect(h.ticks.slice(7, 11).map((t) => `${t.k} ${t.sym}`)).toEqual(['quote BTC-USD', 'quote SHIB-USD', 'quote ALGO-USD', 'quote MATIC-USD']);
    expect(h.counters.gaps).toBe(0);
    // the status greeting's 64-bit connection_id is logged with all its digits
    expect(h.logs.some((l) => /13834774380200032777/.test(l.msg) && /online/.test(l.msg))).toBe(true);
    expect(h.adapter instanceof KrakenFeed && h.adapter.lastTradeId('BTC-USD')).toBe(70001002);
  });

  it('the fixture frames are sent byte for byte as recorded', () => {
    expect(KRAKEN_FIXTURE_FRAMES[0]).toContain('"connection_id":13834774380200032777');
    for (const raw of KRAKEN_FIXTURE_FRAMES) expect(() => JSON.parse(raw)).not.toThrow();
  });

  it('is connected when some pairs are refused, naming them; in state error when every pair is refused', async () => {
    const h1 = await start(['BTC-USD', 'FOO-USD'], { unsupported: ['FOO/USD'] });
    await h1.waitFor('connected', () => h1.state === 'connected');
    expect(h1.states.at(-1)!.detail).toMatch(/refused: trade FOO\/USD \(Currency pair not supported FOO\/USD\); ticker FOO\/USD/);
    expect(h1.counters.errors.filter((e) => /kraken refused subscribe/.test(e))).toHaveLength(2);
    await h1.waitFor('BTC-USD data', () => h1.ticks.some((t) => t.sym === 'BTC-USD' && t.k === 'trade'));
    await h1.close();

    const h2 = await start(['FOO-USD'], { unsupported: ['FOO/USD'] });
    await h2.waitFor('state error', () => h2.state === 'error');
    expect(h2.states.at(-1)!.detail).toMatch(/kraken refused every subscription: .*FOO\/USD.*check feeds\.kraken\.symbols and symbolMap/);
    expect(h2.states.some((s) => s.state === 'connected')).toBe(false);
  });

  it('treats heartbeats as liveness: quiet pairs stay connected, a silent connection goes stale and reconnects', async () => {
    const h = await start(['BTC-USD'], { heartbeatMs: 100 }, { staleAfterMs: 1500 });
    await h.waitFor('connected with data', () => h.state === 'connected' && h.ticks.length > 0);
    h.provider.quiet();
    await quietFor(100, 'frames already in flight arrive before the quiet period is counted');
    const ticks = h.ticks.length;
    const messages = h.counters.messages;
    // only heartbeats now: 20 of them (2 s or more, beyond staleAfterMs) and still not stale
    await h.waitFor('heartbeats arriving', () => h.counters.messages > messages + 20);
    expect(h.ticks.length).toBe(ticks);
    expect(h.states.some((s) => s.state === 'stale')).toBe(false);
    h.provider.pause();
    await h.waitFor('stale', () => h.states.some((s) => s.state === 'stale'));
    h.provider.quiet(false);
    h.provider.resume();
    await h.waitFor('connected again', () => h.provider.totalConnections >= 2 && h.state === 'connected');
    const after = h.ticks.length;
    await h.waitFor('data again', () => h.ticks.length > after);
  });

  it('counts a jump in trade_id as a gap of that many trades', async () => {
    const h = await start(['BTC-USD']);
    await h.waitFor('trades', () => h.ticks.filter((t) => t.k === 'trade').length > 3);
    h.provider.skip('BTC/USD', 5);
    await h.waitFor('a gap counted', () => h.counters.gaps >= 1);
    expect(h.logs.some((l) => /kraken: 5 trades of BTC-USD were not received/.test(l.msg))).toBe(true);
    expect(h.state).toBe('connected');
  });

  it('after a reconnect, emits the trades made while it was away (from the trade snapshot), each once and in order', async () => {
    const h = await start(['BTC-USD'], { pumpMs: 20 });
    await h.waitFor('trades', () => h.ticks.filter((t) => t.k === 'trade').length > 5);
    h.provider.pause(); // no more generated trades
    await quietFor(100, 'trades in flight arrive before the pause is counted');
    const before = h.ticks.filter((t) => t.k === 'trade').map((t) => (t.k === 'trade' ? t.id : ''));
    h.provider.dropAll();
    const missed = h.provider.trade('BTC/USD', 3); // made while the adapter is disconnected
    await h.waitFor('reconnected', () => h.provider.totalConnections >= 2 && h.state === 'connected');
    await h.waitFor('the missed trades', () => h.ticks.filter((t) => t.k === 'trade').length >= before.length + 3);
    const trades = h.ticks.filter((t) => t.k === 'trade');
    const ids = trades.map((t) => (t.k === 'trade' ? t.id : ''));
    expect(ids.slice(before.length)).toEqual(missed.map((m) => String(m.trade_id)));
    expect(new Set(ids).size).toBe(ids.length); // no duplicate: neither the fixtures nor the snapshot's older trades again
    expect(trades.at(-1)).toMatchObject({ p: missed[2]!.price, s: missed[2]!.qty, side: missed[2]!.side });
    // the second connection asked for the trade snapshot, the first did not
    const tradeSubs = requests(h.provider).filter((r) => r.method === 'subscribe' && r.params.channel === 'trade');
    expect(tradeSubs.map((r) => r.params.snapshot)).toEqual([false, true]);
    expect(h.counters.gaps).toBe(0);
  });

  it('after a reconnect, an update that comes before the trade snapshot waits for it: the missed trades are not lost', async () => {
    const h = await start(['BTC-USD'], { pumpMs: 20, ackDelayMs: 200 });
    await h.waitFor('trades', () => h.state === 'connected' && h.ticks.filter((t) => t.k === 'trade').length > 5);
    h.provider.pause();
    await quietFor(100, 'trades in flight arrive before the pause is counted');
    const before = h.ticks.filter((t) => t.k === 'trade').length;
    h.provider.dropAll();
    const missed = h.provider.trade('BTC/USD', 3); // made while the adapter is disconnected
    // on the new connection, an update reaches the adapter before the (delayed) answer with the snapshot
    const resumed = () =>
      [...h.provider.conns].find((c) =>
        c.received.some((m) => {
          const r = JSON.parse(String(m)) as Req;
          return r.method === 'subscribe' && r.params.channel === 'trade' && r.params.snapshot === true;
        }),
      );
    await h.waitFor('the trade subscription (with snapshot) of the new connection', () => resumed() !== undefined);
    const late = h.provider.trade('BTC/USD', 1); // in the history, so in the snapshot too
    resumed()!.send({ channel: 'trade', type: 'update', data: late });
    await h.waitFor('connected again', () => h.provider.totalConnections >= 2 && h.state === 'connected');
    await h.waitFor('4 trades', () => h.ticks.filter((t) => t.k === 'trade').length >= before + 4);
    await quietFor(100, 'no more trade expected');
    const ids = h.ticks.filter((t) => t.k === 'trade').map((t) => (t.k === 'trade' ? t.id : ''));
    expect(ids.slice(before)).toEqual([...missed, ...late].map((m) => String(m.trade_id)));
    expect(h.counters.gaps).toBe(0);
  });

  it('without recoverTrades, a reconnect does not ask for the snapshot and the missed trades show as a gap', async () => {
    const h = await start(['BTC-USD'], { pumpMs: 20 }, { recoverTrades: false });
    await h.waitFor('trades', () => h.ticks.filter((t) => t.k === 'trade').length > 5);
    h.provider.pause();
    await quietFor(100, 'trades in flight arrive before the pause is counted');
    h.provider.dropAll();
    h.provider.trade('BTC/USD', 3);
    await h.waitFor('reconnected', () => h.provider.totalConnections >= 2 && h.state === 'connected');
    h.provider.resume();
    await h.waitFor('gap counted', () => h.counters.gaps >= 1);
    const tradeSubs = requests(h.provider).filter((r) => r.method === 'subscribe' && r.params.channel === 'trade');
    expect(tradeSubs.map((r) => r.params.snapshot)).toEqual([false, false]);
  });

  it('subscribes and unsubscribes symbols on the live connection', async () => {
    const h = await start(['BTC-USD']);
    await h.waitFor('connected', () => h.state === 'connected');
    await h.adapter.subscribe(['ETH-USD']);
    await h.waitFor(
      'ETH-USD trades and quotes',
      () => h.ticks.some((t) => t.sym === 'ETH-USD' && t.k === 'trade') && h.ticks.some((t) => t.sym === 'ETH-USD' && t.k === 'quote'),
    );
    expect(h.provider.totalConnections).toBe(1);
    await h.adapter.unsubscribe(['ETH-USD']);
    await h.waitFor('unsubscribe acked', () => [...h.provider.conns].every((c) => !c.state.subs.trade.has('ETH/USD') && !c.state.subs.ticker.has('ETH/USD')));
    const reqs = requests(h.provider).filter((r) => r.params?.symbol?.includes('ETH/USD'));
    expect(reqs.map((r) => `${r.method} ${r.params.channel}`)).toEqual(['subscribe trade', 'subscribe ticker', 'unsubscribe trade', 'unsubscribe ticker']);
    expect(h.state).toBe('connected');
    // every request was answered, so none is remembered
    await h.waitFor('no open request', () => (h.adapter as KrakenFeed).openRequests === 0);
  });

  it('applies symbols added or removed while the opening subscription is pending, once it is confirmed', async () => {
    const h = await start(['BTC-USD', 'SOL-USD'], { ackDelayMs: 300 });
    // the opening subscription was sent and is not acknowledged yet
    await h.waitFor('opening subscription sent', () => h.provider.allReceived.length >= 2);
    expect(h.state).not.toBe('connected');
    await h.adapter.subscribe(['ETH-USD']);
    await h.adapter.unsubscribe(['SOL-USD']);
    await h.waitFor('ETH-USD trades', () => h.ticks.some((t) => t.sym === 'ETH-USD' && t.k === 'trade'));
    await h.waitFor('SOL/USD unsubscribed at the provider', () =>
      [...h.provider.conns].every((c) => !c.state.subs.trade.has('SOL/USD') && !c.state.subs.ticker.has('SOL/USD')),
    );
    const n = h.ticks.length;
    await h.waitFor('more data', () => h.ticks.length > n + 10);
    expect(h.ticks.slice(n).some((t) => t.sym === 'SOL-USD')).toBe(false);
    expect(h.provider.totalConnections).toBe(1);
  });

  it('drops messages still in flight for a symbol it unsubscribed', async () => {
    const h = await start(['BTC-USD', 'ETH-USD'], { pumpMs: 60_000, replayFixtures: false });
    await h.waitFor('connected', () => h.state === 'connected');
    await h.adapter.unsubscribe(['ETH-USD']);
    const n = h.ticks.length;
    h.provider.broadcast({
      channel: 'trade',
      type: 'update',
      data: [{ symbol: 'ETH/USD', side: 'buy', price: 3550.4, qty: 1, ord_type: 'limit', trade_id: 42, timestamp: '2024-06-10T06:13:21.219873Z' }],
    });
    h.provider.trade('BTC/USD', 1); // a sentinel after it: once BTC arrives, the ETH frame was handled
    await h.waitFor('the BTC sentinel', () => h.ticks.slice(n).some((t) => t.sym === 'BTC-USD'));
    expect(h.ticks.slice(n).some((t) => t.sym === 'ETH-USD')).toBe(false);
  });

  it('logs an exchange status other than online, and counts provider errors and malformed frames without dropping the connection', async () => {
    const h = await start(['BTC-USD'], { system: 'maintenance' });
    await h.waitFor('connected', () => h.state === 'connected');
    expect(h.logs.some((l) => l.level === 'warn' && /exchange status maintenance/.test(l.msg))).toBe(true);
    expect(h.states.at(-1)!.detail).toMatch(/exchange status maintenance/);
    h.provider.broadcast('this is not JSON');
    h.provider.broadcast({
      error: 'Exceeded msg rate',
      method: 'subscribe',
      success: false,
      time_in: '2024-06-10T06:13:21.219873Z',
      time_out: '2024-06-10T06:13:21.219900Z',
    });
    h.provider.broadcast({
      channel: 'trade',
      type: 'update',
      data: [{ symbol: 'BTC/USD', side: 'buy', price: -1, qty: 1, ord_type: 'limit', trade_id: 99_999_999, timestamp: '2024-06-10T06:13:21.219873Z' }],
    });
    await h.waitFor('three errors', () => h.counters.errors.length >= 3);
    expect(h.counters.errors.some((e) => /bad message/.test(e))).toBe(true);
    expect(h.counters.errors.some((e) => /Exceeded msg rate/.test(e))).toBe(true);
    expect(h.counters.errors.some((e) => /trade\.price: -1 is not a positive price/.test(e))).toBe(true);
    expect(h.provider.totalConnections).toBe(1);
    const n = h.ticks.length;
    await h.waitFor('data continues', () => h.ticks.length > n + 3);
  });

  it("publishes the exchange status as every symbol's trading status: halted while Kraken does no matching, trading once online", async () => {
    const h = await start(['BTC-USD', 'ETH-USD'], { system: 'maintenance', pumpMs: 60_000 });
    const statuses = () => h.ticks.filter((t) => t.k === 'status');
    const status = (system: string) =>
      h.provider.broadcast({ channel: 'status', type: 'update', data: [{ api_version: 'v2', connection_id: 1, system, version: '2.0.0' }] });
    // [status] maintenance: "Markets are offline for scheduled maintenance"
    await h.waitFor('halted on connect', () => statuses().length >= 2);
    expect(statuses()).toEqual(
      ['BTC-USD', 'ETH-USD'].map((sym) => ({
        k: 'status',
        sym,
        status: 'halted',
        code: 'maintenance',
        reason: 'Kraken maintenance: markets offline, no order matching',
        ts: expect.any(BigInt),
      })),
    );
    // cancel_only and post_only: "No order matching will occur"
    status('cancel_only');
    await h.waitFor('cancel_only', () => statuses().length >= 4);
    expect(statuses().slice(2)).toMatchObject([
      { sym: 'BTC-USD', status: 'halted', code: 'cancel_only' },
      { sym: 'ETH-USD', status: 'halted', code: 'cancel_only' },
    ]);
    // a pair added while no matching occurs is halted at once
    await h.adapter.subscribe(['SOL-USD']);
    await h.waitFor('SOL-USD halted', () => statuses().some((t) => t.sym === 'SOL-USD'));
    expect(statuses().at(-1)).toMatchObject({ sym: 'SOL-USD', status: 'halted', code: 'cancel_only' });
    status('post_only');
    await h.waitFor('post_only', () => statuses().length >= 8);
    expect(
      statuses()
        .slice(5)
        .map((t) => (t.k === 'status' ? `${t.sym} ${t.status} ${t.code}` : '')),
    ).toEqual(['BTC-USD halted post_only', 'ETH-USD halted post_only', 'SOL-USD halted post_only']);
    status('online');
    await h.waitFor('trading again', () => statuses().length >= 11);
    expect(statuses().slice(8)).toEqual(
      ['BTC-USD', 'ETH-USD', 'SOL-USD'].map((sym) => ({ k: 'status', sym, status: 'trading', code: 'online', ts: expect.any(BigInt) })),
    );
    // the same state again (Kraken sends it on every connection) publishes nothing; nor does a state the page does not list
    status('online');
    status('some_new_state');
    status('online');
    await quietFor(200, 'no status tick for a repeated or unknown state');
    expect(statuses()).toHaveLength(11);
  });

  it('an exchange that stays online gives no status tick', async () => {
    const h = await start(['BTC-USD'], { pumpMs: 20 });
    await h.waitFor('trades', () => h.state === 'connected' && h.ticks.filter((t) => t.k === 'trade').length > 3);
    expect(h.ticks.filter((t) => t.k === 'status')).toEqual([]);
  });

  it('rejects unknown option keys naming them', () => {
    expect(() => KrakenOptionsSchema.parse({ symbols: ['BTC-USD'], chanels: ['trade'] })).toThrow(/chanels/);
    expect(() => KrakenOptionsSchema.parse({ tickerTrigger: 'book' })).toThrow();
  });

  describe('docs/feeds.md, Kraken section', () => {
    const doc = readFileSync(new URL('../../../docs/feeds.md', import.meta.url), 'utf8');
    const start = doc.indexOf('\n## Kraken (WebSocket v2)\n');
    const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
    const source = readFileSync(new URL('../kraken-feed.ts', import.meta.url), 'utf8');

    it('its feeds-file example builds a kraken feed', () => {
      expect(start).toBeGreaterThan(0);
      const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
      const file = parseFeedsFile(YAML.parse(yaml), 'docs/feeds.md');
      const feed = createFeed('kraken', { config: loadConfig({ env: {} }), registry: defaultRegistry(), env: {}, feedsFile: file });
      expect(feed).toBeInstanceOf(KrakenFeed);
      expect(feed.id).toBe('kraken');
      expect(file.run).toEqual(['kraken']);
    });

    it('maps exactly the Kraken fields the adapter reads', () => {
      // rows of the two field-mapping tables: Kraken field names (column 1) and whether they map to something (column 2)
      const rows = (title: string) => {
        const at = section.indexOf(title);
        expect(at, title).toBeGreaterThan(0);
        const body = section.slice(at, section.indexOf('\n\n', section.indexOf('|---', at)));
        return body
          .split('\n')
          .filter((l) => l.startsWith('| `'))
          .map((l) => {
            const [, names = '', canonical = ''] = l.split('|');
            return { fields: [...names.matchAll(/`(?:data(?:\[\d?\])?\.)?([a-z_]+)`/g)].map((m) => m[1]!), mapped: canonical.trim() !== '—' };
          });
      };
      const documented = [...rows('### Field mapping: `trade` channel'), ...rows('### Field mapping: `ticker` channel')];
      const read = new Set([...source.matchAll(/item\.([a-z_]+)/g)].map((m) => m[1]!));
      expect([...read].filter((f) => !documented.some((r) => r.fields.includes(f)))).toEqual([]);
      const mappedButUnread = documented
        .filter((r) => r.mapped)
        .flatMap((r) => r.fields)
        .filter((f) => !read.has(f));
      expect(mappedButUnread).toEqual([]);
      const unmappedButRead = documented
        .filter((r) => !r.mapped)
        .flatMap((r) => r.fields)
        .filter((f) => read.has(f) && f !== 'symbol' && f !== 'timestamp');
      expect(unmappedButRead).toEqual([]);
    });
  });
});

describe('kraken ticker with an empty side', () => {
  let h: AdapterHarness<KrakenFakeServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('publishes a ticker whose bid or ask is 0 without that side, and none when both are; no error', async () => {
    h = await startHarness(
      () => startKrakenFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new KrakenFeed('kraken', options(p.url, ['BTC-USD'])),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    await quietFor(100, 'the subscription snapshots');
    const n = h.ticks.length;
    // [ticker: Snapshot / Update] bid/bid_qty best bid, ask/ask_qty best ask, timestamp
    const ticker = (bid: number, bid_qty: number, ask: number, ask_qty: number, timestamp: string) =>
      h!.provider.broadcast({
        channel: 'ticker',
        type: 'update',
        data: [
          { symbol: 'BTC/USD', bid, bid_qty, ask, ask_qty, last: 67000, volume: 1, vwap: 67000, low: 66000, high: 68000, change: 0, change_pct: 0, timestamp },
        ],
      });
    ticker(0, 0, 67001.5, 0.25, '2024-06-10T06:13:21.000001Z');
    ticker(67000.5, 1.5, 0, 0, '2024-06-10T06:13:21.000002Z');
    ticker(0, 0, 0, 0, '2024-06-10T06:13:21.000003Z');
    ticker(67000.5, 1, 67001.5, 2, '2024-06-10T06:13:21.000004Z'); // a sentinel
    await h.waitFor('the sentinel quote', () => h!.ticks.some((t) => t.k === 'quote' && t.ts === 1718000001000004000n));
    expect(h.ticks.slice(n)).toEqual([
      { k: 'quote', sym: 'BTC-USD', ap: 67001.5, as: 0.25, ts: 1718000001000001000n },
      { k: 'quote', sym: 'BTC-USD', bp: 67000.5, bs: 1.5, ts: 1718000001000002000n },
      { k: 'quote', sym: 'BTC-USD', bp: 67000.5, bs: 1, ap: 67001.5, as: 2, ts: 1718000001000004000n },
    ]);
    expect(h.counters.errors).toEqual([]);
  });

  it('refuses a ticker with a negative quantity, naming the field (other tickers go on)', async () => {
    h = await startHarness(
      () => startKrakenFake({ pumpMs: 60_000, replayFixtures: false }),
      (p) => new KrakenFeed('kraken', options(p.url, ['BTC-USD'])),
    );
    await h.waitFor('connected', () => h!.state === 'connected');
    await quietFor(100, 'the subscription snapshots');
    const n = h.ticks.length;
    const ticker = (bid_qty: number, ask_qty: number, timestamp: string) =>
      h!.provider.broadcast({
        channel: 'ticker',
        type: 'update',
        data: [
          {
            symbol: 'BTC/USD',
            bid: 67000.5,
            bid_qty,
            ask: 67001.5,
            ask_qty,
            last: 67000,
            volume: 1,
            vwap: 67000,
            low: 66000,
            high: 68000,
            change: 0,
            change_pct: 0,
            timestamp,
          },
        ],
      });
    ticker(-1, 2, '2024-06-10T06:13:21.000001Z');
    ticker(1, -2, '2024-06-10T06:13:21.000002Z');
    ticker(1, 2, '2024-06-10T06:13:21.000003Z'); // a sentinel
    await h.waitFor('the sentinel quote', () => h!.ticks.some((t) => t.k === 'quote' && t.ts === 1718000001000003000n));
    expect(h.ticks.slice(n)).toEqual([{ k: 'quote', sym: 'BTC-USD', bp: 67000.5, bs: 1, ap: 67001.5, as: 2, ts: 1718000001000003000n }]);
    expect(h.counters.errors.join('\n')).toMatch(/ticker\.bid\/bid_qty size: -1 is negative/);
    expect(h.counters.errors.join('\n')).toMatch(/ticker\.ask\/ask_qty size: -2 is negative/);
  });
});
