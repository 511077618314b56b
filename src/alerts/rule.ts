import { z } from 'zod';
import type { InstrumentRegistry } from '../core/instruments.js';
import { TickwireError } from '../core/errors.js';

/**
 * The alert rule model (docs/alerts.md). A rule watches one symbol and fires when a value derived
 * from its ticks crosses a threshold:
 *
 *   price   trade price or mid quote crosses `level` going `above` (from < level to >= level)
 *           or `below` (from > level to <= level)
 *   change  the price rose (`up`) or fell (`down`) by at least `percent` % against the lowest
 *           (highest) price of the last `windowMs` (rolling window)
 *   spread  the quoted spread (ask - bid, in price units) widened to at least `threshold`
 *
 * Every rule has `mode`: `once` (done after its first firing) or `rearm` (fires again after the
 * watched value went back by `rearmBy`), a `cooldownMs` during which further crossings are
 * swallowed, and an optional `expiresAt` (ms since the epoch) after which it never fires.
 */
export type AlertKind = 'price' | 'change' | 'spread';
export type PriceSource = 'trade' | 'mid';
export type AlertMode = 'once' | 'rearm';

/** Stable error codes of rule validation (never reused). */
export const AlertErrorCode = {
  /** the rule is malformed: `issues` lists each field and what is wrong with it */
  INVALID: 'ALERT_INVALID',
  /** the symbol is not in the instrument registry */
  UNKNOWN_SYMBOL: 'ALERT_UNKNOWN_SYMBOL',
  /**
   * the user already holds `alerts.maxRulesPerUser` rules, or a new percent-change window would put
   * the user's rules on the symbol over `alerts.maxWindowsPerSymbol` windows
   */
  LIMIT: 'ALERT_LIMIT',
  /** a rule with this id exists */
  DUPLICATE: 'ALERT_DUPLICATE',
  /** no rule with this id (for this user) */
  NOT_FOUND: 'ALERT_NOT_FOUND',
} as const;
export type AlertErrorCode = (typeof AlertErrorCode)[keyof typeof AlertErrorCode];

export interface AlertIssue {
  /** dotted field path, e.g. `level` or `rearmBy` */
  path: string;
  message: string;
}

export class AlertRuleError extends TickwireError<AlertErrorCode> {
  readonly issues: readonly AlertIssue[];
  constructor(code: AlertErrorCode, message: string, issues: readonly AlertIssue[] = []) {
    super(code, message);
    this.name = 'AlertRuleError';
    this.issues = issues;
  }
}

/** Limits applied when rules are created (config `alerts.*`). */
export interface AlertLimits {
  /** rules one user may hold, including fired `once` rules not yet deleted (alerts.maxRulesPerUser) */
  maxRulesPerUser: number;
  /** longest percent-change window in ms (alerts.maxWindowMs) */
  maxWindowMs: number;
  /**
   * distinct percent-change windows (source and `windowMs`) one user's rules may use per symbol
   * (alerts.maxWindowsPerSymbol; default DEFAULT_MAX_WINDOWS_PER_SYMBOL): every window is a
   * rolling min/max each tick of the symbol is pushed into and committed
   */
  maxWindowsPerSymbol?: number;
  /**
   * distinct percent-change windows all users' rules may use per symbol (alerts.maxWindowsPerSymbolAllUsers;
   * default DEFAULT_MAX_WINDOWS_PER_SYMBOL_ALL_USERS): the per-user bound does not bound many users
   */
  maxWindowsPerSymbolAllUsers?: number;
  /**
   * firings one user's rules may have per minute, a minute's worth at once (alerts.firingsPerUserPerMin;
   * unset or 0: no bound): crossings beyond it are swallowed as a cooldown swallows them
   */
  firingsPerUserPerMin?: number;
}

/** alerts.maxWindowsPerSymbol when unset. */
export const DEFAULT_MAX_WINDOWS_PER_SYMBOL = 8;
/** alerts.maxWindowsPerSymbolAllUsers when unset (about 1 µs a tick of the symbol each). */
export const DEFAULT_MAX_WINDOWS_PER_SYMBOL_ALL_USERS = 64;

export const DEFAULT_ALERT_LIMITS: Readonly<AlertLimits> = Object.freeze({
  maxRulesPerUser: 1000,
  maxWindowMs: 86_400_000,
  maxWindowsPerSymbol: DEFAULT_MAX_WINDOWS_PER_SYMBOL,
  maxWindowsPerSymbolAllUsers: DEFAULT_MAX_WINDOWS_PER_SYMBOL_ALL_USERS,
});

const finite = (what: string) =>
  z
    .number({
      error: (iss) =>
        iss.input === undefined
          ? `${what} is required`
          : typeof iss.input === 'number'
            ? `${what} must be a finite number (NaN and Infinity are refused)`
            : `${what} must be a number`,
    })
    .refine((n) => Number.isFinite(n), { message: `${what} must be a finite number (NaN and Infinity are refused)` });
const positive = (what: string) => finite(what).refine((n) => n > 0, { message: `${what} must be greater than 0` });

const ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

const common = {
  id: z
    .string({ error: 'id is required (a string)' })
    .regex(ID, 'id must be 1-128 characters: letters, digits and . _ : - (not starting with a punctuation mark)'),
  user: z.string({ error: 'user is required (a string)' }).min(1, 'user must not be empty').max(256, 'user must be at most 256 characters'),
  symbol: z.string({ error: 'symbol is required (a string)' }).min(1, 'symbol must not be empty'),
  mode: z.enum(['once', 'rearm'], { error: 'mode must be "once" or "rearm"' }).default('once'),
  /** hysteresis in the unit of the watched value (price, percent points or spread) */
  rearmBy: positive('rearmBy').optional(),
  cooldownMs: finite('cooldownMs')
    .refine((n) => n >= 0 && Number.isInteger(n), { message: 'cooldownMs must be a whole number of ms, 0 or more' })
    .default(0),
  expiresAt: positive('expiresAt').optional(),
};

const PriceRuleSchema = z
  .object({
    kind: z.literal('price'),
    ...common,
    source: z.enum(['trade', 'mid'], { error: 'source must be "trade" (last trade price) or "mid" (mid quote)' }).default('trade'),
    direction: z.enum(['above', 'below'], { error: 'direction must be "above" or "below"' }),
    level: positive('level'),
  })
  .strict();

const ChangeRuleSchema = z
  .object({
    kind: z.literal('change'),
    ...common,
    source: z.enum(['trade', 'mid'], { error: 'source must be "trade" (last trade price) or "mid" (mid quote)' }).default('trade'),
    direction: z.enum(['up', 'down'], { error: 'direction must be "up" or "down"' }),
    percent: positive('percent'),
    windowMs: finite('windowMs').refine((n) => Number.isInteger(n) && n > 0, { message: 'windowMs must be a whole number of ms greater than 0' }),
  })
  .strict();

const SpreadRuleSchema = z
  .object({
    kind: z.literal('spread'),
    ...common,
    threshold: positive('threshold'),
  })
  .strict();

/** The schema of a rule as clients send it (defaults applied on parse). */
export const AlertRuleSchema = z.discriminatedUnion('kind', [PriceRuleSchema, ChangeRuleSchema, SpreadRuleSchema], {
  error: (iss) => (iss.code === 'invalid_union' ? 'kind must be "price", "change" or "spread"' : undefined),
});

export type PriceRule = z.infer<typeof PriceRuleSchema>;
export type ChangeRule = z.infer<typeof ChangeRuleSchema>;
export type SpreadRule = z.infer<typeof SpreadRuleSchema>;
export type AlertRule = PriceRule | ChangeRule | SpreadRule;
export type AlertRuleInput = z.input<typeof AlertRuleSchema>;

/**
 * Validate a rule: shape (zod), then the facts zod cannot know (instrument registry, window limit,
 * rearm needs a hysteresis, expiry in the past). Throws AlertRuleError naming every bad field.
 * The per-user limit is checked by the engine, which knows how many rules a user holds.
 */
export function parseAlertRule(input: unknown, ctx: { registry: InstrumentRegistry; limits?: AlertLimits; nowMs?: number }): AlertRule {
  const limits = ctx.limits ?? DEFAULT_ALERT_LIMITS;
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new AlertRuleError(AlertErrorCode.INVALID, 'invalid alert rule: expected an object', [{ path: '', message: 'expected an object' }]);
  }
  const r = AlertRuleSchema.safeParse(input);
  if (!r.success) {
    const issues = r.error.issues.map((iss): AlertIssue => {
      const path = iss.path.map(String).join('.');
      if (iss.code === 'unrecognized_keys') return { path, message: `unknown field ${iss.keys.map((k) => `"${k}"`).join(', ')}` };
      return { path, message: iss.message };
    });
    throw new AlertRuleError(
      AlertErrorCode.INVALID,
      `invalid alert rule: ${issues.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join('; ')}`,
      issues,
    );
  }
  const rule = r.data;
  const issues: AlertIssue[] = [];
  if (rule.mode === 'rearm' && rule.rearmBy === undefined) {
    issues.push({ path: 'rearmBy', message: 'mode "rearm" needs rearmBy > 0: how far the value must go back before the rule fires again' });
  }
  if (rule.mode === 'once' && rule.rearmBy !== undefined) {
    issues.push({ path: 'rearmBy', message: 'rearmBy only applies to mode "rearm"' });
  }
  if (rule.mode === 'rearm' && rule.rearmBy !== undefined) {
    // an `up` rule re-arms at (level - rearmBy): below 0 no price, spread or rise ever gets there
    if (rule.kind === 'price' && rule.direction === 'above' && rule.rearmBy >= rule.level) {
      issues.push({ path: 'rearmBy', message: `rearmBy must be less than level (${rule.level}): the price would never go back that far` });
    } else if (rule.kind === 'change' && rule.rearmBy > rule.percent) {
      issues.push({ path: 'rearmBy', message: `rearmBy must be at most percent (${rule.percent}): a change never goes below 0` });
    } else if (rule.kind === 'spread' && rule.rearmBy > rule.threshold) {
      issues.push({ path: 'rearmBy', message: `rearmBy must be at most threshold (${rule.threshold}): a spread never goes below 0` });
    }
  }
  if (rule.kind === 'change' && rule.windowMs > limits.maxWindowMs) {
    issues.push({ path: 'windowMs', message: `windowMs must be at most ${limits.maxWindowMs} (alerts.maxWindowMs)` });
  }
  if (rule.expiresAt !== undefined && ctx.nowMs !== undefined && rule.expiresAt <= ctx.nowMs) {
    issues.push({ path: 'expiresAt', message: 'expiresAt is in the past' });
  }
  if (issues.length > 0) {
    throw new AlertRuleError(AlertErrorCode.INVALID, `invalid alert rule: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues);
  }
  if (!ctx.registry.has(rule.symbol)) {
    const quoted = quoteSymbol(rule.symbol);
    throw new AlertRuleError(AlertErrorCode.UNKNOWN_SYMBOL, `unknown symbol ${quoted}: not in the instrument registry`, [
      { path: 'symbol', message: `unknown symbol ${quoted}` },
    ]);
  }
  return rule;
}

/**
 * An unknown symbol as an answer quotes it: at most 40 characters, and the length beyond. The
 * schema leaves its length to the registry check, and a rule comes in a frame of up to 64 KiB (a
 * body of up to 1 MiB over the service API): quoted whole, the answer echoed all of it.
 */
function quoteSymbol(symbol: string): string {
  return symbol.length <= 40 ? `"${symbol}"` : `"${symbol.slice(0, 40)}…" (${symbol.length} characters)`;
}
