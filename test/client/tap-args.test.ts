import { describe, expect, it } from 'vitest';
import { DEFAULT_TAP_URL, describeUpdate, parseTapArgs, renderTable, TapUsageError } from '../../src/cli/tap.js';

const u = (channel: string, kind: string, d: unknown, seq = 1) => ({ channel, kind, symbol: channel.split(':')[1], seq, snapshot: false, coalesced: 1, d });

describe('tickwire tap arguments', () => {
  it('takes channels and options in any order', () => {
    const a = parseTapArgs(['ticker:AAPL', '--throttle', '250', 'quote:BTC-USD', '--json', '--url=ws://127.0.0.1:9/v1/stream', '--token', 'T']);
    expect(a.channels).toEqual(['ticker:AAPL', 'quote:BTC-USD']);
    expect(a.throttle).toBe(250);
    expect(a.json).toBe(true);
    expect(a.url).toBe('ws://127.0.0.1:9/v1/stream');
    expect(a.token).toBe('T');
  });

  it('has defaults and reads the token from the environment', () => {
    const a = parseTapArgs(['trade:ETH-USD'], { TICKWIRE_TOKEN: 'envtok' });
    expect(a.url).toBe(DEFAULT_TAP_URL);
    expect(a.token).toBe('envtok');
    expect(a.json).toBe(false);
    expect(a.encoding).toBe('msgpack');
    expect(a.retries).toBe(8);
    expect(parseTapArgs(['trade:ETH-USD', '--retries', '0']).retries).toBe(0);
    expect(() => parseTapArgs(['trade:ETH-USD', '--retries', '-1'])).toThrow(/--retries takes a whole number/);
  });

  it('refuses bad usage with a message that says what to do', () => {
    expect(() => parseTapArgs([])).toThrow(/at least one channel/);
    expect(() => parseTapArgs(['ticker:AAPL', '--throttle', 'fast'])).toThrow(/whole number/);
    expect(() => parseTapArgs(['ticker:AAPL', '--url', 'http://x'])).toThrow(/ws:\/\//);
    // no host: the SDK refused it at construction (an "unexpected failure"), or retried a URL that can never connect
    expect(() => parseTapArgs(['ticker:AAPL', '--url', 'ws://'])).toThrow(TapUsageError);
    expect(() => parseTapArgs(['ticker:AAPL', '--url', 'ws://:80/v1/stream'])).toThrow(/with a host/);
    expect(parseTapArgs(['ticker:AAPL', '--url', 'wss://md.example.com/v1/stream']).url).toBe('wss://md.example.com/v1/stream');
    expect(() => parseTapArgs(['ticker:AAPL', '--bogus'])).toThrow(TapUsageError);
    expect(() => parseTapArgs(['ticker:AAPL', '--token'])).toThrow(/needs a value/);
    expect(parseTapArgs(['--help']).help).toBe(true);
  });

  it('renders one aligned row per channel', () => {
    const rows = new Map([
      ['ticker:AAPL', { update: u('ticker:AAPL', 'ticker', { p: 190.12, bp: 190.1, ap: 190.14, chgp: 1.234, v: 12000 }), count: 3, at: 1000, dir: 1 as const }],
      ['quote:EUR-USD', { update: u('quote:EUR-USD', 'quote', { bp: 1.08412, ap: 1.08415, bs: 1e6, as: 2e6 }), count: 9, at: 1500, dir: -1 as const }],
      ['trade:BTC-USD', { update: undefined, count: 0, at: 0, dir: 0 as const }],
    ]);
    const lines = renderTable(rows, 2000, 200, false);
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^CHANNEL\s+LAST\s+BID\s+ASK\s+CHG%\s+INFO\s+SEQ\s+UPD\s+AGE$/);
    expect(lines[1]).toContain('190.120');
    expect(lines[1]).toContain('1.23');
    expect(lines[2]).toContain('1.0841');
    expect(lines[3]).toContain('waiting');
    expect(describeUpdate(u('bar.1s:NVDA', 'bar.1s', { o: 1, h: 2, l: 0.5, c: 1.5, n: 4, closed: true }))[4]).toContain('closed');
  });

  it('shows no last price for an empty day or bar, and marks mid prices (docs/protocol.md#ticker)', () => {
    // a day whose trades were all cancelled: p carries the previous close, which is not a last price
    const empty = describeUpdate(u('ticker:AAPL', 'ticker', { p: 180, o: 180, h: 180, l: 180, pc: 180, chgp: 0, v: 0, bp: 179.9, ap: 180.1, empty: true }));
    expect(empty[0]).toBe('');
    expect(empty[3]).toBe('');
    expect(empty[1]).toBe('179.900');
    expect(empty[4]).toContain('no trade');
    const bar = describeUpdate(u('bar.1m:AAPL', 'bar.1m', { o: 1, h: 2, l: 0.5, c: 1.5, n: 0, v: 0, closed: true, empty: true }));
    expect(bar[0]).toBe('');
    expect(bar[4]).toContain('empty');
    expect(describeUpdate(u('ticker:EUR-USD', 'ticker', { p: 1.0841, bp: 1.084, ap: 1.0842, chgp: 0.1, v: 0, basis: 'mid' }))[4]).toContain('mid');
  });
});
