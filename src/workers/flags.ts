import { ConfigError } from '../core/errors.js';

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
