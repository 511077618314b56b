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

const MAX_ENTRIES = 1000;
const PATTERN_RE = /^[A-Z0-9.\-_/^=*]{1,32}$/;
const CLASSES = new Set<string>(ASSET_CLASSES);

interface Rule {
  readonly classes: ReadonlySet<AssetClass>;
  readonly patterns: readonly RegExp[];
}

function globToRegExp(p: string): RegExp {
  return new RegExp(
    '^' +
      p
        .split('*')
        .map((s) => s.replace(/[.\-^$+?()[\]{}|\\/=]/g, '\\$&'))
        .join('.*') +
      '$',
  );
}

function matches(rule: Rule, symbol: string, assetClass: AssetClass): boolean {
  return rule.classes.has(assetClass) || rule.patterns.some((re) => re.test(symbol));
}

export class Entitlements {
  static readonly REALTIME = new Entitlements({ classes: new Set(ASSET_CLASSES), patterns: [] }, { classes: new Set(), patterns: [] });
  static readonly DELAYED = new Entitlements({ classes: new Set(), patterns: [] }, { classes: new Set(ASSET_CLASSES), patterns: [] });
  static readonly NONE = new Entitlements({ classes: new Set(), patterns: [] }, { classes: new Set(), patterns: [] });

  static of(access: Access): Entitlements {
    return access === 'realtime' ? Entitlements.REALTIME : access === 'delayed' ? Entitlements.DELAYED : Entitlements.NONE;
  }

  private constructor(
    readonly realtime: Rule,
    readonly delayed: Rule,
  ) {}

  access(symbol: string, assetClass: AssetClass): Access {
    if (matches(this.realtime, symbol, assetClass)) return 'realtime';
    if (matches(this.delayed, symbol, assetClass)) return 'delayed';
    return 'none';
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
      if (!Array.isArray(v) || v.length > MAX_ENTRIES || v.some((x) => typeof x !== 'string')) {
        return `"${claimName}.${field}" must be an array of at most ${MAX_ENTRIES} strings`;
      }
      return v as string[];
    };
    const classes = list('classes');
    const symbols = list('symbols');
    const delayed = list('delayed');
    for (const l of [classes, symbols, delayed]) if (typeof l === 'string') return l;
    const rt: Rule = { classes: new Set(), patterns: [] };
    const dl: Rule = { classes: new Set(), patterns: [] };
    for (const c of classes as string[]) {
      if (!CLASSES.has(c)) return `"${claimName}.classes": unknown asset class "${c.slice(0, 32)}" (use ${ASSET_CLASSES.join(', ')})`;
      (rt.classes as Set<AssetClass>).add(c as AssetClass);
    }
    for (const s of symbols as string[]) {
      if (!PATTERN_RE.test(s)) return `"${claimName}.symbols": "${s.slice(0, 32)}" is not a symbol or pattern (upper case, * as wildcard)`;
      (rt.patterns as RegExp[]).push(globToRegExp(s));
    }
    for (const s of delayed as string[]) {
      if (CLASSES.has(s)) (dl.classes as Set<AssetClass>).add(s as AssetClass);
      else if (PATTERN_RE.test(s)) (dl.patterns as RegExp[]).push(globToRegExp(s));
      else return `"${claimName}.delayed": "${s.slice(0, 32)}" is neither an asset class nor a symbol pattern`;
    }
    return new Entitlements(rt, dl);
  }
}
