/**
 * Engine time is nanoseconds since the Unix epoch as bigint (exact); the wire carries milliseconds
 * as numbers (fractions allowed), as protocol v1 requires.
 */
const originNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();

/** Wall-clock now in nanoseconds, monotonic within the process. */
export function nowNs(): bigint {
  return originNs + process.hrtime.bigint();
}

/** Nanoseconds to wire milliseconds (microsecond resolution kept as a fraction). */
export function nsToMs(ns: bigint): number {
  return Number(ns / 1000n) / 1000;
}

export function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1000)) * 1000n;
}
