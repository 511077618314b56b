import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

  async function replay(extra: Record<string, unknown>): Promise<Tick[]> {
    const bus = new MemoryBus();
    const ticks: Tick[] = [];
    bus.subscribe('md.forex.>', (_s, p) => ticks.push(decodeTick(p)));
    publisher = new TickPublisher({ bus, registry: defaultRegistry(), barSweepMs: 0 });
    host = new FeedHost(publisher, { info() {}, warn() {}, error() {}, debug() {} });
    await host.start(new ReplayFeed('replay', ReplayOptionsSchema.parse({ file: FILE, speed: 'max', retime: false, ...extra })));
    await waitFor(() => ticks.filter((t) => t.k === 'quote').length >= 3, { what: 'every quote replayed', timeout: 10_000 });
    return ticks;
  }

  it('with quotesOnly: the ticker and bars come from mids, marked basis mid', async () => {
    const ticks = await replay({ quotesOnly: true });
    const last = ticks.filter((t): t is TickerTick => t.k === 'ticker').at(-1);
    expect(last).toMatchObject({ p: 1.0763, o: 1.07619, h: 1.0764, l: 1.07619, v: 0, basis: 'mid' });
    const closed = ticks.find((t): t is BarTick => t.k === 'bar' && t.iv === '1m' && t.closed && t.t === T0);
    expect(closed).toMatchObject({ o: 1.07619, h: 1.0764, l: 1.07619, c: 1.0764, v: 0, n: 2, basis: 'mid' });
  });

  it("without it (a trade feed's recording): quotes build no ticker price and no bars", async () => {
    const ticks = await replay({});
    expect(ticks.filter((t) => t.k === 'bar')).toHaveLength(0);
    expect(ticks.filter((t) => t.k === 'ticker' && (t as TickerTick).basis === 'mid')).toHaveLength(0);
  });
});
