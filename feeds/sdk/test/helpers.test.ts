import { afterEach, describe, expect, it } from 'vitest';
import { Backoff } from '../backoff.js';
import { decimal, isDecimalString, optionalDecimal, price } from '../decimal.js';
import { pairRule, SymbolMap } from '../symbol-map.js';
import { anyTimeToNs, epochToNs, isoToNs, toNs } from '../time.js';
import { startHarness } from '../conformance.js';
import type { AdapterHarness } from '../conformance.js';
import { StreamFeed } from '../stream-feed.js';
import type { StreamSession } from '../runner.js';
import { FakeWsServer } from '../testing/fake-ws-server.js';
import { quietFor } from '../../../test/helpers/wait.js';

describe('time helpers', () => {
  it('converts every unit to exact nanoseconds', () => {
    expect(toNs(1718000000, 's')).toBe(1718000000000000000n);
    expect(toNs(1718000000123, 'ms')).toBe(1718000000123000000n);
    expect(toNs(1718000000123456, 'us')).toBe(1718000000123456000n);
    expect(toNs(1718000000123456789n, 'ns')).toBe(1718000000123456789n);
    expect(toNs('1718000000.123456789', 's')).toBe(1718000000123456789n);
    expect(toNs('1718000000123.5', 'ms')).toBe(1718000000123500000n);
    expect(toNs(1.5, 's')).toBe(1500000000n);
    expect(() => toNs('abc', 'ms')).toThrow(RangeError);
  });

  it('guesses the unit of epoch numbers by magnitude', () => {
    expect(epochToNs(1718000000)).toBe(1718000000000000000n);
    expect(epochToNs(1718000000123)).toBe(1718000000123000000n);
    expect(epochToNs(1718000000123456)).toBe(1718000000123456000n);
    expect(epochToNs('1718000000123456789')).toBe(1718000000123456789n);
  });

  it('parses RFC 3339 with up to nine fractional digits and offsets', () => {
    expect(isoToNs('2024-06-10T06:13:20Z')).toBe(1718000000000000000n);
    expect(isoToNs('2024-06-10T06:13:20.123456789Z')).toBe(1718000000123456789n);
    expect(isoToNs('2024-06-10T06:13:20.1Z')).toBe(1718000000100000000n);
    expect(isoToNs('2024-06-10T08:13:20.5+02:00')).toBe(1718000000500000000n);
    expect(isoToNs('2024-06-10 06:13:20.000000000 +0000')).toBe(1718000000000000000n);
    expect(() => isoToNs('yesterday')).toThrow(/not RFC 3339/);
    expect(anyTimeToNs('2024-06-10T06:13:20Z')).toBe(1718000000000000000n);
    expect(anyTimeToNs('1718000000.25', 's')).toBe(1718000000250000000n);
  });

  it('refuses a date or time that does not exist, instead of rolling it over into another one', () => {
    // RFC 3339 section 5.6 (date-month 01-12, date-mday 01-28/29/30/31 by month and year, time-hour
    // 00-23, time-minute 00-59, time-second 00-58/59/60; time-numoffset hours 00-23, minutes
    // 00-59). Date.UTC rolls such values over: 2024-02-30 was read as 2024-03-01, 24:00 as the
    // next day's 00:00, an offset +24:00 as 24 hours: a provider's bad time became a wrong one.
    for (const bad of [
      '2024-02-30T06:13:20Z',
      '2023-02-29T06:13:20Z',
      '2024-04-31T06:13:20Z',
      '2024-13-01T06:13:20Z',
      '2024-00-10T06:13:20Z',
      '2024-06-00T06:13:20Z',
      '2024-06-10T24:00:00Z',
      '2024-06-10T06:60:20Z',
      '2024-06-10T06:13:61Z',
      '2024-06-10T06:13:20+24:00',
      '2024-06-10T06:13:20-05:60',
    ]) {
      expect(() => isoToNs(bad), bad).toThrow(/not a valid RFC 3339 date and time/);
    }
    // a leap year's 29 February, and a leap second (time-second 60), are valid: the leap second
    // is the instant the next second starts, as Unix time (which has no leap seconds) counts it
    expect(isoToNs('2024-02-29T06:13:20Z')).toBe(BigInt(Date.UTC(2024, 1, 29, 6, 13, 20)) * 1_000_000n);
    expect(isoToNs('2016-12-31T23:59:60.5Z')).toBe(BigInt(Date.UTC(2017, 0, 1)) * 1_000_000n + 500_000_000n);
    expect(isoToNs('2024-06-10T06:13:20-23:59')).toBe(1718000000000000000n + (23n * 60n + 59n) * 60_000_000_000n);
  });
});

describe('decimal helpers', () => {
  it('accepts decimal strings and numbers, rejects the rest naming the field', () => {
    expect(decimal('67250.12000000')).toBe(67250.12);
    expect(decimal(' 1e-8 ')).toBe(1e-8);
    expect(decimal(3)).toBe(3);
    expect(isDecimalString('0.001')).toBe(true);
    expect(isDecimalString('1,5')).toBe(false);
    expect(() => decimal('NaN', 'trade.p')).toThrow(/trade\.p: "NaN" is not a decimal number/);
    expect(() => decimal('', 'x')).toThrow(RangeError);
    expect(() => decimal(Infinity, 'x')).toThrow(RangeError);
    expect(optionalDecimal(undefined)).toBeUndefined();
    expect(optionalDecimal('')).toBeUndefined();
    expect(() => price('0', 'bid')).toThrow(/bid: "0" is not a positive price/);
  });
});

describe('symbol map', () => {
  it('maps canonical <-> provider with a rule and explicit overrides, case-insensitively', () => {
    const m = new SymbolMap(['BTC-USD', 'ETH-USD', 'SOL-USD'], pairRule('', { lower: true }), { 'BTC-USD': 'BTCUSDT' });
    expect(m.toProvider('BTC-USD')).toBe('BTCUSDT');
    expect(m.toProvider('ETH-USD')).toBe('ethusd');
    expect(m.toCanonical('btcusdt')).toBe('BTC-USD');
    expect(m.toCanonical('ETHUSD')).toBe('ETH-USD');
    expect(m.toCanonical('DOGEUSD')).toBeUndefined(); // not one of ours
    const fx = new SymbolMap(['EUR-USD'], pairRule('_'));
    expect(fx.toProvider('EUR-USD')).toBe('EUR_USD');
    // a symbol maps back only once we asked the provider for it
    expect(fx.toCanonical('GBP_USD')).toBeUndefined();
    expect(fx.toProvider('GBP-USD')).toBe('GBP_USD');
    expect(fx.toCanonical('gbp_usd')).toBe('GBP-USD');
  });
});

describe('backoff', () => {
  it('grows exponentially to the maximum, with jitter below the exponential value', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }, () => 0);
    expect([b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000]);
    b.reset();
    expect(b.next()).toBe(100);
    const j = new Backoff({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }, () => 1);
    expect(j.next()).toBe(50);
    const r = new Backoff({ initialMs: 1000, maxMs: 1000, factor: 2, jitter: 0.3 });
    for (let i = 0; i < 50; i++) {
      const d = r.next();
      expect(d).toBeGreaterThanOrEqual(700);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });
});

/** A minimal adapter on the runner, to test the runner's own paths. */
class EchoFeed extends StreamFeed {
  constructor(
    private readonly base: string,
    opts: ConstructorParameters<typeof StreamFeed>[2] = {},
  ) {
    super('echo', ['AAA'], { backoff: { initialMs: 20, maxMs: 100 }, ...opts });
  }
  url(): string {
    return `${this.base}/echo`;
  }
  onOpen(session: StreamSession): void {
    session.send('hello');
  }
  onMessage(data: Buffer, _b: boolean, session: StreamSession): void {
    if (data.toString() === 'ready') session.ready();
    else session.ctx.emit({ k: 'trade', sym: 'AAA', id: data.toString(), p: 1, s: 1, ts: 1718000000000000000n });
  }
}

describe('stream runner', () => {
  let h: AdapterHarness<FakeWsServer> | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('reports auth_failed when the upgrade is refused with 401, and retries only after the long delay', async () => {
    h = await startHarness(
      () => FakeWsServer.start({ initialState: () => ({}), refuse: () => 401 }),
      (p) => new EchoFeed(p.url, { retryAfterFailMs: 60_000 }),
    );
    await h.waitFor('auth_failed', () => h!.state === 'auth_failed');
    expect(h.states.at(-1)!.detail).toMatch(/HTTP 401/);
  });

  it('gives up on a provider that never confirms the subscription (ready timeout) and reconnects', async () => {
    h = await startHarness(
      () => FakeWsServer.start({ initialState: () => ({}) }),
      (p) => new EchoFeed(p.url, { readyTimeoutMs: 150 }),
    );
    await h.waitFor('reconnecting after the ready timeout', () => h!.states.some((s) => s.state === 'reconnecting' && /did not confirm/.test(s.detail ?? '')));
    expect(h.provider.totalConnections).toBeGreaterThanOrEqual(1);
  });

  it('does not emit or reconnect after stop, even mid-connect', async () => {
    h = await startHarness(
      () => FakeWsServer.start({ initialState: () => ({}), onMessage: (c) => c.send('ready'), onPump: (c) => c.send(String(Date.now())), pumpMs: 5 }),
      (p) => new EchoFeed(p.url),
    );
    await h.waitFor('ticks', () => h!.ticks.length > 3);
    await h.adapter.stop();
    const n = h.ticks.length;
    const conns = h.provider.totalConnections;
    await quietFor(200, 'no tick and no reconnect after stop');
    expect(h.ticks.length).toBe(n);
    expect(h.provider.totalConnections).toBe(conns);
    expect(h.state).toBe('stopped');
  });
});
