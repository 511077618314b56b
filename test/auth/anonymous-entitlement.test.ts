import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/app/engine.js';
import { loadConfig } from '../../src/core/config.js';
import { TestClient } from '../helpers/ws-client.js';
import { publishTick, SECRET, testEngine, token, wsUrl } from './helpers.js';

/**
 * With `auth.mode=optional` and tokens delayed by default (`auth.defaultEntitlement=delayed`), a
 * connection without a token must not see more than one with a token: anonymous connections were
 * real time unless `auth.anonymousEntitlement` was set too, so a delayed user got real-time data by
 * dropping the token.
 */
const DELAY = 300;

describe('auth.anonymousEntitlement when not set', () => {
  it('is realtime with auth off, and auth.defaultEntitlement otherwise; a value set is kept', () => {
    const auth = (a: Record<string, unknown>) => loadConfig({ env: {}, overrides: { auth: a } }).auth.anonymousEntitlement;
    expect(auth({})).toBe('realtime');
    expect(auth({ mode: 'optional', jwtSecret: SECRET, defaultEntitlement: 'delayed' })).toBe('delayed');
    expect(auth({ mode: 'optional', jwtSecret: SECRET, defaultEntitlement: 'none' })).toBe('none');
    expect(auth({ mode: 'optional', jwtSecret: SECRET })).toBe('realtime');
    expect(auth({ mode: 'optional', jwtSecret: SECRET, defaultEntitlement: 'delayed', anonymousEntitlement: 'realtime' })).toBe('realtime');
    expect(
      loadConfig({ env: { TICKWIRE_AUTH: 'optional', TICKWIRE_JWT_SECRET: SECRET, TICKWIRE_AUTH_DEFAULT_ENTITLEMENT: 'delayed' } }).auth.anonymousEntitlement,
    ).toBe('delayed');
  });
});

describe('optional auth with delayed tokens by default', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await testEngine({ auth: { mode: 'optional', jwtSecret: SECRET, defaultEntitlement: 'delayed', delayMs: DELAY } });
  });
  afterAll(() => engine.close());

  for (const who of ['a token without entitlements', 'no token'] as const) {
    it(`${who}: quote:AAPL is delayed (no real-time snapshot, payloads flagged delayed)`, async () => {
      publishTick(engine, 'stock', { k: 'quote', sym: 'AAPL', bp: 100, ap: 101 } as never);
      const headers: Record<string, string> = who === 'no token' ? {} : { authorization: `Bearer ${await token({ sub: 'dora' })}` };
      const c = await TestClient.connect(wsUrl(engine), { headers, encoding: 'json' });
      const ack = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL'] });
      expect(ack.subscribed).toEqual(['quote:AAPL']);
      publishTick(engine, 'stock', { k: 'quote', sym: 'AAPL', bp: 102, ap: 103 } as never);
      const first = await c.waitFor((f) => f.op === 'data' && f.ch === 'quote:AAPL');
      // (the first value the delay line releases is the subscriber's snapshot; a real-time one would be bp 100 at once)
      expect(first.d).toMatchObject({ bp: 102, delayed: DELAY });
      c.close();
    });
  }
});
