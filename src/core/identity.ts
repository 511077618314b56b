import type { z } from 'zod';
import { LONE_SURROGATE } from '../protocol/text.js';
/**
 * Identity strings: the user of `portfolio` and `executions`, from a token's `sub` or a service
 * API request. One rule wherever an id enters (JWT, service API body and path, exec.in subjects,
 * portfolio requests over NATS):
 *
 * - 1 to 256 UTF-16 code units;
 * - well formed: no lone (unpaired) surrogate. Such a string has no UTF-8 form, and NATS would
 *   turn it into U+FFFD, so two users would share a subject;
 * - printable: no C0 or C1 control character, no DEL, no line or paragraph separator (U+2028,
 *   U+2029).
 *
 * Everything else is accepted as is, without normalisation: `a.b`, `a b`, `x@example.com`,
 * emoji, and both `é` and `e` + U+0301, which are two different users.
 */
export const MAX_IDENTITY_LENGTH = 256;

// eslint-disable-next-line no-control-regex -- control characters are exactly what this rule refuses
const NOT_PRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * Why `s` is not well-formed Unicode (a lone surrogate: no UTF-8 form, so Redis, NATS and hashes
 * of its bytes see U+FFFD and merge it with other strings), or undefined when it is.
 */
export function wellFormedProblem(s: string): string | undefined {
  const surrogate = LONE_SURROGATE.exec(s);
  return surrogate
    ? `is not well-formed Unicode: lone surrogate U+${surrogate[0].charCodeAt(0).toString(16).toUpperCase()} at index ${surrogate.index}`
    : undefined;
}

/**
 * The first string in `v` (a value or an object key, at any depth) that is not well-formed
 * Unicode, with why; undefined when every one is. For JSON-like data whose depth is already
 * bounded (the caller checks it first).
 */
export function wellFormedDeepProblem(v: unknown): string | undefined {
  if (typeof v === 'string') return wellFormedProblem(v);
  if (typeof v !== 'object' || v === null) return undefined;
  if (Array.isArray(v)) {
    for (const x of v) {
      const p = wellFormedDeepProblem(x);
      if (p) return p;
    }
    return undefined;
  }
  for (const [k, x] of Object.entries(v)) {
    const p = wellFormedProblem(k) ?? wellFormedDeepProblem(x);
    if (p) return p;
  }
  return undefined;
}

/**
 * A string schema that also refuses text that is not well-formed Unicode: for text sent to clients
 * as it is (MessagePack strings are UTF-8, and a lone surrogate has no UTF-8 form: strict decoders
 * refuse the bytes it would become).
 */
export const wellFormedText = (s: z.ZodString) =>
  s.superRefine((v, ctx) => {
    const problem = wellFormedProblem(v);
    if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
  });

/** Why `s` is not a valid identity string, or undefined when it is. */
export function identityProblem(s: string): string | undefined {
  if (s.length === 0) return 'must not be empty';
  if (s.length > MAX_IDENTITY_LENGTH) return `must be at most ${MAX_IDENTITY_LENGTH} characters`;
  const malformed = wellFormedProblem(s);
  if (malformed) return malformed;
  const ctl = NOT_PRINTABLE.exec(s);
  if (ctl) {
    const code = ctl[0].charCodeAt(0);
    const what = code === 0x2028 || code === 0x2029 ? 'line or paragraph separator' : 'control character';
    return `must be printable: ${what} U+${code.toString(16).toUpperCase().padStart(4, '0')} at index ${ctl.index}`;
  }
  return undefined;
}

export function isValidIdentity(s: string): boolean {
  return identityProblem(s) === undefined;
}
