import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runAdapterConformance, startHarness } from '../../sdk/conformance.js';
import type { AdapterHarness } from '../../sdk/conformance.js';
import { readRecording, tickToCsvRow, tickToJsonLine, csvHeader } from '../format.js';
import { ReplayFeed, ReplayOptionsSchema } from '../replay-feed.js';

const JSONL = new URL('../fixtures/sample.jsonl', import.meta.url).pathname;
const CSV = new URL('../fixtures/sample.csv', import.meta.url).pathname;
const options = (extra: Record<string, unknown>) => ReplayOptionsSchema.parse({ file: JSONL, ...extra });
const none = async (): Promise<undefined> => undefined;

runAdapterConformance({
  name: 'replay',
  startProvider: none,
  createAdapter: () => new ReplayFeed('replay', options({ speed: 20, loop: true, symbols: ['BTC-USD', 'ETH-USD'] })),
  symbols: ['BTC-USD', 'ETH-USD'],
  kinds: ['trade', 'quote', 'bar'],
  reconnects: false,
});

describe('replay adapter', () => {
  let h: AdapterHarness<undefined> | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'tw-replay-'));
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('plays a JSON-lines recording as fast as possible, exactly as recorded when not retimed', async () => {
    h = await startHarness(none, () => new ReplayFeed('replay', options({ speed: 'max', retime: false })));
    const expected = readRecording(JSONL);
    await h.waitFor('every tick', () => h!.ticks.length === expected.length);
    expect(h.ticks).toEqual(expected);
    expect(h.ticks[0]).toEqual({ k: 'trade', sym: 'BTC-USD', ts: 1718000000000000123n, id: '100000', p: 67250, s: 0.01, side: 'buy' });
    await h.waitFor('stopped at end of file', () => h!.state === 'stopped');
  });

  it('plays CSV recordings', async () => {
    h = await startHarness(none, () => new ReplayFeed('replay', options({ file: CSV, speed: 'max', retime: false })));
    await h.waitFor('4 ticks', () => h!.ticks.length === 4);
    expect(h.ticks[0]).toEqual({ k: 'trade', sym: 'AAPL', ts: 1718026201123456789n, id: '96921', p: 126.55, s: 1, side: 'buy' });
    expect(h.ticks[1]).toEqual({ k: 'quote', sym: 'AAPL', ts: 1718026201200000000n, bp: 126.54, bs: 3, ap: 126.56, as: 4 });
    expect(h.ticks[3]).toEqual({
      k: 'bar',
      sym: 'AAPL',
      ts: 1718026260000000000n,
      iv: '1m',
      t: 1718026200000,
      o: 126.5,
      h: 126.9,
      l: 126.4,
      c: 126.55,
      v: 49378,
      n: 461,
      closed: true,
    });
  });

  it('keeps the recorded spacing divided by the speed factor when retiming to now', async () => {
    h = await startHarness(none, () => new ReplayFeed('replay', options({ speed: 10, symbols: ['BTC-USD'] })));
    const recorded = readRecording(JSONL).filter((t) => t.sym === 'BTC-USD');
    await h.waitFor('every BTC tick', () => h!.ticks.length === recorded.length);
    const startNs = h.ticks[0]!.ts;
    expect(startNs).toBeGreaterThan(BigInt(Date.now() - 60_000) * 1_000_000n);
    recorded.forEach((r, i) => {
      const want = Number(r.ts - recorded[0]!.ts) / 10;
      expect(Math.abs(Number(h!.ticks[i]!.ts - startNs) - want)).toBeLessThanOrEqual(1);
    });
  });

  it('loops, keeping trade ids unique per source', async () => {
    h = await startHarness(none, () => new ReplayFeed('replay', options({ speed: 'max', loop: true, file: CSV })));
    await h.waitFor('three loops', () => h!.ticks.length >= 12);
    const ids = h.ticks.filter((t) => t.k === 'trade').map((t) => (t as { id: string }).id);
    expect(ids.slice(0, 4)).toEqual(['96921', '96922', '96921~1', '96922~1']);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('reports a malformed recording as an error naming the file and line', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"k":"trade","sym":"BTC-USD","ts":1718000000000,"id":"1","p":1,"s":1}\n{"k":"trade","sym":"BTC-USD","ts":1718000000001,"p":1}\n');
    h = await startHarness(none, () => new ReplayFeed('replay', options({ file: bad })));
    await h.waitFor('error', () => h!.state === 'error');
    expect(h.states.at(-1)!.detail).toMatch(/bad\.jsonl:2: field "id" is missing/);
  });

  it('round-trips ticks through the JSON-lines and CSV writers', () => {
    const ticks = readRecording(JSONL);
    const jl = join(dir, 'rt.jsonl');
    writeFileSync(jl, ticks.map(tickToJsonLine).join('\n'));
    expect(readRecording(jl)).toEqual(ticks);
    const csv = join(dir, 'rt.csv');
    writeFileSync(csv, [csvHeader(), ...ticks.map(tickToCsvRow)].join('\n'));
    expect(readRecording(csv)).toEqual(ticks);
  });
});
