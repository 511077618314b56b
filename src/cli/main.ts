#!/usr/bin/env node
import { ConfigError, TickwireError } from '../core/errors.js';
import { describeConfig, ENV_ALIASES, loadConfig } from '../core/config.js';
import type { EngineRoles } from '../app/engine.js';
import { probeUws } from '../gateway/uws.js';
import { isSecretKey, REDACTED, redactConfig, redactUrl } from '../ops/redact.js';
import { redactText } from '../core/secrets.js';
import { installShutdown } from '../ops/shutdown.js';
import { extractFeedsFileFlag } from '../../feeds/config.js';
import { workersFlag } from '../workers/flags.js';

const HELP = `tickwire: market-data streaming engine

usage:
  tickwire start [--key=value ...]      feeds and gateway in one process (embedded default;
                                        uses NATS when NATS_URL is set)
  tickwire gateway [--key=value ...]    the WebSocket gateway only (needs NATS_URL)
                                        --workers N: N uWS event loops on the port (default one per core)
  tickwire feed NAME... [--key=value]   run feed adapters and publish to NATS (needs NATS_URL)
  tickwire portfolio [--key=value ...]  portfolio valuation service (needs NATS_URL; REDIS_URL keeps positions)
  tickwire alerts [--key=value ...]     alert service: evaluates alert rules (needs NATS_URL; REDIS_URL keeps rules)
  tickwire config [--help]              print the resolved configuration (or list every key)
  tickwire check-uws                    verify the uWebSockets.js native binary loads
  tickwire tap CHANNEL... [--json]      print live updates from a gateway
  tickwire token --sub USER [--ttl 1h] [--ent LIST]
                                        mint a development token with auth.jwtSecret
  tickwire record --out FILE [--channels trade:BTC-USD,quote:*]
                                        write ticks from the bus to a recording (needs NATS_URL)

Feeds (adapters, URLs, symbols, credentials' env names, failover): --feeds-file PATH or
TICKWIRE_FEEDS_FILE (docs/feeds.md).

Configuration: defaults < config file (--config / TICKWIRE_CONFIG) < TICKWIRE_* env < --flags.
\`tickwire COMMAND --help\` describes one command.
`;

const FLAGS = `  --key=value        any configuration key, e.g. --port=8080 --log.level=debug (tickwire config --help
                     lists every key with its environment variable)
  --config PATH      a YAML or JSON config file (TICKWIRE_CONFIG)`;
const FEEDS_FILE = `  --feeds-file PATH  adapters, URLs, symbols and failover of the feeds (TICKWIRE_FEEDS_FILE, docs/feeds.md)`;
const WORKERS = `  --workers N        N uWS event loops share the port (gateway.workers; default one per core)`;
/** the roles without a gateway serve /health, /ready and /metrics only on ops.port */
const OPS_PORT = `  --ops.port N       /health, /ready and /metrics on port N (TICKWIRE_OPS_PORT; default 0: off)`;
const ROLE_FLAGS = `  --key=value        any configuration key, e.g. --log.level=debug (tickwire config --help lists
                     every key with its environment variable)
  --config PATH      a YAML or JSON config file (TICKWIRE_CONFIG)
${OPS_PORT}`;

/** `tickwire COMMAND --help` for the commands that take configuration flags (tap, token and record have their own). */
const COMMAND_HELP: Record<string, string> = {
  start: `usage: tickwire start [--key=value ...]

Feeds and gateway in one process: the embedded mode (in-process bus, memory store) unless NATS_URL
is set. Serves ws://HOST:PORT/v1/stream and the dashboard at / (default 0.0.0.0:8080).

${FLAGS}
${FEEDS_FILE}
${WORKERS}
env: PORT, HOST, NATS_URL (optional), REDIS_URL (optional: last values, positions, alert rules), LOG_LEVEL`,
  gateway: `usage: tickwire gateway [--key=value ...]

The WebSocket gateway alone: reads market data and private streams from NATS (NATS_URL required,
several URLs separated by commas for a cluster). Feeds run in \`tickwire feed\` processes.

${FLAGS}
${WORKERS}
env: NATS_URL (required), REDIS_URL (snapshots for channels this gateway does not carry yet), PORT, HOST`,
  feed: `usage: tickwire feed NAME... [--key=value ...]

Runs feed adapters (synthetic, replay, or the names of a feeds file) and publishes their ticks to
NATS (NATS_URL required), e.g. \`tickwire feed synthetic\` or \`tickwire feed binance --feeds-file f.yaml\`.

${ROLE_FLAGS}
${FEEDS_FILE}
env: NATS_URL (required), REDIS_URL (writes last values and bars for the gateways)`,
  portfolio: `usage: tickwire portfolio [--key=value ...]

The portfolio valuation service: values users' positions from the market data on NATS and answers
the gateways over NATS (run one per deployment).

${ROLE_FLAGS}
env: NATS_URL (required), REDIS_URL (keeps positions across restarts; memory otherwise)`,
  alerts: `usage: tickwire alerts [--key=value ...]

The alert service: evaluates users' alert rules on the market data on NATS and records firings as
notifications.

${ROLE_FLAGS}
env: NATS_URL (required), REDIS_URL (keeps rules across restarts; memory otherwise)`,
  config: `usage: tickwire config [--key=value ...]   print the resolved configuration as JSON (secrets redacted)
       tickwire config --help            this text, then every key: environment variable, default, description

Sources, later wins: defaults < config file (--config / TICKWIRE_CONFIG) < TICKWIRE_* env < --flags.
`,
  'check-uws': `usage: tickwire check-uws

Loads the uWebSockets.js native binary and prints which one; exits 1 when only the pure-JS
fallback loads (the gateway refuses it unless gateway.allowUwsFallback is set).`,
};

/** the configuration flags of this run, for naming a server in a failure message */
let configFlags: string[] = [];

const wantsHelp = (args: readonly string[]): boolean => args.includes('--help') || args.includes('-h');

function splitArgs(argv: string[]): { positional: string[]; flags: string[] } {
  const positional: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) {
      flags.push(a);
      if (!a.includes('=') && i + 1 < argv.length && !argv[i + 1]!.startsWith('--') && a !== '--help' && a !== '--json') flags.push(argv[++i]!);
    } else positional.push(a);
  }
  return { positional, flags };
}

async function runRole(roles: Partial<EngineRoles>, flags: string[], requireNats: boolean): Promise<number> {
  if (requireNats) {
    const cfg = loadConfig({ argv: extractFeedsFileFlag(flags).rest });
    if (!cfg.natsUrl)
      throw new ConfigError('this role runs over NATS: set NATS_URL (e.g. nats://127.0.0.1:4222) or use `tickwire start` for the embedded mode');
  }
  // loaded here, not at the top: help, a refused argument and the other commands do not load the
  // engine and the workers' supervisor (most of the CLI's start-up)
  const { runGatewayWorkers } = await import('../workers/cli.js');
  if (roles.gateway !== false && (await runGatewayWorkers(roles.feeds, flags))) return new Promise<number>(() => undefined);
  const { startEngine } = await import('../app/engine.js');
  const engine = await startEngine({}, { roles, argv: flags });
  installShutdown(engine);
  return new Promise<number>(() => undefined); // runs until a signal
}

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  const help = COMMAND_HELP[command];
  if (help !== undefined && wantsHelp(rest) && command !== 'config') {
    console.log(help);
    return 0;
  }
  const { positional, flags } = splitArgs(workersFlag(rest));
  configFlags = extractFeedsFileFlag(flags).rest;
  if (['start', 'gateway', 'portfolio', 'alerts', 'config'].includes(command) && positional.length > 0)
    throw new ConfigError(
      `tickwire ${command} takes no argument "${positional[0]}": configuration goes in --key=value flags (\`tickwire ${command} --help\`); feeds are chosen with --feeds=a,b or a feeds file's run list`,
    );
  switch (command) {
    case 'start':
      return runRole({}, flags, false);
    case 'gateway':
      return runRole({ gateway: true, feeds: [] }, flags, true);
    case 'feed':
      if (positional.length === 0) throw new ConfigError('tickwire feed needs a feed name, e.g. `tickwire feed synthetic`');
      return runRole({ gateway: false, feeds: positional }, flags, true);
    case 'portfolio':
      return runRole({ gateway: false, feeds: [], portfolio: true }, flags, true);
    case 'alerts':
      return runRole({ gateway: false, feeds: [], alerts: true }, flags, true);
    case 'config': {
      if (wantsHelp(rest)) {
        console.log(COMMAND_HELP.config);
        const aliases: Record<string, string[]> = {};
        for (const [env, key] of Object.entries(ENV_ALIASES)) (aliases[key] ??= []).push(env);
        for (const row of describeConfig()) {
          const names = [row.env, ...(aliases[row.key] ?? [])].join(', ');
          const dflt = row.default === undefined ? 'unset' : isSecretKey(row.key) ? REDACTED : JSON.stringify(row.default);
          console.log(`${row.key.padEnd(28)} ${names.padEnd(38)} default ${dflt}\n    ${row.description}`);
        }
        return 0;
      }
      // secrets (keys named like secret/token/password, URL credentials) are never printed
      console.log(JSON.stringify(redactConfig(loadConfig({ argv: flags })), null, 2));
      return 0;
    }
    case 'check-uws': {
      const r = probeUws();
      console.log(`uWebSockets.js: ${r.detail}`);
      return r.native ? 0 : 1;
    }
    case 'tap': {
      const { runTap } = await import('./tap.js');
      return runTap(rest);
    }
    case 'token': {
      const { runToken } = await import('./token.js');
      return runToken(rest);
    }
    case 'record': {
      const { runRecord } = await import('../ingest/record-command.js');
      return runRecord(rest);
    }
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP);
      return 0;
    default:
      console.error(`unknown command "${command}"\n\n${HELP}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // the message may quote a URL with its password (a NATS server it could not reach) or a token
    if (err instanceof ConfigError) {
      console.error(`tickwire: configuration error: ${redactText(err.message)}`);
      process.exit(2);
    }
    if (err instanceof TickwireError) {
      console.error(`tickwire: ${redactText(err.message)}`);
      process.exit(1);
    }
    console.error(`tickwire: ${redactText(unexpectedFailure(err))}`);
    process.exit(1);
  },
);

/**
 * One line for an error no tickwire code turned into a TickwireError: an operator gets the cause
 * and what to do, not a stack trace (LOG_LEVEL=debug or trace prints it too). ioredis fails a
 * command with MaxRetriesPerRequestError when it cannot reach the server: a Redis-backed store
 * (positions, alert rules, executions) loading its state at start.
 */
function unexpectedFailure(err: unknown): string {
  const e = err instanceof Error ? err : new Error(String(err));
  const level = process.env.TICKWIRE_LOG_LEVEL ?? process.env.LOG_LEVEL;
  const stack = level === 'debug' || level === 'trace' ? `\n${e.stack ?? ''}` : '';
  let cfg: ReturnType<typeof loadConfig> | undefined;
  try {
    cfg = loadConfig({ argv: configFlags });
  } catch {
    // the configuration was valid when the engine started; keep the generic wording
  }
  // ioredis: MaxRetriesPerRequestError when the server refuses connections; "Command timed out"
  // (redis.commandTimeoutMs) when it takes them and never answers (hung, paused, a dead path)
  const hung = e.message === 'Command timed out' && cfg?.redisUrl !== undefined;
  if (e.name === 'MaxRetriesPerRequestError' || hung) {
    const url = cfg?.redisUrl ? redactUrl(cfg.redisUrl) : 'the configured server';
    const why = hung ? `: it did not answer within redis.commandTimeoutMs (${cfg!.redis.commandTimeoutMs} ms)` : '';
    return `cannot reach Redis at ${url} (REDIS_URL)${why} to load the state kept there (positions, alert rules, executions).\nStart redis-server there or fix REDIS_URL (unset it to keep that state in memory).${stack}`;
  }
  return `unexpected failure: ${e.name}: ${e.message}${stack || ' (set LOG_LEVEL=debug for the stack trace)'}`;
}
