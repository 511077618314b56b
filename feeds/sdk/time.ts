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

/** An RFC 3339 / ISO 8601 time with up to nine fractional digits to nanoseconds, exactly. */
export function isoToNs(text: string): bigint {
  const m = RFC3339_RE.exec(text.trim());
  if (!m) throw new RangeError(`time "${text}" is not RFC 3339 (e.g. 2024-05-01T13:30:00.123456789Z)`);
  const [, y, mo, d, h, mi, s, frac = '', zone = 'Z'] = m;
  let ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s));
  if (zone.toUpperCase() !== 'Z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    const offset = (Number(z[2]) * 60 + Number(z[3])) * 60_000;
    ms -= z[1] === '+' ? offset : -offset;
  }
  return BigInt(ms) * 1_000_000n + BigInt(frac.padEnd(9, '0'));
}

/** Any provider time: RFC 3339 string, or an epoch number/string in a known or guessed unit. */
export function anyTimeToNs(value: unknown, unit?: TimeUnit): bigint {
  if (typeof value === 'string' && /[T:-]/.test(value.trim().slice(1))) return isoToNs(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'string') {
    return unit ? toNs(value, unit) : epochToNs(value);
  }
  throw new RangeError(`time ${JSON.stringify(value)} is neither RFC 3339 nor an epoch number`);
}
