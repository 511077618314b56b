import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryBus } from '../../../src/bus/memory-bus.js';
import { decodeTick } from '../../../src/codec/tick-codec.js';
import { defaultRegistry } from '../../../src/core/instruments.js';
import type { BarTick, Tick, TickerTick } from '../../../src/core/schema.js';
import { FeedHost } from '../../../src/ingest/feed-host.js';
import { TickPublisher } from '../../../src/ingest/tick-publisher.js';
import { waitFor } from '../../../test/helpers/wait.js';
import { readRecordingFile } from '../format.js';
import { ReplayFeed, ReplayOptionsSchema } from '../replay-feed.js';

/**
 * A recording of a quote-only source (OANDA: prices, no trades) replayed with `quotesOnly: true`
 * gets the ticker and bars from mids, as the live OANDA feed does
 * (feeds/oanda/test/oanda-mid-bars.test.ts). Before, the replay feed could not declare it, and
 * such a replay built no ticker and no bars.
 */
const T0 = Date.UTC(2024, 5, 11, 14, 0, 0);
const ns = (ms: number): string => (BigInt(ms) * 1_000_000n).toString();
const quote = (ms: number, bp: number, ap: number) => JSON.stringify({ k: 'quote', sym: 'EUR-USD', ts: ns(ms), bp, bs: 1e6, ap, as: 1e6, src: 'oanda' });
const dir = mkdtempSync(join(tmpdir(), 'tickwire-replay-quotes-'));
const FILE = join(dir, 'oanda.jsonl');
writeFileSync(FILE, [quote(T0 + 1_000, 1.07612, 1.07626), quote(T0 + 20_000, 1.07633, 1.07647), quote(T0 + 61_000, 1.07623, 1.07637)].join('\n') + '\n');

describe('replay of a quote-only recording', () => {
  let host: FeedHost | undefined;
  let publisher: TickPublisher | undefined;
  afterEach(async () => {
    await host?.stopAll();
    publisher?.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  async function replay(extra: Record<string, unknown>, file = FILE, quotes = 3): Promise<Tick[]> {
    const bus = new MemoryBus();
    const ticks: Tick[] = [];
    bus.subscribe('md.>', (_s, p) => ticks.push(decodeTick(p)));
    publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    host = new FeedHost(publisher, { info() {}, warn() {}, error() {}, debug() {} });
    await host.start(new ReplayFeed('replay', ReplayOptionsSchema.parse({ file, speed: 'max', retime: false, ...extra })));
    await waitFor(() => ticks.filter((t) => t.k === 'quote').length >= quotes, { what: 'every quote replayed', timeout: 10_000 });
    return ticks;
  }

  it('with quotesOnly: the ticker and bars come from mids, marked basis mid', async () => {
    const ticks = await replay({ quotesOnly: true });
    const last = ticks.filter((t): t is TickerTick => t.k === 'ticker').at(-1);
    expect(last).toMatchObject({ p: 1.0763, o: 1.07619, h: 1.0764, l: 1.07619, v: 0, basis: 'mid' });
    const closed = ticks.find((t): t is BarTick => t.k === 'bar' && t.iv === '1m' && t.closed && t.t === T0);
    expect(closed).toMatchObject({ o: 1.07619, h: 1.0764, l: 1.07619, c: 1.0764, v: 0, n: 2, basis: 'mid' });
  });

  it('a #source line marks the source quote-only, wherever it stands in the file; no option needed', async () => {
    const file = join(dir, 'noted.jsonl');
    writeFileSync(file, readFileSync(FILE, 'utf8') + '#source {"src":"oanda","quotesOnly":true}\n');
    const last = (await replay({}, file)).filter((t): t is TickerTick => t.k === 'ticker').at(-1);
    expect(last).toMatchObject({ p: 1.0763, o: 1.07619, h: 1.0764, l: 1.07619, v: 0, basis: 'mid' });
  });

  it('a #source line saying quotesOnly false, or naming another source, changes nothing', async () => {
    for (const line of ['#source {"src":"oanda","quotesOnly":false}', '#source {"src":"other","quotesOnly":true}', '#sources are noted below']) {
      const file = join(dir, 'other.jsonl');
      writeFileSync(file, line + '\n' + readFileSync(FILE, 'utf8'));
      const ticks = await replay({}, file);
      expect(ticks.filter((t) => t.k === 'bar')).toHaveLength(0);
      expect(ticks.filter((t) => t.k === 'ticker' && (t as TickerTick).basis === 'mid')).toHaveLength(0);
      await host?.stopAll();
      publisher?.close();
    }
  });

  it("follows each tick's source: a symbol served by a trade feed, then a quote-only one, then the trade feed again", async () => {
    // what a recording of a failover switch holds (docs/feeds.md, "Ticker and bars across a
    // switch to a quote-only feed"): the quote-only source's quotes set mid prices, the trade
    // feed's quotes never do, and its first trade after the switch back takes over the price
    const file = join(dir, 'switch.jsonl');
    const line = (o: Record<string, unknown>): string => JSON.stringify({ sym: 'BTC-USD', ...o });
    writeFileSync(
      file,
      [
        '#source {"src":"fx","quotesOnly":true}',
        line({ k: 'trade', ts: ns(T0 + 1_000), id: '1', p: 100, s: 1, src: 'binance' }),
        line({ k: 'quote', ts: ns(T0 + 2_000), bp: 99, bs: 1, ap: 101, as: 1, src: 'binance' }),
        line({ k: 'quote', ts: ns(T0 + 3_000), bp: 104, bs: 1, ap: 106, as: 1, src: 'fx' }),
        line({ k: 'quote', ts: ns(T0 + 4_000), bp: 90, bs: 1, ap: 92, as: 1, src: 'binance' }),
        line({ k: 'trade', ts: ns(T0 + 5_000), id: '2', p: 102, s: 1, src: 'binance' }),
      ].join('\n') + '\n',
    );
    const ticks = await replay({}, file, 3);
    await waitFor(() => ticks.some((t) => t.k === 'trade' && (t as { id: string }).id === '2'), { what: 'the last trade' });
    const tickers = ticks.filter((t): t is TickerTick => t.k === 'ticker');
    // after each tick: trade 100; binance quote (no price); fx quote, mid 105; binance quote (no
    // price: still 105); trade 102 without the marker
    expect(tickers.map((t) => [t.p, t.basis ?? 'trade'])).toEqual([
      [100, 'trade'],
      [100, 'trade'],
      [105, 'mid'],
      [105, 'mid'],
      [102, 'trade'],
    ]);
    expect(tickers.at(-1)).toMatchObject({ o: 100, h: 105, l: 100 });
  });

  it('a malformed #source line is an error naming the file and line', () => {
    const cases: [string, RegExp][] = [
      ['#source oanda', /bad\.jsonl:2: #source must be followed by JSON/],
      ['#source {"quotesOnly":true}', /bad\.jsonl:2: #source needs "src"/],
      ['#source {"src":"oanda","quotesOnly":"yes"}', /bad\.jsonl:2: #source "quotesOnly" must be true or false, got "yes"/],
    ];
    for (const [line, error] of cases) {
      const file = join(dir, 'bad.jsonl');
      writeFileSync(file, quote(T0, 1, 2) + '\n' + line + '\n');
      expect(() => readRecordingFile(file)).toThrow(error);
    }
    const csv = join(dir, 'bad.csv');
    writeFileSync(csv, 'k,sym,ts,bp,ap,src\n#source {"src":"oanda"}\n');
    expect(() => readRecordingFile(csv)).toThrow(/bad\.csv:2: #source "quotesOnly" must be true or false, got undefined/);
  });

  it("without it (a trade feed's recording): quotes build no ticker price and no bars", async () => {
    const ticks = await replay({});
    expect(ticks.filter((t) => t.k === 'bar')).toHaveLength(0);
    expect(ticks.filter((t) => t.k === 'ticker' && (t as TickerTick).basis === 'mid')).toHaveLength(0);
  });
});
