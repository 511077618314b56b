/**
 * For connection-rate tests: the gaps (ms) between the first `count` connection attempts of feeds
 * started together, in time order, leaving out the earliest: the feeds' first connections are
 * made as they start, together, and the spacing applies to the ones after.
 */
export function gapsAfterStart(attemptAt: readonly number[], count: number): number[] {
  const times = attemptAt
    .slice(0, count)
    .sort((a, b) => a - b)
    .slice(1);
  return times.slice(1).map((t, i) => t - times[i]!);
}
