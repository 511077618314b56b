import { describe, expect, it } from 'vitest';
import { runSoak } from './soak-run.js';

/**
 * About a minute of the soak run (scripts/soak.ts runs the same code for 10 minutes by default):
 * random restarts of NATS, Redis and the gateways under load; every execution delivered exactly
 * once in order, every client's last values equal to the feed's, memory flat.
 */
describe('soak (short)', () => {
  it('survives random restarts of NATS, Redis and a gateway with nothing lost, duplicated or stale', async () => {
    const lines: string[] = [];
    const r = await runSoak({
      durationMs: 35_000,
      seed: Number(process.env.SOAK_SEED ?? 7),
      rate: 500,
      clients: 4,
      faultGapMs: [2000, 5000],
      downMs: [500, 2000],
      executionEveryMs: 200,
      log: (l) => lines.push(l),
    });
    console.log(r.summary);
    expect(r.failures, r.summary).toEqual([]);
    expect(r.summary).toMatch(/faults: nats [1-9]\d*, redis [1-9]\d*, gateway [1-9]\d*/);
  }, 240_000);
});
