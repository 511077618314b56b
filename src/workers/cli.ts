import { extractFeedsFileFlag } from '../../feeds/config.js';
import { loadConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { createLogger } from '../core/logger.js';
import { probeUws } from '../gateway/uws.js';
import { installShutdown } from '../ops/shutdown.js';
import { startGatewayWorkers, workerCount } from './supervisor.js';

/**
 * `--workers N` / `--workers=N` is short for `--gateway.workers=N`. Its value is checked here, so
 * that a wrong one is told as typed (`--workers`), not as the flag it becomes.
 */
export function workersFlag(args: readonly string[]): string[] {
  const out: string[] = [];
  const checked = (n: string): string => {
    if (!/^\d{1,3}$/.test(n) || Number(n) > 256)
      throw new ConfigError(`--workers takes a whole number from 0 to 256, got "${n}": e.g. --workers 2 (gateway.workers; 0 = one per core)`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--workers') {
      const n = args[i + 1];
      if (n === undefined || n.startsWith('--'))
        throw new ConfigError('--workers needs a number of uWS event loops, e.g. --workers 2 (gateway.workers; 0 = one per core)');
      out.push(`--gateway.workers=${checked(n)}`);
      i++;
    } else if (a.startsWith('--workers=')) out.push(`--gateway.workers=${checked(a.slice('--workers='.length))}`);
    else out.push(a);
  }
  return out;
}

/**
 * `tickwire gateway` and `tickwire start` with more than one worker (`gateway.workers`, default
 * one per core): start the workers, stop them on SIGTERM/SIGINT. False when one worker is
 * asked for, or when only the pure-JS fallback of uWebSockets.js loaded (allowed by
 * `gateway.allowUwsFallback`): it listens through Node's `net`, which cannot share a port
 * between event loops. The caller then runs the gateway on the main thread as before.
 */
export async function runGatewayWorkers(feeds: readonly string[] | undefined, flags: readonly string[]): Promise<boolean> {
  const config = loadConfig({ argv: extractFeedsFileFlag(flags).rest });
  const n = workerCount(config);
  if (n <= 1) return false;
  const log = createLogger(config.log);
  if (process.env.UWS_USE_FALLBACK || !probeUws().native) {
    // the main thread's loadUws refuses the fallback unless it is allowed, naming the key
    if (config.gateway.allowUwsFallback)
      log.warn(
        { workers: n },
        'the pure-JS uWebSockets.js fallback cannot share a port between event loops: one event loop serves the gateway (gateway.workers is ignored until the native binary loads)',
      );
    return false;
  }
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
