import { describe, expect, it } from 'vitest';
import { LocalBudgetLedger, ReplayBudget, SharedBudgetLedger } from '../../src/executions/replay-budget.js';
import type { BudgetClock, BudgetLedger } from '../../src/executions/replay-budget.js';

/** A clock that never sleeps: `acquire` is only called when the test expects it to pass at once. */
const at = (now: { t: number }): BudgetClock => ({
  now: () => now.t,
  sleep: () => Promise.reject(new Error('the budget waited')),
});

const OPTS = { perUserPerSec: 100, perGatewayPerSec: 150 };

/**
 * The ledger of the bar-read and replay budgets that gateway worker threads share
 * (src/executions/replay-budget.ts): two ledgers on one buffer, as two workers hold them, are one
 * budget, and a ledger alone behaves as the per-thread one.
 */
describe('SharedBudgetLedger', () => {
  it('two workers on one buffer share the user and gateway buckets', () => {
    const epoch = 1_000_000;
    const buf = SharedBudgetLedger.allocate(1000);
    const w0 = new SharedBudgetLedger(buf, OPTS, 0, epoch);
    const w1 = new SharedBudgetLedger(buf, OPTS, 1, epoch);
    const now = epoch + 5;
    expect(w0.step('alice', 100, now, false)).toEqual({ took: 100, userWait: 0, gatewayWait: 0 });
    // alice's second of budget is spent on worker 0: worker 1 makes her wait a whole second
    expect(w1.step('alice', 100, now, false)).toMatchObject({ took: 0, userWait: 1000 });
    // bob has his own bucket, the gateway only 50 left: he gets them once the page is there
    expect(w1.step('bob', 50, now, false)).toEqual({ took: 50, userWait: 0, gatewayWait: 0 });
    expect(w0.step('carol', 10, now, false)).toMatchObject({ took: 0, gatewayWait: 67 });
    // refill: half a second later alice has 50 again
    expect(w1.step('alice', 50, now + 500, false)).toEqual({ took: 50, userWait: 0, gatewayWait: 0 });
  });

  it('behaves as the per-thread ledger, debt (charge) and fractional refills included', () => {
    const buf = SharedBudgetLedger.allocate(1000);
    const ledgers: BudgetLedger[] = [new LocalBudgetLedger(OPTS, 0), new SharedBudgetLedger(buf, OPTS, 0, 0)];
    const steps: [string, number, number, boolean][] = [
      ['alice', 80, 0, false],
      ['alice', 300, 3, true],
      ['alice', 10, 7, false],
      ['bob', 40, 1234, false],
      ['alice', 10, 3333, false],
      ['alice', 60, 3337, false],
      ['bob', 1, 4444, false],
    ];
    const [local, shared] = ledgers.map((l) => steps.map(([user, want, now, force]) => l.step(user, want, now, force)));
    // the same takes; a wait may differ by a ms (the shared ledger keeps thousandths of a token)
    expect(shared!.map((s) => s.took)).toEqual(local!.map((s) => s.took));
    shared!.forEach((s, i) => {
      expect(Math.abs(s.userWait - local![i]!.userWait)).toBeLessThanOrEqual(1);
      expect(Math.abs(s.gatewayWait - local![i]!.gatewayWait)).toBeLessThanOrEqual(1);
    });
    // the gateway's debt of the charge holds bob back at 1234 ms, as it would on one event loop
    expect(local!.map((s) => s.took)).toEqual([80, 300, 0, 0, 10, 0, 1]);
  });

  it('a ReplayBudget on the shared ledger: acquire and charge take from the process bucket', async () => {
    const now = { t: 10_000 };
    const buf = SharedBudgetLedger.allocate(1000);
    const a = new ReplayBudget(OPTS, at(now), new SharedBudgetLedger(buf, OPTS, 0, 0));
    const b = new ReplayBudget(OPTS, at(now), new SharedBudgetLedger(buf, OPTS, 1, 0));
    expect(await a.acquire('alice', 30)).toBe(30);
    b.charge('alice', 60);
    // 10 left for alice, whichever worker asks
    expect(await a.acquire('alice', 10)).toBe(10);
    await expect(b.acquire('alice', 1)).rejects.toThrow('the budget waited');
  });

  it('a full table limits a new user by the gateway bucket only; full user buckets are swept after a minute', () => {
    const opts = { perUserPerSec: 10, perGatewayPerSec: 1_000_000 };
    // room for 768 keys (1024 slots, at most 3/4 used): the gateway's and 767 users'
    const l = new SharedBudgetLedger(SharedBudgetLedger.allocate(10), opts, 0, 0);
    for (let i = 0; i < 767; i++) l.step(`u${i}`, 10, 100, false);
    expect(l.size).toBe(768);
    // no room for a bucket of its own: not limited per user
    expect(l.step('late', 50, 100, false)).toEqual({ took: 50, userWait: 0, gatewayWait: 0 });
    expect(l.step('u1', 10, 100, false)).toMatchObject({ took: 0, userWait: 1000 });
    // a minute later the users' buckets are full again and forgotten; the gateway's stays
    l.step('u1', 1, 70_000, false);
    expect(l.size).toBe(2);
  });
});
