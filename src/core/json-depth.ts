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
