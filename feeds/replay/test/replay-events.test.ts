import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TickInput } from '../../sdk/adapter.js';
import { csvHeader, readRecording, tickToCsvRow, tickToJsonLine } from '../format.js';

/** Written as JSON lines and as CSV, `ticks` read back the same. */
function expectRoundTrip(ticks: TickInput[]): void {
  const dir = mkdtempSync(join(tmpdir(), 'tw-rec-'));
  const jsonl = join(dir, 'r.jsonl');
  const csv = join(dir, 'r.csv');
  writeFileSync(jsonl, ticks.map(tickToJsonLine).join('\n'));
  writeFileSync(csv, [csvHeader(), ...ticks.map(tickToCsvRow)].join('\n'));
  expect(readRecording(jsonl)).toEqual(ticks);
  expect(readRecording(csv)).toEqual(ticks);
}

/** Recordings keep corrections, cancels and one-sided quotes, so a replay has them too. */
describe('recording format: corrections, cancels, one-sided quotes', () => {
  const ticks: TickInput[] = [
    { k: 'trade', sym: 'AAPL', id: '13', p: 101, s: 1, venue: 'V', ts: 1718026201000000000n },
    { k: 'correction', sym: 'AAPL', ref: '13', id: '14', p: 102, s: 20, venue: 'V', ts: 1718026202000000000n },
    { k: 'cancel', sym: 'AAPL', ref: '14', error: true, ts: 1718026203000000000n },
    { k: 'quote', sym: 'EUR-USD', ap: 1.0763, as: 250_000, ts: 1718026204000000000n },
  ];

  it('round-trips through JSON lines and CSV', () => {
    expectRoundTrip(ticks);
  });

  it('reads a quote with neither side (an empty book), and refuses a correction without ref, naming the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-rec-'));
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"k":"quote","sym":"EUR-USD","ts":"1718026204000000000"}\n');
    expect(readRecording(bad)).toEqual([{ k: 'quote', sym: 'EUR-USD', ts: 1718026204000000000n }]);
    expectRoundTrip([{ k: 'quote', sym: 'BTC-USD', ts: 1718026204000000000n }]);
    writeFileSync(bad, '{"k":"correction","sym":"AAPL","ts":"1718026204000000000","id":"1","p":1,"s":1}\n');
    expect(() => readRecording(bad)).toThrow(/bad\.jsonl:1: field "ref" is missing/);
  });
});

/**
 * A trade's sale-condition flags decide what it counts in (docs/feeds.md, "Trade conditions"):
 * `volumeOnly` sets no price, `excluded` counts in nothing, `highLowOnly` only in volume and the
 * day's high and low. A recording keeps them, or a replay
 * would move the last price with an odd lot and count the closing auction's re-report twice.
 */
describe('recording format: trade condition flags', () => {
  const ticks: TickInput[] = [
    { k: 'trade', sym: 'AAPL', id: 'V:1', p: 101, s: 100, venue: 'V', ts: 1718026201000000000n },
    { k: 'trade', sym: 'AAPL', id: 'V:2', p: 99, s: 7, venue: 'V', volumeOnly: true, ts: 1718026202000000000n },
    { k: 'trade', sym: 'AAPL', id: 'N:3', p: 100, s: 50_000, venue: 'N', volumeOnly: true, excluded: true, ts: 1718026203000000000n },
    { k: 'correction', sym: 'AAPL', ref: 'V:2', id: 'V:4', p: 99.5, s: 7, venue: 'V', volumeOnly: false, ts: 1718026204000000000n },
    { k: 'correction', sym: 'AAPL', ref: 'V:1', id: 'V:5', p: 101, s: 100, venue: 'V', volumeOnly: true, ts: 1718026205000000000n },
    { k: 'correction', sym: 'AAPL', ref: 'V:5', id: 'V:6', p: 101, s: 100, venue: 'V', volumeOnly: true, excluded: true, ts: 1718026206000000000n },
    // a late print (SIP `Z`): the day's high and low, not the last price
    { k: 'trade', sym: 'AAPL', id: 'V:7', p: 102, s: 10, venue: 'V', volumeOnly: true, highLowOnly: true, ts: 1718026207000000000n },
    { k: 'correction', sym: 'AAPL', ref: 'V:7', id: 'V:8', p: 102.5, s: 10, venue: 'V', volumeOnly: true, highLowOnly: true, ts: 1718026208000000000n },
  ];

  it('round-trips volumeOnly, excluded and highLowOnly through JSON lines and CSV', () => {
    expectRoundTrip(ticks);
  });

  it('refuses a flag that is not a boolean, naming the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tw-rec-'));
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"k":"trade","sym":"AAPL","ts":"1718026204000000000","id":"1","p":1,"s":1,"volumeOnly":"yes"}\n');
    expect(() => readRecording(bad)).toThrow(/bad\.jsonl:1: field "volumeOnly" must be true or false/);
  });
});

/**
 * A status published `stale` (its feed reconnected to a provider that sends no status snapshot,
 * docs/feeds.md) is recorded with the mark, so a replay shows it as uncertain as it was.
 */
describe('recording format: a stale status', () => {
  it('round-trips stale through JSON lines and CSV', () => {
    expectRoundTrip([
      { k: 'status', sym: 'AAPL', status: 'halted', code: 'H', reason: 'Trading Halt', ts: 1718026201000000000n },
      { k: 'status', sym: 'AAPL', status: 'halted', code: 'H', reason: 'Trading Halt', stale: true, ts: 1718026202000000000n },
      { k: 'status', sym: 'AAPL', status: 'trading', luld: { up: 11, down: 9 }, stale: true, ts: 1718026203000000000n },
    ]);
  });
});
