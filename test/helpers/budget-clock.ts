import type { BudgetClock } from '../../src/executions/replay-budget.js';

/** A replay-budget clock the test moves: sleepers wake only when it advances. */
export class ManualBudgetClock implements BudgetClock {
  t = 0;
  readonly sleepers = new Set<{ at: number; wake: () => void }>();
  now(): number {
    return this.t;
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const s = {
        at: this.t + ms,
        wake: () => {
          this.sleepers.delete(s);
          resolve();
        },
      };
      this.sleepers.add(s);
      signal?.addEventListener('abort', s.wake, { once: true });
    });
  }
  advance(ms: number): void {
    this.t += ms;
    for (const s of [...this.sleepers]) if (s.at <= this.t) s.wake();
  }
}

/** Let queued event-loop work run until `cond` holds (at most `turns` turns). */
export async function turnsUntil(cond: () => boolean, turns = 10_000): Promise<void> {
  for (let i = 0; i < turns && !cond(); i++) await new Promise((r) => setImmediate(r));
}
