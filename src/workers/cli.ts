import { extractFeedsFileFlag } from '../../feeds/config.js';
import { loadConfig } from '../core/config.js';
import { installShutdown } from '../ops/shutdown.js';
import { startGatewayWorkers, workerCount } from './supervisor.js';

/** `--workers N` / `--workers=N` is short for `--gateway.workers=N`. */
export function workersFlag(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--workers' && i + 1 < args.length) out.push(`--gateway.workers=${args[++i]!}`);
    else if (a.startsWith('--workers=')) out.push(`--gateway.workers=${a.slice('--workers='.length)}`);
    else out.push(a);
  }
  return out;
}

/**
 * `tickwire gateway` and `tickwire start` with more than one worker (`gateway.workers`, default
 * one per core): start the workers, stop them on SIGTERM/SIGINT. False when one worker is
 * asked for: the caller runs the gateway on the main thread as before.
 */
export async function runGatewayWorkers(feeds: readonly string[] | undefined, flags: readonly string[]): Promise<boolean> {
  const config = loadConfig({ argv: extractFeedsFileFlag(flags).rest });
  if (workerCount(config) <= 1) return false;
  const workers = await startGatewayWorkers({ ...(feeds !== undefined ? { feeds } : {}), argv: flags });
  installShutdown(workers);
  return true;
}
