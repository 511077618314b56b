import type { LoggedTrade } from './trade-log.js';

/**
 * High and low per minute, by minute start: how the ticker and the bars longer than a minute keep
 * their range, so that a correction or cancel can rebuild it from the trades of one minute.
 */
export type MinuteBuckets = Map<number, { h: number; l: number }>;

const MINUTE_MS = 60_000;

/**
 * A trade at `ms` was corrected or cancelled and `minuteTrades` are its minute's remaining trades:
 * rebuild that minute's bucket (gone when no remaining trade sets a price), and return the high
 * and low over every bucket, or undefined when none is left.
 */
export function amendMinute(buckets: MinuteBuckets, ms: number, minuteTrades: readonly LoggedTrade[]): { h: number; l: number } | undefined {
  const m = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
  let h = -Infinity;
  let l = Infinity;
  for (const t of minuteTrades) {
    if (t.volumeOnly) continue;
    if (t.p > h) h = t.p;
    if (t.p < l) l = t.p;
  }
  if (h === -Infinity) buckets.delete(m);
  else buckets.set(m, { h, l });
  if (buckets.size === 0) return undefined;
  h = -Infinity;
  l = Infinity;
  for (const b of buckets.values()) {
    if (b.h > h) h = b.h;
    if (b.l < l) l = b.l;
  }
  return { h, l };
}
