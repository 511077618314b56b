import { createRequire } from 'node:module';
import pino from 'pino';
import type { Logger } from 'pino';
import type { Config } from './config.js';

export type { Logger };

/**
 * pino logger: JSON lines in production, readable when on a terminal (format auto) or when
 * format is pretty. Per-message logging never happens on the hot path; lifecycle is at info.
 */
export function createLogger(cfg: Config['log'], name = 'tickwire'): Logger {
  const pretty = cfg.format === 'pretty' || (cfg.format === 'auto' && process.stdout.isTTY === true);
  if (pretty && canResolve('pino-pretty')) {
    return pino({ name, level: cfg.level, transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l' } } });
  }
  return pino({ name, level: cfg.level });
}

function canResolve(id: string): boolean {
  try {
    createRequire(import.meta.url).resolve(id);
    return true;
  } catch {
    return false;
  }
}
