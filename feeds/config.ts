import { readFileSync } from 'node:fs';
import { z } from 'zod';
import YAML from 'yaml';
import { ConfigError } from '../src/core/errors.js';
import { isCanonicalSymbol } from '../src/core/symbols.js';
import type { StreamRunnerOptions } from './sdk/runner.js';

/**
 * The feeds file (YAML or JSON): which adapters exist, where they connect, which symbols they
 * serve and how provider symbols map to canonical ones, where credentials come from (names of
 * environment variables, never the secrets themselves) and which symbols fail over between two
 * providers. Path: `--feeds-file PATH` or env `TICKWIRE_FEEDS_FILE`. Documented in docs/feeds.md.
 *
 *   feeds:
 *     binance: { url: wss://stream.binance.com:9443, symbols: [BTC-USD], symbolMap: { BTC-USD: BTCUSDT } }
 *     alpaca:  { url: wss://stream.data.alpaca.markets/v2/iex, keyEnv: ALPACA_KEY_ID, secretEnv: ALPACA_SECRET_KEY, symbols: [AAPL] }
 *   failover:
 *     - { symbol: BTC-USD, primary: binance, backup: coinbase, staleAfterMs: 5000 }
 *   run: [binance, coinbase]
 */
const envName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'the NAME of an environment variable (letters, digits, _), e.g. ALPACA_KEY_ID');

const symbol = z.string().refine(isCanonicalSymbol, 'a canonical symbol: upper case, e.g. AAPL, BRK.B, BTC-USD, EUR-USD');

/** Fields every adapter accepts; adapters add their own (see each adapter's options schema). */
export const commonFeedFields = {
  adapter: z.string().min(1).optional().describe('adapter type; defaults to the feed name'),
  url: z.string().url().optional().describe("provider endpoint (ws://, wss://, http://, https://); defaults to the provider's public URL"),
  symbols: z.array(symbol).default([]).describe('canonical symbols this feed serves'),
  symbolMap: z.record(symbol, z.string().min(1)).default({}).describe('canonical -> provider symbol, for symbols the default rule maps wrongly'),
  keyEnv: envName.optional().describe('environment variable holding the API key (id)'),
  secretEnv: envName.optional().describe('environment variable holding the API secret'),
  staleAfterMs: z.number().int().min(0).optional().describe('nothing received this long: stale, reconnect (0 = never)'),
  pingIntervalMs: z.number().int().min(0).optional().describe('send a WebSocket ping this often (0 = never)'),
  maxConnectionAgeMs: z.number().int().min(0).optional().describe('reconnect proactively after this long (0 = never)'),
  connectTimeoutMs: z.number().int().min(100).optional(),
  readyTimeoutMs: z.number().int().min(100).optional(),
  backoff: z
    .object({
      initialMs: z.number().int().min(1),
      maxMs: z.number().int().min(1),
      factor: z.number().min(1),
      jitter: z.number().min(0).max(1),
    })
    .partial()
    .strict()
    .optional(),
};

export const FeedEntrySchema = z.object(commonFeedFields).passthrough();
export type FeedEntry = z.infer<typeof FeedEntrySchema>;
export const CommonFeedSchema = z.object(commonFeedFields).strict();
export type CommonFeedOptions = z.infer<typeof CommonFeedSchema>;

const feedName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'a feed name: lower case letters, digits, - and _');

export const FailoverRuleSchema = z
  .object({
    symbol,
    primary: feedName,
    backup: feedName,
    staleAfterMs: z.number().int().min(50).default(5000).describe('primary silent this long for the symbol: switch to the backup'),
    recoverAfterMs: z.number().int().min(0).default(5000).describe('primary delivering again this long: switch back'),
  })
  .strict();

export const FeedsFileSchema = z
  .object({
    feeds: z.record(feedName, FeedEntrySchema).default({}),
    failover: z.array(FailoverRuleSchema).default([]),
    run: z.array(feedName).optional().describe('feeds `tickwire start` runs (default: config key `feeds`)'),
  })
  .strict();

export type FeedsFile = z.infer<typeof FeedsFileSchema>;
export type FeedsFileInput = z.input<typeof FeedsFileSchema>;

function describeIssue(iss: z.core.$ZodIssue, where: string): string {
  if (iss.code === 'unrecognized_keys') {
    const prefix = iss.path.length ? iss.path.join('.') + '.' : '';
    return `${where}: unknown key ${iss.keys.map((k) => `"${prefix}${k}"`).join(', ')}: remove it or check its spelling (docs/feeds.md lists the keys)`;
  }
  return `${where}: ${iss.path.join('.') || '(top level)'}: ${iss.message}`;
}

/** Validate a feeds document (already parsed); `source` names it in error messages. */
export function parseFeedsFile(raw: unknown, source = 'feeds file'): FeedsFile {
  const r = FeedsFileSchema.safeParse(raw ?? {});
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => describeIssue(i, source)).join('\n  '));
  const file = r.data;
  for (const [i, rule] of file.failover.entries()) {
    for (const role of ['primary', 'backup'] as const) {
      if (!file.feeds[rule[role]]) {
        throw new ConfigError(`${source}: failover[${i}].${role}: "${rule[role]}" is not a feed of this file: add it under feeds:`);
      }
    }
    if (rule.primary === rule.backup) throw new ConfigError(`${source}: failover[${i}]: primary and backup are both "${rule.primary}"`);
  }
  for (const name of file.run ?? []) {
    if (!file.feeds[name] && name !== 'synthetic') throw new ConfigError(`${source}: run: "${name}" is not a feed of this file: add it under feeds:`);
  }
  return file;
}

/** Read and validate the feeds file at `path` (YAML, or JSON by extension). */
export function loadFeedsFile(path: string): FeedsFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`feeds file ${path} (TICKWIRE_FEEDS_FILE / --feeds-file) cannot be read: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`feeds file ${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message}`);
  }
  return parseFeedsFile(raw, `feeds file ${path}`);
}

/**
 * Take `--feeds-file PATH` (or `--feeds-file=PATH`) out of command-line flags, so the rest can go
 * to the main configuration (which rejects flags it does not know).
 */
export function extractFeedsFileFlag(argv: readonly string[]): { path?: string; rest: string[] } {
  const rest: string[] = [];
  let path: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--feeds-file') {
      path = argv[++i];
      if (path === undefined || path.startsWith('--')) throw new ConfigError('--feeds-file needs a path, e.g. --feeds-file examples/feeds.yaml');
    } else if (a.startsWith('--feeds-file=')) path = a.slice('--feeds-file='.length);
    else rest.push(a);
  }
  return path === undefined ? { rest } : { path, rest };
}

/** The feeds file for this process: `--feeds-file` wins over TICKWIRE_FEEDS_FILE; none = undefined. */
export function resolveFeedsFile(argv: readonly string[], env: NodeJS.ProcessEnv): { file?: FeedsFile; rest: string[] } {
  const { path, rest } = extractFeedsFileFlag(argv);
  const p = path ?? env.TICKWIRE_FEEDS_FILE;
  return p ? { file: loadFeedsFile(p), rest } : { rest };
}

/**
 * Parse one feed entry with the adapter's own schema (common fields + its options), strictly:
 * an unknown key fails with a message naming it.
 */
export function parseFeedEntry<S extends z.ZodType>(schema: S, entry: unknown, where: string): z.infer<S> {
  const r = schema.safeParse(entry ?? {});
  if (!r.success) throw new ConfigError(r.error.issues.map((i) => describeIssue(i, where)).join('\n  '));
  return r.data;
}

/** Read a credential from the environment variable the feeds file names; fail naming both. */
export function credentialFromEnv(
  env: NodeJS.ProcessEnv,
  where: string,
  key: 'keyEnv' | 'secretEnv' | string,
  varName: string | undefined,
  hint: string,
): string {
  if (!varName) throw new ConfigError(`${where}.${key} is required: name the environment variable that holds ${hint} (e.g. ${key}: ${exampleVar(where, key)})`);
  const value = env[varName];
  if (value === undefined || value.trim() === '') {
    throw new ConfigError(`${where}.${key}: environment variable ${varName} is not set (or empty): export ${varName} with ${hint}`);
  }
  return value.trim();
}

function exampleVar(where: string, key: string): string {
  const vendor = where
    .split('.')
    .pop()!
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '_');
  return `${vendor}_${key === 'secretEnv' ? 'SECRET' : 'KEY'}`;
}

/** Runner settings from the common fields, with the adapter's defaults underneath. */
export function runnerOptions(entry: CommonFeedOptions | FeedEntry, defaults: StreamRunnerOptions = {}): StreamRunnerOptions {
  const o: StreamRunnerOptions = { ...defaults };
  if (entry.staleAfterMs !== undefined) o.staleAfterMs = entry.staleAfterMs;
  if (entry.pingIntervalMs !== undefined) o.pingIntervalMs = entry.pingIntervalMs;
  if (entry.maxConnectionAgeMs !== undefined) o.maxConnectionAgeMs = entry.maxConnectionAgeMs;
  if (entry.connectTimeoutMs !== undefined) o.connectTimeoutMs = entry.connectTimeoutMs;
  if (entry.readyTimeoutMs !== undefined) o.readyTimeoutMs = entry.readyTimeoutMs;
  if (entry.backoff) o.backoff = { ...defaults.backoff, ...entry.backoff } as NonNullable<StreamRunnerOptions['backoff']>;
  return o;
}
