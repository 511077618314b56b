import { extractFeedsFileFlag } from '../../feeds/config.js';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
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
  const log = createLogger(config.log);
  let requestStop: (() => void) | undefined;
  let stopping = false;
  const starting = startGatewayWorkers({ ...(feeds !== undefined ? { feeds } : {}), argv: flags, log, onStarting: (stop) => (requestStop = stop) });
  // signals are handled from the start: a SIGTERM while workers are still starting stops them cleanly
  installShutdown({
    log,
    config,
    close: async () => {
      stopping = true;
      requestStop?.();
      const workers = await starting.catch(() => undefined);
      await workers?.close();
    },
  });
  try {
    await starting;
  } catch (err) {
    if (!stopping) throw err;
  }
  return true;
}
