import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SessionPolicy } from '../../src/access/session-policy.js';
import type { SessionConnection } from '../../src/access/session-policy.js';

/**
 * The gateway warns a connection `auth.expiryWarningSec` (30 s) before its token expires, and a
 * client answers with a fresh token. A token that comes inside that window (a token service that
 * issues 8 s tokens) used to be warned about at once: each new token drew a warning, each warning
 * a new token, in a burst into the `auth` rate limit (12 a minute). It is warned about half way
 * to its expiry instead (docs/protocol.md, `auth`).
 */
describe('the expiry warning of a token shorter than the warning', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_800_000_000_000);
  });
  afterEach(() => vi.useRealTimers());

  function conn(expiresAt: number) {
    const warnings: number[] = [];
    const c = {
      principal: { user: 'alice' },
      expiresAt,
      closed: false,
      sendFrame: () => void warnings.push(Date.now()),
      end: () => undefined,
      subscriptions: () => [],
      subscribedKey: () => undefined,
    } as unknown as SessionConnection;
    return { c, warnings };
  }

  it('is warned half way to its expiry, and a longer token still 30 s before', () => {
    const policy = new SessionPolicy({ warnMs: 30_000, resolvers: [] });
    const start = Date.now();
    const short = conn(start + 8_000);
    const long = conn(start + 3_600_000);
    policy.onOpen(short.c);
    policy.onOpen(long.c);
    vi.advanceTimersByTime(3_900);
    expect(short.warnings).toEqual([]);
    vi.advanceTimersByTime(200);
    expect(short.warnings).toEqual([start + 4_000]);
    // the client's refresh: another 8 s token, warned about half way again, not at once
    (short.c as { expiresAt: number }).expiresAt = Date.now() + 8_000;
    policy.onAuthChanged(short.c);
    vi.advanceTimersByTime(100);
    expect(short.warnings).toHaveLength(1);
    vi.advanceTimersByTime(3_900);
    expect(short.warnings).toHaveLength(2);
    vi.advanceTimersByTime(3_570_000 - 8_100 - 1);
    expect(long.warnings).toEqual([]);
    vi.advanceTimersByTime(2);
    expect(long.warnings).toEqual([start + 3_570_000]);
    policy.close();
  });
});
