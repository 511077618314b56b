import { SignJWT } from 'jose';
import { ConfigError } from '../core/errors.js';
import { loadConfig } from '../core/config.js';
import { Entitlements } from '../access/entitlements.js';
import { identityProblem } from '../core/identity.js';

export const TOKEN_HELP = `tickwire token: mint a development token (HS256) with the configured secret

usage:
  tickwire token --sub USER [--ttl 1h] [--ent LIST] [--delayed LIST] [--key=value ...]

  --sub USER       the token's subject: the user of portfolio and executions (required)
  --ttl DURATION   lifetime: 90s, 15m, 1h, 7d or plain seconds (default 1h); 0 = no exp claim
  --ent LIST       real-time entitlements: comma-separated asset classes (stock, crypto, forex)
                   and symbols or patterns (AAPL, BRK.*, *-USD); or the claim as JSON
  --delayed LIST   delayed entitlements, same form (classes and symbol patterns)

The secret is auth.jwtSecret (TICKWIRE_JWT_SECRET, at least 32 characters); auth.issuer and
auth.audience, when configured, are put in the token so the gateway accepts it. The token is
printed alone on stdout: TOKEN=$(tickwire token --sub alice).
`;

const CLASSES = new Set(['stock', 'crypto', 'forex']);

/** `90s`, `15m`, `1h`, `7d`, or seconds; throws a ConfigError naming the flag. */
export function parseTtl(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)?$/.exec(v.trim());
  if (!m) throw new ConfigError(`--ttl "${v}": use a duration such as 90s, 15m, 1h or 7d`);
  const n = Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  return Math.round(n);
}

/** Build the entitlements claim from `--ent` / `--delayed` (lists or JSON). */
export function entitlementsClaim(ent: string | undefined, delayed: string | undefined, claimName: string): Record<string, unknown> | undefined {
  if (ent === undefined && delayed === undefined) return undefined;
  let claim: Record<string, unknown> = {};
  if (ent?.trim().startsWith('{')) {
    try {
      claim = JSON.parse(ent) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`--ent: not valid JSON: ${(err as Error).message}`);
    }
  } else if (ent !== undefined) {
    const items = ent
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const classes = items.filter((i) => CLASSES.has(i));
    const symbols = items.filter((i) => !CLASSES.has(i));
    if (classes.length) claim.classes = classes;
    if (symbols.length) claim.symbols = symbols;
  }
  if (delayed !== undefined)
    claim.delayed = delayed
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
  const parsed = Entitlements.parse(claim, claimName);
  if (typeof parsed === 'string') throw new ConfigError(`--ent/--delayed: ${parsed}`);
  return claim;
}

/** `tickwire token ...`: prints a signed token; returns the exit code. */
export async function runToken(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(TOKEN_HELP);
    return 0;
  }
  const own: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--(sub|ttl|ent|delayed)(?:=(.*))?$/.exec(a);
    if (!m) {
      rest.push(a);
      continue;
    }
    const value = m[2] ?? args[++i];
    if (value === undefined) throw new ConfigError(`--${m[1]} needs a value (tickwire token --help)`);
    own[m[1]!] = value;
  }
  if (own.sub === undefined) throw new ConfigError('tickwire token needs --sub USER (the user the token is for)');
  const problem = identityProblem(own.sub);
  if (problem) throw new ConfigError(`--sub: ${problem}`);
  const cfg = loadConfig({ argv: rest, env });
  const secret = cfg.auth.jwtSecret;
  if (!secret) {
    throw new ConfigError(
      'tickwire token signs with the HMAC secret auth.jwtSecret: set TICKWIRE_JWT_SECRET (at least 32 characters) to the value the gateway uses',
    );
  }
  const ttl = parseTtl(own.ttl ?? '1h');
  const claims: Record<string, unknown> = {};
  const ent = entitlementsClaim(own.ent, own.delayed, cfg.auth.entitlementsClaim);
  if (ent) claims[cfg.auth.entitlementsClaim] = ent;
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject(own.sub).setIssuedAt();
  if (ttl > 0) jwt.setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
  if (cfg.auth.issuer?.[0]) jwt.setIssuer(cfg.auth.issuer[0]);
  if (cfg.auth.audience?.[0]) jwt.setAudience(cfg.auth.audience[0]);
  console.log(await jwt.sign(new TextEncoder().encode(secret)));
  return 0;
}
