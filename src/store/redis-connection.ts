import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { ConfigError } from '../core/errors.js';
import { parseRedisUrl } from '../core/redis-url.js';

/**
 * The one way tickwire opens a Redis connection: a plain `redis://` URL, or Redis Sentinel with
 * `redis+sentinel://host:port,.../<master name>` (see src/core/redis-url.ts). Under Sentinel the
 * client asks the sentinels for the current primary, checks the role of the server it reached,
 * and listens for `+switch-master` (failoverDetector) so that after a failover it reconnects to the
 * promoted replica without waiting for its retry backoff; nothing in tickwire restarts.
 */
// ioredis declares `replyMapping` as `T | undefined` in RedisOptions but as `T` in its constructor's
// parameter, which strict optional property types refuse; tickwire never sets it
type ConnectionOptions = Omit<RedisOptions, 'replyMapping'>;

export function createRedis(url: string, options: ConnectionOptions = {}): Redis {
  const target = parseRedisUrl(url);
  if ('error' in target) throw new ConfigError(`redisUrl (REDIS_URL): ${target.error}`);
  if (target.kind === 'url') return new Redis(target.url, options);
  return new Redis({
    ...options,
    sentinels: target.sentinels,
    name: target.name,
    role: 'master',
    db: target.db,
    ...(target.username ? { username: target.username } : {}),
    ...(target.password ? { password: target.password } : {}),
    ...(target.sentinelUsername ? { sentinelUsername: target.sentinelUsername } : {}),
    ...(target.sentinelPassword ? { sentinelPassword: target.sentinelPassword } : {}),
    failoverDetector: true,
    // keep asking the sentinels (one round is every sentinel once): a failover takes seconds
    sentinelRetryStrategy: (times) => Math.min(100 * times, 1000),
  });
}
