/**
 * Provider timestamps to engine time: nanoseconds since the Unix epoch as bigint. Providers use
 * seconds (OANDA, as fractional strings), milliseconds (Binance, Polygon), microseconds (Binance
 * with timeUnit) or RFC 3339 strings with up to nine fractional digits (Alpaca, Coinbase); each
 * conversion here is exact: no detour through floating point where the input has more digits.
 */
export type TimeUnit = 's' | 'ms' | 'us' | 'ns';

const PER_UNIT: Readonly<Record<TimeUnit, bigint>> = { s: 1_000_000_000n, ms: 1_000_000n, us: 1_000n, ns: 1n };
const DIGITS: Readonly<Record<TimeUnit, number>> = { s: 9, ms: 6, us: 3, ns: 0 };

/**
 * A number, bigint or numeric string in `unit` to nanoseconds. Fractions are kept exactly when
 * given as a string ("1700000000.123456789" seconds).
 */
export function toNs(value: number | bigint | string, unit: TimeUnit): bigint {
  if (typeof value === 'bigint') return value * PER_UNIT[unit];
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`timestamp ${value} is not finite`);
    if (Number.isInteger(value)) return BigInt(value) * PER_UNIT[unit];
    return toNs(value.toFixed(DIGITS[unit]), unit);
  }
  const m = /^\s*(-?)(\d+)(?:\.(\d*))?\s*$/.exec(value);
  if (!m) throw new RangeError(`timestamp "${value}" is not a number`);
  const scale = DIGITS[unit];
  const frac = (m[3] ?? '').slice(0, scale).padEnd(scale, '0');
  const ns = BigInt(m[2]!) * PER_UNIT[unit] + (scale > 0 ? BigInt(frac) : 0n);
  return m[1] === '-' ? -ns : ns;
}

/**
 * Guess the unit of an epoch number by its magnitude (for files and providers that do not say):
 * < 1e11 seconds, < 1e14 milliseconds, < 1e17 microseconds, else nanoseconds.
 */
export function epochToNs(value: number | bigint | string): bigint {
  const n = typeof value === 'bigint' ? Number(value) : Number(value);
  if (!Number.isFinite(n)) throw new RangeError(`timestamp "${String(value)}" is not a number`);
  const a = Math.abs(n);
  const unit: TimeUnit = a < 1e11 ? 's' : a < 1e14 ? 'ms' : a < 1e17 ? 'us' : 'ns';
  return toNs(typeof value === 'number' && unit === 'ns' ? BigInt(Math.round(value)) : value, unit);
}

const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9})\d*)?\s*(Z|[+-]\d{2}:?\d{2})$/i;

/**
 * An RFC 3339 / ISO 8601 time with up to nine fractional digits to nanoseconds, exactly. A date or
 * time that does not exist (RFC 3339 section 5.6: month 01-12, day within its month, hour 00-23,
 * minute 00-59, second 00-60, offset hours 00-23 and minutes 00-59) is refused: Date.UTC would
 * roll it over into another instant (2024-02-30 into 2024-03-01). Second 60, a leap second, is
 * the instant the next second starts, as Unix time counts it.
 */
export function isoToNs(text: string): bigint {
  const m = RFC3339_RE.exec(text.trim());
  if (!m) throw new RangeError(`time "${text}" is not RFC 3339 (e.g. 2024-05-01T13:30:00.123456789Z)`);
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  const Y = Number(y);
  const M = Number(mo);
  const D = Number(d);
  const H = Number(h);
  const Mi = Number(mi);
  const S = Number(s);
  const z = zone.toUpperCase() === 'Z' ? undefined : /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
  if (M < 1 || M > 12 || D < 1 || D > daysInMonth(Y, M) || H > 23 || Mi > 59 || S > 60 || (z && (Number(z[2]) > 23 || Number(z[3]) > 59))) {
    throw new RangeError(`time "${text}" is not a valid RFC 3339 date and time (month 01-12, day of its month, hour 00-23, minute 00-59, second 00-60)`);
  }
  let ms = Date.UTC(Y, M - 1, D, H, Mi, S);
  if (z) {
    const offset = (Number(z[2]) * 60 + Number(z[3])) * 60_000;
    ms -= z[1] === '+' ? offset : -offset;
  }
  return BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(9, '0'));
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** Days of month `m` (1-12) of year `y`, Gregorian leap years (RFC 3339 Appendix C). */
function daysInMonth(y: number, m: number): number {
  if (m !== 2) return DAYS_IN_MONTH[m - 1]!;
  return y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0) ? 29 : 28;
}

/** Any provider time: RFC 3339 string, or an epoch number/string in a known or guessed unit. */
export function anyTimeToNs(value: unknown, unit?: TimeUnit): bigint {
  if (typeof value === 'string' && /[T:-]/.test(value.trim().slice(1))) return isoToNs(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') {
    return unit ? toNs(value, unit) : epochToNs(value);
  }
  throw new RangeError(`time ${JSON.stringify(value)} is neither RFC 3339 nor an epoch number`);
}
