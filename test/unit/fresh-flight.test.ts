import { describe, expect, it } from 'vitest';
import { freshFlight } from '../../src/core/fresh-flight.js';

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('freshFlight', () => {
  it('a lone caller runs at once; a flood shares runs, at most one per gap; every answer is from a run that started after its call', async () => {
    let runs = 0;
    let value = 0;
    const starts: number[] = [];
    const read = freshFlight(async () => {
      runs++;
      starts.push(performance.now());
      await tick(5);
      return ++value;
    }, 50);
    // alone: one run, started at once (within the call, no timer)
    const lone = read();
    expect(runs).toBe(1);
    expect(await lone).toBe(1);
    // 200 concurrent calls: a handful of runs, not 200
    const before = value;
    const calledAt = performance.now();
    const answers = await Promise.all(Array.from({ length: 200 }, () => read()));
    expect(runs).toBeLessThanOrEqual(3);
    expect(new Set(answers).size).toBe(1);
    expect(answers[0]).toBeGreaterThan(before); // not the run that finished before the calls
    expect(starts.at(-1)!).toBeGreaterThanOrEqual(calledAt);
    // runs are spaced by the gap, by the clock freshFlight reads (performance.now)
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(50);
  });

  it('a call made while a run is in flight gets the next run, not the one in flight', async () => {
    let value = 0;
    const read = freshFlight(async () => {
      const v = ++value;
      await tick(20);
      return v;
    }, 0);
    const first = read();
    await tick(5); // the first run is in flight
    const second = read();
    expect(await first).toBe(1);
    expect(await second).toBe(2);
  });

  it('a failed run fails its callers; the next call runs again', async () => {
    let n = 0;
    const read = freshFlight(async () => {
      if (++n === 1) throw new Error('boom');
      return n;
    }, 0);
    await expect(read()).rejects.toThrow('boom');
    expect(await read()).toBe(2);
  });
});
