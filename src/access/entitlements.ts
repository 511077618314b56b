import type { AssetClass } from '../core/schema.js';
import { ASSET_CLASSES } from '../core/schema.js';

/**
 * Market-data entitlements carried by a token (claim `ent` by default):
 *
 *   "ent": { "classes": ["crypto"], "symbols": ["AAPL", "BTC-*"], "delayed": ["stock", "NV*"] }
 *
 * - `classes`: asset classes (stock, crypto, forex) served in real time;
 * - `symbols`: symbols or `*` patterns served in real time;
 * - `delayed`: asset classes or symbol patterns served delayed (auth.delayMs) when not real time.
 *
 * Anything matched by none of them is FORBIDDEN. Real time wins over delayed.
 */
export type Access = 'realtime' | 'delayed' | 'none';

/**
 * A principal's entitlements as plain JSON, to tell another process (the alert service) what a
 * user may see: the token's claim as it came, or, for a token without one, the access that
 * `auth.defaultEntitlement` gives (resolved by the gateway, whose configuration it is).
 */
export type EntitlementGrant = Access | { classes?: string[]; symbols?: string[]; delayed?: string[] };

const ACCESS_VALUES = new Set<unknown>(['realtime', 'delayed', 'none']);

/** entries per list of the claim (`classes`, `symbols`, `delayed`) */
export const MAX_ENTITLEMENT_ENTRIES = 1000;
/** characters per symbol pattern (a canonical symbol has at most 32) */
export const MAX_PATTERN_LENGTH = 32;
const PATTERN_CHARS_RE = /^[A-Z0-9.\-_/^=*]+$/;
const CLASSES = new Set<string>(ASSET_CLASSES);
const STAR = 42; // '*'
/** what `.` of a regular expression does not match: `*` never spans these (as `.*` did not) */
const LINE_TERMINATOR_RE = /[\n\r\u2028\u2029]/;

/**
 * Symbol patterns: exact symbols in a set, `*` patterns matched by globMatch. (They were compiled
 * to regular expressions, which backtrack: `*A*A*A*A*A*A*A*A*A*A*B` against 32 A's took seconds of
 * a gateway's event loop; test/auth/entitlement-patterns.test.ts.)
 */
interface Rule {
  readonly classes: ReadonlySet<AssetClass>;
  readonly exact: ReadonlySet<string>;
  readonly patterns: readonly string[];
}

/**
 * Whether `symbol` matches `pattern`, where `*` stands for any run of characters (none included)
 * other than a line terminator, and every other character for itself: what the regular expression
 * `^A.*B$` of pattern `A*B` matched. The classic greedy two-pointer wildcard match: on a mismatch
 * only the last `*` seen takes one more character, so the work is at most
 * (pattern length + 1) x (symbol length + 1) steps, never exponential. `work.steps` counts them (tests).
 */
export function globMatch(pattern: string, symbol: string, work?: { steps: number }): boolean {
  // no pattern character is a line terminator and `*` does not span one: nothing matches it
  if (LINE_TERMINATOR_RE.test(symbol)) return false;
  const pn = pattern.length;
  const sn = symbol.length;
  let p = 0;
  let i = 0;
  let star = -1; // position of the last `*` seen
  let from = 0; // where the run it stands for ends now
  let steps = 0;
  while (i < sn) {
    steps++;
    const c = p < pn ? pattern.charCodeAt(p) : -1;
    if (c === STAR) {
      star = p++;
      from = i;
    } else if (c === symbol.charCodeAt(i)) {
      p++;
      i++;
    } else if (star >= 0) {
      // the last `*` takes one more character; the pattern resumes after it
      p = star + 1;
      i = ++from;
    } else {
      if (work) work.steps += steps;
      return false;
    }
  }
  while (p < pn && pattern.charCodeAt(p) === STAR) p++;
  if (work) work.steps += steps + 1;
  return p === pn;
}

/** symbols whose pattern verdict an Entitlements remembers (then it starts over) */
const MEMO_SIZE = 4096;

/** a symbol pattern of the claim, or why not */
function patternProblem(s: string): string | undefined {
  if (s.length === 0 || s.length > MAX_PATTERN_LENGTH) return `is not 1-${MAX_PATTERN_LENGTH} characters long`;
  if (!PATTERN_CHARS_RE.test(s)) return 'is not a symbol or pattern (upper case, * as wildcard)';
  return undefined;
}

function addPattern(rule: Rule, s: string): void {
  if (s.includes('*')) (rule.patterns as string[]).push(s);
  else (rule.exact as Set<string>).add(s);
}

const emptyRule = (classes: Iterable<AssetClass> = []): Rule => ({ classes: new Set(classes), exact: new Set(), patterns: [] });

export class Entitlements {
  static readonly REALTIME = new Entitlements(emptyRule(ASSET_CLASSES), emptyRule());
  static readonly DELAYED = new Entitlements(emptyRule(), emptyRule(ASSET_CLASSES));
  static readonly NONE = new Entitlements(emptyRule(), emptyRule());

  static of(access: Access): Entitlements {
    return access === 'realtime' ? Entitlements.REALTIME : access === 'delayed' ? Entitlements.DELAYED : Entitlements.NONE;
  }

  private constructor(
    readonly realtime: Rule,
    readonly delayed: Rule,
  ) {}

  /**
   * symbol -> what the `*` patterns alone grant it: a claim at the bounds holds 2000 of them, each
   * up to (32 + 1) x (32 + 1) steps against a symbol, and the same symbols are asked about again
   * and again (every subscribe, every restricted portfolio valuation), so each is matched once
   */
  readonly #byPatterns = new Map<string, Access>();

  /** What the claim grants `symbol` of `assetClass`; `work.steps` counts the pattern-matching steps (tests). */
  access(symbol: string, assetClass: AssetClass, work?: { steps: number }): Access {
    const rt = this.realtime;
    const dl = this.delayed;
    if (rt.classes.has(assetClass) || rt.exact.has(symbol)) return 'realtime';
    const p = rt.patterns.length + dl.patterns.length > 0 ? this.#patternAccess(symbol, work) : 'none';
    if (p === 'realtime') return 'realtime';
    if (dl.classes.has(assetClass) || dl.exact.has(symbol) || p === 'delayed') return 'delayed';
    return 'none';
  }

  #patternAccess(symbol: string, work?: { steps: number }): Access {
    let a = this.#byPatterns.get(symbol);
    if (a !== undefined) return a;
    a = this.realtime.patterns.some((p) => globMatch(p, symbol, work))
      ? 'realtime'
      : this.delayed.patterns.some((p) => globMatch(p, symbol, work))
        ? 'delayed'
        : 'none';
    if (this.#byPatterns.size >= MEMO_SIZE) this.#byPatterns.clear();
    this.#byPatterns.set(symbol, a);
    return a;
  }

  /** Entitlements of a grant (another process's EntitlementGrant); an error message when it is malformed. */
  static fromGrant(grant: unknown): Entitlements | string {
    if (ACCESS_VALUES.has(grant)) return Entitlements.of(grant as Access);
    return Entitlements.parse(grant, 'entitlements');
  }

  /** Parse a claim value; returns an error message (naming the field) when it is malformed. */
  static parse(claim: unknown, claimName = 'ent'): Entitlements | string {
    if (claim === null || typeof claim !== 'object' || Array.isArray(claim))
      return `"${claimName}" must be an object such as {"classes":["crypto"],"symbols":["AAPL"]}`;
    const o = claim as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== 'classes' && k !== 'symbols' && k !== 'delayed') return `"${claimName}.${k}" is not a known field (classes, symbols, delayed)`;
    }
    const list = (field: string): string[] | string => {
      const v = o[field];
      if (v === undefined) return [];
      if (!Array.isArray(v) || v.length > MAX_ENTITLEMENT_ENTRIES || v.some((x) => typeof x !== 'string')) {
        return `"${claimName}.${field}" must be an array of at most ${MAX_ENTITLEMENT_ENTRIES} strings`;
      }
      return v as string[];
    };
    const classes = list('classes');
    const symbols = list('symbols');
    const delayed = list('delayed');
    for (const l of [classes, symbols, delayed]) if (typeof l === 'string') return l;
    const rt = emptyRule();
    const dl = emptyRule();
    for (const c of classes as string[]) {
      if (!CLASSES.has(c)) return `"${claimName}.classes": unknown asset class "${c.slice(0, 32)}" (use ${ASSET_CLASSES.join(', ')})`;
      (rt.classes as Set<AssetClass>).add(c as AssetClass);
    }
    for (const s of symbols as string[]) {
      const problem = patternProblem(s);
      if (problem !== undefined) return `"${claimName}.symbols": "${s.slice(0, 32)}" ${problem}`;
      addPattern(rt, s);
    }
    for (const s of delayed as string[]) {
      if (CLASSES.has(s)) {
        (dl.classes as Set<AssetClass>).add(s as AssetClass);
        continue;
      }
      const problem = patternProblem(s);
      if (problem === undefined) addPattern(dl, s);
      else if (s.length > MAX_PATTERN_LENGTH) return `"${claimName}.delayed": "${s.slice(0, 32)}" ${problem}`;
      else return `"${claimName}.delayed": "${s.slice(0, 32)}" is neither an asset class nor a symbol pattern`;
    }
    return new Entitlements(rt, dl);
  }
}
