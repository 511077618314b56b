import type { LoggedTrade } from './trade-log.js';

/**
 * High and low per minute, by minute start: how the ticker and the bars longer than a minute keep
 * their range, so that a correction or cancel can rebuild it from the trades of one minute.
 */
export type MinuteBuckets = Map<number, { h: number; l: number }>;

const MINUTE_MS = 60_000;

/** a trade that sets a price (not `volumeOnly`): what the priced buckets hold */
export const setsPrice = (t: LoggedTrade): boolean => !t.volumeOnly;
/** a `highLowOnly` trade: what the buckets of the day's late prints hold */
export const setsHighLowOnly = (t: LoggedTrade): boolean => t.highLowOnly === true;

/**
 * A trade at `ms` was corrected or cancelled and `minuteTrades` are its minute's remaining trades:
 * rebuild that minute's bucket from those that `counts` (gone when none is left; default: the
 * trades that set a price), and return the high and low over every bucket, or undefined when none
 * is left.
 */
export function amendMinute(
  buckets: MinuteBuckets,
  ms: number,
  minuteTrades: readonly LoggedTrade[],
  counts: (t: LoggedTrade) => boolean = setsPrice,
): { h: number; l: number } | undefined {
  const m = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
  let h = -Infinity;
  let l = Infinity;
  for (const t of minuteTrades) {
    if (!counts(t)) continue;
    if (t.p > h) h = t.p;
    if (t.p < l) l = t.p;
  }
  if (h === -Infinity) buckets.delete(m);
  else buckets.set(m, { h, l });
  return rangeOf(buckets);
}

/** The high and low over every bucket, or undefined when there is none. */
export function rangeOf(buckets: MinuteBuckets): { h: number; l: number } | undefined {
  if (buckets.size === 0) return undefined;
  let h = -Infinity;
  let l = Infinity;
  for (const b of buckets.values()) {
    if (b.h > h) h = b.h;
    if (b.l < l) l = b.l;
  }
  return { h, l };
}

/** Add a price at `ms` to its minute's bucket. */
export function addToMinute(buckets: MinuteBuckets, ms: number, p: number): void {
  const m = Math.floor(ms / MINUTE_MS) * MINUTE_MS;
  const b = buckets.get(m);
  if (!b) buckets.set(m, { h: p, l: p });
  else {
    if (p > b.h) b.h = p;
    if (p < b.l) b.l = p;
  }
}
