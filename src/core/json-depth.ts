/**
 * Nesting depth of JSON values that come from outside (HTTP bodies, bus messages from other
 * systems). A hostile body of a few hundred KB can nest objects 100 000 levels deep: `JSON.parse`
 * takes it, but anything that walks it recursively afterwards (`JSON.stringify` in a validator,
 * a MessagePack encoder, a log serializer) runs out of stack with a RangeError, which callers
 * would take for an outage. Such values are refused where they enter, by a walk that needs no
 * recursion.
 */

/** Deepest nesting (objects and arrays) accepted in a JSON request body; the top-level value is level 1. */
export const MAX_JSON_DEPTH = 32;

/**
 * Values (array elements and object entries, at every level) accepted in a JSON request body of
 * the service API and the admin console, read from the bytes before JSON.parse
 * (src/http/http.ts readJson). The largest legitimate bodies hold about 3030 (an alert rule with
 * three entitlement lists of 1000 symbols) and 2060 (a notification whose 4096-byte `data` is an
 * array of digits). `PUT /v1/users/{user}/positions` takes MAX_POSITIONS_JSON_VALUES. A body's
 * parse costs by its values, not its bytes: 1 MiB of `[` nested half a million deep took
 * JSON.parse 90 ms, 90 000 distinct keys 45 ms (and 59 ms to walk), against 4 ms for a body of
 * 10 000 positions (480 KB).
 */
export const MAX_JSON_VALUES = 4096;

/** Values in a positions body: 10 000 positions (PositionsSchema) of 3 fields each, and the envelope. */
export const MAX_POSITIONS_JSON_VALUES = 40_960;

/** Whether `value` nests objects or arrays more than `max` levels deep (a scalar is level 0). */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: [object, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, level] = stack.pop()!;
    if (level > max) return true;
    for (const child of Array.isArray(v) ? (v as unknown[]) : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, level + 1]);
    }
  }
  return false;
}
