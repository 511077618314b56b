import { afterEach, describe, expect, it, vi } from 'vitest';
import { EntitledMarketResolver } from '../../src/access/entitled-resolver.js';
import { loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import type { BarRange, ChannelResolver, ChannelSpec } from '../../src/fanout/channels.js';
import type { Payload } from '../../src/fanout/payloads.js';

/**
 * Delayed history (a delayed entitlement) may hold only bars that ended the delay ago. A stock's
 * day is a New York day: on 2026-11-01 clocks go back, and that day lasts 25 hours (04:00 UTC on
 * Nov 1 to 05:00 UTC on Nov 2). Capping at bar start + 24 h released it an hour before it ended.
 */
const NY_NOV1 = Date.UTC(2026, 10, 1, 4); // start of the New York day of Nov 1 (EDT, UTC-4)
const NY_NOV2 = Date.UTC(2026, 10, 2, 5); // start of the next one (EST, UTC-5): 25 hours later
const DELAY = 15 * 60_000;

afterEach(() => vi.useRealTimers());

function resolverWith(bars: Payload[]): { resolver: EntitledMarketResolver; asked: BarRange[] } {
  const asked: BarRange[] = [];
  const spec: ChannelSpec = {
    key: 'bar.1d:AAPL',
    name: 'bar.1d:AAPL',
    subject: 'md.stock.bar.1d.AAPL',
    mode: 'bar',
    decode: () => undefined,
    history: async (q: BarRange) => {
      asked.push(q);
      return bars.filter((b) => (q.from === undefined || (b.t as number) >= q.from) && (q.to === undefined || (b.t as number) < q.to));
    },
  } as ChannelSpec;
  const inner: ChannelResolver = { resolve: () => ({ ok: true, spec }) };
  const config = loadConfig({ env: {}, overrides: { auth: { mode: 'optional', jwtSecret: 'x'.repeat(32), delayMs: DELAY, anonymousEntitlement: 'delayed' } } });
  return { resolver: new EntitledMarketResolver(inner, defaultRegistry(), config.auth), asked };
}

describe('delayed day-bar history across a 25-hour day', () => {
  const bars: Payload[] = [
    { t: NY_NOV1 - 24 * 3600_000, iv: 86_400_000, o: 1, h: 1, l: 1, c: 1, v: 1, n: 1, closed: true }, // Oct 31
    { t: NY_NOV1, iv: 86_400_000, o: 2, h: 2, l: 2, c: 2, v: 2, n: 2, closed: true }, // Nov 1, 25 h
  ];

  it('holds back the Nov 1 bar until the delay after it ended', async () => {
    const { resolver } = resolverWith(bars);
    const r = resolver.resolve('bar.1d:AAPL', { user: undefined } as never);
    if (!r?.ok) throw new Error('not resolved');
    expect(r.spec.key).toBe('delayed:bar.1d:AAPL');
    const history = r.spec.history!;
    vi.useFakeTimers({ toFake: ['Date'] });
    // 24 h 30 min after the day started, plus the delay: the day has not ended yet (30 min left)
    vi.setSystemTime(NY_NOV1 + 24.5 * 3600_000 + DELAY);
    expect((await history({ limit: 10 })).map((b) => b.t)).toEqual([NY_NOV1 - 24 * 3600_000]);
    // the delay after its end: now it is history
    vi.setSystemTime(NY_NOV2 + DELAY);
    expect((await history({ limit: 10 })).map((b) => b.t)).toEqual([NY_NOV1 - 24 * 3600_000, NY_NOV1]);
  });
});
