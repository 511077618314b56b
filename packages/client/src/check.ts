/**
 * Checks of what an application passes in (constructor options, method arguments): a bad value is
 * a clear error at once, never a silent default or a failure later (docs/client-sdk.md#bad-input).
 */

/** The longest delay a timer takes (2^31 - 1 ms, about 24.8 days): a longer one fires at once. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * What a value may be: a number from `min` to `max` (default MAX_DELAY_MS), or what it takes as
 * the error message says it: alternatives separated by ` or `, each a value as JSON (`"json"`,
 * `false`) or a type (`a string`, `an object`, `a function`).
 */
export type Allowed = string | readonly [min: number, max?: number];

/**
 * A TypeError (a RangeError for a number out of range) that names `what`, shows the value given
 * (cut to 40 characters, a string quoted) and says what is taken: `options.encoding is "jsno":
 * takes "msgpack" or "json"`.
 */
export function fail(what: string, value: unknown, takes: string, range?: boolean): never {
  throw new (range && typeof value == 'number' ? RangeError : TypeError)(
    `${what} is ${typeof value == 'string' ? JSON.stringify(value.slice(0, 40)) : String(value).slice(0, 40)}: takes ${takes}`,
  );
}

/** Pass `value` unset (undefined or null: the default) or `allowed`; else fail(). */
export function checkIn(value: unknown, what: string, allowed: Allowed): void {
  const [min, max = MAX_DELAY_MS] = allowed;
  if (
    value != null &&
    !(typeof allowed == 'string'
      ? allowed.split(' or ').some((x) => x == JSON.stringify(value) || x.endsWith(' ' + typeof value))
      : typeof value == 'number' && value >= (min as number) && value <= (max as number))
  )
    fail(what, value, typeof allowed == 'string' ? allowed : `a number from ${min} to ${max}`, typeof allowed != 'string');
}

/** Check each field of `o` that `rules` names (checkIn), as `<prefix><field>`. */
export function checkAll<T extends object>(o: T, prefix: string, rules: { readonly [K in keyof T]?: Allowed }): void {
  for (const k in rules) checkIn(o[k], prefix + k, rules[k]!);
}
