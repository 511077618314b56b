import { describe, expect, it } from 'vitest';
import { spawnListening, spawnTickwire, waitHttpOk } from '../helpers/processes.js';
import { probeUws } from '../../src/gateway/uws.js';

/** Native uWebSockets.js or nothing: the fallback pure-JS server is refused unless allowed. */
describe('uWebSockets.js native binary check', () => {
  it('finds the native binary on this machine', () => {
    const r = probeUws();
    expect(r.native).toBe(true);
    expect(r.detail).toMatch(/native binary uws_.*\.node loaded/);
  });

  it('tickwire check-uws passes natively and fails on the fallback', async () => {
    const ok = spawnTickwire(['check-uws'], {});
    expect(await ok.exited).toBe(0);
    expect(ok.output()).toMatch(/native binary .* loaded/);
    const bad = spawnTickwire(['check-uws'], { UWS_USE_FALLBACK: '1' });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/did not load|fallback/);
  });

  it('refuses to start on the fallback, naming the fix', async () => {
    const p = spawnTickwire(['start'], { UWS_USE_FALLBACK: '1', PORT: '0', HOST: '127.0.0.1' });
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/configuration error: .*UWS_USE_FALLBACK.*TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK=true/);
  });

  it('starts on the fallback only when explicitly allowed', { timeout: 60_000 }, async () => {
    const { proc: p, port } = await spawnListening(
      ['start'],
      // two workers asked for: the pure-JS server cannot share a port between event loops (the
      // second worker failed to listen and took the process down), so one loop serves it
      { UWS_USE_FALLBACK: '1', TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK: 'true', HOST: '127.0.0.1', TICKWIRE_GATEWAY_WORKERS: '2' },
      30_000,
    );
    try {
      await waitHttpOk(`http://127.0.0.1:${port}/health`, 30_000, p);
      expect(p.output()).toMatch(/pure-JS uWebSockets.js fallback cannot share a port[^\n]*gateway.workers/);
      const health = (await (await fetch(`http://127.0.0.1:${port}/health`)).json()) as { status: string; workers?: unknown };
      expect(health.status).toBe('ok');
      expect(health.workers).toBeUndefined();
    } finally {
      await p.stop();
    }
  });
});
