import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';
import { SharedConnectionCounts, SharedIpBuckets } from '../../src/gateway/connection-counts.js';
import { GatewayLimits } from '../../src/gateway/limits.js';

/**
 * GatewayLimits.admitAddress, the per-IP check of a new connection before its token is verified,
 * as two gateway workers see it: both take from one table (src/workers shares the buffers).
 */
describe('admitAddress across two workers', () => {
  const made: GatewayLimits[] = [];
  afterEach(() => {
    for (const l of made.splice(0)) l.close();
  });

  const workers = (limits: Record<string, unknown>): [GatewayLimits, GatewayLimits] => {
    const cfg = loadConfig({ env: {}, overrides: { limits: { exemptIps: [], ...limits } } }).limits;
    const counts = SharedConnectionCounts.allocate(64, 2);
    const ip = SharedIpBuckets.allocate(64);
    const epoch = Date.now();
    const pair = [0, 1].map(
      (w) => new GatewayLimits(cfg, { counts: new SharedConnectionCounts(counts, 2, w), ipBuckets: new SharedIpBuckets(ip, w, epoch) }),
    ) as [GatewayLimits, GatewayLimits];
    made.push(...pair);
    return pair;
  };

  it('holds limits.verifyingPerIp for the address whichever worker verifies, and frees a slot on release', () => {
    const [a, b] = workers({ verifyingPerIp: 2, connectionsPerIpPerSec: 0 });
    const first = a.admitAddress('198.51.100.7', true);
    const second = b.admitAddress('198.51.100.7', true);
    expect([first.ok, second.ok]).toEqual([true, true]);
    const third = a.admitAddress('198.51.100.7', true);
    expect(third).toMatchObject({ ok: false, retryAfter: 1, message: expect.stringContaining('limits.verifyingPerIp') });
    // no token to verify: not counted against it; another address has its own
    expect(b.admitAddress('198.51.100.7', false).ok).toBe(true);
    expect(b.admitAddress('198.51.100.8', true).ok).toBe(true);
    expect(a.verifyingOf('198.51.100.7')).toBe(2);
    if (first.ok) {
      first.release();
      first.release(); // twice is once
    }
    expect(b.verifyingOf('198.51.100.7')).toBe(1);
    expect(b.admitAddress('198.51.100.7', true).ok).toBe(true);
    expect(a.stats.refusedVerifyingPerIp + b.stats.refusedVerifyingPerIp).toBe(1);
  });

  it('takes one token of the shared bucket per connection, and a refused one frees its verifying slot', () => {
    const [a, b] = workers({ verifyingPerIp: 5, connectionsPerIpPerSec: 0.01, connectionBurstPerIp: 2 });
    expect(a.admitAddress('203.0.113.1', true).ok).toBe(true);
    expect(b.admitAddress('203.0.113.1', true).ok).toBe(true);
    const refused = a.admitAddress('203.0.113.1', true);
    expect(refused).toMatchObject({ ok: false, message: expect.stringContaining('limits.connectionsPerIpPerSec') });
    // one token per 100 s: Retry-After says so
    if (!refused.ok) expect(refused.retryAfter).toBeGreaterThan(90);
    expect(a.verifyingOf('203.0.113.1')).toBe(2);
  });
});
