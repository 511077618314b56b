import { wellFormedProblem } from '../core/identity.js';
import { toWellFormed } from '../protocol/text.js';
import type { TickInput } from '../../feeds/sdk/adapter.js';

/** Any surrogate code unit: a cheap first test (provider strings are nearly always ASCII). */
const SURROGATE = /[\uD800-\uDFFF]/;

/** A tick whose strings were repaired, and why (for feed health and logs). */
export interface TextRepair {
  tick: TickInput;
  detail: string;
}

/**
 * Provider text made well-formed before it enters the engine. Every string field of a tick that
 * an adapter copied from a provider payload (trade `id`, correction/cancel `ref`, `venue`,
 * status `code` and `reason`, `sym`) may hold a lone surrogate: JSON allows `"\ud800"`, and a
 * MessagePack provider can send the CESU-8 bytes of one. Such a string has no UTF-8 form, so it
 * reached MessagePack clients as bytes that strict decoders refuse (one bad trade id broke the
 * whole batch for them) and JSON clients as an escape of half a character.
 *
 * Each lone surrogate becomes U+FFFD, which is what a UTF-8 decoder already does with invalid
 * bytes in a provider's text frame, so both ways of sending the same broken text give the same
 * tick. The tick is kept (a trade still counts), and the repair is reported. Returns undefined
 * when every string is well formed (the usual case: no copy is made). Only the tick's own
 * string fields are checked: nested values of ticks are numbers (book levels, LULD bands).
 */
export function repairText(input: TickInput): TextRepair | undefined {
  let fixed: Record<string, unknown> | undefined;
  let detail: string | undefined;
  const src = input as unknown as Record<string, unknown>;
  for (const key in src) {
    const v = src[key];
    if (typeof v !== 'string' || !SURROGATE.test(v)) continue;
    const problem = wellFormedProblem(v);
    if (problem === undefined) continue;
    fixed ??= { ...src };
    fixed[key] = toWellFormed(v);
    detail ??= `${input.k} ${JSON.stringify(src.sym)}: field "${key}" ${problem}; sent with U+FFFD in its place`;
  }
  return fixed ? { tick: fixed as unknown as TickInput, detail: detail! } : undefined;
}
