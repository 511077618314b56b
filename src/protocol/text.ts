/**
 * Half of a UTF-16 surrogate pair without its other half: text that is not well-formed Unicode
 * and has no UTF-8 form (JSON allows `"\ud800"`; NATS, Redis and MessagePack strings are UTF-8).
 * One definition for every layer: request ids, identities, frames, ticks and feed health. Not
 * part of the protocol index: the client SDK re-exports that, and has no use for these.
 */
export const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** the same, global (built on first use: a module without top-level work stays out of bundles that do not call it) */
let loneSurrogates: RegExp | undefined;

/** `s` with every lone surrogate replaced by U+FFFD, as a UTF-8 encoder does. */
export function toWellFormed(s: string): string {
  return s.replace((loneSurrogates ??= new RegExp(LONE_SURROGATE.source, 'g')), '\uFFFD');
}
