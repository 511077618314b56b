import { createHash } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';

type Arg = string | number;

/**
 * A Lua script Redis runs by its SHA1 (`EVALSHA`), so that the script's text travels and is
 * hashed once per batch or once per connection, not with every call: `EVAL` with the whole script
 * on every bar write had Redis receive 913 bytes a write instead of 315 (`bench/redis-bar-writes.ts`,
 * docs/benchmarks.md). Redis forgets scripts on a restart, a failover to a replica that never ran
 * the script, or `SCRIPT FLUSH`, and a refused `EVAL` (OOM at maxmemory) loads nothing; so:
 * - `run` sends `EVALSHA` and, on `NOSCRIPT`, the same call as `EVAL` (which loads it);
 * - a `multi()` batch starts with `SCRIPT LOAD` (`load`) before its `EVALSHA`s (`queue`): inside a
 *   transaction a `NOSCRIPT` cannot be sent again, and ioredis's per-connection "already loaded"
 *   guess (`defineCommand`) stayed wrong after a refused `EVAL` in one, failing every later batch.
 */
export class RedisScript {
  readonly sha: string;

  constructor(
    private readonly lua: string,
    private readonly numberOfKeys: number,
  ) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }

  /** Run it now on `redis`: keys first, then the arguments. */
  async run(redis: Redis, ...args: Arg[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, this.numberOfKeys, ...args);
    } catch (err) {
      if (!/^NOSCRIPT/.test((err as Error).message)) throw err;
      return redis.eval(this.lua, this.numberOfKeys, ...args);
    }
  }

  /** Queue `SCRIPT LOAD` in a batch, once, before its `queue`d calls. */
  load(multi: ChainableCommander): void {
    multi.script('LOAD', this.lua);
  }

  /** Queue a call in a batch that `load`ed the script first. */
  queue(multi: ChainableCommander, ...args: Arg[]): void {
    multi.evalsha(this.sha, this.numberOfKeys, ...args);
  }
}
