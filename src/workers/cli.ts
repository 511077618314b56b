import { extractFeedsFileFlag } from '../../feeds/config.js';
import { loadConfig } from '../core/config.js';
import { createLogger } from '../core/logger.js';
import { probeUws } from '../gateway/uws.js';
import { installShutdown } from '../ops/shutdown.js';
import { startGatewayWorkers, workerCount } from './supervisor.js';

// (in a module of its own: the CLI reads it before it knows whether it starts anything)
export { workersFlag } from './flags.js';

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
