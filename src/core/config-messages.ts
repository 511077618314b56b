import { z } from 'zod';

/**
 * Operator-facing wording of a configuration problem: what is wrong with the value and what to
 * write instead, in place of zod's generic texts ("Too small: expected number to be >=0",
 * "Invalid input: expected number, received string"). Where the value came from (the env
 * variable, flag or file key the operator wrote) is added by the caller.
 *
 * A value is quoted only when it cannot be a secret: numbers, booleans, and the value given to
 * a key whose values are a closed list (an enum). Strings are never echoed: a misplaced token or
 * a URL with a password would otherwise reach the terminal and the service manager's log.
 */

type Issue = z.core.$ZodIssue & { input?: unknown };
type AnySchema = z.ZodType;

interface NumberLeaf {
  minValue: number | null;
  maxValue: number | null;
  isInt: boolean;
}

const kindOf = (v: unknown): string =>
  v === null || v === undefined ? 'nothing' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a section of keys' : `a ${typeof v}`;

/** `5`, `true`, `"10ms"` (short strings that are plainly not secrets: a number with a unit), else the kind. */
function shown(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (typeof v === 'string' && /^[\s\d.,+-]*[a-z]{0,3}$/i.test(v) && v.length <= 16) return JSON.stringify(v);
  return kindOf(v);
}

const range = (n: NumberLeaf): string => {
  const what = n.isInt ? 'a whole number' : 'a number';
  const lo = n.minValue !== null && Number.isFinite(n.minValue) && n.minValue > Number.MIN_SAFE_INTEGER ? n.minValue : undefined;
  const hi = n.maxValue !== null && Number.isFinite(n.maxValue) && n.maxValue < Number.MAX_SAFE_INTEGER ? n.maxValue : undefined;
  if (lo !== undefined && hi !== undefined) return `${what} from ${lo} to ${hi}`;
  if (lo !== undefined) return `${what} of at least ${lo}`;
  if (hi !== undefined) return `${what} of at most ${hi}`;
  return what;
};

/** zod's own text for an issue (what it says when the schema gives no message). */
function zodDefault(iss: Issue): string | undefined {
  const localeError = z.config().localeError ?? z.locales.en().localeError;
  const d = localeError(iss as unknown as Parameters<typeof localeError>[0]);
  return typeof d === 'string' ? d : d?.message;
}

/** The schema of a leaf with its wrappers (default, optional) removed. */
function bare(s: AnySchema | undefined): any {
  let cur: any = s;
  while (cur?.def && ['default', 'optional', 'nullable', 'prefault'].includes(cur.def.type)) cur = cur.def.innerType;
  return cur;
}

/**
 * One problem, worded for an operator. `leaf` is the schema of the key the issue is about (for
 * an entry of a list, the list), when the key is a known leaf.
 */
export function problemOf(iss: Issue, leaf: AnySchema | undefined, entryOfList: boolean): string {
  // a message the schema gave the key itself (`unknown scope: use one of ...`) is its rule, in
  // its own words: only zod's generic texts are replaced
  if (iss.message !== zodDefault(iss)) return iss.message;
  const schema = bare(leaf);
  const target = entryOfList && schema?.def?.type === 'array' ? bare(schema.def.element) : schema;
  const got = 'input' in iss ? shown(iss.input) : undefined;
  const gotText = got === undefined ? '' : `, got ${got}`;
  switch (iss.code) {
    case 'invalid_type': {
      if (iss.expected === 'number' || iss.expected === 'int') {
        const n = target?.def?.type === 'number' ? (target as NumberLeaf) : { minValue: null, maxValue: null, isInt: iss.expected === 'int' };
        if (typeof iss.input === 'string')
          return `expected ${range(n)}${gotText}: write the number alone, without quotes or a unit (the key's name says its unit: Ms, Sec, Bytes)`;
        return `expected ${range(n)}${gotText}: set ${range(n)}`;
      }
      if (iss.expected === 'boolean') return `expected true or false${gotText}: write true or false (unquoted in YAML)`;
      if (iss.expected === 'array') return `expected a list${gotText}: write a YAML/JSON list, e.g. [a, b] (in the environment: a,b)`;
      if (iss.expected === 'object') {
        const keys = schema?.def?.type === 'object' ? Object.keys(schema.def.shape).join(', ') : '';
        return `expected a section of keys${keys ? ` (${keys})` : ''}${gotText}: put the keys under it, or remove the line`;
      }
      if (iss.expected === 'string') return `expected text${gotText}: quote the value`;
      return `expected ${iss.expected}${gotText}`;
    }
    case 'too_small':
    case 'too_big': {
      if (iss.origin === 'number' && target?.def?.type === 'number') {
        const side = iss.code === 'too_small' ? 'below the minimum' : 'above the maximum';
        return `${got ?? 'the value'} is ${side}: set ${range(target as NumberLeaf)}`;
      }
      if (iss.origin === 'string') {
        const min = (iss as { minimum?: unknown }).minimum;
        return iss.code === 'too_small' && min === 1 ? 'is empty: set a value or remove the key' : `${iss.message}: fix its length`;
      }
      if (iss.origin === 'array') {
        const bound = (iss as { minimum?: unknown; maximum?: unknown }).minimum ?? (iss as { maximum?: unknown }).maximum;
        return iss.code === 'too_small' ? `needs at least ${String(bound)} entries: add some` : `takes at most ${String(bound)} entries: remove some`;
      }
      return iss.message;
    }
    case 'invalid_value': {
      const v = iss.input;
      const given = typeof v === 'string' && v.length <= 32 ? JSON.stringify(v) : (got ?? 'the value');
      return `${given} is not a choice: use one of ${iss.values.map(String).join(', ')}`;
    }
    case 'invalid_format':
      if (iss.format === 'url') return 'is not a URL: give a full URL, e.g. https://idp.example.com/.well-known/jwks.json';
      // a regex without its own message: the pattern is the rule
      return iss.message.startsWith('Invalid string')
        ? `does not match ${String((iss as { pattern?: unknown }).pattern)}: change the value to match`
        : iss.message;
    default:
      return iss.message; // custom checks carry their own wording (the key's rule and the fix)
  }
}
