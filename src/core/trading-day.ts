import type { AssetClass } from './schema.js';

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/**
 * Where an asset class's trading day starts when the instrument names no start (docs/protocol.md#bar-bar1s-bar1m-bar5m-bar1h-bar1d):
 * - forex: 17:00 New York time, the forex day's roll. OANDA v20 "Instrument Endpoints", GET
 *   /v3/instruments/{instrument}/candles: `dailyAlignment` defaults to 17 and `alignmentTimezone`
 *   to America/New_York (https://developer.oanda.com/rest-live-v20/instrument-ep/). In UTC that is
 *   22:00 in winter (EST) and 21:00 in summer (EDT), so no fixed UTC minute is right all year.
 * - stock: midnight New York time. Polygon knowledge base, "How does Polygon treat hourly bars when
 *   querying regular trading hours": daily bars begin at 12:00:00 AM Eastern; Alpaca's daily bars
 *   start at midnight New York (so extended hours, 19:00-20:00 ET = 00:00-01:00 UTC in winter, stay
 *   in their own day).
 * - crypto: midnight UTC (the engine's day before time zones; crypto trades around the clock).
 */
export const DEFAULT_DAY_START: Readonly<Record<AssetClass, { readonly time: string; readonly timeZone: string }>> = Object.freeze({
  forex: Object.freeze({ time: '17:00', timeZone: 'America/New_York' }),
  stock: Object.freeze({ time: '00:00', timeZone: 'America/New_York' }),
  crypto: Object.freeze({ time: '00:00', timeZone: 'UTC' }),
});

/** What an instrument says about its trading day (src/core/instruments.ts). */
export interface DayStartSpec {
  readonly assetClass: AssetClass;
  /** legacy: a fixed minute after UTC midnight (0-1439), no daylight-saving shift */
  readonly dayStartUtcMinutes?: number;
  /** local wall-clock time the day starts at, "HH:MM" */
  readonly dayStartTime?: string;
  /** IANA time zone of `dayStartTime` */
  readonly timeZone?: string;
}

/** "HH:MM" (00:00 to 23:59) to minutes, or undefined when malformed. */
export function parseDayStartTime(s: string): number | undefined {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  return m ? Number(m[1]) * 60 + Number(m[2]) : undefined;
}

/** Whether `tz` is an IANA time zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/**
 * An instrument's trading days: day N starts at the first instant whose wall-clock time in
 * `timeZone` is `startMinutes` after midnight of local date N (N counts days since 1970-01-01),
 * so the day follows the zone's daylight-saving changes (a day is then 23 or 25 hours long). A
 * start inside a spring-forward gap is the end of the gap. With `UTC`, day N starts at
 * `N * 86400000 + startMinutes * 60000` (the old fixed `dayStartUtcMinutes`).
 *
 * Lookups within the current day are answered from a cache, so the per-trade cost is a compare.
 */
export class TradingCalendar {
  readonly timeZone: string;
  readonly startMinutes: number;
  readonly #fixed: boolean;
  readonly #fmt: Intl.DateTimeFormat | undefined;
  /** cached day: [#from, #to) is day #day */
  #day = Number.NaN;
  #from = 0;
  #to = -1;

  constructor(startMinutes = 0, timeZone = 'UTC') {
    this.startMinutes = startMinutes;
    this.timeZone = timeZone;
    this.#fixed = timeZone === 'UTC' || timeZone === 'Etc/UTC';
    this.#fmt = this.#fixed
      ? undefined
      : new Intl.DateTimeFormat('en-US', {
          timeZone,
          hourCycle: 'h23',
          year: 'numeric',
          month: 'numeric',
          day: 'numeric',
          hour: 'numeric',
          minute: 'numeric',
          second: 'numeric',
        });
  }

  /** The trading day (days since 1970-01-01 of its local date) that holds instant `ms`. */
  dayOf(ms: number): number {
    if (ms >= this.#from && ms < this.#to) return this.#day;
    const startMs = this.startMinutes * MINUTE_MS;
    if (this.#fixed) return Math.floor((ms - startMs) / DAY_MS);
    let n = Math.floor((this.#wall(ms) - startMs) / DAY_MS);
    let from = this.startOfDay(n);
    if (ms < from) from = this.startOfDay(--n);
    let to = this.startOfDay(n + 1);
    while (ms >= to) {
      from = to;
      to = this.startOfDay(++n + 1);
    }
    this.#day = n;
    this.#from = from;
    this.#to = to;
    return n;
  }

  /** Start instant (ms) of trading day `n`. */
  startOfDay(n: number): number {
    const wall = n * DAY_MS + this.startMinutes * MINUTE_MS;
    if (this.#fixed) return wall;
    // the offsets in force around that wall time: before and after any transition near it
    const offsets = new Set([this.#offset(wall - DAY_MS), this.#offset(wall), this.#offset(wall + DAY_MS)]);
    let best = Infinity;
    let lo = Infinity;
    let hi = -Infinity;
    for (const o of offsets) {
      const t = wall - o;
      if (t < lo) lo = t;
      if (t > hi) hi = t;
      if (this.#wall(t) === wall && t < best) best = t;
    }
    if (best !== Infinity) return best;
    // the wall time does not exist (a spring-forward gap): the first instant after the gap, on
    // whole minutes (zones change offset on a minute)
    lo = Math.floor(lo / MINUTE_MS);
    hi = Math.ceil(hi / MINUTE_MS);
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (this.#wall(mid * MINUTE_MS) >= wall) hi = mid;
      else lo = mid + 1;
    }
    return lo * MINUTE_MS;
  }

  /** Start instant of the trading day that holds `ms`. */
  startOf(ms: number): number {
    const n = this.dayOf(ms);
    return n === this.#day ? this.#from : this.startOfDay(n);
  }

  /** Start instant of the trading day after the one that holds `ms`. */
  endOf(ms: number): number {
    const n = this.dayOf(ms);
    return n === this.#day ? this.#to : this.startOfDay(n + 1);
  }

  /** Local wall-clock time of instant `ms` in the zone, as ms since 1970-01-01 00:00 (local). */
  #wall(ms: number): number {
    return ms + this.#offset(ms);
  }

  /** The zone's offset from UTC at instant `ms`, ms. */
  #offset(ms: number): number {
    if (!this.#fmt) return 0;
    const p: Record<string, number> = {};
    for (const part of this.#fmt.formatToParts(ms)) if (part.type !== 'literal') p[part.type] = Number(part.value);
    const secondFloor = Math.floor(ms / 1000) * 1000;
    return Date.UTC(p.year!, p.month! - 1, p.day!, p.hour!, p.minute!, p.second!) - secondFloor;
  }
}

const calendars = new Map<string, TradingCalendar>();

/** The shared calendar of a (start minutes, zone) pair. */
export function tradingCalendar(startMinutes: number, timeZone: string): TradingCalendar {
  const key = `${startMinutes}|${timeZone}`;
  let c = calendars.get(key);
  if (!c) calendars.set(key, (c = new TradingCalendar(startMinutes, timeZone)));
  return c;
}

/**
 * The trading calendar of an instrument: `dayStartUtcMinutes` when it sets it (a fixed UTC
 * minute), else `dayStartTime` in `timeZone`, each defaulting to its asset class's
 * (DEFAULT_DAY_START). Used by everything that counts a day: the ticker, `bar.1d`, portfolio
 * day P&L.
 */
export function calendarOf(inst: DayStartSpec | undefined): TradingCalendar {
  if (!inst) return tradingCalendar(0, 'UTC');
  if (inst.dayStartUtcMinutes !== undefined) return tradingCalendar(inst.dayStartUtcMinutes, 'UTC');
  const def = DEFAULT_DAY_START[inst.assetClass];
  const minutes = parseDayStartTime(inst.dayStartTime ?? def.time) ?? 0;
  return tradingCalendar(minutes, inst.timeZone ?? def.timeZone);
}
