import { describe, expect, it } from 'vitest';
import { FailoverSelector } from '../../src/ingest/failover.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

function setup(staleAfterMs = 1000, recoverAfterMs = 2000) {
  let now = 1_000_000;
  const bumps: string[] = [];
  const sel = new FailoverSelector([{ symbol: 'BTC-USD', primary: 'a', backup: 'b', staleAfterMs, recoverAfterMs }], {
    sequencer: { bumpEpoch: (s) => (bumps.push(s), bumps.length) },
    log: silent,
    now: () => now,
  });
  return { sel, bumps, advance: (ms: number) => void (now += ms) };
}

describe('failover selector', () => {
  it('serves the primary; other symbols are untouched', () => {
    const { sel } = setup();
    expect(sel.accept('a', 'BTC-USD')).toBe(true);
    expect(sel.accept('b', 'BTC-USD')).toBe(false);
    expect(sel.accept('c', 'BTC-USD')).toBe(false);
    expect(sel.accept('b', 'ETH-USD')).toBe(true);
  });

  it('switches to a fresh backup when the primary is silent past staleAfterMs, with a new epoch', () => {
    const { sel, bumps, advance } = setup();
    sel.accept('a', 'BTC-USD');
    for (let i = 0; i < 12; i++) {
      advance(100);
      sel.accept('b', 'BTC-USD');
      sel.check();
    }
    expect(sel.status()[0]).toMatchObject({ active: 'b', switches: 1 });
    expect(sel.status()[0]!.reason).toMatch(/a silent for 1[01]00 ms/);
    expect(bumps).toEqual(['BTC-USD']);
    expect(sel.accept('b', 'BTC-USD')).toBe(true);
  });

  it('does not switch when the backup is silent too', () => {
    const { sel, bumps, advance } = setup();
    advance(5000);
    sel.check();
    expect(sel.status()[0]!.active).toBe('a');
    expect(bumps).toEqual([]);
  });

  it('switches back once the primary has delivered for recoverAfterMs, not before', () => {
    const { sel, bumps, advance } = setup(1000, 2000);
    sel.onFeedState('a', 'reconnecting');
    sel.accept('b', 'BTC-USD');
    sel.check();
    expect(sel.status()[0]!.active).toBe('b');
    sel.onFeedState('a', 'connected');
    for (let t = 0; t < 1900; t += 100) {
      advance(100);
      sel.accept('b', 'BTC-USD');
      expect(sel.accept('a', 'BTC-USD')).toBe(false);
    }
    advance(200);
    expect(sel.accept('a', 'BTC-USD')).toBe(true);
    expect(sel.status()[0]).toMatchObject({ active: 'a', switches: 2 });
    expect(bumps).toEqual(['BTC-USD', 'BTC-USD']);
  });

  it('fails over at once when the primary connection goes down', () => {
    const { sel } = setup(60_000);
    sel.accept('a', 'BTC-USD');
    sel.accept('b', 'BTC-USD');
    sel.onFeedState('a', 'auth_failed');
    expect(sel.status()[0]).toMatchObject({ active: 'b' });
    expect(sel.status()[0]!.reason).toMatch(/a is auth_failed/);
    expect(sel.rolesOf('a')).toEqual([{ symbol: 'BTC-USD', role: 'primary', active: false }]);
    expect(sel.rolesOf('b')).toEqual([{ symbol: 'BTC-USD', role: 'backup', active: true }]);
  });

  it('returns to the primary early when the backup goes stale while the primary is fresh', () => {
    const { sel, advance } = setup(1000, 60_000);
    sel.onFeedState('a', 'reconnecting');
    sel.accept('b', 'BTC-USD');
    sel.check();
    sel.onFeedState('a', 'connected');
    advance(1500); // backup silent now
    sel.accept('a', 'BTC-USD');
    sel.check();
    expect(sel.status()[0]).toMatchObject({ active: 'a', switches: 2 });
  });
});
