#!/usr/bin/env node
import { ConfigError, TickwireError } from '../core/errors.js';
import { describeConfig, ENV_ALIASES, loadConfig } from '../core/config.js';
import { startEngine } from '../app/engine.js';
import type { EngineRoles } from '../app/engine.js';
import { probeUws } from '../gateway/uws.js';
import { isSecretKey, REDACTED, redactConfig } from '../ops/redact.js';
import { installShutdown } from '../ops/shutdown.js';
import { extractFeedsFileFlag } from '../../feeds/config.js';
import { runGatewayWorkers, workersFlag } from '../workers/cli.js';

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
`;

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
  if (roles.gateway !== false && (await runGatewayWorkers(roles.feeds, flags))) return new Promise<number>(() => undefined);
  const engine = await startEngine({}, { roles, argv: flags });
  installShutdown(engine);
  return new Promise<number>(() => undefined); // runs until a signal
}

async function main(argv: string[]): Promise<number> {
  const [command = 'help', ...rest] = argv;
  const { positional, flags } = splitArgs(workersFlag(rest));
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
      if (flags.includes('--help')) {
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
    if (err instanceof ConfigError) {
      console.error(`tickwire: configuration error: ${err.message}`);
      process.exit(2);
    }
    if (err instanceof TickwireError) {
      console.error(`tickwire: ${err.message}`);
      process.exit(1);
    }
    console.error(err);
    process.exit(1);
  },
);
