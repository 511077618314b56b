import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { Recorder, recordPatterns } from '../../src/ingest/recorder.js';
import { runRecord } from '../../src/ingest/record-command.js';
import { TickPublisher } from '../../src/ingest/tick-publisher.js';
import { FeedHost } from '../../src/ingest/feed-host.js';
import { decodeTick } from '../../src/codec/tick-codec.js';
import type { BarTick, Tick, TickerTick } from '../../src/core/schema.js';
import type { FeedAdapter, FeedContext, TickInput } from '../../feeds/sdk/adapter.js';
import { readRecording, readRecordingFile } from '../../feeds/replay/format.js';
import { ReplayFeed, ReplayOptionsSchema } from '../../feeds/replay/replay-feed.js';
import { startNats } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

const SAMPLE = new URL('../../feeds/replay/fixtures/sample.jsonl', import.meta.url).pathname;

describe('recording ticks from the bus', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-record-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('maps channels to subject patterns (symbols escaped, any asset class)', () => {
    expect(recordPatterns(['trade:BTC-USD', 'quote:*', 'bar.1m:BRK.B'])).toEqual(['md.*.trade.BTC-USD', 'md.*.quote.*', 'md.*.bar-1m.BRK%2EB']);
    expect(() => recordPatterns(['ticker:AAPL'])).toThrow(/kind must be one of trade, quote, bar.1s, bar.1m/);
  });

  for (const ext of ['jsonl', 'csv'] as const) {
    it(`writes what the publisher publishes as ${ext}, readable by the replay adapter`, async () => {
      const bus = new MemoryBus();
      const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
      const out = join(dir, `rec.${ext}`);
      const recorder = new Recorder({ bus, out, channels: ['trade:*', 'quote:BTC-USD'] });
      const input = readRecording(SAMPLE).filter((t) => t.k !== 'bar');
      for (const t of input) publisher.publish('binance', t);
      publisher.publish('binance', { k: 'quote', sym: 'ETH-USD', bp: 1, ap: 2, ts: 1718000000000000000n }); // not recorded
      await recorder.close();
      publisher.close();
      const back = readRecording(out);
      const want = input.filter((t) => t.k === 'trade' || t.sym === 'BTC-USD');
      expect(recorder.count).toBe(want.length);
      expect(back).toEqual(want);
      if (ext === 'jsonl')
        expect(JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!)).toMatchObject({ k: 'trade', src: 'binance', ts: '1718000000000000123' });
    });
  }
});

describe('recording trading status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-record-status-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const ext of ['jsonl', 'csv'] as const) {
    it(`records status:SYM by default and reads it back for a replay (${ext})`, async () => {
      const bus = new MemoryBus();
      const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
      const out = join(dir, `status.${ext}`);
      const recorder = new Recorder({ bus, out });
      publisher.publish('alpaca', {
        k: 'status',
        sym: 'AAPL',
        status: 'halted',
        code: 'H',
        reason: 'Trading Halt: News "pending", T1',
        ts: 1718026201000000000n,
      });
      publisher.publish('alpaca', { k: 'status', sym: 'AAPL', luld: { up: 105.5, down: 95.25 }, ts: 1718026202000000000n });
      publisher.publish('alpaca', { k: 'status', sym: 'AAPL', status: 'trading', code: 'T', ts: 1718026203000000000n });
      await recorder.close();
      publisher.close();
      // what status:AAPL carried: the whole state after each report (the band stays, the reason goes)
      expect(readRecording(out)).toEqual([
        { k: 'status', sym: 'AAPL', status: 'halted', code: 'H', reason: 'Trading Halt: News "pending", T1', ts: 1718026201000000000n },
        {
          k: 'status',
          sym: 'AAPL',
          status: 'halted',
          code: 'H',
          reason: 'Trading Halt: News "pending", T1',
          luld: { up: 105.5, down: 95.25 },
          ts: 1718026202000000000n,
        },
        { k: 'status', sym: 'AAPL', status: 'trading', code: 'T', luld: { up: 105.5, down: 95.25 }, ts: 1718026203000000000n },
      ]);
    });
  }
});

/** A feed that emits a fixed list of ticks once started; `quotesOnly` as the adapter declares it. */
function scriptedFeed(id: string, ticks: readonly TickInput[], quotesOnly?: true): FeedAdapter {
  return {
    id,
    ...(quotesOnly ? { quotesOnly } : {}),
    async start(ctx: FeedContext) {
      ctx.status('connected');
      for (const t of ticks) ctx.emit(t);
    },
    async subscribe() {},
    async unsubscribe() {},
    async stop() {},
  };
}

describe('recording a quote-only source (OANDA)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tw-record-quotes-only-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const silent = { info() {}, warn() {}, error() {}, debug() {} };
  const T0 = Date.UTC(2024, 5, 11, 14, 0, 0);
  const ns = (ms: number): bigint => BigInt(ms) * 1_000_000n;
  const eur = (ms: number, bp: number, ap: number): TickInput => ({ k: 'quote', sym: 'EUR-USD', bp, bs: 1e6, ap, as: 1e6, ts: ns(ms) });
  // a quote-only feed (prices, no trades) and a trade feed, recorded into one file
  const OANDA = [eur(T0 + 1_000, 1.07612, 1.07626), eur(T0 + 20_000, 1.07633, 1.07647), eur(T0 + 61_000, 1.07623, 1.07637)];
  const BINANCE: TickInput[] = [
    { k: 'trade', sym: 'BTC-USD', id: '1', p: 67250, s: 0.01, ts: ns(T0 + 2_000) },
    { k: 'quote', sym: 'BTC-USD', bp: 67249, bs: 1, ap: 67251, as: 1, ts: ns(T0 + 3_000) },
    { k: 'trade', sym: 'BTC-USD', id: '2', p: 67252, s: 0.02, ts: ns(T0 + 62_000) },
  ];

  async function record(ext: 'jsonl' | 'csv'): Promise<string> {
    const bus = new MemoryBus();
    const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    const host = new FeedHost(publisher, silent, { bus });
    const out = join(dir, `mixed.${ext}`);
    const recorder = new Recorder({ bus, out });
    await host.start(scriptedFeed('oanda', OANDA, true));
    await host.start(scriptedFeed('binance', BINANCE));
    await host.stopAll();
    await recorder.close();
    publisher.close();
    return out;
  }

  async function replay(file: string): Promise<Tick[]> {
    const bus = new MemoryBus();
    const ticks: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => ticks.push(decodeTick(p)));
    const publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    const host = new FeedHost(publisher, silent);
    try {
      // no quotesOnly option: the recording says which of its sources publish no trades
      await host.start(new ReplayFeed('replay', ReplayOptionsSchema.parse({ file, speed: 'max', retime: false })));
      await waitFor(() => ticks.filter((t) => t.k === 'quote').length >= 4, { what: 'every quote replayed', timeout: 10_000 });
      return ticks;
    } finally {
      await host.stopAll();
      publisher.close();
    }
  }

  for (const ext of ['jsonl', 'csv'] as const) {
    it(`notes the source as quote-only, and the replay builds its ticker and bars from mids (${ext})`, async () => {
      const out = await record(ext);
      const ticks = await replay(out);
      // EUR-USD, from the quote-only source: mids, as live (feeds/oanda/test/oanda-mid-bars.test.ts)
      const eurTicker = ticks.filter((t): t is TickerTick => t.k === 'ticker' && t.sym === 'EUR-USD').at(-1);
      expect(eurTicker).toMatchObject({ p: 1.0763, o: 1.07619, h: 1.0764, l: 1.07619, v: 0, basis: 'mid' });
      const bar = ticks.find((t): t is BarTick => t.k === 'bar' && t.sym === 'EUR-USD' && t.iv === '1m' && t.closed && t.t === T0);
      expect(bar).toMatchObject({ o: 1.07619, h: 1.0764, l: 1.07619, c: 1.0764, v: 0, n: 2, basis: 'mid' });
      // BTC-USD, from the trade feed in the same file: trade prices, its quotes set no price
      const btcTicker = ticks.filter((t): t is TickerTick => t.k === 'ticker' && t.sym === 'BTC-USD').at(-1);
      expect(btcTicker).toMatchObject({ p: 67252, o: 67250, h: 67252, l: 67250, v: 0.03 });
      expect(btcTicker?.basis).toBeUndefined();
      expect(ticks.some((t) => t.sym === 'BTC-USD' && (t as { basis?: string }).basis === 'mid')).toBe(false);
    });
  }
});

describe('tickwire record over NATS', () => {
  let nats: Awaited<ReturnType<typeof startNats>> | undefined;
  let engine: Engine | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tw-record-nats-'));
  beforeAll(async () => {
    nats = await startNats({ jetstream: false });
  }, 60_000);
  afterEach(async () => {
    await engine?.close();
    engine = undefined;
  });
  afterAll(async () => {
    await nats?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('records the ticks of a feed running in another engine', async () => {
    engine = await startEngine(
      { log: { level: 'silent' }, natsUrl: nats!.url },
      { roles: { gateway: false }, env: {}, feedsFile: { feeds: { replay: { file: SAMPLE, speed: 20, loop: true } }, run: ['replay'] } },
    );
    const out = join(dir, 'live.jsonl');
    const abort = new AbortController();
    const lines: string[] = [];
    const done = runRecord(['--out', out, '--channels', 'trade:BTC-USD,quote:*'], {
      env: { NATS_URL: nats!.url },
      signal: abort.signal,
      print: (l) => lines.push(l),
    });
    // (not created yet: readFileSync throws, which waitFor takes as "not yet")
    // (complete lines: the file ends with a newline, and the empty string after it is not a tick)
    await waitFor(() => readFileSync(out, 'utf8').split('\n').filter(Boolean).length > 30, {
      what: 'over 30 recorded lines',
      timeout: 20_000,
      interval: 100,
    }).catch(() => undefined); // the assertions below say what is missing
    abort.abort();
    expect(await done).toBe(0);
    const ticks = readRecording(out);
    expect(ticks.length).toBeGreaterThan(30);
    expect(new Set(ticks.map((t) => t.k))).toEqual(new Set(['trade', 'quote']));
    expect(ticks.filter((t) => t.k === 'trade').every((t) => t.sym === 'BTC-USD')).toBe(true);
    expect(JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!).src).toBe('replay');
    expect(lines.at(-1)).toMatch(/^recorded \d+ ticks to /);
  }, 60_000);

  it('notes a quote-only feed running in another engine, learned from its health on the bus', async () => {
    const file = join(dir, 'eurusd-source.jsonl');
    const q = (i: number): string =>
      JSON.stringify({ k: 'quote', sym: 'EUR-USD', ts: String(1718026201000000000n + BigInt(i) * 50_000_000n), bp: 1.0761, bs: 1e6, ap: 1.0763, as: 1e6 });
    writeFileSync(file, Array.from({ length: 20 }, (_, i) => q(i)).join('\n') + '\n');
    engine = await startEngine(
      { log: { level: 'silent' }, natsUrl: nats!.url },
      { roles: { gateway: false }, env: {}, feedsFile: { feeds: { fx: { adapter: 'replay', file, speed: 20, loop: true, quotesOnly: true } }, run: ['fx'] } },
    );
    const out = join(dir, 'fx.jsonl');
    const abort = new AbortController();
    const lines: string[] = [];
    const done = runRecord(['--out', out, '--channels', 'quote:*'], { env: { NATS_URL: nats!.url }, signal: abort.signal, print: (l) => lines.push(l) });
    await waitFor(() => readFileSync(out, 'utf8').includes('#source'), { what: 'a #source line', timeout: 20_000, interval: 100 }).catch(() => undefined);
    abort.abort();
    expect(await done).toBe(0);
    const rec = readRecordingFile(out);
    expect([...rec.sources.values()]).toEqual([{ src: 'fx', quotesOnly: true }]);
    expect(readFileSync(out, 'utf8')).toContain('#source {"src":"fx","quotesOnly":true}\n');
    expect(lines.filter((l) => l.startsWith('feed fx publishes quotes and no trades: noted in'))).toHaveLength(1);
  }, 60_000);

  it('needs --out and NATS_URL', async () => {
    await expect(runRecord([], { env: {} })).rejects.toThrow(/record needs --out FILE/);
    await expect(runRecord(['--out', join(dir, 'x.jsonl')], { env: {} })).rejects.toThrow(/NATS_URL/);
  });
});
